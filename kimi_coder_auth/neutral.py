"""The protocol-neutral model both routes decode into and both adapters consume.

Requests are *wire messages* (OpenAI-style chat dicts plus ``reasoning_content``) and options;
answers are :class:`StreamDelta` per event and one :class:`Completion` per turn, whichever route
(OpenAI ``/chat/completions`` or Anthropic ``/messages``) carried them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BuiltRequest",
    "Completion",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "parse_tool_arguments",
    "tool_call_dict",
    "tool_calls_to_dicts",
    "usage_counts",
]


@dataclass(slots=True)
class Usage:
    """Token usage; ``input_tokens`` includes ``cache_read`` and ``cache_creation``,
    ``output_tokens`` includes ``reasoning_tokens`` (as Kimi counts them). ``raw`` is the
    server's usage dict."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int | None = None
    reasoning_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    cache_creation: int | None = None


@dataclass(slots=True)
class ToolCall:
    """A finished tool call; ``arguments`` is the raw JSON text and ``id`` the server's, verbatim."""

    id: str
    name: str
    arguments: str
    #: why the call is unusable (e.g. the stream never named it); adapters report such a call
    #: as invalid (LangChain ``invalid_tool_calls``) instead of calling a tool named ""
    error: str | None = None


@dataclass(slots=True)
class ToolCallDelta:
    """One streamed tool-call fragment, keyed by ``index`` (fields are per-chunk, not cumulative).

    ``id`` and ``name`` are set only on the fragment that first carries them, even when a server
    repeats them on every fragment, so concatenating deltas (as LangChain does) stays correct.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@dataclass(slots=True)
class StreamDelta:
    """What one SSE chunk added. ``reasoning`` may be ``""`` (meaningful): test ``is not None``.

    ``signature``: a fragment of the current thinking block's signature (Anthropic route only).
    """

    reasoning: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    #: K3's ``reasoning_details`` entries exactly as this chunk carried them (with ``index``).
    reasoning_details: list[dict[str, Any]] | None = None
    signature: str | None = None


@dataclass(slots=True)
class Completion:
    """A whole assistant turn (non-stream response, or a stream's accumulated result).

    ``thinking_blocks``: the Anthropic route's thinking blocks exactly as received
    (``{"type": "thinking", "thinking", "signature"?}`` or ``{"type": "redacted_thinking",
    "data"}``), to be replayed byte for byte; None on the OpenAI route. ``protocol``: the route
    that answered (``"openai"`` or ``"anthropic"``).
    """

    id: str | None
    model: str | None
    content: str
    reasoning_content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage | None
    #: K3's ``reasoning_details``, merged by streaming index, in replay form (no ``index``).
    reasoning_details: list[dict[str, Any]] | None = None
    thinking_blocks: list[dict[str, Any]] | None = None
    protocol: str = "openai"


@dataclass(slots=True)
class BuiltRequest:
    """A request body ready for ``Transport`` plus warnings for the adapter to surface.

    ``thinking_on``: whether thinking is effectively on for this request (after the forced-tool
    policy). ``tool_choice_relaxed``: a forced tool choice was downgraded to ``"auto"``, so the
    adapter should check that a tool call actually came back. ``preserve_thinking``: Kimi Code's
    ``thinking.keep = "all"`` is in effect (requested and thinking on); the Anthropic route
    sends it as a ``context_management`` ``clear_thinking_20251015`` edit. ``prompt_cache_key``:
    the cache key sent (``metadata.user_id`` on the Anthropic route), None when none is.
    """

    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    thinking_on: bool = False
    tool_choice_relaxed: bool = False
    preserve_thinking: bool = False
    prompt_cache_key: str | None = None


def usage_counts(usage: Usage) -> dict[str, int]:
    """``Usage`` as OpenAI-style counts (``prompt_tokens``/``completion_tokens``/``total_tokens``
    plus ``cached_tokens``/``reasoning_tokens`` when known), the shape token counters read."""
    out = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read is not None:
        out["cached_tokens"] = usage.cache_read
    if usage.cache_creation is not None:
        out["cache_creation_tokens"] = usage.cache_creation
    if usage.reasoning_tokens is not None:
        out["reasoning_tokens"] = usage.reasoning_tokens
    return out


# --------------------------------------------------------------------------- tool-call dicts


def tool_call_dict(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """One OpenAI-style tool-call dict; non-string ``arguments`` are JSON-encoded (None -> ``{}``)
    so framework argument dicts and raw JSON text give the same wire shape."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_calls_to_dicts(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Finished :class:`ToolCall`s as OpenAI-style dicts (ids and argument text verbatim)."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def parse_tool_arguments(arguments: str | None) -> dict[str, Any]:
    """Decode a tool call's JSON ``arguments`` (empty means no arguments).

    Raises ``ValueError`` saying what was wrong when the text is not a JSON object, so adapters
    can report an invalid tool call instead of crashing.
    """
    if arguments is None or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool call arguments are not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"tool call arguments must be a JSON object, got {type(value).__name__}")
    return value
