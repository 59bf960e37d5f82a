"""Streaming: the core's ``StreamDelta``s -> LangChain ``AIMessageChunk``s for one stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from kimi_coder_auth.errors import MalformedResponseError

from .messages import MODEL_PROVIDER, usage_to_metadata

if TYPE_CHECKING:
    from kimi_coder_auth.routing import AsyncDeltaStream, ChatCall, DeltaStream
    from kimi_coder_auth.wire import StreamDelta


class _StreamState:
    """Turns the core's ``StreamDelta``s into LangChain chunks for one stream.

    v1 output gets explicit, never-colliding block indexes (reasoning, text and each tool call
    take the next free index when first seen), so aggregation never merges a tool call into a
    reasoning or text block. v0 output emits one kind per chunk (reasoning, text, tool calls).
    """

    __slots__ = (
        "call",
        "message_id",
        "model",
        "next_index",
        "reasoning_index",
        "stream",
        "text_index",
        "tool_index",
        "v1",
    )

    def __init__(self, call: ChatCall, stream: DeltaStream | AsyncDeltaStream, *, v1: bool) -> None:
        self.call = call
        self.stream = stream
        self.v1 = v1
        self.model = call.model
        self.message_id: str | None = None
        self.next_index = 0
        self.reasoning_index: int | None = None
        self.text_index: int | None = None
        self.tool_index: dict[int, int] = {}

    def _new_index(self) -> int:
        idx = self.next_index
        self.next_index += 1
        return idx

    def _meta(self) -> dict[str, Any]:
        if self.v1:
            return {"model_provider": MODEL_PROVIDER, "output_version": "v1"}
        return {"model_provider": MODEL_PROVIDER}

    def chunks(self, delta: StreamDelta) -> list[ChatGenerationChunk]:
        """The LangChain chunks for one delta (usually one; empty for metadata-only deltas)."""
        if self.message_id is None and delta.id:
            self.message_id = delta.id
        out: list[ChatGenerationChunk] = []
        v1 = self.v1
        if delta.reasoning is not None:
            content: Any = ""
            if v1:
                if self.reasoning_index is None:
                    self.reasoning_index = self._new_index()
                content = [
                    {"type": "reasoning", "reasoning": delta.reasoning, "index": self.reasoning_index}
                ]
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=content,
                        additional_kwargs={"reasoning_content": delta.reasoning},
                        response_metadata=self._meta(),
                        id=self.message_id,
                    )
                )
            )
        if delta.content:
            if v1:
                if self.text_index is None:
                    self.text_index = self._new_index()
                content = [{"type": "text", "text": delta.content, "index": self.text_index}]
            else:
                content = delta.content
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=content, response_metadata=self._meta(), id=self.message_id
                    )
                )
            )
        if delta.tool_calls:
            tool_chunks = []
            blocks: list[dict[str, Any]] = []
            for tc in delta.tool_calls:
                tool_chunks.append(
                    tool_call_chunk(name=tc.name, args=tc.arguments, id=tc.id, index=tc.index)
                )
                if v1:
                    idx = self.tool_index.get(tc.index)
                    if idx is None:
                        idx = self.tool_index[tc.index] = self._new_index()
                    blocks.append(
                        {
                            "type": "tool_call_chunk",
                            "id": tc.id,
                            "name": tc.name,
                            "args": tc.arguments,
                            "index": idx,
                        }
                    )
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=blocks if v1 else "",  # type: ignore[arg-type]
                        tool_call_chunks=tool_chunks,
                        response_metadata=self._meta(),
                        id=self.message_id,
                    )
                )
            )
        return out

    def check_tool_calls(self) -> None:
        """Raise for a streamed tool call the server never named.

        ``invoke`` reports it in ``invalid_tool_calls``; a stream cannot, because LangChain
        re-derives tool calls from the merged chunks and would call it a tool named ``''``.
        """
        for tc in self.stream.accumulator.tool_calls():
            error = getattr(tc, "error", None)
            if error:
                raise MalformedResponseError(
                    f"The streamed answer is malformed: {error}.",
                    trace_id=self.stream.trace_id,
                    hint="Use invoke() to get it as an invalid tool call, or retry the request.",
                )

    def id_fixup(self) -> ChatGenerationChunk | None:
        """A chunk giving calls whose id the stream never sent the core's id (the one
        ``invoke`` gives them), merged by index into the streamed call; None when all had ids."""
        missing = self.stream.accumulator.synthesized_ids()
        if not missing:
            return None
        tool_chunks = [
            tool_call_chunk(name=None, args=None, id=call_id, index=idx)
            for idx, call_id in missing.items()
        ]
        content: Any = ""
        if self.v1:
            content = [
                {"type": "tool_call_chunk", "id": call_id, "index": self.tool_index[idx]}
                for idx, call_id in missing.items()
                if idx in self.tool_index
            ]
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                tool_call_chunks=tool_chunks,
                response_metadata=self._meta(),
                id=self.message_id,
            )
        )

    def final(self) -> ChatGenerationChunk:
        """The closing chunk: usage, finish reason, model name, ids, the route that answered,
        and the Anthropic route's thinking blocks (signatures included); ``chunk_position="last"``."""
        stream = self.stream
        acc = stream.accumulator
        call = self.call
        meta = self._meta()
        meta["model_name"] = acc.model or self.model
        meta["finish_reason"] = acc.finish_reason
        meta["protocol"] = stream.protocol
        if acc.id:
            meta["id"] = acc.id
        trace_id = stream.trace_id
        if trace_id:
            meta["x_trace_id"] = trace_id
        request_id = getattr(stream, "request_id", None)
        if request_id:
            meta["x_request_id"] = request_id
        if call.built.tool_choice_relaxed:
            meta["tool_choice_relaxed"] = True
        usage = usage_to_metadata(acc.usage) if (acc.usage and call.include_usage) else None
        additional: dict[str, Any] = {}
        content: Any = [] if self.v1 else ""
        details = acc.reasoning_details() if stream.protocol != "anthropic" else None  # type: ignore[union-attr]
        if details:
            additional["reasoning_details"] = details
        if stream.protocol == "anthropic":
            blocks = acc.thinking_blocks()  # type: ignore[union-attr]
            if blocks:
                additional["thinking_blocks"] = blocks
                if self.v1 and self.reasoning_index is not None:
                    sigs = [b["signature"] for b in blocks if b.get("signature") is not None]
                    if sigs:
                        content = [{"type": "reasoning", "reasoning": "", "index": self.reasoning_index,
                                    "extras": {"signature": sigs[0]}}]
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                additional_kwargs=additional,
                response_metadata=meta,
                usage_metadata=usage,
                chunk_position="last",
                id=self.message_id or acc.id,
            ),
            generation_info={"finish_reason": acc.finish_reason},
        )
