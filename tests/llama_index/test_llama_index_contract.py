"""Contract suite for KimiCoderLLM: the nine methods, reasoning, usage, tools, images, errors.

Everything runs against the strict emulator on 127.0.0.1 (it rejects every documented 400),
so a request that the real API would refuse fails here too.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool

from kimi_coder_auth import errors
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator, ScriptedResponder, Turn
from llama_index_kimi_coder import KimiCoderLLM

pytestmark = pytest.mark.timeout(30)


#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


ADD = FunctionTool.from_defaults(fn=add)
MULTIPLY = FunctionTool.from_defaults(fn=multiply)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def script(emulator: Emulator, *turns: Any) -> None:
    emulator.responder = ScriptedResponder(list(turns))


# --------------------------------------------------------------------------- construction


def test_is_a_function_calling_llm_with_catalogue_metadata() -> None:
    llm = KimiCoderLLM()
    assert isinstance(llm, FunctionCallingLLM)
    md = llm.metadata
    assert md.is_chat_model and md.is_function_calling_model
    assert (md.context_window, md.num_output, md.model_name) == (262144, 32768, "kimi-for-coding")
    md2 = KimiCoderLLM(context_window=100_000, max_tokens=4096).metadata
    assert (md2.context_window, md2.num_output) == (100_000, 4096)


def test_constructor_does_no_io(emulator: Emulator, api_key: str) -> None:
    KimiCoderLLM(base_url=emulator.base_url)  # no key, no login: must not fail or connect
    KimiCoderLLM(api_key=api_key, base_url=emulator.base_url)
    assert sum(emulator.counts.values()) == 0


def test_api_key_never_appears_in_repr_or_serialisation(make_llm: Any, api_key: str) -> None:
    llm = make_llm()
    dumps = [
        repr(llm),
        str(llm),
        llm.to_json(),
        json.dumps(llm.to_dict()),
        str(llm.model_dump()),
        str(llm.to_payload()) if hasattr(llm, "to_payload") else "",
    ]
    for text in dumps:
        assert api_key not in text
    assert "api_key" not in llm.to_dict()


def test_no_credentials_gives_typed_error_naming_next_step(emulator: Emulator) -> None:
    llm = KimiCoderLLM(base_url=emulator.base_url)  # temp home: no login anywhere
    with pytest.raises(errors.CredentialsUnavailable) as info:
        llm.chat(user("hi"))
    assert "kimi-coder login" in str(info.value)
    assert emulator.counts["chat"] == 0


# --------------------------------------------------------------------------- non-streaming


def test_chat_returns_thinking_block_first_text_and_usage(
    llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    resp = llm.chat(user("Tell me about lighthouses"))
    blocks = resp.message.blocks
    assert isinstance(blocks[0], ThinkingBlock) and blocks[0].content
    assert isinstance(blocks[1], TextBlock)
    assert "lighthouses" in resp.message.content
    assert resp.message.role == MessageRole.ASSISTANT
    kw = resp.additional_kwargs
    assert kw["prompt_tokens"] > 0 and kw["completion_tokens"] > 0
    assert kw["total_tokens"] == kw["prompt_tokens"] + kw["completion_tokens"]
    assert "cached_tokens" in kw
    assert resp.raw["usage"]["prompt_tokens"] == kw["prompt_tokens"]
    body = chat_bodies()[-1]
    assert body["thinking"] == {"type": "enabled"}
    assert body["max_completion_tokens"] == 32768
    # sampling params the API fixes are not sent unless set
    for key in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "n"):
        assert key not in body


async def test_achat_matches_chat(llm: KimiCoderLLM) -> None:
    resp = await llm.achat(user("Tell me about owls"))
    assert isinstance(resp.message.blocks[0], ThinkingBlock)
    assert "owls" in resp.message.content
    assert resp.additional_kwargs["total_tokens"] > 0


def test_complete_goes_through_chat_and_keeps_reasoning(
    llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    resp = llm.complete("Say cheese")
    assert "cheese" in resp.text
    assert resp.additional_kwargs["reasoning_content"]
    assert resp.additional_kwargs["completion_tokens"] > 0
    assert chat_bodies()[-1]["messages"] == [{"role": "user", "content": "Say cheese"}]


async def test_acomplete(llm: KimiCoderLLM) -> None:
    resp = await llm.acomplete("Say cheese")
    assert "cheese" in resp.text
    assert resp.additional_kwargs["prompt_tokens"] > 0


def test_thinking_off_sends_disabled_and_returns_no_thinking_block(
    make_llm: Any, chat_bodies: Any
) -> None:
    resp = make_llm(model=TOGGLE, thinking=False).chat(user("hi"))
    assert chat_bodies()[-1]["thinking"] == {"type": "disabled"}
    assert not any(isinstance(b, ThinkingBlock) for b in resp.message.blocks)


def test_sampling_params_sent_only_when_set(make_llm: Any, chat_bodies: Any) -> None:
    make_llm(temperature=0.6, top_p=0.9, stop=["END"]).chat(user("hi"))
    body = chat_bodies()[-1]
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.6, 0.9, ["END"])
    make_llm().chat(user("hi"), temperature=0.3, max_tokens=100)
    body = chat_bodies()[-1]
    assert body["temperature"] == 0.3 and body["max_completion_tokens"] == 100


def test_empty_reasoning_is_preserved(llm: KimiCoderLLM, emulator: Emulator) -> None:
    script(emulator, Turn(reasoning="", content="fine"), Turn(reasoning="", content="fine"))
    resp = llm.chat(user("hi"))
    assert isinstance(resp.message.blocks[0], ThinkingBlock)
    assert resp.message.blocks[0].content == ""
    last = list(llm.stream_chat(user("hi")))[-1]
    assert isinstance(last.message.blocks[0], ThinkingBlock)
    assert last.message.blocks[0].content == ""


# --------------------------------------------------------------------------- streaming


def _check_stream(chunks: list[Any], reasoning: str, answer: str) -> None:
    assert chunks, "the stream yielded nothing"
    thinking = "".join(c.additional_kwargs.get("thinking_delta", "") for c in chunks)
    assert thinking == reasoning
    assert "".join(c.delta or "" for c in chunks) == answer
    so_far = ""
    for c in chunks:  # messages are cumulative; delta is answer text only
        so_far += c.delta or ""
        assert c.message.content == so_far
        assert "thinking_delta" not in c.message.additional_kwargs
    final = chunks[-1]
    assert isinstance(final.message.blocks[0], ThinkingBlock)
    assert final.message.blocks[0].content == reasoning
    assert final.additional_kwargs["prompt_tokens"] > 0
    assert final.raw["usage"]["completion_tokens"] == final.additional_kwargs["completion_tokens"]


STREAM_TURN = Turn(reasoning=["Let me ", "think it ", "through."], content=["Hel", "lo ", "there"])


def test_stream_chat_thinking_delta_and_cumulative_blocks(
    llm: KimiCoderLLM, emulator: Emulator
) -> None:
    script(emulator, STREAM_TURN)
    _check_stream(list(llm.stream_chat(user("hi"))), "Let me think it through.", "Hello there")


async def test_astream_chat(llm: KimiCoderLLM, emulator: Emulator) -> None:
    script(emulator, STREAM_TURN)
    chunks = [c async for c in await llm.astream_chat(user("hi"))]
    _check_stream(chunks, "Let me think it through.", "Hello there")


def test_stream_complete(llm: KimiCoderLLM, emulator: Emulator) -> None:
    script(emulator, STREAM_TURN)
    chunks = list(llm.stream_complete("hi"))
    assert "".join(c.delta or "" for c in chunks) == "Hello there"
    assert chunks[-1].text == "Hello there"
    assert "".join(c.additional_kwargs.get("thinking_delta", "") for c in chunks) == (
        "Let me think it through."
    )
    assert chunks[-1].additional_kwargs["total_tokens"] > 0


async def test_astream_complete(llm: KimiCoderLLM, emulator: Emulator) -> None:
    script(emulator, STREAM_TURN)
    chunks = [c async for c in await llm.astream_complete("hi")]
    assert chunks[-1].text == "Hello there"
    assert "".join(c.delta or "" for c in chunks) == "Hello there"


# --------------------------------------------------------------------------- reasoning back


def test_history_reasoning_is_replayed_and_tool_turn_content_omitted(
    llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    history = [
        ChatMessage(role="user", content="What is 2 + 3?"),
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="I should add."),
                TextBlock(text=""),
                ToolCallBlock(
                    tool_call_id="functions.add:0", tool_name="add", tool_kwargs={"a": 2, "b": 3}
                ),
            ],
        ),
        ChatMessage(
            role="tool", content="5", additional_kwargs={"tool_call_id": "functions.add:0"}
        ),
        ChatMessage(
            role="assistant",
            content="It is 5.",
            additional_kwargs={"reasoning_content": "Tool said 5."},
        ),
        ChatMessage(role="user", content="thanks"),
    ]
    llm.chat(history)
    msgs = chat_bodies()[-1]["messages"]
    tool_turn = msgs[1]
    assert tool_turn["reasoning_content"] == "I should add."
    assert "content" not in tool_turn
    assert tool_turn["tool_calls"][0]["id"] == "functions.add:0"
    assert json.loads(tool_turn["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert msgs[2] == {"role": "tool", "tool_call_id": "functions.add:0", "content": "5"}
    assert msgs[3]["reasoning_content"] == "Tool said 5."


def test_tool_turn_without_reasoning_gets_placeholder_when_thinking(
    make_llm: Any, chat_bodies: Any
) -> None:
    history = [
        ChatMessage(role="user", content="add 2 and 3"),
        ChatMessage(
            role="assistant",
            content="",
            additional_kwargs={
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
                    }
                ]
            },
        ),
        ChatMessage(role="tool", content="5", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    make_llm(thinking=True).chat(history)  # the strict emulator would 400 without reasoning
    assert chat_bodies()[-1]["messages"][1]["reasoning_content"]
    make_llm(thinking=True, reasoning_placeholder="(earlier)").chat(history)
    assert chat_bodies()[-1]["messages"][1]["reasoning_content"] == "(earlier)"


def test_tool_message_without_tool_call_id_is_a_clear_error(
    llm: KimiCoderLLM, emulator: Emulator
) -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        llm.chat([ChatMessage(role="user", content="x"), ChatMessage(role="tool", content="5")])
    assert emulator.counts["chat"] == 0


# --------------------------------------------------------------------------- tools


def test_chat_with_tools_returns_both_tool_call_forms(llm: KimiCoderLLM, chat_bodies: Any) -> None:
    resp = llm.chat_with_tools([ADD, MULTIPLY], user_msg="Please add 4 and 9")
    blocks = [b for b in resp.message.blocks if isinstance(b, ToolCallBlock)]
    assert [b.tool_name for b in blocks] == ["add"]
    kw_calls = resp.message.additional_kwargs["tool_calls"]
    assert kw_calls[0]["function"]["name"] == "add" and kw_calls[0]["id"] == blocks[0].tool_call_id
    selections = llm.get_tool_calls_from_response(resp)
    assert selections[0].tool_name == "add"
    assert selections[0].tool_kwargs == {"a": 4, "b": 9}
    body = chat_bodies()[-1]
    assert body["tool_choice"] == "auto" and body["thinking"] == {"type": "enabled"}
    assert {t["function"]["name"] for t in body["tools"]} == {"add", "multiply"}


def test_tool_calls_read_from_additional_kwargs_when_no_blocks(llm: KimiCoderLLM) -> None:
    from llama_index.core.base.llms.types import ChatResponse

    msg = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1'},
                }
            ]
        },
    )
    sel = llm.get_tool_calls_from_response(ChatResponse(message=msg))
    assert (sel[0].tool_id, sel[0].tool_name, sel[0].tool_kwargs) == ("c1", "add", {"a": 1})
    with pytest.raises(ValueError, match="tool call"):
        llm.get_tool_calls_from_response(
            ChatResponse(message=ChatMessage(role="assistant", content="x"))
        )
    assert (
        llm.get_tool_calls_from_response(
            ChatResponse(message=ChatMessage(role="assistant", content="x")),
            error_on_no_tool_call=False,
        )
        == []
    )


def test_stream_merges_two_tool_calls_sharing_a_chunk(
    llm: KimiCoderLLM, emulator: Emulator
) -> None:
    # The emulator puts call 0's last argument fragment and call 1's header in one chunk.
    script(
        emulator, Turn(tool_calls=[("add", '{"a": 10, "b": 20}'), ("multiply", '{"a": 3, "b": 4}')])
    )
    seen_partial = False
    last = None
    for chunk in llm.stream_chat_with_tools(
        [ADD, MULTIPLY], user_msg="add and multiply", allow_parallel_tool_calls=True
    ):
        sels = llm.get_tool_calls_from_response(chunk, error_on_no_tool_call=False)  # never raises
        if sels and sels[0].tool_kwargs and sels[0].tool_kwargs != {"a": 10, "b": 20}:
            seen_partial = True
        last = chunk
    assert last is not None
    sels = llm.get_tool_calls_from_response(last)
    assert [(s.tool_name, s.tool_kwargs) for s in sels] == [
        ("add", {"a": 10, "b": 20}),
        ("multiply", {"a": 3, "b": 4}),
    ]
    assert len(last.message.additional_kwargs["tool_calls"]) == 2
    assert seen_partial, "expected partial arguments mid-stream"


async def test_astream_chat_with_tools(llm: KimiCoderLLM) -> None:
    chunks = [c async for c in await llm.astream_chat_with_tools([ADD], user_msg="add 1 and 2")]
    assert llm.get_tool_calls_from_response(chunks[-1])[0].tool_kwargs == {"a": 1, "b": 2}
    assert any(c.additional_kwargs.get("thinking_delta") for c in chunks)


def test_parallel_not_allowed_keeps_first_call(
    llm: KimiCoderLLM, emulator: Emulator, chat_bodies: Any
) -> None:
    script(
        emulator, Turn(tool_calls=[("add", '{"a": 1, "b": 2}'), ("multiply", '{"a": 3, "b": 4}')])
    )
    resp = llm.chat_with_tools([ADD, MULTIPLY], user_msg="both", allow_parallel_tool_calls=False)
    assert [s.tool_name for s in llm.get_tool_calls_from_response(resp)] == ["add"]
    assert len(resp.message.additional_kwargs["tool_calls"]) == 1
    assert chat_bodies()[-1]["parallel_tool_calls"] is False


def test_tool_required_with_thinking_disables_thinking_for_that_call(
    toggle_llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    llm = toggle_llm
    resp = llm.chat_with_tools([ADD], user_msg="numbers 5 and 6", tool_required=True)
    body = chat_bodies()[-1]
    assert body["tool_choice"] == "required" and body["thinking"] == {"type": "disabled"}
    assert llm.get_tool_calls_from_response(resp)[0].tool_kwargs == {"a": 5, "b": 6}


def test_named_tool_choice(toggle_llm: KimiCoderLLM, chat_bodies: Any) -> None:
    llm = toggle_llm
    resp = llm.chat_with_tools([ADD, MULTIPLY], user_msg="7 and 8", tool_choice="multiply")
    assert chat_bodies()[-1]["tool_choice"] == {
        "type": "function",
        "function": {"name": "multiply"},
    }
    assert llm.get_tool_calls_from_response(resp)[0].tool_name == "multiply"


def test_forced_tool_choice_policies(make_llm: Any, chat_bodies: Any, emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="forced"):
        make_llm(thinking=True, forced_tool_choice="error").chat_with_tools(
            [ADD], user_msg="add 1 and 2", tool_required=True
        )
    assert emulator.counts["chat"] == 0
    with pytest.warns(UserWarning, match="relaxed"):
        make_llm(thinking=True, forced_tool_choice="auto").chat_with_tools(
            [ADD], user_msg="add 1 and 2", tool_required=True
        )
    body = chat_bodies()[-1]
    assert body["tool_choice"] == "auto" and body["thinking"] == {"type": "enabled"}


def test_predict_and_call_runs_the_tool(llm: KimiCoderLLM) -> None:
    out = llm.predict_and_call([MULTIPLY], user_msg="multiply 6 and 7")
    assert out.response == "42"


async def test_apredict_and_call(llm: KimiCoderLLM) -> None:
    out = await llm.apredict_and_call([ADD], user_msg="add 20 and 22")
    assert out.response == "42"


# --------------------------------------------------------------------------- images


def _image_urls(body: dict[str, Any]) -> list[str]:
    return [
        p["image_url"]["url"]
        for m in body["messages"]
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if p.get("type") == "image_url"
    ]


def test_images_from_bytes_path_and_url_go_out_as_data_urls(
    llm: KimiCoderLLM, chat_bodies: Any, tmp_path: Any, image_server: str, png: bytes
) -> None:
    path = tmp_path / "pixel.png"
    path.write_bytes(png)
    msg = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="What is in these images?"),
            ImageBlock(image=png),
            ImageBlock(path=path),
            ImageBlock(url=f"{image_server}/pixel.png"),
        ],
    )
    resp = llm.chat([msg])
    assert "image" in resp.message.content
    urls = _image_urls(chat_bodies()[-1])
    assert len(urls) == 3
    for url in urls:
        assert url.startswith("data:image/png;base64,")
    import base64

    assert {base64.b64decode(u.split(",", 1)[1]) for u in urls} == {png}


async def test_async_image_url_is_inlined(
    llm: KimiCoderLLM, chat_bodies: Any, image_server: str
) -> None:
    msg = ChatMessage(
        role="user", blocks=[TextBlock(text="see"), ImageBlock(url=f"{image_server}/pixel.png")]
    )
    await llm.achat([msg])
    assert _image_urls(chat_bodies()[-1])[0].startswith("data:image/png;base64,")


def test_unreachable_image_and_unsupported_blocks_fail_before_sending(
    llm: KimiCoderLLM, emulator: Emulator, image_server: str
) -> None:
    bad = ChatMessage(
        role="user", blocks=[TextBlock(text="x"), ImageBlock(url=f"{image_server}/missing.png")]
    )
    with pytest.raises(errors.ImageFetchError):
        llm.chat([bad])
    audio = ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF....", format="wav")])
    with pytest.raises(ValueError, match="AudioBlock"):
        llm.chat([audio])
    assert emulator.counts["chat"] == 0


# --------------------------------------------------------------------------- errors


def test_wrong_key_is_authentication_error(make_llm: Any) -> None:
    with pytest.raises(errors.AuthenticationError):
        make_llm(api_key="sk-wrong").chat(user("hi"))


def test_bad_request_surfaces_typed(llm: KimiCoderLLM, emulator: Emulator) -> None:
    emulator.inject("chat", status=400)
    with pytest.raises(errors.BadRequestError):
        llm.chat(user("hi"))


async def test_async_errors_surface_typed(make_llm: Any, emulator: Emulator) -> None:
    emulator.inject("chat", status=500, times=None)
    with use_clock(FakeClock()):
        llm = make_llm(max_retries=1)
        with pytest.raises(errors.ServerError):
            await llm.achat(user("hi"))
        with pytest.raises(errors.ServerError):
            async for _ in await llm.astream_chat(user("hi")):
                pass
    assert emulator.counts["chat"] == 4  # one retry each


def test_server_error_is_retried_then_succeeds(make_llm: Any, emulator: Emulator) -> None:
    emulator.inject("chat", status=503, times=1)
    with use_clock(FakeClock()):
        resp = make_llm(max_retries=2).chat(user("hello"))
    assert "hello" in resp.message.content
    assert emulator.counts["chat"] == 2


def test_stream_cut_short_is_stream_interrupted(llm: KimiCoderLLM, emulator: Emulator) -> None:
    emulator.inject("chat", drop_after_chunks=3)
    with pytest.raises(errors.StreamInterruptedError):
        list(llm.stream_chat(user("a fairly long question about many things")))


def test_user_agent_gate_is_explained(api_key: str) -> None:
    with Emulator(api_keys=[api_key], ua_gate=r"^SomeAgent/") as emu:
        llm = KimiCoderLLM(api_key=api_key, base_url=emu.base_url, protocol="openai")
        with pytest.raises(errors.UserAgentRejectedError) as info:
            llm.chat(user("hi"))
        assert "user_agent" in str(info.value)
        ok = KimiCoderLLM(
            api_key=api_key, base_url=emu.base_url, user_agent="SomeAgent/1.0", protocol="openai"
        )
        assert ok.chat(user("hi")).message.content
        assert emu.requests[-1].headers["user-agent"] == "SomeAgent/1.0"


def test_default_user_agent_is_honest(llm: KimiCoderLLM, emulator: Emulator) -> None:
    llm.chat(user("hi"))
    ua = emulator.requests[-1].headers["user-agent"]
    assert ua.startswith("kimi-coder/") and "KimiCLI" not in ua


# --------------------------------------------------------------------------- async lifecycle


def test_repeated_asyncio_run_reuses_nothing_stale(llm: KimiCoderLLM) -> None:
    async def once(i: int) -> str:
        resp = await llm.achat(user(f"round {i}"))
        chunks = [c async for c in await llm.astream_chat(user(f"stream {i}"))]
        return resp.message.content + chunks[-1].message.content

    for i in range(3):
        out = asyncio.run(once(i))
        assert f"round {i}" in out and f"stream {i}" in out


async def test_concurrent_astream_chat(llm: KimiCoderLLM) -> None:
    async def one(i: int) -> str:
        chunks = [c async for c in await llm.astream_chat(user(f"number {i}"))]
        return chunks[-1].message.content

    outs = await asyncio.gather(*(one(i) for i in range(8)))
    for i, out in enumerate(outs):
        assert f"number {i}" in out


def test_copy_and_pickle_never_leak_the_key(make_llm: Any, api_key: str) -> None:
    import copy

    llm = make_llm()
    llm.chat(user("warm up"))  # builds the transport
    clone = copy.deepcopy(llm)
    assert clone.chat(user("from the clone")).message.content  # key and pools shared
    with pytest.raises(TypeError, match="api_key"):
        pickle.dumps(llm)
    plain = KimiCoderLLM(thinking=True, model="toggle-thinking")
    plain._get_transport()
    restored = pickle.loads(pickle.dumps(plain))
    assert (restored.thinking, restored.model) == (True, "toggle-thinking")


# --------------------------------------------------------------------------- catalogue & thinking


def test_load_model_info_overlays_the_live_catalogue(api_key: str) -> None:
    from kimi_coder_auth.emulator import model_entry

    models = [model_entry("kimi-for-coding", 131072, "both")]
    with Emulator(api_keys=[api_key], models=models) as emu:
        llm = KimiCoderLLM(api_key=api_key, base_url=emu.base_url)
        assert llm.metadata.context_window == 262144  # built-in until loaded; no I/O
        assert emu.counts["models"] == 0
        assert llm.load_model_info().context_length == 131072
        assert llm.metadata.context_window == 131072
        assert (
            KimiCoderLLM(
                api_key=api_key, base_url=emu.base_url, context_window=5000
            ).metadata.context_window
            == 5000
        )


async def test_aload_model_info(make_llm: Any, emulator: Emulator) -> None:
    info = await make_llm().aload_model_info()
    assert info.id == "kimi-for-coding" and emulator.counts["models"] == 1


def test_effort_and_impossible_thinking_settings(
    make_llm: Any, chat_bodies: Any, emulator: Emulator
) -> None:
    make_llm(model="k3", effort="low").chat(user("hi"))
    assert chat_bodies()[-1]["thinking"] == {"type": "enabled", "effort": "low"}
    with pytest.raises(ValueError, match="always thinks"):
        make_llm(model="k3", thinking=False).chat(user("hi"))
    assert emulator.counts["chat"] == 1


def test_per_call_thinking_override(make_llm: Any, chat_bodies: Any) -> None:
    resp = make_llm(model=TOGGLE, thinking=True).chat(user("hi"), thinking=False)
    assert chat_bodies()[-1]["thinking"] == {"type": "disabled"}
    assert not any(isinstance(b, ThinkingBlock) for b in resp.message.blocks)


def test_llama_index_internal_kwargs_never_reach_the_body(
    toggle_llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    llm = toggle_llm
    tools = [ADD.metadata.to_openai_tool()]
    llm.chat(
        user("add 1 and 2"),
        tools=tools,
        tool_required=True,
        allow_parallel_tool_calls=False,
        verbose=True,
        strict=True,
        error_on_no_tool_call=False,
    )
    body = chat_bodies()[-1]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    for key in (
        "tool_required",
        "allow_parallel_tool_calls",
        "verbose",
        "strict",
        "error_on_no_tool_call",
    ):
        assert key not in body
    llm.chat(user("hi"), logprobs=False)  # unknown kwargs are request fields, as in OpenAI
    assert chat_bodies()[-1]["logprobs"] is False
