"""Preserved thinking, K3 reasoning_details and automatic prompt caching through ChatKimiCoder."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.request_policy import derive_prompt_cache_key
from langchain_kimi_coder import ChatKimiCoder

API_KEY = "sk-kimi-service-thinking"


@pytest.fixture
def emu():
    with Emulator(api_keys=[API_KEY]) as e:
        yield e


def _llm(emu: Emulator, **kw: Any) -> ChatKimiCoder:
    return ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, **kw)


def _last_body(emu: Emulator) -> dict[str, Any]:
    return emu.requests_to("/chat/completions")[-1].body


HISTORY = [
    HumanMessage("hi"),
    AIMessage("hello"),  # a plain turn with no captured reasoning
    AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}]),
    ToolMessage("done", tool_call_id="c1"),
    AIMessage("noted", additional_kwargs={"reasoning_content": "I thought."}),
    HumanMessage("and now?"),
]


def test_preserve_thinking_keeps_every_turns_reasoning(emu: Emulator) -> None:
    _llm(emu, preserve_thinking=True, effort=None).invoke(HISTORY)
    body = _last_body(emu)
    assert body["thinking"] == {"type": "enabled", "keep": "all"}
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in assistants] == ["", "", "I thought."]


def test_preserve_thinking_off_by_default_and_with_effort(emu: Emulator) -> None:
    _llm(emu).invoke(HISTORY)
    body = _last_body(emu)
    assert "thinking" not in body
    assert "reasoning_content" not in body["messages"][1]  # plain turn: nothing invented
    _llm(emu, model="k3", effort="low", preserve_thinking=True).invoke("x")
    assert _last_body(emu)["thinking"] == {"type": "enabled", "effort": "low", "keep": "all"}
    assert "reasoning_effort" not in _last_body(emu)  # the coding endpoint's form only


def test_model_kwargs_thinking_names_the_parameters(emu: Emulator) -> None:
    with pytest.raises(ValueError, match=r"preserve_thinking=True \(thinking.keep='all'\)"):
        _llm(emu, model="k3", model_kwargs={"thinking": {"keep": "all"}})


def test_extra_thinking_keep_does_not_clobber_thinking() -> None:
    """A thinking dict in the core's ``extra`` (LlamaIndex additional_kwargs) is merged key by
    key into the one built from thinking/effort."""
    from kimi_coder_auth.wire import build_request

    built = build_request("k3", [{"role": "user", "content": "x"},
                                 {"role": "assistant", "content": "a"},
                                 {"role": "user", "content": "y"}],
                          effort="max", extra={"thinking": {"keep": "all"}})
    assert built.body["thinking"] == {"type": "enabled", "effort": "max", "keep": "all"}
    assert built.body["messages"][1]["reasoning_content"] == ""  # keep=all applied to history
    assert built.preserve_thinking is True


def test_preserve_thinking_not_sent_when_thinking_is_off(emu: Emulator) -> None:
    _llm(emu, model="toggle-thinking", thinking=False, preserve_thinking=True).invoke(HISTORY)
    body = _last_body(emu)
    assert body["thinking"] == {"type": "disabled"}
    assert "reasoning_content" not in body["messages"][1]


@pytest.mark.parametrize("stream", [False, True])
def test_k3_reasoning_details_surface_and_replay(emu: Emulator, stream: bool) -> None:
    llm = _llm(emu, model="k3")
    if stream:
        full = None
        for chunk in llm.stream("think about it"):
            full = chunk if full is None else full + chunk
        first = full
    else:
        first = llm.invoke("think about it")
    assert first is not None
    details = first.additional_kwargs["reasoning_details"]
    assert [d["type"] for d in details] == ["summary", "encrypted"]
    assert details[0]["summary"] == first.additional_kwargs["reasoning_content"]
    assert all("index" not in d for d in details)
    llm.invoke([HumanMessage("think about it"), first, HumanMessage("again")])  # strict emulator
    replay = _last_body(emu)["messages"][1]
    assert replay["reasoning_details"] == details
    assert replay["reasoning_content"] == first.additional_kwargs["reasoning_content"]


def test_replay_with_streaming_index_is_repaired(emu: Emulator) -> None:
    raw = [{"index": 0, "type": "summary", "summary": "a"}, {"index": 0, "summary": "b"},
           {"index": 1, "type": "encrypted", "encrypted": "xyz"}]
    ai = AIMessage("ok", additional_kwargs={"reasoning_details": raw})
    _llm(emu, model="k3").invoke([HumanMessage("q"), ai, HumanMessage("next")])
    sent = _last_body(emu)["messages"][1]
    assert sent["reasoning_details"] == [{"type": "summary", "summary": "ab"},
                                         {"type": "encrypted", "encrypted": "xyz"}]
    assert sent["reasoning_content"] == "ab"  # sent beside the details, from the summary


def test_emulator_rejects_replay_with_index(emu: Emulator) -> None:
    import httpx

    body = {"model": "k3", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_content": "r"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a", "reasoning_content": "r",
         "reasoning_details": [{"index": 0, "type": "summary", "summary": "r"}]},
        {"role": "user", "content": "q3"}]}
    r = httpx.post(f"{emu.base_url}/chat/completions", json=body,
                   headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "the reasoning_details at position 3 entry 0 must not contain streaming index")


# --------------------------------------------------------------------------- prompt cache


def test_no_thread_id_sends_no_key_and_explicit_key_wins(emu: Emulator) -> None:
    _llm(emu).invoke("hi")
    assert "prompt_cache_key" not in _last_body(emu)
    _llm(emu, prompt_cache_key="my-session").invoke("hi", config={"configurable": {"thread_id": "t"}})
    assert _last_body(emu)["prompt_cache_key"] == "my-session"
    _llm(emu, prompt_cache_key=None).invoke("hi", config={"configurable": {"thread_id": "t"}})
    assert "prompt_cache_key" not in _last_body(emu)


async def test_direct_calls_with_a_thread_id_send_the_hashed_key(emu: Emulator) -> None:
    config = {"configurable": {"thread_id": "direct-7"}}
    expected = derive_prompt_cache_key("direct-7")
    llm = _llm(emu)
    llm.invoke("hi", config=config)
    assert _last_body(emu)["prompt_cache_key"] == expected
    list(llm.stream("hi", config=config))
    assert _last_body(emu)["prompt_cache_key"] == expected
    await llm.ainvoke("hi", config=config)
    assert _last_body(emu)["prompt_cache_key"] == expected
    async for _ in llm.astream("hi", config=config):
        pass
    body = _last_body(emu)
    assert body["prompt_cache_key"] == expected and "_kimi_thread_id" not in body


def test_langgraph_agent_with_thread_id_reads_cache_from_turn_two(emu: Emulator) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import create_react_agent

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    llm = _llm(emu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(llm, [get_weather], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "user-42-conversation"}}
    turns = []
    for text in ("Use get_weather for Paris", "And now say thanks", "One more remark"):
        result = agent.invoke({"messages": [("user", text)]}, config)
        turns.append([m for m in result["messages"] if m.type == "ai"])
    keys = {r.body.get("prompt_cache_key") for r in emu.requests_to("/chat/completions")}
    expected = derive_prompt_cache_key("user-42-conversation")
    assert keys == {expected} and "user-42" not in expected
    first_request = turns[0][0].usage_metadata
    assert first_request["input_token_details"]["cache_read"] == 0  # nothing cached yet
    later = turns[2][len(turns[0]):]  # the AI messages of turns two and three
    assert len(later) >= 2
    for message in later:
        usage = message.usage_metadata
        assert 0 < usage["input_token_details"]["cache_read"] <= usage["input_tokens"]


def test_langgraph_without_checkpoint_thread_gets_no_key(emu: Emulator) -> None:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(_llm(emu), [])
    agent.invoke({"messages": [("user", "hello")]})
    assert "prompt_cache_key" not in _last_body(emu)
    assert emu.requests_to("/chat/completions")[-1].body["messages"][0]["content"] == "hello"


def test_anthropic_route_carries_keep_and_cache_key(emu: Emulator) -> None:
    llm = _llm(emu, protocol="anthropic", preserve_thinking=True)
    llm.invoke("hi", config={"configurable": {"thread_id": "t-anthropic"}})
    body = emu.requests_to("/messages")[-1].body
    assert body["metadata"] == {"user_id": derive_prompt_cache_key("t-anthropic")}
    assert body["context_management"] == {
        "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    assert "prompt_cache_key" not in body
