"""StreamAccumulator, extract_usage and parse_completion on realistic Kimi streams."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_coder_auth.wire import (
    Completion,
    StreamAccumulator,
    ToolCall,
    ToolCallDelta,
    Usage,
    extract_usage,
    parse_completion,
)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    if "choice_usage" in extra:
        choice["usage"] = extra.pop("choice_usage")
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "kimi-for-coding",
            "choices": [choice], **extra}


def feed_all(chunks: list[dict[str, Any]]) -> tuple[StreamAccumulator, list[Any]]:
    acc = StreamAccumulator()
    return acc, [acc.feed(c) for c in chunks]


def test_reference_stream_reasoning_then_tool_call_with_choice_usage() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "The user wants the file"}),
        chunk({"reasoning_content": " contents; call ReadFile."}),
        chunk({"tool_calls": [{"index": 0, "id": "functions.ReadFile:0", "type": "function",
                               "function": {"name": "ReadFile", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path":"a.txt"}'}}]}),
        chunk({}, "tool_calls", choice_usage={"prompt_tokens": 8, "completion_tokens": 11,
                                              "total_tokens": 19, "cached_tokens": 8}),
    ]
    acc, deltas = feed_all(chunks)
    assert deltas[0].reasoning == "The user wants the file" and deltas[0].content is None
    assert deltas[2].tool_calls == [ToolCallDelta(0, "functions.ReadFile:0", "ReadFile", None)]
    assert deltas[3].tool_calls == [ToolCallDelta(0, None, None, '{"path":"a.txt"}')]
    assert deltas[4].finish_reason == "tool_calls"
    usage = Usage(8, 11, 19, cache_read=8, reasoning_tokens=None,
                  raw={"prompt_tokens": 8, "completion_tokens": 11, "total_tokens": 19, "cached_tokens": 8})
    assert deltas[4].usage == usage
    assert acc.result() == Completion(
        id="chatcmpl-1", model="kimi-for-coding", content="",
        reasoning_content="The user wants the file contents; call ReadFile.",
        tool_calls=[ToolCall("functions.ReadFile:0", "ReadFile", '{"path":"a.txt"}')],
        finish_reason="tool_calls", usage=usage,
    )


def test_text_answer_with_top_level_usage_chunk_and_no_choices() -> None:
    chunks = [
        chunk({"reasoning_content": "Think."}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        {"id": "chatcmpl-1", "choices": [], "usage": {
            "prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}},
    ]
    acc, deltas = feed_all(chunks)
    res = acc.result()
    assert (res.content, res.reasoning_content, res.finish_reason) == ("Hello", "Think.", "stop")
    assert res.tool_calls == []
    assert res.usage is not None
    assert (res.usage.input_tokens, res.usage.output_tokens, res.usage.total_tokens,
            res.usage.cache_read, res.usage.reasoning_tokens) == (20, 5, 25, 4, 2)
    assert deltas[-1].usage is res.usage


def test_empty_reasoning_is_kept_and_absent_reasoning_is_none() -> None:
    acc, deltas = feed_all([chunk({"reasoning_content": ""}), chunk({"content": "ok"}, "stop")])
    assert deltas[0].reasoning == "" and deltas[0].reasoning is not None
    assert acc.result().reasoning_content == ""
    acc2, _ = feed_all([chunk({"content": "ok"}, "stop")])
    assert acc2.result().reasoning_content is None


def test_reasoning_alias_field() -> None:
    acc, _ = feed_all([chunk({"reasoning": "vllm style"}), chunk({"content": "x"})])
    assert acc.result().reasoning_content == "vllm style"


def test_two_calls_in_one_chunk_and_interleaved_fragments() -> None:
    chunks = [
        chunk({"tool_calls": [
            {"index": 0, "id": "functions.a:0", "function": {"name": "a", "arguments": '{"x":'}},
            {"index": 1, "id": "functions.b:1", "function": {"name": "b", "arguments": '{"y":'}},
        ]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "2}"}},
                              {"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
    ]
    acc, deltas = feed_all(chunks)
    assert [d.index for d in deltas[0].tool_calls] == [0, 1]
    assert acc.result().tool_calls == [
        ToolCall("functions.a:0", "a", '{"x":1}'),
        ToolCall("functions.b:1", "b", '{"y":2}'),
    ]


def test_fragments_before_name_and_late_id() -> None:
    chunks = [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "search", "arguments": ':"kimi"'}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "functions.search:0", "function": {"arguments": "}"}}]}),
        # a server that repeats the name/id must not duplicate them
        chunk({"tool_calls": [{"index": 0, "id": "functions.search:0", "function": {"name": "search"}}]}),
    ]
    acc, _ = feed_all(chunks)
    assert acc.result().tool_calls == [ToolCall("functions.search:0", "search", '{"q":"kimi"}')]


def test_whole_call_in_one_delta_with_finish() -> None:
    c = chunk({"content": "", "tool_calls": [{"index": 0, "id": "functions.f:0", "type": "function",
                                               "function": {"name": "f", "arguments": "{}"}}]}, "tool_calls")
    acc, deltas = feed_all([c])
    assert deltas[0].content == ""  # empty content delta is reported as given
    assert acc.result().content == ""
    assert acc.result().tool_calls == [ToolCall("functions.f:0", "f", "{}")]


def test_missing_index_and_missing_id_fallbacks() -> None:
    chunks = [
        chunk({"tool_calls": [{"id": "c1", "function": {"name": "a", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
        chunk({"tool_calls": [{"id": "c2", "function": {"name": "b", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 5, "function": {"name": "c", "arguments": "{}"}}]}),
    ]
    acc, _ = feed_all(chunks)
    assert acc.result().tool_calls == [
        ToolCall("c1", "a", "{}"), ToolCall("c2", "b", "{}"), ToolCall("functions.c:5", "c", "{}"),
    ]


def test_object_arguments_are_serialised() -> None:
    acc, _ = feed_all([chunk({"tool_calls": [{"index": 0, "id": "i", "function": {"name": "f", "arguments": {"a": 1}}}]})])
    assert json.loads(acc.result().tool_calls[0].arguments) == {"a": 1}


def test_result_is_repeatable_and_progress_properties() -> None:
    acc, _ = feed_all([chunk({"reasoning_content": "r"}), chunk({"content": "a"})])
    assert acc.reasoning == "r" and acc.content == "a"
    assert acc.result() == acc.result()


@settings(max_examples=100, deadline=None)
@given(
    args=st.text(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=40),
)
def test_any_chunking_reassembles_arguments_exactly(args: str, cuts: list[int]) -> None:
    points = sorted({c for c in cuts if c <= len(args)} | {0, len(args)})
    pieces = [args[a:b] for a, b in itertools.pairwise(points)]
    acc = StreamAccumulator()
    acc.feed(chunk({"tool_calls": [{"index": 0, "id": "functions.f:0", "function": {"name": "f"}}]}))
    for p in pieces:
        acc.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}))
    assert acc.result().tool_calls == [ToolCall("functions.f:0", "f", args)]


class NoConcat(str):
    """A fragment that refuses `+`: proves fragments are collected and joined once (O(n))."""

    def __add__(self, other: object) -> str:
        raise AssertionError("quadratic string concatenation on the hot path")

    def __radd__(self, other: object) -> str:
        raise AssertionError("quadratic string concatenation on the hot path")


def test_2000_fragments_are_joined_once_not_concatenated() -> None:
    acc = StreamAccumulator()
    acc.feed(chunk({"tool_calls": [{"index": 0, "id": "functions.f:0", "function": {"name": "f"}}]}))
    for _ in range(2000):
        acc.feed(chunk({"reasoning_content": NoConcat("r"), "content": NoConcat("c"),
                        "tool_calls": [{"index": 0, "function": {"arguments": NoConcat("a")}}]}))
    res = acc.result()
    assert res.tool_calls[0].arguments == "a" * 2000
    assert res.content == "c" * 2000 and res.reasoning_content == "r" * 2000


def test_feed_cost_is_linear_in_fragments() -> None:
    def run(n: int) -> float:
        chunks = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": "xx"}}]})] * n
        acc = StreamAccumulator()
        t0 = time.perf_counter()
        for c in chunks:
            acc.feed(c)
        acc.result()
        return time.perf_counter() - t0

    run(500)  # warm up
    small = min(run(2000) for _ in range(3))
    big = min(run(20000) for _ in range(3))
    assert big / small < 30  # linear would be ~10; quadratic ~100


def test_extract_usage_variants() -> None:
    assert extract_usage({"choices": [{"delta": {}}]}) is None
    assert extract_usage({"usage": None, "choices": []}) is None
    top = extract_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    assert top is not None and top.total_tokens == 7 and top.cache_read is None
    # top-level cached_tokens wins over prompt_tokens_details
    both = extract_usage({"usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10,
                                    "cached_tokens": 5, "prompt_tokens_details": {"cached_tokens": 2}}})
    assert both is not None and both.cache_read == 5
    inner = extract_usage({"choices": [{"usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                                  "total_tokens": 2}}]})
    assert inner is not None and inner.raw == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


def test_parse_completion_non_stream() -> None:
    data = {
        "id": "cmpl-9", "object": "chat.completion", "model": "kimi-for-coding",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "reasoning_content": "",
            "tool_calls": [{"id": "functions.f:0", "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cached_tokens": 3},
    }
    res = parse_completion(data)
    assert res.id == "cmpl-9" and res.model == "kimi-for-coding"
    assert res.content == "" and res.reasoning_content == ""
    assert res.tool_calls == [ToolCall("functions.f:0", "f", '{"a":1}')]
    assert res.finish_reason == "tool_calls"
    assert res.usage is not None and res.usage.cache_read == 3
    plain = parse_completion({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]})
    assert (plain.content, plain.reasoning_content, plain.usage) == ("hi", None, None)
