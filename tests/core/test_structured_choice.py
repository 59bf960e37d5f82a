"""The one structured-output decision both adapters use, driven by the catalogue's thinking mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kimi_coder_auth.catalogue import get_model_info
from kimi_coder_auth.structured import choose_structured_method, json_schema_format


def test_default_follows_whether_the_model_thinks() -> None:
    k3 = get_model_info("k3")
    # a toggleable model (the live ids all think always now)
    kfc = replace(get_model_info("kimi-for-coding"), thinking="both")
    assert choose_structured_method(k3, thinking=None).method == "json_schema"
    assert choose_structured_method(kfc, thinking=None).method == "json_schema"
    assert choose_structured_method(kfc, thinking=False).method == "function_calling"
    nothink = replace(kfc, thinking="no")
    assert choose_structured_method(nothink, thinking=None).method == "function_calling"
    # a route without json_schema falls back to the forced tool
    assert choose_structured_method(kfc, thinking=None, json_schema_supported=False).method == (
        "function_calling"
    )


def test_explicit_choice_is_kept_and_warned_only_when_it_cannot_be_honoured() -> None:
    k3 = get_model_info("k3")
    kfc = replace(get_model_info("kimi-for-coding"), thinking="both")  # toggleable
    live_kfc = get_model_info("kimi-for-coding")  # K2.7 Code: always thinks
    assert "always thinks" in (choose_structured_method(
        live_kfc, thinking=None, requested="function_calling").warning or "")
    choice = choose_structured_method(k3, thinking=None, requested="function_calling")
    assert choice.method == "function_calling" and "always thinks" in (choice.warning or "")
    ok = choose_structured_method(kfc, thinking=True, requested="function_calling")
    assert ok.method == "function_calling" and ok.warning is None  # thinking turned off per request
    relaxed = choose_structured_method(
        kfc, thinking=True, requested="function_calling", forced_tool_policy="auto"
    )
    assert "is thinking" in (relaxed.warning or "")
    assert choose_structured_method(kfc, thinking=None, requested="json_mode").method == "json_mode"
    with pytest.raises(ValueError, match="method='xml'"):
        choose_structured_method(kfc, thinking=None, requested="xml")


def test_catalogue_update_is_followed() -> None:
    """Marking kimi-for-coding always-thinking (as a catalogue update would) changes the call."""
    always = replace(get_model_info("kimi-for-coding"), thinking="only")
    assert choose_structured_method(always, thinking=None, requested="function_calling").warning


def test_json_schema_format_names_the_schema() -> None:
    fmt = json_schema_format({"title": "Person", "type": "object", "properties": {}})
    assert fmt == {"type": "json_schema", "json_schema": {"name": "Person", "schema": {
        "title": "Person", "type": "object", "properties": {}}}}
