"""Model catalogue: what each Kimi Coding model supports (context, thinking, efforts, inputs).

Built-in entries are a fallback for offline use; a live ``GET /models`` entry always wins because
the server is the only authority on context sizes and thinking modes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_CONTEXT_LENGTH",
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "DEFAULT_MODEL",
    "LEGACY_ALIASES",
    "ModelInfo",
    "ThinkingSupport",
    "get_model_info",
    "model_info_from_api",
]

ThinkingSupport = Literal["only", "both", "no"]
Protocol = Literal["openai", "anthropic"]

DEFAULT_MODEL = "kimi-for-coding"
DEFAULT_CONTEXT_LENGTH = 262144
#: The server declares no output limit; 32768 is what models.dev lists for the plan's entries
#: (Kimi Code clamps at 128 Ki; the server maximum is unverified), so it is safe either way.
DEFAULT_MAX_OUTPUT_TOKENS = 32768

_log = logging.getLogger("kimi_coder_auth.catalogue")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Capabilities of one model id.

    ``thinking``: ``"only"`` = always thinks (never send ``disabled``), ``"both"`` = toggleable,
    ``"no"`` = never thinks. ``known`` is False for a conservative guess about an unknown id.
    ``protocol``: the route the service declares for the model (``"openai"`` =
    ``/chat/completions``, ``"anthropic"`` = ``/messages``). ``alias_of``: the id the service
    routes a legacy id to (legacy ids are absent from ``/models``).
    """

    id: str
    display_name: str
    context_length: int = DEFAULT_CONTEXT_LENGTH
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    thinking: ThinkingSupport = "both"
    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    supports_image_in: bool = True
    supports_video_in: bool = False
    supports_tool_use: bool = True
    known: bool = True
    protocol: Protocol = "openai"
    alias_of: str | None = None

    @property
    def can_disable_thinking(self) -> bool:
        """True when ``thinking: {"type": "disabled"}`` is accepted."""
        return self.thinking != "only"

    @property
    def can_think(self) -> bool:
        """True when the model produces reasoning (``"only"`` or ``"both"``)."""
        return self.thinking != "no"


def _builtin(*infos: ModelInfo) -> dict[str, ModelInfo]:
    return {i.id: i for i in infos}


_K3_EFFORTS = ("low", "high", "max")

#: The four ids the live ``/models`` lists (Dec 2026). ``k3``'s default effort is reported as
#: ``max`` (July) and ``high`` (later); the built-in says ``high`` and live ``/models`` decides.
#: ``k3``'s context is 1 Mi on Allegretto and above but 256 Ki on Moderato: the built-in keeps
#: the smaller value so an offline guess never overflows; live ``/models`` gives the tier's value.
_LIVE = (
    ModelInfo(
        "kimi-for-coding", "K2.7 Code", 262144, 32768, "only", supports_video_in=True,
    ),
    ModelInfo(
        "kimi-for-coding-highspeed", "K2.7 Code HighSpeed", 262144, 32768, "only",
        supports_video_in=True,
    ),
    ModelInfo("k3", "K3", 262144, 32768, "only", _K3_EFFORTS, "high", supports_video_in=True),
    ModelInfo("k3-256k", "K3 (256k)", 262144, 32768, "only", _K3_EFFORTS, "high"),
)

#: Legacy ids the service routes to K2.7 Code (k2p5, k2p6, kimi-k2-thinking confirmed by the
#: Kimi Code team; kimi-k2.6 unverified, treated the same so no request is built that K2.7
#: would reject).
LEGACY_ALIASES: Mapping[str, str] = {
    "k2p5": "kimi-for-coding",
    "k2p6": "kimi-for-coding",
    "kimi-k2-thinking": "kimi-for-coding",
    "kimi-k2.6": "kimi-for-coding",
}


def _aliases() -> list[ModelInfo]:
    live = {i.id: i for i in _LIVE}
    return [
        replace(live[target], id=alias, display_name=f"{alias} (-> {live[target].display_name})",
                alias_of=target)
        for alias, target in LEGACY_ALIASES.items()
    ]


BUILTIN_MODELS: Mapping[str, ModelInfo] = _builtin(*_LIVE, *_aliases())


def _as_bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _as_pos_int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return default


