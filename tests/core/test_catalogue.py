"""Model catalogue: built-ins, /models parsing, live-overrides-builtin, unknown-model defaults."""

from __future__ import annotations

import dataclasses

import pytest

from kimi_coder_auth.catalogue import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    ModelInfo,
    get_model_info,
    model_info_from_api,
)

K3_LIVE = {
    "id": "k3",
    "object": "model",
    "type": "model",
    "display_name": "K3",
    "context_length": 1048576,
    "supports_reasoning": True,
    "supports_image_in": True,
    "supports_video_in": True,
    "supports_thinking_type": "only",
    "think_efforts": {"support": True, "valid_efforts": ["low", "high", "max"], "default_effort": "max"},
}


def test_default_model_is_kimi_for_coding_and_builtin() -> None:
    assert DEFAULT_MODEL == "kimi-for-coding"
    info = get_model_info(DEFAULT_MODEL)
    assert info == ModelInfo(
        id="kimi-for-coding",
        display_name="Kimi For Coding",
        context_length=262144,
        max_output_tokens=32768,
        thinking="both",
        efforts=(),
        default_effort=None,
        supports_image_in=True,
        supports_video_in=False,
        supports_tool_use=True,
        known=True,
    )


@pytest.mark.parametrize(
    ("model_id", "ctx", "thinking", "efforts"),
    [
        ("kimi-for-coding-highspeed", 262144, "both", ()),
        ("k3", 1048576, "only", ("low", "high", "max")),
        ("k3-256k", 262144, "only", ("low", "high", "max")),
        ("kimi-k2.6", 262144, "both", ()),
        ("kimi-k2-thinking", 262144, "only", ()),
    ],
)
def test_builtins(model_id: str, ctx: int, thinking: str, efforts: tuple[str, ...]) -> None:
    info = BUILTIN_MODELS[model_id]
    assert (info.context_length, info.thinking, info.efforts) == (ctx, thinking, efforts)
    assert info.supports_image_in and info.supports_tool_use and info.known
    assert info.max_output_tokens == 32768


def test_model_info_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BUILTIN_MODELS["k3"].thinking = "no"  # type: ignore[misc]


def test_parse_live_k3_entry() -> None:
    info = model_info_from_api(K3_LIVE)
    assert info.id == "k3" and info.display_name == "K3"
    assert info.context_length == 1048576
    assert info.thinking == "only"
    assert info.efforts == ("low", "high", "max") and info.default_effort == "max"
    assert info.supports_video_in is True and info.supports_tool_use is True
    assert info.max_output_tokens == 32768


def test_live_entry_overrides_builtin() -> None:
    live = [{"id": "kimi-for-coding", "context_length": 1000000, "supports_thinking_type": "only"}]
    info = get_model_info("kimi-for-coding", live)
    assert info.thinking == "only" and info.context_length == 1000000
    # other models still come from the table
    assert get_model_info("k3", live).context_length == 1048576


def test_thinking_type_overrides_supports_reasoning() -> None:
    e = {"id": "x", "context_length": 10, "supports_reasoning": False, "supports_thinking_type": "both"}
    assert model_info_from_api(e).thinking == "both"
    assert model_info_from_api({"id": "x", "supports_reasoning": False}).thinking == "no"
    assert model_info_from_api({"id": "x-thinking", "supports_reasoning": True}).thinking == "only"
    assert model_info_from_api({"id": "x", "supports_reasoning": True}).thinking == "both"


def test_think_efforts_ignored_unless_supported() -> None:
    e = {"id": "m", "think_efforts": {"support": False, "valid_efforts": ["low"], "default_effort": "low"}}
    info = model_info_from_api(e)
    assert info.efforts == () and info.default_effort is None
    e2 = {"id": "k3", "think_efforts": None}
    assert model_info_from_api(e2).efforts == ()


def test_missing_fields_use_defaults_and_tool_use_absent_means_true() -> None:
    info = model_info_from_api({"id": "new-model"})
    assert (info.context_length, info.max_output_tokens, info.thinking) == (262144, 32768, "both")
    assert info.supports_tool_use is True and info.display_name == "new-model"
    assert model_info_from_api({"id": "m", "supports_tool_use": False}).supports_tool_use is False
    assert model_info_from_api({"id": "m", "context_length": -5}).context_length == 262144


def test_entry_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="id"):
        model_info_from_api({"context_length": 5})


def test_unknown_model_gets_conservative_default() -> None:
    info = get_model_info("mystery-model", [{"id": "other"}])
    assert info.known is False
    assert (info.id, info.thinking, info.context_length, info.max_output_tokens) == (
        "mystery-model", "both", 262144, 32768,
    )
