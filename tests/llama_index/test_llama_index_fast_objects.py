"""Fast paths of KimiCoderLLM: the per-chunk objects it streams are built without pydantic
validation and must be indistinguishable from the validated constructors' results; the core
client is reused between calls but follows settings changed in place."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
    ThinkingBlock,
)

from llama_index_kimi_coder.streaming import (
    _chat_response,
    _message,
    _StreamBuilder,
    _text_block,
    _thinking_block,
)


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


def _same(fast: Any, validated: Any) -> None:
    assert type(fast) is type(validated)
    assert fast == validated
    assert list(fast.__dict__.items()) == list(validated.__dict__.items())
    assert fast.__pydantic_fields_set__ == validated.__pydantic_fields_set__
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert fast.model_dump_json() == validated.model_dump_json()
    assert repr(fast) == repr(validated)
    assert pickle.loads(pickle.dumps(fast)) == validated
    assert copy.deepcopy(fast) == validated


@pytest.mark.parametrize("text", ["", "hi", "ünï\n"])
def test_blocks_match_validated(text: str) -> None:
    _same(_text_block(text), TextBlock(text=text))
    _same(_thinking_block(text), ThinkingBlock(content=text))
    # a fresh dict per block: mutating one block's extras must not leak into the next
    a, b = _thinking_block(text), _thinking_block(text)
    a.additional_information["k"] = 1
    assert b.additional_information == {}


def test_message_and_response_match_validated() -> None:
    blocks = [ThinkingBlock(content="t"), TextBlock(text="x")]
    extra = {"tool_calls": [{"id": "c1", "type": "function"}]}
    fast_msg = _message(role=MessageRole.ASSISTANT, blocks=list(blocks), additional_kwargs=dict(extra))
    msg = ChatMessage.model_construct(
        role=MessageRole.ASSISTANT, blocks=list(blocks), additional_kwargs=dict(extra)
    )
    _same(fast_msg, msg)
    assert fast_msg.content == "x"
    for raw, delta, kw in (({"id": "c"}, "x", {"thinking_delta": "t"}), (None, "", {})):
        _same(
            _chat_response(fast_msg, delta, raw, dict(kw)),
            ChatResponse(message=msg, delta=delta, raw=raw, additional_kwargs=dict(kw)),
        )
    response = _chat_response(fast_msg, "x", None, {})
    response.delta = "y"  # assignment behaves like on a validated model
    assert response.delta == "y" and "delta" in response.__pydantic_fields_set__


def test_stream_builder_output_equals_validated_objects() -> None:
    _builder_obj, step = _builder()
    chunk = {"id": "a", "choices": [{"index": 0, "delta": {"reasoning_content": "r"}}]}
    first = step(chunk)
    chunk2 = {"id": "a", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
    second = step(chunk2)
    assert first is not None and second is not None
    _same(
        second,
        ChatResponse(
            message=ChatMessage(
                role=MessageRole.ASSISTANT,
                blocks=[ThinkingBlock(content="r"), TextBlock(text="hi")],
                additional_kwargs={},
            ),
            delta="hi",
            raw=chunk2,
            additional_kwargs={},
        ),
    )
    assert first.additional_kwargs == {"thinking_delta": "r"} and first.delta == ""


def test_client_reused_but_follows_in_place_setting_changes() -> None:
    from llama_index_kimi_coder import KimiCoderLLM

    llm = KimiCoderLLM(api_key="sk-a", base_url="http://127.0.0.1:9/v1", default_headers={"X-A": "1"})
    client = llm._kimi_client()
    assert llm._kimi_client() is client
    llm.base_url = "http://127.0.0.1:10/v1"
    moved = llm._kimi_client()
    assert moved is not client and moved.transport.base_url == "http://127.0.0.1:10/v1"
    assert llm.default_headers is not None
    llm.default_headers["X-A"] = "2"  # mutated in place
    assert llm._kimi_client().transport._headers == {"X-A": "2"}
