"""Whole answers: the core's `Completion` as a `ChatResponse`, a `ChatResponse` as a completion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatResponse, CompletionResponse, ThinkingBlock

from kimi_coder_auth.wire import usage_counts

from .messages import completion_to_message

if TYPE_CHECKING:
    from kimi_coder_auth.neutral import Completion
    from kimi_coder_auth.routing import ChatCall

__all__ = ["chat_response", "chat_to_completion", "raw_ids"]


def raw_ids(source: Any) -> dict[str, str]:
    """``x_trace_id`` / ``x_request_id`` of an answer, for ``raw`` (only the ones it has)."""
    ids = {"x_trace_id": getattr(source, "trace_id", None), "x_request_id": getattr(source, "request_id", None)}
    return {k: v for k, v in ids.items() if v}


def chat_response(completion: Completion, call: ChatCall) -> ChatResponse:
    """A non-streamed answer as a `ChatResponse` (usage, ids and finish reason in extras)."""
    extra: dict[str, Any] = {}
    trace_id, data = call.trace_id, call.raw
    raw: dict[str, Any] = {**(data or {}), "protocol": completion.protocol, **raw_ids(call)}
    if completion.usage is not None:
        counts = usage_counts(completion.usage)
        extra.update(counts)
        raw["usage"] = {**completion.usage.raw, **counts}
    if trace_id:
        extra["trace_id"] = trace_id
    if call.request_id:
        extra["request_id"] = call.request_id
    if completion.finish_reason is not None:  # "length": the output budget ran out
        extra["finish_reason"] = completion.finish_reason
    return ChatResponse(
        message=completion_to_message(completion), raw=raw, additional_kwargs=extra
    )


def chat_to_completion(response: ChatResponse) -> CompletionResponse:
    """A ChatResponse as a CompletionResponse, keeping usage, tool calls and reasoning."""
    extra = {**response.message.additional_kwargs, **response.additional_kwargs}
    for block in response.message.blocks:
        if isinstance(block, ThinkingBlock):
            extra.setdefault("reasoning_content", block.content or "")
            break
    return CompletionResponse(
        text=response.message.content or "",
        additional_kwargs=extra,
        raw=response.raw,
        delta=response.delta,
    )
