"""Anthropic-route decoding: ``message`` bodies and Messages stream events -> neutral deltas.

:class:`MessagesAccumulator` folds the event dicts (``message_start``, ``content_block_*``,
``message_delta``) into the same :class:`~kimi_coder_auth.neutral.StreamDelta` values and
:class:`~kimi_coder_auth.neutral.Completion` the OpenAI route produces, so adapters never know
which route answered. Plain dicts only; per-event work is O(event).

Kimi's deviations handled: ``input_tokens: -1`` on a full cache hit (treated as 0), usage in
both ``message_start`` and ``message_delta`` (later values win), thinking with or without a
signature, a duplicate ``content_block_stop`` for an already closed block, and tool calls
written as text (``<|tool_calls_section_begin|>...``, seen from Kimi with a non-``tool_use``
stop): that section is withheld from the text and becomes tool calls when its block ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..neutral import Completion, StreamDelta, ToolCall, ToolCallDelta, Usage

__all__ = [
    "STOP_REASONS",
    "MessagesAccumulator",
    "parse_message",
    "parse_tagged_tool_calls",
    "usage_from_anthropic",
]

#: Anthropic stop reasons -> the neutral (OpenAI-style) finish reasons both adapters map.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _int(value: Any) -> int:
    if type(value) is int:  # the usual case, first
        return value if value > 0 else 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))  # Kimi sends input_tokens: -1 when the whole prompt was cached


def usage_from_anthropic(u: Mapping[str, Any]) -> Usage:
    """Anthropic usage (``input_tokens`` uncached) -> neutral usage (input includes the cache)."""
    uncached = _int(u.get("input_tokens"))
    read = u.get("cache_read_input_tokens")
    created = u.get("cache_creation_input_tokens")
    output = _int(u.get("output_tokens"))
    total_in = uncached + _int(read) + _int(created)
    return Usage(
        input_tokens=total_in,
        output_tokens=output,
        total_tokens=total_in + output,
        cache_read=_int(read) if read is not None else None,
        raw=dict(u),
        cache_creation=_int(created) if created is not None else None,
    )


def finish_reason(stop_reason: Any) -> str | None:
    """The neutral finish reason for an Anthropic ``stop_reason`` (unknown ones verbatim)."""
    if stop_reason is None:
        return None
    return STOP_REASONS.get(stop_reason, str(stop_reason))


_SECTION = "<|tool_calls_section_begin|>"
_TAGGED = re.compile(
    r"<\|tool_call_begin\|>\s*(?P<id>[^<]*?)\s*<\|tool_call_argument_begin\|>(?P<args>.*?)<\|tool_call_end\|>",
    re.S,
)


def parse_tagged_tool_calls(text: str) -> list[tuple[str, str, str]] | None:
    """Kimi's tool calls written as text (``<|tool_calls_section_begin|>...``), as
    ``(id, name, arguments)``; None when the section holds no well-formed call."""
    calls = []
    for m in _TAGGED.finditer(text):
        raw_id = m.group("id").strip()
        name = raw_id.split(":", 1)[0]
        name = name[len("functions."):] if name.startswith("functions.") else name
        if not name:
            return None
        calls.append((raw_id if ":" in raw_id else f"functions.{name}:{len(calls)}", name, m.group("args").strip()))
    return calls or None


class _Block:
    __slots__ = ("call", "closed", "held", "kind", "parts", "signature", "source", "tagged")

    def __init__(self, kind: str, source: dict[str, Any]) -> None:
        self.kind = kind
        self.source = source
        self.parts: list[str] = []
        self.signature: list[str] | None = None
        self.closed = False
        self.call = -1  # neutral tool-call index for tool_use blocks
        self.held = ""  # text held back: it may be the start of a tool-call section marker
        self.tagged: list[str] | None = None  # text of a tool-call section written as text


class MessagesAccumulator:
    """Folds Messages stream events into neutral deltas and one :class:`Completion`."""

    __slots__ = ("_blocks", "_calls", "_usage_raw", "finish_reason", "id", "model", "stop_reason",
                 "usage")

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}
        self._calls = 0
        self._usage_raw: dict[str, Any] = {}
        self.id: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.stop_reason: str | None = None
        self.usage: Usage | None = None

    def _merge_usage(self, u: Any, out: StreamDelta) -> None:
        if u and (type(u) is dict or isinstance(u, Mapping)):
            merged = self._usage_raw
            for k, v in u.items():
                if v is not None:
                    merged[k] = v
            self.usage = out.usage = usage_from_anthropic(merged)

    def feed(self, event: Mapping[str, Any]) -> StreamDelta:
        """Apply one event dict; return what it added."""
        out = StreamDelta()
        kind = event.get("type")
        if kind == "content_block_delta":
            block = self._blocks.get(event.get("index"))  # type: ignore[arg-type]
            delta = event.get("delta") or {}
            dkind = delta.get("type")
            if block is None:
                return out
            if dkind == "text_delta":
                text = delta.get("text") or ""
                if block.held or block.tagged is not None or "<" in text:
                    text = self._screen(block, text)
                if text:
                    block.parts.append(text)
                out.content = text
            elif dkind == "thinking_delta":
                text = delta.get("thinking") or ""
                block.parts.append(text)
                out.reasoning = text
            elif dkind == "input_json_delta":
                frag = delta.get("partial_json") or ""
                if frag:
                    block.parts.append(frag)
                    out.tool_calls = [ToolCallDelta(block.call, None, None, frag)]
            elif dkind == "signature_delta":
                sig = delta.get("signature") or ""
                if block.signature is None:
                    block.signature = []
                block.signature.append(sig)
                out.signature = sig
            return out
        if kind == "content_block_start":
            self._start(event, out)
        elif kind == "content_block_stop":
            block = self._blocks.get(event.get("index"))  # type: ignore[arg-type]
            if block is not None:
                if block.kind == "text" and not block.closed and (block.held or block.tagged is not None):
                    self._flush_tagged(block, out)
                sig = event.get("signature")  # seen on Kimi's (duplicate) stop of a thinking block
                if block.kind == "thinking":
                    if isinstance(sig, str) and sig and not block.signature:
                        block.signature = [sig]
                        out.signature = sig
                    if not block.parts and not block.closed:
                        out.reasoning = ""  # a thinking block with no text still says it was there
                block.closed = True  # a second stop for a closed index is tolerated
        elif kind == "message_start":
            msg = event.get("message") or {}
            self.id = out.id = msg.get("id") or self.id
            self.model = out.model = msg.get("model") or self.model
            self._merge_usage(msg.get("usage"), out)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            stop = delta.get("stop_reason")
            for block in self._blocks.values():  # a text block the stream never closed
                if block.kind == "text" and not block.closed and (block.held or block.tagged is not None):
                    self._flush_tagged(block, out)
                    block.closed = True
            if stop is not None:
                self.stop_reason = stop
                tagged = any(b.kind == "tool_use" and b.source.get("tagged") for b in self._blocks.values())
                self.finish_reason = out.finish_reason = "tool_calls" if tagged else finish_reason(stop)
            self._merge_usage(event.get("usage"), out)
        return out

    def _screen(self, block: _Block, text: str) -> str:
        """The part of ``text`` to show now: a tool-call section written as text is withheld
        (and turned into tool calls when its block ends); a possible marker start is held."""
        if block.tagged is not None:
            block.tagged.append(text)
            return ""
        text = block.held + text
        block.held = ""
        cut = text.find(_SECTION)
        if cut >= 0:
            block.tagged = [text[cut:]]
            return text[:cut]
        for n in range(min(len(_SECTION) - 1, len(text)), 0, -1):
            if _SECTION.startswith(text[-n:]):
                block.held = text[-n:]
                return text[:-n]
        return text

    def _flush_tagged(self, block: _Block, out: StreamDelta) -> None:
        """End of a text block: its withheld section becomes tool calls (or text, if malformed)."""
        held, block.held = block.held, ""
        section = "".join(block.tagged) if block.tagged is not None else ""
        block.tagged = None
        calls = parse_tagged_tool_calls(section) if section else None
        if calls is None:
            rest = held + section
            if rest:
                block.parts.append(rest)
                out.content = (out.content or "") + rest
            return
        if held:
            block.parts.append(held)
            out.content = (out.content or "") + held
        base = max(self._blocks, default=-1) + 1
        for i, (call_id, name, args) in enumerate(calls):
            b = _Block("tool_use", {"type": "tool_use", "id": call_id, "name": name, "tagged": True})
            b.call = self._calls
            self._calls += 1
            b.parts.append(args)
            b.closed = True
            self._blocks[base + i] = b
            out.tool_calls.append(ToolCallDelta(b.call, call_id, name, args))

    def _start(self, event: Mapping[str, Any], out: StreamDelta) -> None:
        index = event.get("index")
        cb = event.get("content_block") or {}
        kind = cb.get("type") or "text"
        if not isinstance(index, int):
            index = max(self._blocks, default=-1) + 1
        block = _Block(kind, dict(cb))
        self._blocks[index] = block
        if kind == "text":
            if cb.get("text"):
                block.parts.append(cb["text"])
                out.content = cb["text"]
        elif kind == "thinking":
            # An empty start adds nothing to show: an empty block is reported at its stop instead,
            # so a stream sends no chunk for it before the first real thinking text.
            text = cb.get("thinking")
            if text:
                block.parts.append(text)
                out.reasoning = text
            if cb.get("signature"):
                block.signature = [cb["signature"]]
                out.signature = cb["signature"]
        elif kind == "tool_use":
            block.call = self._calls
            self._calls += 1
            args = None
            if isinstance(cb.get("input"), Mapping) and cb["input"]:
                args = json.dumps(cb["input"], ensure_ascii=False)
                block.parts.append(args)
            out.tool_calls = [ToolCallDelta(block.call, cb.get("id"), cb.get("name"), args)]

    @property
    def reasoning(self) -> str | None:
        """Thinking text so far (None when the answer had no thinking block)."""
        parts = [p for b in self._blocks.values() if b.kind == "thinking" for p in b.parts]
        if not parts and not any(b.kind == "thinking" for b in self._blocks.values()):
            return None
        return "".join(parts)

    @property
    def content(self) -> str:
        """Visible text so far."""
        return "".join(p for b in self._blocks.values() if b.kind == "text" for p in b.parts)

    def thinking_blocks(self) -> list[dict[str, Any]]:
        """The thinking blocks as they must be replayed (signature only when one arrived)."""
        out: list[dict[str, Any]] = []
        for i in sorted(self._blocks):
            b = self._blocks[i]
            if b.kind == "thinking":
                block: dict[str, Any] = {"type": "thinking", "thinking": "".join(b.parts)}
                if b.signature is not None:
                    block["signature"] = "".join(b.signature)
                out.append(block)
            elif b.kind == "redacted_thinking":
                out.append(dict(b.source))
        return out

    def synthesized_ids(self) -> dict[int, str]:
        """``index -> id`` of tool calls the stream gave no id (Kimi's native id shape)."""
        return {
            b.call: f"functions.{b.source.get('name') or ''}:{b.call}"
            for b in self._blocks.values()
            if b.kind == "tool_use" and not b.source.get("id")
        }

    def tool_calls(self) -> list[ToolCall]:
        """Tool calls so far, in order."""
        out: list[ToolCall] = []
        for i in sorted(self._blocks):
            b = self._blocks[i]
            if b.kind == "tool_use":
                name = b.source.get("name") or ""
                call_id = b.source.get("id") or f"functions.{name}:{b.call}"
                out.append(ToolCall(call_id, name, "".join(b.parts)))
        return out

    def result(self) -> Completion:
        """The accumulated turn; may be called more than once."""
        blocks = self.thinking_blocks()
        return Completion(
            id=self.id,
            model=self.model,
            content=self.content,
            reasoning_content=self.reasoning,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage,
            thinking_blocks=blocks or None,
            protocol="anthropic",
        )


def parse_message(data: Mapping[str, Any]) -> Completion:
    """Parse a non-streaming ``{"type": "message", ...}`` body."""
    acc = MessagesAccumulator()
    acc.feed({"type": "message_start", "message": {**data, "content": []}})
    for i, block in enumerate(data.get("content") or []):
        if not isinstance(block, Mapping):
            continue
        start = dict(block)
        if start.get("type") == "tool_use":
            acc.feed({"type": "content_block_start", "index": i, "content_block": start})
            b = acc._blocks[i]
            if not b.parts:
                b.parts.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
        elif start.get("type") == "text":
            text = start.pop("text", "") or ""
            start["text"] = ""
            acc.feed({"type": "content_block_start", "index": i, "content_block": start})
            acc.feed({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": text}})
            acc.feed({"type": "content_block_stop", "index": i})
        else:
            acc.feed({"type": "content_block_start", "index": i, "content_block": start})
    acc.feed({"type": "message_delta", "delta": {"stop_reason": data.get("stop_reason")}})
    return acc.result()
