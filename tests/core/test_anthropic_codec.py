"""The Anthropic Messages codec: wire messages -> /messages body, and answers -> neutral results."""

from __future__ import annotations

import base64
import json

import pytest

from kimi_coder_auth.catalogue import get_model_info
from kimi_coder_auth.codecs.anthropic_request import build_messages_request
from kimi_coder_auth.codecs.anthropic_response import MessagesAccumulator, parse_message
from kimi_coder_auth.codecs.openai_request import build_request

#: A model whose thinking can be switched off (every built-in now always thinks).
TOGGLE = "toggle-model"

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather.",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def _history() -> list[dict]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
         "reasoning_content": "I need the weather.",
         "thinking_blocks": [{"type": "thinking", "thinking": "I need the weather.", "signature": "c2ln+/="}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
        {"role": "user", "content": "and tomorrow?"},
        {"role": "system", "content": "Answer in French."},
    ]


def test_history_maps_to_messages_blocks() -> None:
    body = build_messages_request("kimi-for-coding", _history(), tools=[TOOL], thinking=True).body
    assert body["system"] == [{"type": "text", "text": "Be brief."}]
    assert body["max_tokens"] == 32768  # always sent, even when the caller gave none
    assert body["thinking"] == {"type": "enabled"} and "budget_tokens" not in body["thinking"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant = body["messages"][1]["content"]
    # the signed block is replayed byte for byte, before the tool_use block
    assert assistant[0] == {"type": "thinking", "thinking": "I need the weather.", "signature": "c2ln+/="}
    assert assistant[1] == {"type": "tool_use", "id": "functions.get_weather:0", "name": "get_weather",
                            "input": {"city": "Paris"}}
    # tool result first, then the merged user text, then the late system message as user text
    last = body["messages"][2]["content"]
    assert last[0] == {"type": "tool_result", "tool_use_id": "functions.get_weather:0",
                       "content": [{"type": "text", "text": "sunny"}]}
    assert last[1:] == [{"type": "text", "text": "and tomorrow?"},
                        {"type": "text", "text": "<system>Answer in French.</system>"}]
    assert body["tools"] == [{"name": "get_weather", "description": "Weather.",
                              "input_schema": TOOL["function"]["parameters"]}]


def test_reasoning_without_signature_replays_unsigned_and_placeholder_when_missing() -> None:
    msgs = [*_history()[:4], {"role": "user", "content": "ok"}]
    del msgs[2]["thinking_blocks"]
    body = build_messages_request(TOGGLE, msgs, tools=[TOOL], thinking=True).body
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "I need the weather."}
    del msgs[2]["reasoning_content"]
    body = build_messages_request(TOGGLE, msgs, tools=[TOOL], thinking=True).body
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": " "}
    body = build_messages_request(TOGGLE, msgs, tools=[TOOL], thinking=False).body
    assert body["messages"][1]["content"][0]["type"] == "tool_use"  # nothing to replay when off


def test_cross_route_rule_openai_reasoning_and_anthropic_blocks() -> None:
    """Reasoning from the OpenAI route replays as an unsigned thinking block on the Anthropic
    route; Anthropic thinking blocks replay as reasoning_content on the OpenAI route."""
    msgs = [*_history()[:4], {"role": "user", "content": "ok"}]
    openai_body = build_request("kimi-for-coding", msgs, tools=[TOOL], thinking=True).body
    turn = openai_body["messages"][2]
    assert turn["reasoning_content"] == "I need the weather." and "thinking_blocks" not in turn


