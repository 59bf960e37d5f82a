"""Which structured-output method a model can honour, decided once for both adapters.

Kimi rejects a forced ``tool_choice`` while thinking is on. A forced tool therefore works only
when thinking is off or can be turned off for the request; on an always-thinking model it is
relaxed to ``auto`` and the model may answer in text. ``response_format`` ``json_schema`` forces
nothing, so thinking stays on. The decision follows the catalogue's thinking mode
(``ModelInfo.thinking``, with the live ``/models`` entry when one is loaded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .catalogue import ModelInfo

__all__ = ["METHODS", "StructuredChoice", "choose_structured_method", "json_schema_format"]

StructuredMethod = Literal["function_calling", "json_mode", "json_schema"]
METHODS: tuple[str, ...] = ("function_calling", "json_mode", "json_schema")


@dataclass(frozen=True, slots=True)
class StructuredChoice:
    """The method to use, and a warning to show when an explicit choice will not be honoured."""

    method: StructuredMethod
    warning: str | None = None


def _thinks(thinking: bool | None, info: ModelInfo) -> bool:
    if info.thinking == "only":
        return True
    if info.thinking == "no":
        return False
    return thinking is not False  # the server default is on


def choose_structured_method(
    info: ModelInfo,
    *,
    thinking: bool | None,
    requested: str | None = None,
    forced_tool_policy: str = "disable_thinking",
    json_schema_supported: bool = True,
) -> StructuredChoice:
    """The structured-output method for ``info`` with ``thinking`` as configured.

    ``requested`` None picks: ``json_schema`` while the model would think (nothing is forced, so
    thinking stays on), else ``function_calling`` (a forced tool is honoured with thinking off).
    An explicit ``requested`` is always kept; when it is ``function_calling`` and the forced
    tool call would be relaxed to ``auto`` (the model thinks and thinking cannot be turned off
    for the request), the choice carries a warning naming the method that works.
    ``json_schema_supported`` False is for a route without ``response_format`` json_schema.
    """
    if requested is not None and requested not in METHODS:
        raise ValueError(f"method={requested!r} is not supported; use one of {', '.join(METHODS)}.")
    thinks = _thinks(thinking, info)
    forced_is_honoured = not thinks or (
        forced_tool_policy == "disable_thinking" and info.can_disable_thinking
    )
    if requested is None:
        if thinks and json_schema_supported:
            return StructuredChoice("json_schema")
        return StructuredChoice("function_calling")
    if requested == "function_calling" and not forced_is_honoured:
        why = "always thinks" if info.thinking == "only" else "is thinking"
        alternative = (
            "method='json_schema' keeps thinking on and is honoured, or leave method unset"
            if json_schema_supported
            else "turn thinking off if the model allows it"
        )
        return StructuredChoice(
            "function_calling",
            f"method='function_calling' on {info.id}: the model {why}, so the forced tool call "
            "is relaxed to tool_choice='auto' (Kimi rejects a forced tool while thinking) and "
            f"the model may answer without it; {alternative}.",
        )
    if requested == "json_schema" and not json_schema_supported:
        return StructuredChoice(
            "json_schema",
            f"method='json_schema' on {info.id}: this route may not accept response_format "
            "json_schema; leave method unset to let kimi-coder pick one it honours.",
        )
    return StructuredChoice(requested)  # type: ignore[arg-type]


def json_schema_format(schema: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """``response_format`` for a JSON schema (``wire.build_request`` puts it in Kimi's dialect:
    name sanitised, refs inlined, every property typed, ``$schema`` dropped)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": str(name or schema.get("title") or "response"), "schema": dict(schema)},
    }
