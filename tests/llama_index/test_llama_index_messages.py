"""LlamaIndex message <-> wire message mapping (pure, no network)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from kimi_coder_auth.wire import Completion, ToolCall, Usage, build_request
from llama_index_kimi_coder.messages import (
    completion_to_message,
    message_to_wire,
    messages_to_wire,
    usage_to_dict,
)
from llama_index_kimi_coder.streaming import _StreamBuilder


class _Feed:
    """What `_StreamBuilder` reads from the core's delta stream, fed by hand (OpenAI route)."""

    protocol = "openai"

    def __init__(self) -> None:
        from kimi_coder_auth.wire import StreamAccumulator

        self.accumulator = StreamAccumulator()
        self.last_event = None

    def __call__(self, chunk):  # type: ignore[no-untyped-def]
        self.last_event = chunk
        return self.accumulator.feed(chunk)


def _builder():  # type: ignore[no-untyped-def]
    feed = _Feed()
    builder = _StreamBuilder(feed)  # type: ignore[arg-type]
    step = builder.step
    builder_step = lambda chunk: step(feed(chunk))  # noqa: E731
    return builder, builder_step


def test_roles_and_text() -> None:
    wire = messages_to_wire(
        [
            ChatMessage(role="system", content="be brief"),
            ChatMessage(role="developer", content="dev"),
            ChatMessage(role="user", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
            ChatMessage(role="assistant", content="ok"),
        ]
    )
    assert wire == [
        {"role": "system", "content": "be brief"},
        {"role": "system", "content": "dev"},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "ok"},
    ]


def test_thinking_block_becomes_reasoning_content_even_when_empty() -> None:
    msg = ChatMessage(role="assistant", blocks=[ThinkingBlock(content=""), TextBlock(text="hi")])
    assert message_to_wire(msg)["reasoning_content"] == ""
    parts = ChatMessage(
        role="assistant",
        blocks=[ThinkingBlock(content="a"), ThinkingBlock(content="b"), TextBlock(text="x")],
    )
    assert message_to_wire(parts)["reasoning_content"] == "ab"
    assert "reasoning_content" not in message_to_wire(ChatMessage(role="assistant", content="x"))


def test_tool_calls_from_blocks_kwargs_and_sdk_objects() -> None:
    from_blocks = ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs={"x": "é"})],
    )
    call = message_to_wire(from_blocks)["tool_calls"][0]
    assert call["id"] == "c1" and json.loads(call["function"]["arguments"]) == {"x": "é"}
    sdk = SimpleNamespace(id="c2", function=SimpleNamespace(name="g", arguments='{"y": 1}'))
    from_sdk = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [sdk]})
    assert message_to_wire(from_sdk)["tool_calls"][0]["function"] == {
        "name": "g",
        "arguments": '{"y": 1}',
    }


def test_tool_result_reads_tool_call_id() -> None:
    msg = ChatMessage(
        role="tool", content="42", additional_kwargs={"tool_call_id": "functions.f:0"}
    )
    assert message_to_wire(msg) == {
        "role": "tool",
        "tool_call_id": "functions.f:0",
        "content": "42",
    }


def test_unsupported_block_names_the_fix() -> None:
    msg = ChatMessage(
        role="user", blocks=[DocumentBlock(data=b"%PDF-1.4", document_mimetype="application/pdf")]
    )
    with pytest.raises(ValueError, match="TextBlock"):
        message_to_wire(msg)


def test_image_bytes_become_data_url(tmp_path: object, png: bytes) -> None:
    msg = ChatMessage(role="user", blocks=[TextBlock(text="look"), ImageBlock(image=png)])
    wire = message_to_wire(msg)
    assert wire["content"][0] == {"type": "text", "text": "look"}
    assert wire["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_round_trip_through_build_request_with_thinking() -> None:
    """A completion turned into a message and back satisfies Kimi's tool-turn rules."""
    comp = Completion(
        id="x",
        model="m",
        content="",
        reasoning_content="why",
        tool_calls=[ToolCall("functions.f:0", "f", '{"a": 1}')],
        finish_reason="tool_calls",
        usage=None,
    )
    msg = completion_to_message(comp)
    assert isinstance(msg.blocks[0], ThinkingBlock)
    assert msg.additional_kwargs["tool_calls"][0]["id"] == "functions.f:0"
    body = build_request(
        "kimi-for-coding",
        messages_to_wire([ChatMessage(role="user", content="go"), msg]),
        thinking=True,
    ).body
    turn = body["messages"][1]
    assert turn["reasoning_content"] == "why" and "content" not in turn


def test_usage_mapping() -> None:
    u = Usage(10, 5, 15, cache_read=4, reasoning_tokens=2)
    assert usage_to_dict(u) == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cached_tokens": 4,
        "reasoning_tokens": 2,
    }
    assert usage_to_dict(Usage(1, 2, 3)) == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
    choice: dict = {"index": 0, "delta": delta, "finish_reason": finish}
    if usage is not None:
        choice["usage"] = usage
    return {"id": "c", "model": "m", "choices": [choice]}


def test_stream_builder_two_calls_in_one_chunk_and_usage_in_choice() -> None:
    _b, step = _builder()
    out = [
        step(_chunk({"role": "assistant"})),
        step(_chunk({"reasoning_content": "hm"})),
        step(
            _chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x":'}},
                        {"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}},
                    ]
                }
            )
        ),
        step(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]})),
        step(
            _chunk(
                {}, "tool_calls", {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
            )
        ),
    ]
    assert out[0] is None  # a role-only chunk adds nothing
    assert out[1].additional_kwargs["thinking_delta"] == "hm"
    mid = [blk for blk in out[2].message.blocks if isinstance(blk, ToolCallBlock)]
    assert [(m.tool_name, m.tool_kwargs) for m in mid] == [("f", '{"x":'), ("g", '{"y": 2}')]
    last = out[-1]
    calls = last.message.additional_kwargs["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"x": 1}', '{"y": 2}']
    assert last.additional_kwargs["prompt_tokens"] == 7
    assert last.raw["usage"]["total_tokens"] == 10


def test_stream_builder_reads_top_level_usage_chunk_and_always_yields() -> None:
    b, step = _builder()
    assert step(_chunk({"content": "hi"})).delta == "hi"
    tail = step({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    assert tail.additional_kwargs["total_tokens"] == 4 and tail.message.content == "hi"
    assert b.final() is None  # something was yielded already
    empty, empty_step = _builder()
    assert empty_step(_chunk({"role": "assistant"})) is None
    last = empty.final()
    assert last is not None and last.message.content == ""
