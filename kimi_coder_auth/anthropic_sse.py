"""The Anthropic Messages event stream: bytes in any split -> event dicts until ``message_stop``.

Built on the same incremental `sse.SSEDecoder` as the OpenAI route. Each event block is
``event: <name>`` + ``data: <json>`` (Kimi writes both without the space after the colon; both
forms are accepted). ``ping`` events are skipped, an ``error`` event (or an OpenAI-style
``{"error": ...}`` payload) raises `StreamError`, and bytes ending before ``message_stop`` raise
`StreamInterruptedError`: a cut stream never looks like a finished answer.

Kimi's ``/coding/v1`` has been reported to send consecutive events without the blank line
between them (a public proxy's ADR-0056, "Normalize passthrough SSE event delimiters",
2026-08-29): a new ``event:`` line therefore also ends the event before it (`_delimit`).

Hot path: one block split, one ``json.loads`` per event, plain dicts.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from ._redact import quote
from .errors import StreamError, StreamInterruptedError
from .sse import SSEDecoder, _error_from_payload, _loads, _parse_block

__all__ = ["aiter_message_events", "iter_message_events"]

_STOP = "message_stop"
_NEXT = b"\nevent:"
_NEXT_DELIMITED = b"\n\nevent:"


def _delimit(byte_iter: Iterable[bytes]) -> Iterator[bytes]:
    """The byte stream with a blank line before every ``event:`` line that lacks one.

    Each read is passed on up to its last line break at once, so an event is decoded as soon as
    its blank line arrives, never one read late. Only a partial last line is carried into the
    next read, where an ``event:`` line that starts it gets its blank line in front. A stream
    that already has blank lines gets an extra empty block there, which the readers skip.
    """
    carry = b""
    started = False
    for raw in byte_iter:
        data = carry + raw if carry else raw
        cut = data.rfind(b"\n") + 1
        if not cut:
            carry = data
            continue
        carry = data[cut:]
        out = data[:cut].replace(_NEXT, _NEXT_DELIMITED)
        if started and out[:6] == b"event:":
            out = b"\n" + out
        started = True
        yield out
    if carry:
        yield (b"\n" + carry if started and carry[:6] == b"event:" else carry).replace(_NEXT, _NEXT_DELIMITED)


async def _adelimit(byte_iter: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Async `_delimit`."""
    carry = b""
    started = False
    async for raw in byte_iter:
        data = carry + raw if carry else raw
        cut = data.rfind(b"\n") + 1
        if not cut:
            carry = data
            continue
        carry = data[cut:]
        out = data[:cut].replace(_NEXT, _NEXT_DELIMITED)
        if started and out[:6] == b"event:":
            out = b"\n" + out
        started = True
        yield out
    if carry:
        yield (b"\n" + carry if started and carry[:6] == b"event:" else carry).replace(_NEXT, _NEXT_DELIMITED)


def _interrupted(trace_id: str | None, request_id: str | None) -> StreamInterruptedError:
    where = f" (x-trace-id: {trace_id})" if trace_id else ""
    exc = StreamInterruptedError(
        f"The connection closed before the stream finished (no message_stop){where}; "
        "the answer is incomplete."
    )
    exc.trace_id = trace_id  # type: ignore[attr-defined]
    exc.request_id = request_id  # type: ignore[attr-defined]
    return exc


def _not_json(
    data: bytes, trace_id: str | None, request_id: str | None, secrets: Sequence[Any] = ()
) -> StreamError:
    preview = quote(data[:4096].decode("utf-8", "replace"), secrets, 200)
    return StreamError(
        f"The stream carried an event that is not a JSON object: {preview!r}",
        trace_id=trace_id,
        request_id=request_id,
        hint="The partial answer was discarded; retry the request.",
    )


def _decode(
    block: bytes, trace_id: str | None, request_id: str | None, secrets: Sequence[Any] = ()
) -> dict[str, Any] | None:
    """One event block -> its event dict (None for pings, comments and empty blocks)."""
    name: bytes | None = None
    data: bytes | None = None
    if block[:1] == b"\n":  # the blank line `_delimit` put before an ``event:`` line
        block = block.lstrip(b"\n")
    if block[:6] == b"event:":
        head, sep, rest = block.partition(b"\ndata:")
        if sep and b"\n" not in rest and b"\n" not in head:
            # the hot path: exactly one event line and one data line
            data = rest[1:] if rest[:1] == b" " else rest
            name = head[7:] if head[6:7] == b" " else head[6:]
    elif block[:5] == b"data:" and b"\n" not in block:
        data = block[6:] if block[5:6] == b" " else block[5:]
    if data is None:
        event = _parse_block(block)
        if event is None:
            return None
        data = event.data
        name = event.event.encode() if event.event else None
    if name == b"ping":
        return None
    try:
        payload = _loads(data)
    except ValueError:
        if name == b"error":
            raise _error_from_payload(
                None, trace_id=trace_id, request_id=request_id, raw=data, secrets=secrets
            ) from None
        raise _not_json(data, trace_id, request_id, secrets) from None
    if type(payload) is not dict:
        raise _not_json(data, trace_id, request_id, secrets)
    kind = payload.get("type")
    if name == b"error" or kind == "error" or (kind is None and payload.get("error")):
        raise _error_from_payload(
            payload, trace_id=trace_id, request_id=request_id, raw=data, secrets=secrets
        )
    if kind == "ping":
        return None
    if kind is None and name:
        payload["type"] = name.decode("utf-8", "replace")
    return payload


def iter_message_events(
    byte_iter: Iterable[bytes],
    *,
    trace_id: str | None = None,
    request_id: str | None = None,
    secrets: Sequence[Any] = (),
    max_event_bytes: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield Messages event dicts until ``message_stop`` (not yielded); raise on a cut stream.

    ``secrets`` (the sent credentials) are scrubbed from quoted server text; an event longer
    than ``max_event_bytes`` raises `ResponseTooLargeError` (see `sse.SSEDecoder`).
    """
    decoder = SSEDecoder(max_event_bytes)
    feed = decoder.feed_blocks
    for raw in _delimit(byte_iter):
        for block in feed(raw):
            if not block:
                continue
            event = _decode(block, trace_id, request_id, secrets)
            if event is not None:
                if event["type"] == _STOP:
                    return
                yield event
    for ev in decoder.flush():
        event = _decode(
            b"event:" + (ev.event or "").encode() + b"\ndata:" + ev.data, trace_id, request_id, secrets
        )
        if event is not None:
            if event["type"] == _STOP:
                return
            yield event
    raise _interrupted(trace_id, request_id)


async def aiter_message_events(
    byte_iter: AsyncIterable[bytes],
    *,
    trace_id: str | None = None,
    request_id: str | None = None,
    secrets: Sequence[Any] = (),
    max_event_bytes: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Async variant of `iter_message_events` (same errors, same stop)."""
    decoder = SSEDecoder(max_event_bytes)
    feed = decoder.feed_blocks
    async for raw in _adelimit(byte_iter):
        for block in feed(raw):
            if not block:
                continue
            event = _decode(block, trace_id, request_id, secrets)
            if event is not None:
                if event["type"] == _STOP:
                    return
                yield event
    for ev in decoder.flush():
        event = _decode(
            b"event:" + (ev.event or "").encode() + b"\ndata:" + ev.data, trace_id, request_id, secrets
        )
        if event is not None:
            if event["type"] == _STOP:
                return
            yield event
    raise _interrupted(trace_id, request_id)
