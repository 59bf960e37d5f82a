"""The emulator's default model catalogue, in the Moonshot `/models` shape."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DEFAULT_MODELS", "LEGACY_ROUTES", "default_models", "model_entry"]


def model_entry(
    model_id: str,
    context_length: int,
    thinking: str,
    *,
    display_name: str | None = None,
    efforts: list[str] | None = None,
    default_effort: str | None = None,
    image: bool = True,
    video: bool = False,
    tool_use: bool = True,
) -> dict[str, Any]:
    """Build one `/models` entry (`thinking` is "only", "both" or "no")."""
    return {
        "id": model_id,
        "object": "model",
        "type": "model",
        "display_name": display_name or model_id,
        "context_length": context_length,
        "supports_reasoning": thinking != "no",
        "supports_thinking_type": thinking,
        "think_efforts": (
            {"support": True, "valid_efforts": list(efforts), "default_effort": default_effort or efforts[-1]}
            if efforts
            else None
        ),
        "supports_image_in": image,
        "supports_video_in": video,
        "supports_tool_use": tool_use,
    }


#: The four ids the live service lists (Dec 2026), in its entry shape (k3-256k's is verbatim
#: from a live answer). ``toggle-thinking`` is the emulator's own extra: every live model thinks
#: always, so a model whose thinking can be switched off keeps those paths testable (the
#: built-in catalogue does not know it and treats it as toggleable too). The legacy ids the
#: service routes without listing are LEGACY_ROUTES.
DEFAULT_MODELS: list[dict[str, Any]] = [
    model_entry("kimi-for-coding", 262144, "only", display_name="K2.7 Code", video=True),
    model_entry(
        "kimi-for-coding-highspeed", 262144, "only", display_name="K2.7 Code HighSpeed", video=True
    ),
    model_entry(
        "k3", 1048576, "only", display_name="K3", efforts=["low", "high", "max"],
        default_effort="high", video=True,
    ),
    model_entry(
        "k3-256k", 262144, "only", display_name="K3 (256k)", efforts=["low", "high", "max"],
        default_effort="high", video=False,
    ),
    model_entry("toggle-thinking", 262144, "both", display_name="Emulator: thinking on/off"),
]

#: Legacy ids the service accepts but does not list, and the model that answers them.
LEGACY_ROUTES: dict[str, str] = {
    "k2p5": "kimi-for-coding",
    "k2p6": "kimi-for-coding",
    "kimi-k2-thinking": "kimi-for-coding",
    "kimi-k2.6": "kimi-for-coding",
}


def default_models() -> list[dict[str, Any]]:
    """A fresh deep copy of the default catalogue (safe to mutate)."""
    return copy.deepcopy(DEFAULT_MODELS)
