"""The Messages event-stream decoder: any byte split, both field spellings, ping/error, cuts."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_coder_auth.anthropic_sse import aiter_message_events, iter_message_events
from kimi_coder_auth.errors import StreamError, StreamInterruptedError

EVENTS = [
    {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo\nwörld"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
]


def _stream(*, space: bool, crlf: bool = False, stop: bool = True) -> bytes:
    sep = ": " if space else ":"
    parts = []
    for i, ev in enumerate(EVENTS):
        parts.append(f"event{sep}{ev['type']}\ndata{sep}{json.dumps(ev, ensure_ascii=False)}\n\n")
        if i == 0:
            parts.append(f"event{sep}ping\ndata{sep}{{\"type\": \"ping\"}}\n\n: keep-alive\n\n")
    if stop:
        parts.append(f"event{sep}message_stop\ndata{sep}{{\"type\":\"message_stop\"}}\n\n")
    text = "".join(parts)
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
       space=st.booleans(), crlf=st.booleans())
def test_any_byte_split_gives_the_same_events(cuts: list[int], space: bool, crlf: bool) -> None:
    data = _stream(space=space, crlf=crlf)
    assert list(iter_message_events(_split(data, cuts))) == EVENTS


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000), space=st.booleans())
def test_a_stream_cut_before_message_stop_raises(cut: int, space: bool) -> None:
    full = _stream(space=space)
    data = full[: cut % full.index(b"message_stop")]
    with pytest.raises(StreamInterruptedError):
        list(iter_message_events([data]))


def test_async_variant_and_error_events() -> None:
    async def collect(chunks: list[bytes]) -> list[dict]:
        async def gen():  # type: ignore[no-untyped-def]
            for c in chunks:
                yield c
        return [e async for e in aiter_message_events(gen())]

    assert asyncio.run(collect([_stream(space=False)])) == EVENTS
    err = (b'event:message_start\ndata:{"type":"message_start","message":{}}\n\n'
           b'event:error\ndata:{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')
    with pytest.raises(StreamError) as info:
        list(iter_message_events([err]))
    assert info.value.error_type == "overloaded_error" and "Overloaded" in str(info.value)
    with pytest.raises(StreamError):
        asyncio.run(collect([err]))
    with pytest.raises(StreamInterruptedError):
        asyncio.run(collect([_stream(space=True, stop=False)]))


def test_sdk_parses_the_same_bytes() -> None:
    """The anthropic SDK, as an oracle, accepts the stream shape we decode."""
    anthropic = pytest.importorskip("anthropic")
    from anthropic._streaming import SSEDecoder

    decoded = [json.loads(sse.data) for sse in SSEDecoder().iter_bytes(iter([_stream(space=False)]))
               if sse.event not in ("ping",)]
    assert decoded[: len(EVENTS)] == EVENTS and anthropic


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
       space=st.booleans(), crlf=st.booleans())
def test_events_without_blank_lines_between_them_are_still_separate(
    cuts: list[int], space: bool, crlf: bool
) -> None:
    """Kimi's /coding/v1 was reported to omit the blank line between events (ADR-0056 of a
    public Claude-Code proxy, 2026-08-29); a new ``event:`` line must end the previous event."""
    nl = "\r\n" if crlf else "\n"
    data = _stream(space=space, crlf=crlf).replace((nl + nl).encode(), nl.encode())
    assert b"\n\n" not in data and b"\r\n\r\n" not in data
    assert list(iter_message_events(_split(data, cuts))) == EVENTS

    async def collect() -> list[dict]:
        async def gen():
            for part in _split(data, cuts):
                yield part

        return [ev async for ev in aiter_message_events(gen())]

    assert asyncio.run(collect()) == EVENTS


@pytest.mark.parametrize("blank_lines", [True, False])
def test_each_event_is_given_out_before_the_next_read(blank_lines: bool) -> None:
    """An event is decoded as soon as its own bytes arrived: a real stream's token must not wait
    for the server's next write (the delimiter fix once held every event back by one read)."""
    data = _stream(space=False)
    if not blank_lines:
        data = data.replace(b"\n\n", b"\n")
    frames = [f + b"\n" for f in data.split(b"\n") if f]  # one network read per line
    if blank_lines:
        frames = [f + b"\n" if f.startswith(b"data:") else f for f in frames]
    reads = 0

    def source():  # type: ignore[no-untyped-def]
        nonlocal reads
        for f in frames:
            reads += 1
            yield f

    seen_at = [reads for _ in iter_message_events(source())]
    # with blank lines an event is out on the read of its data line; without them, a new
    # ``event:`` line is what ends it, so it is out on the next read
    data_reads = [i + 1 for i, f in enumerate(frames) if f.startswith(b"data:") and b'"ping"' not in f]
    assert seen_at == data_reads[: len(EVENTS)] if blank_lines else seen_at == [
        r + 1 for r in data_reads[: len(EVENTS)]]
