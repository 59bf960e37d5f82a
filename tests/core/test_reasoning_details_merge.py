"""K3 ``reasoning_details`` merging: fragments kept as lists and joined when read give exactly what
concatenating each fragment gave, for any mix of indexes, fields and types."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_coder_auth.codecs.openai_response import (
    StreamAccumulator,
    merge_reasoning_details,
    replay_reasoning_details,
)

_TEXT = ("summary", "text", "encrypted", "data")


def _reference(entries: list[Any]) -> list[dict[str, Any]]:
    """The rule, written the obvious way: text fields concatenated, other fields first wins."""
    merged: dict[int, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        idx = entry.get("index")
        if not isinstance(idx, int) or isinstance(idx, bool):
            idx = (max(merged) + 1) if merged else 0
        state = merged.setdefault(idx, {})
        for key, value in entry.items():
            if key == "index" or value is None:
                continue
            old = state.get(key)
            if key in _TEXT and isinstance(old, str) and isinstance(value, str):
                state[key] = old + value
            elif old is None:
                state[key] = value
    return [merged[i] for i in sorted(merged)]


_values = st.one_of(st.text(max_size=4), st.none(), st.integers(0, 3), st.lists(st.integers(0, 2), max_size=2))
_entry = st.one_of(
    st.fixed_dictionaries({"index": st.one_of(st.integers(0, 3), st.none(), st.booleans())},
                          optional={k: _values for k in (*_TEXT, "type", "id")}),
    st.just("not a dict"),
)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.lists(_entry, max_size=3), max_size=12))
def test_streamed_and_replayed_details_match_plain_concatenation(chunks: list[list[Any]]) -> None:
    flat = [e for chunk in chunks for e in chunk]
    expected = _reference(flat)
    assert (replay_reasoning_details(flat) or []) == expected
    merged: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        merge_reasoning_details(merged, chunk)
    assert [merged[i] for i in sorted(merged)] == expected

    acc = StreamAccumulator()
    seen_so_far: list[Any] = []
    for n, chunk in enumerate(chunks):
        acc.feed({"id": "c", "choices": [{"index": 0, "delta": {"reasoning_details": chunk}}]})
        seen_so_far += chunk
        if n % 2:  # read in the middle (LlamaIndex does, after every change): still exact
            assert (acc.reasoning_details() or []) == _reference(seen_so_far)
    assert (acc.reasoning_details() or []) == expected


def test_many_summary_fragments_join_in_order() -> None:
    acc = StreamAccumulator()
    words = [f"w{i} " for i in range(5000)]
    for w in words:
        acc.feed({"id": "c", "choices": [{"index": 0, "delta": {"reasoning_details": [
            {"index": 0, "type": "summary", "summary": w}]}}]})
    acc.feed({"id": "c", "choices": [{"index": 0, "delta": {"reasoning_details": [
        {"index": 1, "type": "encrypted", "encrypted": "e1"}, {"index": 1, "encrypted": "e2"}]}}]})
    assert acc.reasoning_details() == [{"type": "summary", "summary": "".join(words)},
                                       {"type": "encrypted", "encrypted": "e1e2"}]
