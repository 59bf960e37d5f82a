"""ChatKimiCoder on the Anthropic Messages route: the LangGraph agent of three tool rounds with
thinking, streamed reasoning and tool calls, signed thinking replayed byte for byte, cache usage,
structured output, and the cross-route replay rule; all against the strict emulator."""

from __future__ import annotations

from typing import Any

import pytest
from kimi_lc_support import API_KEY
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel
from test_chat_agent import TASK, calculate, list_folder, read_file

from kimi_coder_auth.emulator import Emulator
from langchain_kimi_coder import ChatKimiCoder


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def _llm(emu: Emulator, **kw: Any) -> ChatKimiCoder:
    return ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, protocol="anthropic", **kw)


def _messages(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith("/messages")]


@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_agent_three_tool_rounds_with_signed_thinking(output_version: str) -> None:
    with Emulator(api_keys=[API_KEY]) as emu:
        agent = create_agent(_llm(emu, thinking=True, output_version=output_version),
                             tools=[list_folder, read_file, calculate])
        chunks: list[AIMessageChunk] = []
        state: dict[str, Any] = {}
        for mode, data in agent.stream({"messages": [("user", TASK)]}, stream_mode=["messages", "values"]):
            if mode == "messages" and isinstance(data[0], AIMessageChunk):
                chunks.append(data[0])
            elif mode == "values":
                state = data
        bodies = _messages(emu)
        assert emu.counts["chat"] == 0 and len(bodies) == 4
    messages = state["messages"]
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == ["main.py, util.py", "print(2 + 3)", "5"]
    assert "5" in messages[-1].text and messages[-1].response_metadata["protocol"] == "anthropic"
    produced = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    replayed = [m for m in bodies[-1]["messages"] if m["role"] == "assistant"]
    assert len(produced) == len(replayed) == 3
    for original, turn in zip(produced, replayed, strict=True):
        block = original.additional_kwargs["thinking_blocks"][0]
        assert block["signature"] and original.tool_calls[0]["name"] in block["thinking"]
        assert turn["content"][0] == block  # byte for byte, signature included
        if output_version == "v1":
            reasoning = [b for b in original.content if isinstance(b, dict) and b.get("type") == "reasoning"]
            assert reasoning[0]["extras"]["signature"] == block["signature"]
    kinds = []
    for c in chunks:
        kind = "reasoning" if c.additional_kwargs.get("reasoning_content") else (
            "tool" if c.tool_call_chunks else ("text" if c.text else None))
        if kind and (not kinds or kinds[-1] != kind):
            kinds.append(kind)
    assert kinds == ["reasoning", "tool"] * 3 + ["reasoning", "text"]


def test_invoke_usage_cache_details_and_standard_blocks() -> None:
    with Emulator(api_keys=[API_KEY]) as emu:
        llm = _llm(emu, prompt_cache_key="anthropic-cache-1")  # sent as metadata.user_id
        history = [HumanMessage("Remember: " + "lorem ipsum " * 300), AIMessage("ok"), HumanMessage("what?")]
        llm.invoke(history)  # fills the cache under the key
        ai = llm.invoke(history)
        streamed = None
        for chunk in llm.stream(history):
            streamed = chunk if streamed is None else streamed + chunk
    for msg in (ai, streamed):
        details = msg.usage_metadata["input_token_details"]
        assert details["cache_read"] > 0 and "cache_creation" in details
        assert msg.usage_metadata["input_tokens"] >= details["cache_read"]
        assert msg.response_metadata["protocol"] == "anthropic" and msg.response_metadata["finish_reason"] == "stop"
        reasoning = [b for b in msg.content_blocks if b["type"] == "reasoning"]
        assert reasoning and reasoning[0]["extras"]["signature"]  # standard blocks keep the signature


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_on_the_messages_route(method: str) -> None:
    with Emulator(api_keys=[API_KEY]) as emu:
        # a model whose thinking can switch off, so a forced tool (function_calling) is honoured
        llm = _llm(emu, model="toggle-thinking", thinking=True)
        prompt = "Tell me about Ada, age 36. Reply in JSON with 'name' and 'age'."
        out = llm.with_structured_output(Person if method != "json_mode" else None, method=method).invoke(prompt)
    if method == "json_mode":  # a JSON object with the asked-for keys (values are the model's)
        assert isinstance(out, dict) and {"name", "age"} <= set(out)
        return
    person = out if isinstance(out, Person) else Person(**out)
    assert person.name and isinstance(person.age, int)


def test_cross_route_history_replays_by_the_documented_rule() -> None:
    """An OpenAI-route turn (reasoning_content, no signature) replays on the Messages route as an
    unsigned thinking block, which the strict emulator accepts; a Messages-route turn replays on
    the OpenAI route as reasoning_content."""
    with Emulator(api_keys=[API_KEY]) as emu:
        openai = ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, protocol="openai", thinking=True)
        tools = [calculate]
        first = openai.bind_tools(tools).invoke("calculate '2 + 3'")
        history = [HumanMessage("calculate '2 + 3'"), first,
                   ToolMessage("5", tool_call_id=first.tool_calls[0]["id"])]
        second = _llm(emu, thinking=True).bind_tools(tools).invoke(history)
        sent = _messages(emu)[-1]["messages"][1]["content"][0]
        assert sent == {"type": "thinking", "thinking": first.additional_kwargs["reasoning_content"]}
        history += [second, HumanMessage("now calculate '4 * 5'")]
        third = _llm(emu, thinking=True).bind_tools(tools).invoke(history)
        history += [third, ToolMessage("20", tool_call_id=third.tool_calls[0]["id"])]
        openai.bind_tools(tools).invoke(history)
        chat = [r.body for r in emu.requests if r.path.endswith("/chat/completions")][-1]
        turn = [m for m in chat["messages"] if m.get("tool_calls")][-1]
        assert turn["reasoning_content"] == third.additional_kwargs["thinking_blocks"][0]["thinking"]


def test_images_batch_parallel_calls_and_system_prompts_anywhere() -> None:
    import base64

    from langchain_core.messages import SystemMessage

    png = base64.b64encode(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
    with Emulator(api_keys=[API_KEY]) as emu:
        llm = _llm(emu)
        seen = llm.invoke([HumanMessage(content=[
            {"type": "text", "text": "what is this?"},
            {"type": "image", "base64": png, "mime_type": "image/png"}])])
        assert "I see the image" in seen.text
        image = _messages(emu)[-1]["messages"][0]["content"][1]
        assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
        answers = llm.batch(["one", "two", "three"])
        assert [a.response_metadata["protocol"] for a in answers] == ["anthropic"] * 3
        both = llm.bind_tools([list_folder, read_file]).invoke(
            "In parallel: use list_folder on 'src' and read_file 'src/main.py'.")
        assert [c["name"] for c in both.tool_calls] == ["list_folder", "read_file"]
        llm.invoke([SystemMessage("Be brief."), HumanMessage("hi"), AIMessage("hello"),
                    SystemMessage("Now answer in French."), HumanMessage("again")])
        body = _messages(emu)[-1]
        assert body["system"] == [{"type": "text", "text": "Be brief."}]
        assert body["messages"][-1]["content"][0] == {"type": "text", "text": "<system>Now answer in French.</system>"}
