"""Streaming: the core's neutral deltas as cumulative LlamaIndex `ChatResponse`s, built lean."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from kimi_coder_auth.wire import tool_calls_to_dicts, usage_counts

from .responses import raw_ids

if TYPE_CHECKING:
    from kimi_coder_auth.neutral import StreamDelta
    from kimi_coder_auth.routing import AsyncDeltaStream, ChatCall, DeltaStream

__all__ = ["achat_stream", "chat_stream"]

_ASSISTANT = MessageRole.ASSISTANT
_new = object.__new__
_set = object.__setattr__


# Per-chunk objects are assembled directly (what pydantic's `model_construct` does, without its
# pure-Python field loop): ~4x cheaper than validating constructors, and the result is identical
# to them — same `__dict__` (fields in declaration order, defaults filled in), same
# `__pydantic_fields_set__` (only the fields a validating call would have been given). Safe
# because these models have no validators that would change values we pass (ChatMessage's only
# validator converts `additional_kwargs["images"]`, never set here), and every value is of the
# field's type by construction. `tests/llama_index` compares them with the validated forms.
def _text_block(text: str) -> TextBlock:
    """``TextBlock(text=text)``."""
    obj = _new(TextBlock)
    _set(obj, "__dict__", {"block_type": "text", "text": text})
    _set(obj, "__pydantic_fields_set__", {"text"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _thinking_block(content: str, info: dict[str, Any] | None = None) -> ThinkingBlock:
    """``ThinkingBlock(content=content)`` (``additional_information=info`` when given)."""
    obj = _new(ThinkingBlock)
    _set(
        obj,
        "__dict__",
        {
            "block_type": "thinking",
            "content": content,
            "num_tokens": None,
            "additional_information": info if info is not None else {},
        },
    )
    _set(obj, "__pydantic_fields_set__", {"content", "additional_information"} if info else {"content"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _message(*, role: Any, blocks: list[Any], additional_kwargs: dict[str, Any]) -> ChatMessage:
    """``ChatMessage.model_construct(role=..., blocks=..., additional_kwargs=...)``."""
    obj = _new(ChatMessage)
    _set(obj, "__dict__", {"role": role, "additional_kwargs": additional_kwargs, "blocks": blocks})
    _set(obj, "__pydantic_fields_set__", {"role", "additional_kwargs", "blocks"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _chat_response(
    message: ChatMessage, delta: str, raw: Any, extra: dict[str, Any]
) -> ChatResponse:
    """``ChatResponse(message=..., delta=..., raw=..., additional_kwargs=...)``."""
    obj = _new(ChatResponse)
    _set(
        obj,
        "__dict__",
        {"message": message, "raw": raw, "delta": delta, "logprobs": None, "additional_kwargs": extra},
    )
    _set(obj, "__pydantic_fields_set__", {"message", "delta", "raw", "additional_kwargs"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class _StreamBuilder:
    """Turns the core's neutral deltas into cumulative `ChatResponse`s (one per meaningful delta).

    The core accumulator (either route's) merges reasoning, text and tool calls; this class only
    keeps the cumulative strings the LlamaIndex blocks need. On the Anthropic route the final
    response's `ThinkingBlock`s carry their signatures in `additional_information`.
    """

    __slots__ = (
        "blocks",
        "content",
        "details",
        "finish_reason",
        "reasoning",
        "stream",
        "tool_calls",
        "tool_dicts",
        "usage",
        "usage_raw",
        "yielded",
    )

    def __init__(self, stream: DeltaStream | AsyncDeltaStream) -> None:
        self.stream = stream
        self.content = ""
        self.finish_reason: str | None = None
        self.reasoning: str | None = None
        self.tool_calls: list[Any] = []
        self.tool_dicts: list[dict[str, Any]] = []
        # [thinking block or None, text block, *tool-call blocks]; a block is rebuilt only
        # when its part changed, so unchanged parts cost nothing per chunk.
        self.blocks: list[Any] = [None, TextBlock(text="")]
        self.usage: dict[str, Any] | None = None
        self.usage_raw: dict[str, Any] | None = None
        self.details: list[dict[str, Any]] | None = None
        self.yielded = False

    def _reasoning_details(self) -> list[dict[str, Any]] | None:
        """K3's merged ``reasoning_details`` so far (OpenAI route only)."""
        getter = getattr(self.stream.accumulator, "reasoning_details", None)
        return getter() if getter is not None else None

    def step(self, d: StreamDelta) -> ChatResponse | None:
        changed = False
        blocks = self.blocks
        if d.reasoning is not None:
            self.reasoning = d.reasoning if self.reasoning is None else self.reasoning + d.reasoning
            blocks[0] = _thinking_block(self.reasoning)
            changed = True
        if d.content:
            self.content += d.content
            blocks[1] = _text_block(self.content)
            changed = True
        if d.tool_calls:
            self.tool_calls = calls = self.stream.accumulator.tool_calls()
            del blocks[2:]
            blocks.extend(
                ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
                for c in calls
            )
            self.tool_dicts = tool_calls_to_dicts(calls)
            changed = True
        if d.signature is not None and self.stream.protocol == "anthropic":
            signed = _thinking_blocks(self.stream.accumulator.thinking_blocks())  # type: ignore[union-attr]
            if signed:
                blocks[0] = signed[0] if len(signed) == 1 else signed
                changed = True
        if d.usage is not None:
            self.usage = usage_counts(d.usage)
            self.usage_raw = {**d.usage.raw, **self.usage}
            changed = True
        if d.reasoning_details is not None:
            self.details = self._reasoning_details()  # merged again only when they changed
            changed = True
        if d.finish_reason is not None:
            self.finish_reason = d.finish_reason
            changed = True
        if not changed:
            return None
        return self._response(d, d.content or "", d.reasoning)

    def _response(
        self, d: StreamDelta | None, delta: str, thinking_delta: str | None
    ) -> ChatResponse:
        extra: dict[str, Any] = {}
        if thinking_delta:
            extra["thinking_delta"] = thinking_delta
        stream = self.stream
        raw: Any = stream.last_event if d is not None else None
        if self.usage is not None:
            extra.update(self.usage)
            raw = {**(raw or {}), "usage": self.usage_raw, "protocol": stream.protocol, **raw_ids(stream)}
        elif d is not None and d.finish_reason is not None:
            raw = {**(raw or {}), "protocol": stream.protocol, **raw_ids(stream)}
        if self.finish_reason is not None:  # "length": the output budget ran out
            extra["finish_reason"] = self.finish_reason
        self.yielded = True
        blocks = self.blocks
        first = blocks[0]
        if first is None:
            message_blocks = blocks[1:]
        elif isinstance(first, list):
            message_blocks = [*first, *blocks[1:]]
        else:
            message_blocks = list(blocks)
        kwargs: dict[str, Any] = {"tool_calls": list(self.tool_dicts)} if self.tool_dicts else {}
        if self.details:
            kwargs["reasoning_details"] = self.details
        message = _message(
            role=_ASSISTANT,
            blocks=message_blocks,
            additional_kwargs=kwargs,
        )
        return _chat_response(message, delta, raw, extra)

    def final(self) -> ChatResponse | None:
        """A closing response when the stream produced nothing, so callers always get one."""
        return None if self.yielded else self._response(None, "", None)


def _thinking_blocks(blocks: list[dict[str, Any]]) -> list[ThinkingBlock]:
    """The Anthropic route's thinking blocks as `ThinkingBlock`s (signature, if any, in
    `additional_information["signature"]`, replayed byte for byte)."""
    out = []
    for b in blocks:
        if b.get("type") == "thinking":
            info = {"signature": b["signature"]} if b.get("signature") is not None else None
            out.append(_thinking_block(b.get("thinking") or "", info))
        elif b.get("type") == "redacted_thinking":
            out.append(_thinking_block("", {"redacted_thinking": b.get("data")}))
    return out


def chat_stream(call: ChatCall) -> ChatResponseGen:
    """The call's stream as cumulative `ChatResponse`s; always at least one, closed at the end."""
    stream = call.stream()
    builder = _StreamBuilder(stream)
    try:
        for delta in stream:
            response = builder.step(delta)
            if response is not None:
                yield response
    finally:
        stream.close()
    last = builder.final()
    if last is not None:
        yield last


async def achat_stream(call: ChatCall) -> ChatResponseAsyncGen:
    """Async :func:`chat_stream`."""
    stream = call.astream()
    builder = _StreamBuilder(stream)
    try:
        async for delta in stream:
            response = builder.step(delta)
            if response is not None:
                yield response
    finally:
        await stream.aclose()
    last = builder.final()
    if last is not None:
        yield last
