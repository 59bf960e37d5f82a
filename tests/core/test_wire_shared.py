"""Helpers both adapters share from the core: response_format dialect, forced choice, usage
counts, tool-call dicts, when a request needs live model info, and KimiClient reuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kimi_coder_auth.client import KimiClient
from kimi_coder_auth.emulator import Emulator, model_entry
from kimi_coder_auth.wire import (
    ToolCall,
    Usage,
    build_request,
    is_forced_choice,
    needs_live_model_info,
    normalize_response_format,
    tool_call_dict,
    tool_calls_to_dicts,
    usage_counts,
)

USER = [{"role": "user", "content": "hi"}]
KEY = "sk-shared-helper-test"

PYDANTIC_STYLE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Person record!",
    "description": "A person.",
    "type": "object",
    "$defs": {"Pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}}}},
    "properties": {"name": {"type": "string"}, "pet": {"$ref": "#/$defs/Pet"}, "x": {}},
    "required": ["name"],
}


def test_json_schema_response_format_is_put_in_kimis_dialect() -> None:
    rf = {"type": "json_schema", "json_schema": {"schema": PYDANTIC_STYLE}}
    before = json.dumps(rf, sort_keys=True)
    body = build_request("kimi-for-coding", USER, response_format=rf).body
    spec = body["response_format"]["json_schema"]
    assert json.dumps(rf, sort_keys=True) == before  # caller's dict untouched
    assert spec["name"] == "Person_record_"  # from the title, sanitised
    assert spec["description"] == "A person."
    schema = spec["schema"]
    assert "$schema" not in schema and "$defs" not in schema
    assert schema["properties"]["pet"]["properties"]["kind"]["type"] == "string"
    assert "type" in schema["properties"]["x"]  # every property typed


def test_response_format_keeps_given_name_and_other_types_pass() -> None:
    long = "n" * 100 + " x"
    out = normalize_response_format(
        {"type": "json_schema", "json_schema": {"name": long, "schema": {"properties": {}}}}
    )
    assert out["json_schema"]["name"] == "n" * 64
    assert out["json_schema"]["schema"]["type"] == "object"
    assert normalize_response_format({"type": "json_object"}) == {"type": "json_object"}


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "json_schema", "json_schema": {"schema": {"type": "array"}}},
    ],
)
def test_bad_json_schema_response_format_says_what_to_do(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="json_schema"):
        build_request("kimi-for-coding", USER, response_format=bad)


@pytest.mark.parametrize(
    ("choice", "forced"),
    [
        ("required", True), ("any", True), (True, True), ("get_weather", True),
        ({"type": "function", "function": {"name": "f"}}, True),
        ({"type": "function", "name": "f"}, True),
        ("auto", False), ("none", False), (None, False), (False, False), (3.5, False),
    ],
)
def test_is_forced_choice_accepts_framework_and_kimi_forms(choice: Any, forced: bool) -> None:
    assert is_forced_choice(choice) is forced


def test_needs_live_model_info_only_when_the_request_depends_on_it() -> None:
    assert not needs_live_model_info(USER)
    assert not needs_live_model_info(USER, tool_choice="auto")
    assert needs_live_model_info(USER, thinking=False)
    assert needs_live_model_info(USER, effort="low")
    assert needs_live_model_info(USER, tool_choice="any")
    image = [{"role": "user", "content": [
        {"type": "text", "text": "what"}, {"type": "image_url", "image_url": {"url": "data:x"}}]}]
    assert needs_live_model_info(image)


def test_usage_counts_are_openai_style() -> None:
    assert usage_counts(Usage(10, 5, 15, cache_read=4, reasoning_tokens=2)) == {
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "cached_tokens": 4, "reasoning_tokens": 2,
    }
    assert usage_counts(Usage(1, 2, 3)) == {
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
    }


def test_tool_call_dicts() -> None:
    assert tool_call_dict("c1", "f", {"a": "é"}) == {
        "id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": "é"}'}}
    assert tool_call_dict("c1", "f", None)["function"]["arguments"] == "{}"
    assert tool_call_dict("c1", "f", '{"a":1')["function"]["arguments"] == '{"a":1'  # verbatim
    assert tool_calls_to_dicts([ToolCall("functions.f:0", "f", '{"a":1}')]) == [
        {"id": "functions.f:0", "type": "function",
         "function": {"name": "f", "arguments": '{"a":1}'}}]


# --------------------------------------------------------------------------- KimiClient


def test_client_construction_does_no_io_and_is_reused_until_settings_change() -> None:
    a = KimiClient(api_key=KEY, base_url="http://127.0.0.1:9/x")
    assert a._transport is None and KEY not in repr(a)
    assert KimiClient.reuse(a, api_key=KEY, base_url="http://127.0.0.1:9/x") is a
    b = KimiClient.reuse(a, api_key=KEY, base_url="http://127.0.0.1:9/y")
    assert b is not a
    assert KimiClient.reuse(b, api_key="other", base_url="http://127.0.0.1:9/y") is not b
    hdr = KimiClient.reuse(b, api_key=KEY, base_url="http://127.0.0.1:9/y",
                           default_headers={"X-A": "1"})
    assert hdr is not b
    assert KimiClient.reuse(hdr, api_key=KEY, base_url="http://127.0.0.1:9/y",
                            default_headers={"X-A": "1"}) is hdr
    assert KimiClient.reuse(None, api_key=KEY) is not None


def test_client_model_info_fetches_live_once_and_falls_back() -> None:
    models = [model_entry("kimi-for-coding", 131072, "only")]
    with Emulator(api_keys=[KEY], models=models) as emu:
        client = KimiClient(api_key=KEY, base_url=emu.base_url)
        assert client.model_info("kimi-for-coding", live=False).context_length == 262144
        assert emu.counts["models"] == 0
        info = client.model_info("kimi-for-coding", live=True)
        assert (info.thinking, info.context_length) == ("only", 131072)
        other = KimiClient(api_key=KEY, base_url=emu.base_url)  # same process, URL, credential
        assert other.model_info("kimi-for-coding", live=True).thinking == "only"
        assert emu.counts["models"] == 1
    bad = KimiClient(api_key="wrong", base_url=emu.base_url, max_retries=0, timeout=1)
    assert bad.live_models() is None  # server gone: built-in catalogue, no exception
    assert bad.model_info("kimi-for-coding", live=True).context_length == 262144


async def test_client_async_model_info() -> None:
    models = [model_entry("kimi-for-coding", 131072, "only")]
    with Emulator(api_keys=[KEY], models=models) as emu:
        client = KimiClient(api_key=KEY, base_url=emu.base_url)
        assert (await client.amodel_info("kimi-for-coding", live=True)).thinking == "only"
        assert (await client.alist_models())[0]["id"] == "kimi-for-coding"


# --------------------------------------------------------------------------- stream tool-call ids


def _tc_chunk(index: int, args: str, call_id: str | None, name: str | None) -> dict[str, Any]:
    tc: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id is not None:
        tc["id"] = call_id
    if name is not None:
        tc["function"]["name"] = name
    return {"choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]}


def test_repeated_id_and_name_are_reported_once_per_call() -> None:
    from kimi_coder_auth.wire import StreamAccumulator, ToolCallDelta

    acc = StreamAccumulator()
    first = acc.feed(_tc_chunk(0, '{"a":', "call_1", "f"))
    again = acc.feed(_tc_chunk(0, "1}", "call_1", "f"))
    assert first.tool_calls == [ToolCallDelta(0, "call_1", "f", '{"a":')]
    assert again.tool_calls == [ToolCallDelta(0, None, None, "1}")]
    assert acc.tool_calls() == [ToolCall("call_1", "f", '{"a":1}')]
    assert acc.synthesized_ids() == {}


def test_synthesized_ids_match_the_result_for_calls_without_ids() -> None:
    from kimi_coder_auth.wire import StreamAccumulator

    acc = StreamAccumulator()
    acc.feed(_tc_chunk(0, "{}", None, "f"))
    acc.feed(_tc_chunk(1, "{}", "server_id", "g"))
    assert acc.synthesized_ids() == {0: "functions.f:0"}
    assert [c.id for c in acc.tool_calls()] == ["functions.f:0", "server_id"]


def test_reading_tool_calls_after_every_chunk_keeps_arguments_exact() -> None:
    from kimi_coder_auth.wire import StreamAccumulator

    acc = StreamAccumulator()
    pieces = ['{"a"', ": ", '"x', "y", '"}']
    seen = []
    for i, piece in enumerate(pieces):
        acc.feed(_tc_chunk(0, piece, "c0" if i == 0 else None, "f" if i == 0 else None))
        acc.feed(_tc_chunk(1, str(i), "c1" if i == 0 else None, "g" if i == 0 else None))
        seen.append(acc.tool_calls()[0].arguments)
    assert seen[-1] == '{"a": "xy"}' and seen[1] == '{"a": '
    assert [c.arguments for c in acc.result().tool_calls] == ['{"a": "xy"}', "01234"]


def test_a_failed_models_lookup_is_not_retried_on_every_request() -> None:
    from kimi_coder_auth.client import MODELS_RETRY_AFTER
    from kimi_coder_auth.clock import FakeClock, use_clock

    models = [model_entry("kimi-for-coding", 131072, "only")]
    with Emulator(api_keys=[KEY], models=models) as emu, use_clock(FakeClock()) as fake:
        emu.inject("models", status=404)
        client = KimiClient(api_key=KEY, base_url=emu.base_url)
        assert client.model_info("kimi-for-coding", live=True).context_length == 262144  # built-in
        assert client.model_info("kimi-for-coding", live=True).context_length == 262144
        assert emu.counts["models"] == 1  # the failure is remembered
        fake.advance(MODELS_RETRY_AFTER + 1)
        assert client.model_info("kimi-for-coding", live=True).context_length == 131072
        assert emu.counts["models"] == 2
