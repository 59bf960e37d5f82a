"""SSE decoding: any byte split, every line ending, comments, [DONE], errors, truncation."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kimi_coder_auth.errors import StreamError, StreamInterruptedError
from kimi_coder_auth.sse import SSEDecoder, SSEEvent, aiter_chunks, iter_chunks, iter_events


def _chunk(i: int, text: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        "n": i,
    }


CHUNKS = [_chunk(0, "héllo"), _chunk(1, " wörld\n"), _chunk(2, "🙂 data: [DONE]"), _chunk(3, "")]


def _stream(chunks: list[dict], *, eol: bytes = b"\n", done: bool = True, keepalive: bool = True) -> bytes:
    out = b""
    if keepalive:
        out += b": keep-alive" + eol + eol
    for c in chunks:
        out += b"data: " + json.dumps(c, ensure_ascii=False).encode() + eol + eol
    if done:
        out += b"data: [DONE]" + eol + eol
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, prev = [], 0
    for p in points:
        pieces.append(data[prev:p])
        prev = p
    pieces.append(data[prev:])
    return pieces


def test_plain_stream_yields_every_chunk_and_stops_at_done() -> None:
    data = _stream(CHUNKS) + b"data: {\"after\": \"done\"}\n\n"
    assert list(iter_chunks([data])) == CHUNKS


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol: bytes) -> None:
    assert list(iter_chunks([_stream(CHUNKS, eol=eol)])) == CHUNKS


def test_one_byte_at_a_time_with_crlf() -> None:
    data = _stream(CHUNKS, eol=b"\r\n")
    assert list(iter_chunks(data[i : i + 1] for i in range(len(data)))) == CHUNKS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
    texts=st.lists(st.text(max_size=30), min_size=0, max_size=6),
    keepalive=st.booleans(),
)
def test_arbitrary_splits_give_the_same_chunks(
    eol: bytes, cuts: list[int], texts: list[str], keepalive: bool
) -> None:
    chunks = [_chunk(i, t) for i, t in enumerate(texts)]
    data = _stream(chunks, eol=eol, keepalive=keepalive)
    assert list(iter_chunks(_split(data, cuts))) == chunks


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_arbitrary_splits_of_a_mixed_line_ending_stream(cuts: list[int]) -> None:
    data = (
        b"\xef\xbb\xbf: comment\r\n\r\n"
        b"event: message\rdata: {\"a\":\r\ndata: 1}\r\r"
        b"id: 7\ndata:{\"b\":2}\n\n"
        b"event: ping\ndata: not json\n\n"
        b"\n\n\ndata: [DONE]\r\n\r\n"
    )
    assert list(iter_chunks(_split(data, cuts))) == [{"a": 1}, {"b": 2}]


async def test_async_chunks_match_sync() -> None:
    data = _stream(CHUNKS, eol=b"\r\n")

    async def gen():
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    assert [c async for c in aiter_chunks(gen())] == CHUNKS


def test_decoder_events_multiline_data_comments_and_fields() -> None:
    dec = SSEDecoder()
    events = dec.feed(b": hi\nevent: update\nid: 42\ndata: line1\ndata:line2\ndata\n\n")
    assert events == [SSEEvent(b"line1\nline2\n", "update", "42")]
    # an event with no data is not dispatched; a blank-line run dispatches nothing extra
    assert dec.feed(b"event: nothing\n\n\n\n") == []


def test_decoder_waits_for_the_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: {\"x\": 1}") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\n") == [SSEEvent(b'{"x": 1}')]


def test_lone_cr_at_a_split_is_not_doubled() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n\r\n") == [SSEEvent(b"a")]
    assert dec.feed(b"data: b\r\r") == [SSEEvent(b"b")]


def test_done_without_final_blank_line_before_eof_is_accepted() -> None:
    data = b"data: {\"a\": 1}\n\ndata: [DONE]\n"
    assert list(iter_chunks([data])) == [{"a": 1}]


def test_stream_ending_before_done_raises_interrupted() -> None:
    data = _stream(CHUNKS[:2], done=False)
    got = []
    with pytest.raises(StreamInterruptedError, match="before the stream finished"):
        for c in iter_chunks([data[:10], data[10:]], trace_id="t-123"):
            got.append(c)
    assert got == CHUNKS[:2]  # everything received was delivered, then the error


def test_truncated_event_is_not_delivered() -> None:
    data = _stream(CHUNKS[:1], done=False) + b'data: {"partial": tr'
    got = []
    with pytest.raises(StreamInterruptedError):
        for c in iter_chunks([data]):
            got.append(c)
    assert got == CHUNKS[:1]


async def test_async_stream_ending_before_done_raises_interrupted() -> None:
    async def gen():
        yield _stream(CHUNKS[:1], done=False)

    with pytest.raises(StreamInterruptedError):
        [c async for c in aiter_chunks(gen())]


def test_error_payload_mid_stream_raises_stream_error() -> None:
    err = {"error": {"message": "The engine is currently overloaded", "type": "engine_overloaded_error"}}
    data = _stream(CHUNKS[:1], done=False) + b"data: " + json.dumps(err).encode() + b"\n\n"
    got = []
    with pytest.raises(StreamError) as info:
        for c in iter_chunks([data], trace_id="abc"):
            got.append(c)
    assert got == CHUNKS[:1]
    exc = info.value
    assert exc.error_type == "engine_overloaded_error"
    assert "overloaded" in exc.message
    assert exc.trace_id == "abc"
    assert "retry" in str(exc).lower()


def test_anthropic_style_error_wrapper() -> None:
    err = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    with pytest.raises(StreamError) as info:
        list(iter_chunks([b"data: " + json.dumps(err).encode() + b"\n\n"]))
    assert info.value.error_type == "rate_limit_error"
    assert "slow down" in info.value.message


def test_error_event_type_raises_stream_error() -> None:
    data = b'event: error\ndata: {"message": "boom", "type": "server_error"}\n\n'
    with pytest.raises(StreamError, match="boom") as info:
        list(iter_chunks([data]))
    assert info.value.error_type == "server_error"


def test_error_event_with_plain_text_data() -> None:
    with pytest.raises(StreamError, match="upstream gone"):
        list(iter_chunks([b"event: error\ndata: upstream gone\n\n"]))


def test_chunk_with_null_error_field_is_a_chunk() -> None:
    data = b'data: {"choices": [], "error": null}\n\ndata: [DONE]\n\n'
    assert list(iter_chunks([data])) == [{"choices": [], "error": None}]


def test_non_json_data_raises_stream_error() -> None:
    with pytest.raises(StreamError, match="not JSON"):
        list(iter_chunks([b"data: {oops\n\n"]))
    with pytest.raises(StreamError, match="list"):
        list(iter_chunks([b"data: [1, 2]\n\n"]))


def test_unknown_named_events_are_skipped() -> None:
    data = b"event: ping\ndata: {}\n\nevent: ping\ndata: zzz\n\ndata: {\"a\": 1}\n\ndata: [DONE]\n\n"
    assert list(iter_chunks([data])) == [{"a": 1}]


def test_iter_events_includes_done() -> None:
    events = list(iter_events([b"data: 1\n\ndata: [DONE]\n\n"]))
    assert [e.data for e in events] == [b"1", b"[DONE]"]


def test_stops_reading_after_done() -> None:
    consumed = []

    def source():
        for part in (b"data: {\"a\": 1}\n\n", b"data: [DONE]\n\n", b"data: {\"b\": 2}\n\n"):
            consumed.append(part)
            yield part

    assert list(iter_chunks(source())) == [{"a": 1}]
    assert len(consumed) == 2


def test_standard_library_json_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """orjson is optional: the stdlib parser gives the same chunks and the same errors."""
    import kimi_coder_auth.sse as sse_mod

    monkeypatch.setattr(sse_mod, "_loads", json.loads)
    data = _stream(CHUNKS, eol=b"\r\n")
    assert list(iter_chunks([data[:17], data[17:]])) == CHUNKS
    with pytest.raises(StreamError, match="not JSON"):
        list(iter_chunks([b"data: \xff\xfe\n\n"]))


def test_error_event_echoing_a_credential_is_redacted() -> None:
    """A proxy that echoes the Authorization header mid-stream must not put it in the error."""
    echoed = {
        "error": {
            "message": "bad auth: Bearer AT-CANARY-0123456789 for key sk-kimi-CANARY-abcdef",
            "type": "invalid_authentication_error",
        }
    }
    body = b"data: " + json.dumps(echoed).encode() + b"\n\n"
    with pytest.raises(StreamError) as info:
        list(iter_chunks([body]))
    text = str(info.value)
    assert "CANARY" not in text
    assert "[REDACTED]" in text and "invalid_authentication_error" in text
