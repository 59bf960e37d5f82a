"""LangChain -> wire message conversion (no network): roles, reasoning replay, tool calls, images."""

from __future__ import annotations

import base64

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from kimi_coder_auth.wire import build_request
from langchain_kimi_coder.messages import convert_messages, message_to_wire, reasoning_of

#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
PNG_B64 = base64.b64encode(PNG).decode()
PNG_URL = f"data:image/png;base64,{PNG_B64}"


def test_roles_and_names() -> None:
    wire = convert_messages(
        [
            SystemMessage("sys"),
            HumanMessage("hi", name="alice"),
            AIMessage("hello"),
            ChatMessage(role="human", content="again"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi", "name": "alice"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]


def test_tool_call_turn_ids_verbatim_and_tool_message() -> None:
    ai = AIMessage(
        "",
        tool_calls=[{"name": "ReadFile", "args": {"path": "a.txt"}, "id": "functions.ReadFile:0"}],
        additional_kwargs={"reasoning_content": "I should read it."},
    )
    tool = ToolMessage("hello", tool_call_id="functions.ReadFile:0")
    body = build_request("kimi-for-coding", convert_messages([HumanMessage("read"), ai, tool])).body
    assistant, tool_msg = body["messages"][1], body["messages"][2]
    assert "content" not in assistant  # tool-call turn without text omits content
    assert assistant["reasoning_content"] == "I should read it."
    assert assistant["tool_calls"] == [
        {
            "type": "function",
            "id": "functions.ReadFile:0",
            "function": {"name": "ReadFile", "arguments": '{"path": "a.txt"}'},
        }
    ]
    assert tool_msg == {"role": "tool", "tool_call_id": "functions.ReadFile:0", "content": "hello"}


def test_reasoning_empty_string_is_replayed() -> None:
    ai = AIMessage("ok", additional_kwargs={"reasoning_content": ""})
    assert message_to_wire(ai)["reasoning_content"] == ""


def test_reasoning_from_v1_blocks() -> None:
    ai = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "step one, "},
            {"type": "reasoning", "reasoning": "step two"},
            {"type": "text", "text": "answer"},
            {"type": "tool_call", "id": "c1", "name": "f", "args": {}},
        ],
        tool_calls=[{"name": "f", "args": {}, "id": "c1"}],
        response_metadata={"model_provider": "kimi-coder", "output_version": "v1"},
    )
    wire = message_to_wire(ai)
    assert wire["reasoning_content"] == "step one, step two"
    assert wire["content"] == "answer"  # reasoning/tool_call blocks are not text
    assert wire["tool_calls"][0]["id"] == "c1"


def test_other_providers_reasoning_is_not_replayed() -> None:
    ai = AIMessage(
        content=[{"type": "reasoning", "reasoning": "opaque", "extras": {"signature": "x"}}],
        additional_kwargs={"reasoning_content": "someone else's"},
        tool_calls=[{"name": "f", "args": {}, "id": "c1"}],
        response_metadata={"model_provider": "anthropic"},
    )
    assert reasoning_of(ai) is None
    # ... so with thinking on, the core's placeholder keeps Kimi from answering 400
    body = build_request("kimi-for-coding", convert_messages([HumanMessage("x"), ai]),
                         thinking=True).body
    assert isinstance(body["messages"][1]["reasoning_content"], str)


def test_hand_built_history_gets_placeholder_only_when_thinking() -> None:
    ai = AIMessage("", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}])
    msgs = convert_messages([HumanMessage("x"), ai, ToolMessage("1", tool_call_id="c1")])
    on = build_request("toggle-model", msgs, thinking=True).body["messages"][1]
    off = build_request("toggle-model", msgs, thinking=False).body["messages"][1]
    assert "reasoning_content" in on
    assert "reasoning_content" not in off


def test_assistant_list_content_is_flattened() -> None:
    ai = AIMessage(content=[{"type": "text", "text": "a"}, {"type": "text", "text": ""}, "b"])
    body = build_request("kimi-for-coding", convert_messages([HumanMessage("x"), ai])).body
    assert body["messages"][1]["content"] == "ab"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": PNG_URL},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "base64": PNG_B64},  # mime sniffed
        {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
    ],
    ids=["openai", "openai-str", "v1-base64", "v1-base64-nomime", "v0-base64", "anthropic"],
)
def test_inline_image_forms_become_data_urls(block: dict) -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "what is this?"}, block])
    body = build_request("kimi-for-coding", convert_messages([msg])).body
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]


def test_image_in_tool_message() -> None:
    tool = ToolMessage(
        content=[{"type": "text", "text": "screenshot"}, {"type": "image", "base64": PNG_B64,
                                                           "mime_type": "image/png"}],
        tool_call_id="c1",
    )
    wire = message_to_wire(tool)
    assert wire["content"][1] == {"type": "image_url", "image_url": {"url": PNG_URL}}


def test_unsupported_blocks_fail_clearly() -> None:
    pdf = HumanMessage(content=[{"type": "file", "base64": "AAAA", "mime_type": "application/pdf"}])
    with pytest.raises(ValueError, match="text and images"):
        convert_messages([pdf])
    bad = HumanMessage(content=[{"type": "image", "base64": "!!!not base64!!!"}])
    with pytest.raises(ValueError, match="base64"):
        convert_messages([bad])
    fid = HumanMessage(content=[{"type": "image", "file_id": "file-1"}])
    with pytest.raises(ValueError, match="file id"):
        convert_messages([fid])
