"""LangChain ``ModelProfile`` data derived from the core's model catalogue (no I/O)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kimi_coder_auth.catalogue import ModelInfo

__all__ = ["profile_for", "profile_from_info"]


def profile_from_info(info: ModelInfo) -> dict[str, Any]:
    """A ``ModelProfile`` dict for one catalogue entry."""
    profile: dict[str, Any] = {
        "name": info.display_name,
        "max_input_tokens": info.context_length,
        "max_output_tokens": info.max_output_tokens,
        "text_inputs": True,
        "image_inputs": info.supports_image_in,
        # remote image URLs are fetched and inlined by the adapter, so URL input works
        "image_url_inputs": info.supports_image_in,
        "image_tool_message": info.supports_image_in,
        "pdf_inputs": False,
        "audio_inputs": False,
        "video_inputs": False,
        "pdf_tool_message": False,
        "reasoning_output": info.can_think,
        "text_outputs": True,
        "image_outputs": False,
        "audio_outputs": False,
        "video_outputs": False,
        "tool_calling": info.supports_tool_use,
        # forced choices work through the forced_tool_choice policy (see ChatKimiCoder)
        "tool_choice": info.supports_tool_use,
        "tool_call_streaming": info.supports_tool_use,
        "structured_output": True,
        "mid_conversation_system_messages": True,
        "mid_conversation_tools": True,
    }
    if info.efforts:
        profile["reasoning_effort_levels"] = list(info.efforts)
        if info.default_effort:
            profile["reasoning_effort_default"] = info.default_effort
    return profile


@lru_cache(maxsize=64)
def _cached(model: str) -> dict[str, Any]:
    from kimi_coder_auth.catalogue import get_model_info

    return profile_from_info(get_model_info(model))


def profile_for(model: str) -> dict[str, Any]:
    """The profile of ``model`` from the built-in catalogue (a fresh copy each call)."""
    profile = _cached(model)
    out = dict(profile)
    if "reasoning_effort_levels" in out:
        out["reasoning_effort_levels"] = list(out["reasoning_effort_levels"])
    return out