def model_info_from_api(entry: Mapping[str, Any]) -> ModelInfo:
    """Parse one ``GET /models`` entry; missing fields fall back to the built-in entry or defaults.

    ``supports_thinking_type`` overrides the legacy ``supports_reasoning``; ``think_efforts`` is
    used only when its ``support`` is true. Raises ``ValueError`` for an entry without an id.
    """
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError(f"A /models entry has no usable 'id' (keys: {sorted(entry)}); skip it.")
    base = BUILTIN_MODELS.get(model_id)

    thinking: ThinkingSupport
    stt = entry.get("supports_thinking_type")
    if stt in ("only", "both", "no"):
        thinking = stt
    elif isinstance(entry.get("supports_reasoning"), bool):
        if entry["supports_reasoning"]:
            # Legacy flag: reasoning supported; assume an always-thinking id only by name.
            thinking = base.thinking if base else ("only" if "thinking" in model_id else "both")
        else:
            thinking = "no"
    else:
        thinking = base.thinking if base else "both"

    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    te = entry.get("think_efforts")
    if isinstance(te, Mapping) and te.get("support") is True:
        valid = te.get("valid_efforts")
        if isinstance(valid, list):
            efforts = tuple(e for e in valid if isinstance(e, str) and e)
        de = te.get("default_effort")
        if isinstance(de, str) and de in efforts:
            default_effort = de
    elif "think_efforts" not in entry and base is not None:
        efforts, default_effort = base.efforts, base.default_effort

    display = entry.get("display_name")
    max_out = (
        entry.get("max_output_tokens")
        or entry.get("max_completion_tokens")
        or entry.get("max_tokens")
    )
    return ModelInfo(
        id=model_id,
        display_name=display if isinstance(display, str) and display else (
            base.display_name if base else model_id
        ),
        context_length=_as_pos_int(
            entry.get("context_length"), base.context_length if base else DEFAULT_CONTEXT_LENGTH
        ),
        max_output_tokens=_as_pos_int(
            max_out, base.max_output_tokens if base else DEFAULT_MAX_OUTPUT_TOKENS
        ),
        thinking=thinking,
        efforts=efforts,
        default_effort=default_effort,
        supports_image_in=_as_bool(
            entry.get("supports_image_in"), base.supports_image_in if base else True
        ),
        supports_video_in=_as_bool(
            entry.get("supports_video_in"), base.supports_video_in if base else False
        ),
        supports_tool_use=_as_bool(entry.get("supports_tool_use"), True),
        known=True,
        protocol=_protocol(entry.get("protocol"), base),
        alias_of=None,
    )


def _protocol(value: Any, base: ModelInfo | None) -> Protocol:
    if isinstance(value, str) and value.lower() in ("openai", "anthropic"):
        return value.lower()  # type: ignore[return-value]
    return base.protocol if base is not None else "openai"


_COMPARED = ("context_length", "thinking", "efforts", "default_effort", "supports_image_in",
             "supports_video_in", "protocol")
_reported: set[tuple[str, str, str]] = set()


def _report_disagreement(live: ModelInfo, builtin: ModelInfo) -> None:
    """Log once per (model, field, live value) at DEBUG where live ``/models`` and the built-in
    table differ, so a stale table is visible without noise (live always wins)."""
    for name in _COMPARED:
        lv, bv = getattr(live, name), getattr(builtin, name)
        if lv != bv:
            key = (live.id, name, repr(lv))
            if key not in _reported:
                _reported.add(key)
                _log.debug(
                    "live /models says %s.%s=%r; the built-in catalogue says %r (live wins)",
                    live.id, name, lv, bv,
                )


def get_model_info(model_id: str, live: Iterable[Mapping[str, Any]] | None = None) -> ModelInfo:
    """Capabilities of ``model_id``: the live ``/models`` entry wins, then the built-in table
    (legacy aliases included), then a conservative default (thinking ``"both"``, 262144/32768)
    with ``known=False``."""
    if live:
        for entry in live:
            if isinstance(entry, Mapping) and entry.get("id") == model_id:
                try:
                    info = model_info_from_api(entry)
                except ValueError:
                    break
                builtin = BUILTIN_MODELS.get(model_id)
                if builtin is not None:
                    _report_disagreement(info, builtin)
                return info
    info = BUILTIN_MODELS.get(model_id)
    if info is not None:
        return info
    return replace(
        ModelInfo(id=model_id, display_name=model_id), known=False
    )
