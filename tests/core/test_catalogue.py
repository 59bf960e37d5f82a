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
        display_name="K2.7 Code",
        context_length=262144,
        max_output_tokens=32768,
        thinking="only",
        efforts=(),
        default_effort=None,
        supports_image_in=True,
        supports_video_in=True,
        supports_tool_use=True,
        known=True,
        protocol="openai",
        alias_of=None,
    )


@pytest.mark.parametrize(
    ("model_id", "ctx", "thinking", "efforts", "default", "video", "alias_of"),
    [
        ("kimi-for-coding", 262144, "only", (), None, True, None),
        ("kimi-for-coding-highspeed", 262144, "only", (), None, True, None),
        # 1 Mi on Allegretto+, 256 Ki on Moderato: the offline guess is the smaller one
        ("k3", 262144, "only", ("low", "high", "max"), "high", True, None),
        ("k3-256k", 262144, "only", ("low", "high", "max"), "high", False, None),
        ("k2p5", 262144, "only", (), None, True, "kimi-for-coding"),
        ("k2p6", 262144, "only", (), None, True, "kimi-for-coding"),
        ("kimi-k2-thinking", 262144, "only", (), None, True, "kimi-for-coding"),
        ("kimi-k2.6", 262144, "only", (), None, True, "kimi-for-coding"),
    ],
)
def test_builtins(
    model_id: str, ctx: int, thinking: str, efforts: tuple[str, ...], default: str | None,
    video: bool, alias_of: str | None,
) -> None:
    info = BUILTIN_MODELS[model_id]
    assert (info.context_length, info.thinking, info.efforts) == (ctx, thinking, efforts)
    assert (info.default_effort, info.supports_video_in, info.alias_of) == (default, video, alias_of)
    assert info.supports_image_in and info.supports_tool_use and info.known
    assert info.max_output_tokens == 32768 and info.protocol == "openai"
    # every built-in always thinks, so none may be sent thinking disabled
    assert not info.can_disable_thinking


def test_live_k3_256k_entry_shape_parses() -> None:
    """The live entry quoted by models.dev #3698, verbatim."""
    entry = {"id": "k3-256k", "context_length": 262144, "supports_reasoning": True,
             "supports_image_in": True, "supports_video_in": False,
             "supports_thinking_type": "only",
             "think_efforts": {"support": True, "valid_efforts": ["low", "high", "max"],
                               "default_effort": "high"}}
    info = model_info_from_api(entry)
    assert (info.thinking, info.efforts, info.default_effort) == ("only", ("low", "high", "max"), "high")
    assert info.supports_video_in is False and info.supports_image_in is True
    assert info == dataclasses.replace(BUILTIN_MODELS["k3-256k"], display_name="K3 (256k)")


def test_protocol_is_parsed_from_live_entry() -> None:
    assert model_info_from_api({"id": "k3", "protocol": "anthropic"}).protocol == "anthropic"
    assert model_info_from_api({"id": "k3", "protocol": "Anthropic"}).protocol == "anthropic"
    assert model_info_from_api({"id": "k3", "protocol": "grpc"}).protocol == "openai"
    assert model_info_from_api({"id": "k3"}).protocol == "openai"


def test_disagreement_logged_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from kimi_coder_auth import catalogue

    catalogue._reported.clear()  # once per process: forget what earlier tests logged
    live = [{"id": "k3", "context_length": 1048576, "think_efforts": {
        "support": True, "valid_efforts": ["low", "high", "max"], "default_effort": "max"}}]
    with caplog.at_level("DEBUG", logger="kimi_coder_auth.catalogue"):
        for _ in range(3):
            assert get_model_info("k3", live).context_length == 1048576  # live wins
    lines = [r for r in caplog.records if r.name == "kimi_coder_auth.catalogue"]
    assert all(r.levelname == "DEBUG" for r in lines)
    texts = [r.getMessage() for r in lines]
    assert sum("k3.context_length=1048576" in t for t in texts) == 1
    assert sum("k3.default_effort='max'" in t for t in texts) == 1


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
    assert get_model_info("k3", live).context_length == BUILTIN_MODELS["k3"].context_length


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
