"""Request building: Kimi's message rules, thinking controls, tool choice policy, exact bodies."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from kimi_coder_auth.catalogue import BUILTIN_MODELS, ModelInfo, get_model_info
from kimi_coder_auth.wire import (
    BuiltRequest,
    build_request,
    map_tool_choice,
    prepare_messages,
    thinking_on,
    thinking_param,
)

#: A toggleable model (every built-in now always thinks): an unknown id is treated as "both".
TOGGLE = "toggle-model"
K4C = replace(BUILTIN_MODELS["kimi-for-coding"], id=TOGGLE, thinking="both")
K3 = BUILTIN_MODELS["k3"]
ONLY = BUILTIN_MODELS["kimi-k2-thinking"]
NO = ModelInfo("plain", "Plain", thinking="no")

CALL = {"id": "functions.ReadFile:0", "type": "function",
        "function": {"name": "ReadFile", "arguments": '{"path":"a.txt"}'}}
TOOL = {"type": "function", "function": {
    "name": "ReadFile", "description": "Read a file",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
NORM_TOOL = copy.deepcopy(TOOL)


# --------------------------------------------------------------------------- prepare_messages


def test_text_only_part_lists_flatten_and_empty_parts_drop() -> None:
    msgs = [
        {"role": "system", "content": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]},
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}]},
    ]
    assert prepare_messages(msgs, thinking_on=True) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_developer_becomes_system() -> None:
    out = prepare_messages([{"role": "developer", "content": "rules"}], thinking_on=False)
    assert out == [{"role": "system", "content": "rules"}]


def test_tool_call_turn_without_text_omits_content_and_gets_placeholder() -> None:
    msgs = [{"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": [CALL]}]
    assert prepare_messages(msgs, thinking_on=True) == [
        {"role": "assistant", "reasoning_content": " ", "tool_calls": [CALL]}
    ]
    assert prepare_messages(msgs, thinking_on=True, reasoning_placeholder="") == [
        {"role": "assistant", "reasoning_content": "", "tool_calls": [CALL]}
    ]
    # thinking off: no placeholder, still no content key
    assert prepare_messages(msgs, thinking_on=False) == [{"role": "assistant", "tool_calls": [CALL]}]


def test_captured_reasoning_replayed_exactly_including_empty() -> None:
    for rc in ("", "I should call the tool."):
        msgs = [{"role": "assistant", "content": None, "reasoning_content": rc, "tool_calls": [CALL]}]
        out = prepare_messages(msgs, thinking_on=True)
        assert out == [{"role": "assistant", "reasoning_content": rc, "tool_calls": [CALL]}]


def test_plain_assistant_turn_gets_no_placeholder() -> None:
    out = prepare_messages([{"role": "assistant", "content": "Hello"}], thinking_on=True)
    assert out == [{"role": "assistant", "content": "Hello"}]


def test_assistant_text_plus_tool_calls_keeps_text() -> None:
    msgs = [{"role": "assistant", "content": [{"type": "text", "text": "Let me look."}],
             "reasoning_content": "r", "tool_calls": [CALL]}]
    assert prepare_messages(msgs, thinking_on=True) == [
        {"role": "assistant", "content": "Let me look.", "reasoning_content": "r", "tool_calls": [CALL]}
    ]


def test_tool_call_arguments_normalised_and_flat_shape_accepted() -> None:
    msgs = [{"role": "assistant", "tool_calls": [
        {"id": "c1", "name": "f", "args": {"a": 1}},
        {"id": "c2", "function": {"name": "g", "arguments": ""}},
    ]}]
    out = prepare_messages(msgs, thinking_on=False)
    assert out[0]["tool_calls"] == [
        {"type": "function", "id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"type": "function", "id": "c2", "function": {"name": "g", "arguments": "{}"}},
    ]


def test_tool_call_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="no id"):
        prepare_messages([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}],
                         thinking_on=True)


def test_empty_assistant_turn_dropped_with_warning() -> None:
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "reasoning_content": "thought only"},
        {"role": "user", "content": "again"},
    ]
    r = build_request("kimi-for-coding", msgs)
    assert r.body["messages"] == [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]
    assert any("dropped" in w for w in r.warnings)


def test_tool_message_content_list_to_string_and_empty_result() -> None:
    msgs = [
        {"role": "assistant", "reasoning_content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": CALL["id"], "content": [{"type": "text", "text": "hel"},
                                                                  {"type": "text", "text": "lo"}]},
        {"role": "tool", "tool_call_id": CALL["id"], "content": ""},
    ]
    out = prepare_messages(msgs, thinking_on=True)
    assert out[1] == {"role": "tool", "tool_call_id": CALL["id"], "content": "hello"}
    assert out[2] == {"role": "tool", "tool_call_id": CALL["id"], "content": "(no output)"}


def test_tool_message_needs_tool_call_id() -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        prepare_messages([{"role": "tool", "content": "x"}], thinking_on=False)


def test_image_parts_kept_with_data_urls_and_id_omitted_when_unset() -> None:
    url = "data:image/png;base64,iVBORw0KGgo="
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "text", "text": ""},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]}]
    assert prepare_messages(msgs, thinking_on=True) == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]}]


def test_images_rejected_when_model_has_no_image_input() -> None:
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    with pytest.raises(ValueError, match="does not accept images"):
        prepare_messages(msgs, thinking_on=True, images=False)


def test_bad_messages_have_clear_errors() -> None:
    with pytest.raises(ValueError, match="role"):
        prepare_messages([{"role": "function", "content": "x"}], thinking_on=True)
    with pytest.raises(ValueError, match="no content"):
        prepare_messages([{"role": "user", "content": ""}], thinking_on=True)
    with pytest.raises(ValueError, match="unsupported content part type"):
        prepare_messages([{"role": "user", "content": [{"type": "audio"}]}], thinking_on=True)


def test_prepare_does_not_mutate_input() -> None:
    msgs = [{"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": [copy.deepcopy(CALL)]}]
    before = copy.deepcopy(msgs)
    prepare_messages(msgs, thinking_on=True)
    assert msgs == before


# --------------------------------------------------------------------------- thinking


@pytest.mark.parametrize(
    ("thinking", "effort", "info", "expected"),
    [
        (None, None, K4C, None),
        (True, None, K4C, {"type": "enabled"}),
        (False, None, K4C, {"type": "disabled"}),
        (None, "high", K3, {"type": "enabled", "effort": "high"}),
        (True, "low", K3, {"type": "enabled", "effort": "low"}),
        (True, None, ONLY, {"type": "enabled"}),
        (False, None, NO, None),
        (None, None, None, None),
        (True, "custom", get_model_info("unknown-x"), {"type": "enabled", "effort": "custom"}),
    ],
)
def test_thinking_param(thinking: bool | None, effort: str | None, info: ModelInfo | None,
                        expected: dict[str, Any] | None) -> None:
    assert thinking_param(thinking, effort, info) == expected


def test_thinking_param_errors() -> None:
    with pytest.raises(ValueError, match="low, high, max"):
        thinking_param(True, "medium", K3)
    with pytest.raises(ValueError, match="always thinks"):
        thinking_param(False, None, ONLY)
    with pytest.raises(ValueError, match="no effort levels"):
        thinking_param(True, "high", K4C)
    with pytest.raises(ValueError, match="needs thinking"):
        thinking_param(False, "high", K3)
    with pytest.raises(ValueError, match="does not support thinking"):
        thinking_param(True, None, NO)


def test_thinking_on() -> None:
    assert thinking_on(None, K4C) is True  # server default is on
    assert thinking_on(False, K4C) is False
    assert thinking_on(False, ONLY) is True
    assert thinking_on(True, NO) is False
    assert thinking_on(None, None) is True


def test_map_tool_choice() -> None:
    named = {"type": "function", "function": {"name": "f"}}
    assert map_tool_choice("f") == named
    assert map_tool_choice("any") == map_tool_choice("required") == map_tool_choice(True) == "required"
    assert map_tool_choice("auto") == "auto" and map_tool_choice("none") == "none"
    assert map_tool_choice(named) == named
    assert map_tool_choice({"type": "function", "name": "f"}) == named
    assert map_tool_choice(None) is None
    with pytest.raises(ValueError):
        map_tool_choice(3.5)


# --------------------------------------------------------------------------- build_request


HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Read a.txt"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": CALL["id"], "content": "hello"},
]


def test_streaming_body_snapshot() -> None:
    r = build_request("kimi-for-coding", HISTORY, tools=[TOOL], stream=True, max_tokens=32768)
    assert isinstance(r, BuiltRequest)
    assert r.body == {
        "model": "kimi-for-coding",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Read a.txt"},
            {"role": "assistant", "reasoning_content": " ", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": CALL["id"], "content": "hello"},
        ],
        "tools": [NORM_TOOL],
        "max_completion_tokens": 32768,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert r.warnings == [] and r.thinking_on is True and r.tool_choice_relaxed is False


def test_non_stream_body_minimal_and_sampling_only_when_set() -> None:
    r = build_request(
        TOGGLE, [{"role": "user", "content": "hi"}], thinking=False,
        temperature=None, top_p=0.9, seed=7, n=None, stop="END", parallel_tool_calls=True,
    )
    assert r.body == {
        "model": TOGGLE,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "disabled"},
        "stop": ["END"],
        "top_p": 0.9,
        "seed": 7,
    }  # parallel_tool_calls without tools is not sent
    r2 = build_request(TOGGLE, [{"role": "user", "content": "hi"}], stream=True,
                       include_usage=False)
    assert r2.body["stream"] is True and "stream_options" not in r2.body


def test_extra_merged_last_and_response_format_passthrough() -> None:
    rf = {"type": "json_object"}
    r = build_request("kimi-for-coding", [{"role": "user", "content": "hi"}], response_format=rf,
                      extra={"prompt_cache_key": "s1", "model": "k3"}, model_info=K4C)
    assert r.body == {"model": "k3", "messages": [{"role": "user", "content": "hi"}],
                      "response_format": rf, "prompt_cache_key": "s1"}


def test_extra_thinking_override_drives_placeholder() -> None:
    r = build_request(TOGGLE, HISTORY, tools=[TOOL], thinking=False,
                      extra={"thinking": {"type": "enabled"}})
    assert r.body["thinking"] == {"type": "enabled"}
    assert r.body["messages"][2]["reasoning_content"] == " "


def test_builtin_tools_and_enum_only_schema() -> None:
    tools = [
        {"type": "function", "function": {"name": "$web_search"}},
        {"type": "function", "function": {"name": "pick", "parameters": {
            "type": "object", "properties": {"mode": {"enum": ["smart", "full"]}}}}},
    ]
    r = build_request("kimi-for-coding", [{"role": "user", "content": "go"}], tools=tools)
    assert r.body["tools"] == [
        {"type": "builtin_function", "function": {"name": "$web_search"}},
        {"type": "function", "function": {"name": "pick", "parameters": {
            "type": "object", "properties": {"mode": {"enum": ["smart", "full"], "type": "string"}}}}},
    ]


def test_forced_tool_disables_thinking_by_default_on_toggleable_model() -> None:
    r = build_request(TOGGLE, HISTORY, tools=[TOOL], tool_choice="ReadFile")
    assert r.body["tool_choice"] == {"type": "function", "function": {"name": "ReadFile"}}
    assert r.body["thinking"] == {"type": "disabled"}
    assert r.thinking_on is False
    # effective thinking is off, so no placeholder is needed on the tool-call turn
    assert "reasoning_content" not in r.body["messages"][2]
    assert r.warnings == []  # thinking was only the server default


def test_forced_tool_with_explicit_thinking_warns() -> None:
    r = build_request(TOGGLE, HISTORY, tools=[TOOL], tool_choice="any", thinking=True)
    assert r.body["tool_choice"] == "required" and r.body["thinking"] == {"type": "disabled"}
    assert len(r.warnings) == 1 and "disabled" in r.warnings[0]


def test_forced_tool_on_always_thinking_model_falls_back_to_auto() -> None:
    r = build_request("kimi-k2-thinking", HISTORY, tools=[TOOL], tool_choice="required")
    assert r.body["tool_choice"] == "auto" and "thinking" not in r.body
    assert r.tool_choice_relaxed is True and r.thinking_on is True
    assert r.body["messages"][2]["reasoning_content"] == " "
    assert len(r.warnings) == 1 and "'auto'" in r.warnings[0]


def test_forced_tool_policy_auto_and_error() -> None:
    r = build_request("kimi-for-coding", HISTORY, tools=[TOOL], tool_choice="ReadFile",
                      forced_tool_policy="auto")
    assert r.body["tool_choice"] == "auto" and "thinking" not in r.body and r.warnings
    with pytest.raises(ValueError, match="forced tool_choice"):
        build_request("kimi-for-coding", HISTORY, tools=[TOOL], tool_choice="ReadFile",
                      forced_tool_policy="error")
    with pytest.raises(ValueError, match="forced_tool_policy"):
        build_request("kimi-for-coding", HISTORY, forced_tool_policy="nope")


def test_forced_tool_with_thinking_off_is_untouched() -> None:
    r = build_request(TOGGLE, HISTORY, tools=[TOOL], tool_choice="required", thinking=False)
    assert r.body["tool_choice"] == "required" and r.body["thinking"] == {"type": "disabled"}
    assert r.warnings == []


def test_tool_choice_validation() -> None:
    with pytest.raises(ValueError, match="not among the tools"):
        build_request("kimi-for-coding", HISTORY, tools=[TOOL], tool_choice="Other")
    with pytest.raises(ValueError, match="no tools"):
        build_request("kimi-for-coding", HISTORY, tool_choice="required")
    r = build_request("kimi-for-coding", [{"role": "user", "content": "x"}], tool_choice="auto")
    assert "tool_choice" not in r.body


def test_effort_sent_for_k3() -> None:
    r = build_request("k3", [{"role": "user", "content": "x"}], effort="high")
    assert r.body["thinking"] == {"type": "enabled", "effort": "high"}


def test_max_tokens_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        build_request("kimi-for-coding", [{"role": "user", "content": "x"}], max_tokens=0)


def test_build_request_does_not_mutate_inputs() -> None:
    msgs = copy.deepcopy(HISTORY)
    tools = [copy.deepcopy(TOOL)]
    build_request("kimi-for-coding", msgs, tools=tools, tool_choice="ReadFile", stream=True)
    assert msgs == HISTORY and tools == [TOOL]


def test_no_messages_left_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no messages"):
        build_request("kimi-for-coding", [])
    with pytest.raises(ValueError, match="no messages"):
        build_request("kimi-for-coding", [{"role": "system", "content": ""}])


def test_parse_tool_arguments() -> None:
    from kimi_coder_auth.wire import parse_tool_arguments

    assert parse_tool_arguments('{"a": 1}') == {"a": 1}
    assert parse_tool_arguments("") == {} and parse_tool_arguments(None) == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_tool_arguments('{"a": ')
    with pytest.raises(ValueError, match="JSON object"):
        parse_tool_arguments("[1]")
