"""ChatKimiCoder end to end against the strict emulator on 127.0.0.1.

Covers what the standard suites do not pin down: reasoning out (kwargs + blocks, empty string,
v1 stream indexes), replay, usage from choices[0], metadata, callbacks, lazy construction,
model override, rate limiting, disable_streaming, thinking/effort on the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kimi_lc_support import API_KEY
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.rate_limiters import BaseRateLimiter

from kimi_coder_auth.emulator import Emulator, ScriptedResponder, Turn
from langchain_kimi_coder import ChatKimiCoder

#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

@pytest.fixture
def scripted() -> Iterator[Any]:
    """Start an emulator that replays the given turns; returns (emulator, model factory)."""
    started: list[Emulator] = []

    def start(*turns: Any, **emu_kwargs: Any) -> tuple[Emulator, Any]:
        emu = Emulator(api_keys=[API_KEY], responder=ScriptedResponder(list(turns)), **emu_kwargs)
        emu.start()
        started.append(emu)

        def make(**kw: Any) -> ChatKimiCoder:
            return ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, **kw)

        return emu, make

    yield start
    for emu in started:
        emu.stop()


def _chat_bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith("/chat/completions")]


def _aggregate(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


TOOL_TURN = Turn(
    reasoning=["I need both ", "tools."],
    content="Let me check.",
    tool_calls=[("get_weather", '{"city": "Paris"}'), ("get_time", '{"tz": "CET"}')],
)


def _tools() -> list[dict[str, Any]]:
    def spec(name: str, prop: str) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": f"{name} tool",
                "parameters": {"type": "object", "properties": {prop: {"type": "string"}},
                               "required": [prop]},
            },
        }

    return [spec("get_weather", "city"), spec("get_time", "tz")]


# --------------------------------------------------------------------------- reasoning out


def test_invoke_reasoning_usage_and_metadata(scripted: Any) -> None:
    emu, make = scripted(Turn(reasoning="Let me think.", content="Hello there."))
    msg = make(thinking=True).invoke("hi")
    assert msg.content == "Hello there."
    assert msg.additional_kwargs["reasoning_content"] == "Let me think."
    assert msg.content_blocks[0] == {"type": "reasoning", "reasoning": "Let me think."}
    assert msg.content_blocks[1]["type"] == "text"
    meta = msg.response_metadata
    assert meta["model_name"] == "kimi-for-coding"
    assert meta["model_provider"] == "kimi-coder"
    assert meta["finish_reason"] == "stop"
    assert meta["id"].startswith("chatcmpl-") and msg.id == meta["id"]
    assert isinstance(meta["x_trace_id"], str) and meta["x_trace_id"]
    usage = msg.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_token_details"] == {"cache_read": 0}
    body = _chat_bodies(emu)[0]
    assert body["thinking"] == {"type": "enabled"}
    assert "stream" not in body and "temperature" not in body and "top_p" not in body
    assert body["max_completion_tokens"] == 32768


@pytest.mark.parametrize("stream", [False, True])
def test_empty_reasoning_is_preserved(scripted: Any, stream: bool) -> None:
    _, make = scripted(Turn(reasoning="", content="ok"))
    llm = make(thinking=True)
    msg = _aggregate(list(llm.stream("hi"))) if stream else llm.invoke("hi")
    assert msg.additional_kwargs["reasoning_content"] == ""
    assert msg.content_blocks[0] == {"type": "reasoning", "reasoning": ""}


def test_v1_invoke_content_is_blocks(scripted: Any) -> None:
    _, make = scripted(TOOL_TURN)
    msg = make(thinking=True, output_version="v1").bind_tools(_tools()).invoke("weather?")
    assert isinstance(msg.content, list)
    assert [b["type"] for b in msg.content] == ["reasoning", "text", "tool_call", "tool_call"]
    assert msg.content[0]["reasoning"] == "I need both tools."


@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_stream_reasoning_text_and_parallel_tool_calls(scripted: Any, output_version: str) -> None:
    """Reasoning, a text preamble and two calls (one chunk carries the end of the first call and
    the start of the second) never collide, and ids come back verbatim."""
    emu, make = scripted(TOOL_TURN)
    llm = make(thinking=True, output_version=output_version).bind_tools(_tools())
    chunks = list(llm.stream("weather and time?"))
    full = _aggregate(chunks)
    assert [tc["id"] for tc in full.tool_calls] == ["functions.get_weather:0", "functions.get_time:1"]
    assert [tc["args"] for tc in full.tool_calls] == [{"city": "Paris"}, {"tz": "CET"}]
    assert full.additional_kwargs["reasoning_content"] == "I need both tools."
    blocks = full.content_blocks
    assert [b["type"] for b in blocks] == ["reasoning", "text", "tool_call", "tool_call"]
    assert blocks[0]["reasoning"] == "I need both tools."
    assert blocks[1]["text"] == "Let me check."
    assert [b["id"] for b in blocks[2:]] == ["functions.get_weather:0", "functions.get_time:1"]
    assert full.response_metadata["finish_reason"] == "tool_calls"
    assert chunks[-1].chunk_position == "last"
    if output_version == "v1":
        by_kind: dict[Any, set[int]] = {}
        for chunk in chunks:
            for block in chunk.content:
                key = block["type"] if block["type"] != "tool_call_chunk" else block["id"] or "frag"
                by_kind.setdefault(key, set()).add(block["index"])
        # one stable index per block, never shared between reasoning, text and each call
        assert by_kind["reasoning"] == {0} and by_kind["text"] == {1}
        assert by_kind["functions.get_weather:0"] == {2} and by_kind["functions.get_time:1"] == {3}
    # replaying the streamed turn sends the reasoning and ids back unchanged
    history = [HumanMessage("weather and time?"), full,
               ToolMessage("sunny", tool_call_id="functions.get_weather:0"),
               ToolMessage("noon", tool_call_id="functions.get_time:1")]
    emu.responder = ScriptedResponder([Turn(reasoning="done", content="Sunny at noon.")])
    answer = llm.invoke(history)
    assert answer.text == "Sunny at noon."
    sent = _chat_bodies(emu)[-1]["messages"][1]
    assert sent["reasoning_content"] == "I need both tools."
    assert sent["content"] == "Let me check."
    assert [c["id"] for c in sent["tool_calls"]] == ["functions.get_weather:0", "functions.get_time:1"]


def test_stream_events_v3_reasoning_and_tool_calls(scripted: Any) -> None:
    _, make = scripted(TOOL_TURN)
    stream = make(thinking=True).bind_tools(_tools()).stream_events("weather?", version="v3")
    events = list(stream)
    starts = [e["content"]["type"] for e in events if e.get("event") == "content-block-start"]
    assert starts.count("reasoning") == 1 and starts.count("text") == 1
    message = stream.output
    assert [tc["name"] for tc in message.tool_calls] == ["get_weather", "get_time"]


# --------------------------------------------------------------------------- usage


def test_stream_usage_once_on_the_last_chunk(scripted: Any) -> None:
    emu, make = scripted(Turn(reasoning="r", content="a fairly long answer " * 5))
    chunks = list(make().stream("hi"))
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]
    full = _aggregate(chunks)
    assert full.usage_metadata is not None and full.usage_metadata["output_tokens"] > 0
    assert full.response_metadata["model_name"] == "kimi-for-coding"
    assert _chat_bodies(emu)[0]["stream_options"] == {"include_usage": True}


def test_stream_usage_off(scripted: Any) -> None:
    emu, make = scripted(Turn(content="hi"))
    full = _aggregate(list(make(stream_usage=False).stream("hi")))
    assert full.usage_metadata is None
    assert "stream_options" not in _chat_bodies(emu)[0]


def test_cache_read_reported_in_both_modes(emulator: Emulator, model_kwargs: dict) -> None:
    history = [HumanMessage("remember: " + "lorem ipsum " * 400), AIMessage("ok"),
               HumanMessage("what was it?")]
    llm = ChatKimiCoder(**model_kwargs, prompt_cache_key="session-cache-both-modes")
    llm.invoke(history)  # the first request under the key fills the cache
    invoked = llm.invoke(history).usage_metadata
    streamed = _aggregate(list(llm.stream(history))).usage_metadata
    for usage in (invoked, streamed):
        assert usage is not None
        cache = usage["input_token_details"]["cache_read"]
        assert 0 < cache <= usage["input_tokens"]


# --------------------------------------------------------------------------- plumbing


class _Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[Any] = []
        self.chunks: list[Any] = []

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        self.tokens.append(token)
        self.chunks.append(chunk)


def test_on_llm_new_token_once_per_chunk(scripted: Any) -> None:
    _, make = scripted(Turn(reasoning="think", content="one two three four five six seven"))
    handler = _Tokens()
    chunks = list(make().stream("hi", config={"callbacks": [handler]}))
    assert len(handler.tokens) == len(chunks)
    assert "".join(t for t in handler.tokens if isinstance(t, str)) == "one two three four five six seven"
    assert all(c is not None for c in handler.chunks)


def test_streaming_invoke_reports_tokens(scripted: Any) -> None:
    _, make = scripted(Turn(content="alpha beta gamma delta epsilon"))
    handler = _Tokens()
    msg = make(streaming=True).invoke("hi", config={"callbacks": [handler]})
    assert msg.content == "alpha beta gamma delta epsilon"
    assert len(handler.tokens) > 1


def test_construction_is_lazy_and_fast(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sum(emulator.counts.values())
    start = time.perf_counter()
    models = [ChatKimiCoder(base_url=emulator.base_url) for _ in range(200)]
    per_init = (time.perf_counter() - start) / 200
    assert per_init < 0.005  # generous bound for a loaded CI box; typical is ~0.1 ms
    assert sum(emulator.counts.values()) == before
    assert all(m._client is None for m in models)
    # The key is discovered on the first request, not at construction.
    monkeypatch.setenv("KIMI_CODER_API_KEY", API_KEY)
    assert models[0].api_key is None
    assert models[0].invoke("hello").content


def test_instances_share_one_credential(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", API_KEY)
    a, b = ChatKimiCoder(base_url=emulator.base_url), ChatKimiCoder(base_url=emulator.base_url)
    a.invoke("x")
    b.invoke("y")
    assert a._get_transport().credential is b._get_transport().credential


def test_secrets_never_in_repr(model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs)
    assert API_KEY not in repr(llm) and API_KEY not in str(llm.model_dump())


def test_model_override_and_ls_params(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, temperature=0.3, max_tokens=64, stop=["END"])
    msg = llm.invoke("hi", model="toggle-thinking")
    assert msg.response_metadata["model_name"] == "toggle-thinking"
    assert emulator.requests[-1].body["model"] == "toggle-thinking"
    body = emulator.requests[-1].body
    assert body["temperature"] == 0.3 and body["stop"] == ["END"]
    assert body["max_completion_tokens"] == 64
    ls = llm._get_ls_params(model="toggle-thinking")
    assert ls["ls_provider"] == "kimi-coder" and ls["ls_model_name"] == "toggle-thinking"
    assert ls["ls_temperature"] == 0.3 and ls["ls_max_tokens"] == 64 and ls["ls_stop"] == ["END"]


def test_effort_and_extra_body(scripted: Any) -> None:
    emu, make = scripted(Turn(content="ok"))
    make(model="k3", effort="high", prompt_cache_key="session-1",
         model_kwargs={"custom_flag": 1}).invoke("hi")
    body = _chat_bodies(emu)[-1]
    assert body["thinking"] == {"type": "enabled", "effort": "high"}
    assert body["prompt_cache_key"] == "session-1" and body["custom_flag"] == 1
    with pytest.raises(ValueError, match="effort"):
        make(model="k3", effort="extreme").invoke("hi")


class _CountingLimiter(BaseRateLimiter):
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.calls += 1
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.calls += 1
        return True


def test_rate_limiter_and_disable_streaming(emulator: Emulator, model_kwargs: dict) -> None:
    limiter = _CountingLimiter()
    llm = ChatKimiCoder(**model_kwargs, rate_limiter=limiter, disable_streaming=True)
    chunks = list(llm.stream("hello"))
    assert len(chunks) == 1 and chunks[0].content
    assert "stream" not in emulator.requests[-1].body
    assert limiter.calls == 1


# --------------------------------------------------------------------------- async


async def test_async_invoke_and_concurrent_streams(scripted: Any) -> None:
    _, make = scripted(Turn(reasoning="r", content="async answer here"))
    llm = make(thinking=True)
    msg = await llm.ainvoke("hi")
    assert msg.content == "async answer here" and msg.additional_kwargs["reasoning_content"] == "r"

    async def one() -> AIMessageChunk:
        chunks = [c async for c in llm.astream("hi")]
        return _aggregate(chunks)

    results = await asyncio.gather(*(one() for _ in range(8)))
    assert all(r.content == "async answer here" for r in results)
    assert all(r.usage_metadata for r in results)


async def test_astream_v1_tool_calls(scripted: Any) -> None:
    _, make = scripted(TOOL_TURN)
    llm = make(thinking=True, output_version="v1").bind_tools(_tools())
    full = _aggregate([c async for c in llm.astream("weather?")])
    assert [b["type"] for b in full.content_blocks] == ["reasoning", "text", "tool_call", "tool_call"]


def test_tool_call_with_bad_json_is_invalid_not_lost(scripted: Any) -> None:
    _, make = scripted(Turn(tool_calls=[("get_weather", '{"city": ')]))
    msg = make().bind_tools(_tools()).invoke("w")
    assert msg.tool_calls == []
    assert msg.invalid_tool_calls[0]["name"] == "get_weather"
    assert msg.invalid_tool_calls[0]["args"] == '{"city": '
    # streamed: langchain-core parses partial JSON leniently, but the raw text is kept
    full = _aggregate(list(make().bind_tools(_tools()).stream("w")))
    assert full.tool_call_chunks[0]["args"] == '{"city": '


def test_request_json_is_plain(scripted: Any) -> None:
    emu, make = scripted(Turn(content="x"))
    make().invoke([HumanMessage(content=[{"type": "text", "text": "a"},
                                         {"type": "text", "text": "b"}])])
    assert json.dumps(_chat_bodies(emu)[0]["messages"]) == '[{"role": "user", "content": "ab"}]'


@pytest.mark.parametrize("form", ["messages", "mixed", "tuples", "string", "prompt_value"])
def test_every_input_form_sends_the_same_conversation(scripted: Any, form: str) -> None:
    """A list of messages skips LangChain's re-validation; every other form takes its path.
    Each must reach the server as the same two user/assistant turns."""
    from langchain_core.prompt_values import ChatPromptValue

    emu, make = scripted(Turn(content="x"), Turn(content="x"))
    turns = [HumanMessage("hi"), AIMessage("hello"), HumanMessage("again")]
    inputs: dict[str, Any] = {
        "messages": turns,
        "mixed": [turns[0], {"role": "assistant", "content": "hello"}, ("human", "again")],
        "tuples": [("human", "hi"), ("ai", "hello"), ("human", "again")],
        "string": "again",
        "prompt_value": ChatPromptValue(messages=turns),
    }
    llm = make()
    llm.invoke(inputs[form])
    list(llm.stream(inputs[form]))
    expected = [{"role": "user", "content": "again"}] if form == "string" else [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"}]
    for body in _chat_bodies(emu):
        assert [{k: m[k] for k in ("role", "content")} for m in body["messages"]] == expected


def test_model_copy_with_new_base_url_uses_new_server(model_kwargs: dict) -> None:
    with Emulator(api_keys=[API_KEY]) as other:
        llm = ChatKimiCoder(**model_kwargs)
        llm.invoke("first")
        moved = llm.model_copy(update={"base_url": other.base_url})
        moved.invoke("second")
        assert other.counts["chat"] == 1


def test_profile_from_catalogue() -> None:
    k3 = ChatKimiCoder(model="k3").profile
    assert k3 is not None
    # 1 Mi on Allegretto+, 256 Ki on Moderato: offline, the profile takes the smaller one
    assert k3["max_input_tokens"] == 262144 and k3["reasoning_output"] is True
    assert k3["reasoning_effort_levels"] == ["low", "high", "max"]
    assert k3["tool_calling"] and k3["structured_output"] and k3["image_inputs"]
    default = ChatKimiCoder().profile
    assert default is not None and default["max_output_tokens"] == 32768
    assert "reasoning_effort_levels" not in default


async def test_astream_events_v2(scripted: Any) -> None:
    _, make = scripted(Turn(reasoning="hmm", content="streamed words for events"))
    text = ""
    reasoning = ""
    async for event in make(thinking=True).astream_events("hi", version="v2"):
        if event["event"] == "on_chat_model_stream":
            chunk = event["data"]["chunk"]
            text += chunk.text
            reasoning += chunk.additional_kwargs.get("reasoning_content", "")
    assert text == "streamed words for events" and reasoning == "hmm"


def test_top_level_usage_chunk_and_cached_tokens_spelling() -> None:
    """OpenAI-style servers send usage in a separate top-level chunk with no choices, and the
    cache count as prompt_tokens_details.cached_tokens; both end up on the last chunk."""
    from types import SimpleNamespace

    from kimi_coder_auth.wire import StreamAccumulator, build_request
    from langchain_kimi_coder.chat_models import _StreamState

    built = build_request("kimi-for-coding", [{"role": "user", "content": "hi"}], stream=True)
    call = SimpleNamespace(model="kimi-for-coding", built=built, include_usage=True)
    stream = SimpleNamespace(accumulator=StreamAccumulator(), protocol="openai", trace_id="trace-1")
    state = _StreamState(call, stream, v1=False)  # type: ignore[arg-type]
    raw = [
        {"id": "c1", "model": "kimi-for-coding",
         "choices": [{"index": 0, "delta": {"reasoning_content": "r"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "hello"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "c1", "choices": [], "usage": {
            "prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320,
            "prompt_tokens_details": {"cached_tokens": 256},
            "completion_tokens_details": {"reasoning_tokens": 5}}},
    ]
    chunks = [c.message for d in raw for c in state.chunks(stream.accumulator.feed(d))]
    last = state.final().message
    assert [c.usage_metadata for c in chunks] == [None, None]
    assert last.usage_metadata == {
        "input_tokens": 300, "output_tokens": 20, "total_tokens": 320,
        "input_token_details": {"cache_read": 256}, "output_token_details": {"reasoning": 5},
    }
    assert last.response_metadata["x_trace_id"] == "trace-1"
    assert last.response_metadata["finish_reason"] == "stop" and last.chunk_position == "last"