def test_images_become_base64_sources_and_empty_text_is_dropped() -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "what?"},
                                          {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    body = build_messages_request("kimi-for-coding", msgs).body
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("any", {"type": "any"}),
    ("required", {"type": "any"}), ("get_weather", {"type": "tool", "name": "get_weather"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice_forms(choice: object, expected: dict) -> None:
    body = build_messages_request(TOGGLE, [{"role": "user", "content": "hi"}], tools=[TOOL],
                                  tool_choice=choice, thinking=False).body
    assert body["tool_choice"] == expected


def test_forced_choice_under_thinking_follows_the_shared_policy() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    built = build_messages_request(TOGGLE, msgs, tools=[TOOL], tool_choice="get_weather", thinking=True)
    assert built.body["thinking"] == {"type": "disabled"} and built.body["tool_choice"]["type"] == "tool"
    k3 = get_model_info("k3")
    built = build_messages_request("k3", msgs, tools=[TOOL], tool_choice="any", model_info=k3)
    assert built.body["tool_choice"] == {"type": "auto"} and built.tool_choice_relaxed and built.warnings
    with pytest.raises(ValueError, match="forced"):
        build_messages_request(TOGGLE, msgs, tools=[TOOL], tool_choice="any", thinking=True,
                               forced_tool_policy="error")
    built = build_messages_request(TOGGLE, msgs, tools=[TOOL], parallel_tool_calls=False)
    assert built.body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_effort_goes_to_output_config_and_unsupported_options_warn() -> None:
    built = build_messages_request("k3", [{"role": "user", "content": "hi"}], effort="high",
                                   model_info=get_model_info("k3"), seed=3, temperature=0.2,
                                   stop=["END"], extra={"prompt_cache_key": "s1"})
    body = built.body
    assert body["thinking"] == {"type": "enabled"} and body["output_config"] == {"effort": "high"}
    assert body["temperature"] == 0.2 and "seed" not in body and any("seed" in w for w in built.warnings)
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "s1"}
    with pytest.raises(ValueError, match="effort"):
        build_messages_request("k3", [{"role": "user", "content": "hi"}], effort="turbo",
                               model_info=get_model_info("k3"))


def _events() -> list[dict]:
    return [
        {"type": "message_start", "message": {"id": "msg_1", "model": "k3", "usage": {
            "input_tokens": -1, "cache_read_input_tokens": 40, "cache_creation_input_tokens": 2, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "abc"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_stop", "index": 0},  # Kimi's duplicate stop: tolerated
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " 1}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    ]


def test_stream_accumulates_to_the_neutral_completion() -> None:
    acc = MessagesAccumulator()
    deltas = [acc.feed(e) for e in _events()]
    # the empty block start adds no delta: the first thing shown is the first thinking text
    assert [d.reasoning for d in deltas if d.reasoning is not None] == ["Hmm"]
    assert deltas[1].reasoning is None
    assert [d.signature for d in deltas if d.signature] == ["abc"]
    assert deltas[10].tool_calls[0].index == 0 and deltas[9].tool_calls[0].id == "t1"
    done = acc.result()
    assert done.protocol == "anthropic" and done.finish_reason == "tool_calls"
    assert done.content == "Hi" and done.reasoning_content == "Hmm"
    assert done.thinking_blocks == [{"type": "thinking", "thinking": "Hmm", "signature": "abc"}]
    assert [(c.id, c.name, json.loads(c.arguments)) for c in done.tool_calls] == [("t1", "f", {"a": 1})]
    u = done.usage
    assert (u.input_tokens, u.cache_read, u.cache_creation, u.output_tokens, u.total_tokens) == (42, 40, 2, 9, 51)


def test_an_empty_thinking_block_is_reported_once_at_its_stop() -> None:
    """A thinking block with no text still tells the stream it was there (reasoning ``""``),
    as ``parse_message`` does, but only when it ends, not as an empty delta at its start."""
    acc = MessagesAccumulator()
    events = [
        {"type": "message_start", "message": {"id": "msg_e", "model": "k3"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
    ]
    deltas = [acc.feed(e) for e in events]
    assert [(i, d.reasoning) for i, d in enumerate(deltas) if d.reasoning is not None] == [(3, "")]
    assert acc.result().reasoning_content == "" and acc.result().thinking_blocks == [
        {"type": "thinking", "thinking": "", "signature": "s"}]
    whole = parse_message({"id": "msg_e", "type": "message", "model": "k3", "stop_reason": "end_turn",
                           "content": [{"type": "thinking", "thinking": "", "signature": "s"},
                                       {"type": "text", "text": "ok"}]})
    assert whole.reasoning_content == "" and whole.thinking_blocks == acc.result().thinking_blocks
    # text given in the start itself is shown at once
    acc = MessagesAccumulator()
    start = acc.feed({"type": "content_block_start", "index": 0,
                      "content_block": {"type": "thinking", "thinking": "pre"}})
    assert start.reasoning == "pre"
    assert acc.feed({"type": "content_block_stop", "index": 0}).reasoning is None


def test_unsigned_thinking_and_stop_reasons() -> None:
    msg = {"id": "msg_2", "type": "message", "model": "m", "stop_reason": "max_tokens",
           "content": [{"type": "thinking", "thinking": "t"}, {"type": "text", "text": "x"},
                       {"type": "tool_use", "id": "u", "name": "g", "input": {}}],
           "usage": {"input_tokens": 5, "output_tokens": 1}}
    done = parse_message(msg)
    assert done.thinking_blocks == [{"type": "thinking", "thinking": "t"}]  # no signature key
    assert done.finish_reason == "length" and done.tool_calls[0].arguments == "{}"
    assert done.usage.cache_read is None and done.usage.input_tokens == 5
    for reason, neutral in (("end_turn", "stop"), ("stop_sequence", "stop"), ("refusal", "content_filter")):
        assert parse_message({**msg, "stop_reason": reason}).finish_reason == neutral


def test_preserved_thinking_and_cache_key_on_the_messages_route() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    built = build_messages_request("k3", msgs, preserve_thinking=True, prompt_cache_key="kc-abc")
    assert built.body["context_management"] == {
        "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    assert built.body["metadata"] == {"user_id": "kc-abc"}
    assert built.preserve_thinking is True and built.prompt_cache_key == "kc-abc"
    off = build_messages_request(TOGGLE, msgs, thinking=False, preserve_thinking=True)
    assert "context_management" not in off.body and off.preserve_thinking is False
    assert "metadata" not in off.body and off.prompt_cache_key is None


TAGGED = ("<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
          '{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>')


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_tool_calls_written_as_text_become_tool_calls(size: int) -> None:
    text = "Let me check. " + TAGGED
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    acc = MessagesAccumulator()
    acc.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    shown = []
    calls = []
    for p in pieces:
        d = acc.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
        shown.append(d.content or "")
    d = acc.feed({"type": "content_block_stop", "index": 0})
    calls += d.tool_calls
    acc.feed({"type": "message_delta", "delta": {"stop_reason": "end_turn"}})
    assert "".join(shown) == "Let me check. " and "<|" not in "".join(shown)
    assert [(c.id, c.name, c.arguments) for c in calls] == [("functions.get_weather:0", "get_weather", '{"city": "Paris"}')]
    done = acc.result()
    assert done.content == "Let me check. " and done.finish_reason == "tool_calls"
    body = parse_message({"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"})
    assert body.content == "Let me check. " and body.tool_calls[0].name == "get_weather"


def test_text_that_only_looks_like_a_marker_is_kept() -> None:
    for text in ("a < b and <|tool_calls_section_begin|> broken", "ends with <|tool_calls_sec"):
        done = parse_message({"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"})
        assert done.content == text and not done.tool_calls and done.finish_reason == "stop"
