"""Server-sent events: bytes in any split -> events -> chat completion chunk dicts.

`SSEDecoder` is incremental: feed it whatever the socket delivered (half a line, ten events, a
lone ``\\r``) and it returns the events completed so far. Line endings ``\\n``, ``\\r\\n`` and
``\\r`` are all accepted, comments (``: keep-alive``) are skipped, multi-line ``data`` is joined
with ``\\n``. `iter_chunks` / `aiter_chunks` turn a byte stream into parsed chunk dicts, stop at
``data: [DONE]``, raise `StreamError` for an error payload and `StreamInterruptedError` when the
bytes end before ``[DONE]`` (never a silent truncation).

This is the per-chunk hot path: blocks are split with bytes operations and each event is parsed
with one ``json.loads`` (``orjson.loads`` when orjson is installed; it is optional).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ._redact import quote
from .errors import (
    MalformedResponseError,
    ResponseTooLargeError,
    StreamError,
    StreamInterruptedError,
)
from .limits import DEFAULT_MAX_EVENT_BYTES, too_large

try:  # optional speed-up; identical results
    import orjson as _orjson

    _loads: Any = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads

__all__ = [
    "DONE",
    "SSEDecoder",
    "SSEEvent",
    "aiter_chunks",
    "aiter_events",
    "iter_chunks",
    "iter_events",
    "parse_event",
]

DONE = b"[DONE]"
#: event names whose data is a chunk (or an error payload); other named events are skipped
_DATA_EVENTS = frozenset({None, "message", "error"})
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event: ``event`` is the ``event:`` field (None = default ``message``)."""

    data: bytes
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Incremental SSE decoder (WHATWG event-stream rules; ``retry`` is ignored).

    Linear in the bytes fed: an event arriving in many pieces is joined once, when it ends.
    An event (hence a line) longer than ``max_event_bytes`` (default
    `limits.DEFAULT_MAX_EVENT_BYTES`) raises `ResponseTooLargeError`.
    """

    __slots__ = ("_buf", "_cr", "_max", "_parts", "_size", "_started")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._buf = b""  # normalised (``\n`` only) bytes of the event being received: first piece
        self._parts: list[bytes] = []  # its further pieces, joined only when the event completes
        self._size = 0  # len(_buf) + the lengths of _parts
        self._cr = False  # the previous feed ended with ``\r``: drop a leading ``\n`` now
        self._started = False  # a leading UTF-8 BOM has been dealt with
        self._max = max_event_bytes or DEFAULT_MAX_EVENT_BYTES

    def _too_large(self) -> ResponseTooLargeError:
        self._buf, self._parts, self._size = b"", [], 0
        return too_large(
            "one SSE event (a line, or the lines of one event)",
            self._max,
            "max_event_bytes= (or KIMI_CODER_MAX_EVENT_BYTES)",
        )

    def feed_blocks(self, data: bytes) -> list[bytes]:
        """Add bytes; return the raw event blocks they complete (lines joined by ``\n``)."""
        if not data:
            return []
        if not self._started:
            if len(self._buf) + len(data) < 3 and _BOM.startswith(self._buf + data):
                self._buf += data  # could still be a split BOM
                return []
            data = self._buf + data
            self._buf = b""
            self._started = True
            if data.startswith(_BOM):
                data = data[3:]
        if self._cr:
            self._cr = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    return []
        if b"\r" in data:
            self._cr = data[-1:] == b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        old = self._buf
        if old:
            parts = self._parts
            if b"\n\n" not in data and not (
                data[:1] == b"\n" and (parts[-1] if parts else old)[-1:] == b"\n"
            ):
                parts.append(data)  # still inside one event: no copy until it ends
                self._size += len(data)
                if self._size > self._max:
                    raise self._too_large()
                return []
            buf = b"".join([old, *parts, data]) if parts else old + data
            if parts:
                self._parts = []
        elif b"\n\n" not in data:
            self._buf = data
            self._size = len(data)
            if self._size > self._max:
                raise self._too_large()
            return []
        else:
            buf = data
        blocks = buf.split(b"\n\n")
        tail = self._buf = blocks.pop()
        self._size = len(tail)
        if len(buf) > self._max and (self._size > self._max or max(map(len, blocks)) > self._max):
            raise self._too_large()
        return blocks

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Add bytes; return the events they complete (possibly none)."""
        out: list[SSEEvent] = []
        for block in self.feed_blocks(data):
            # fast path: one ``data:`` line (what every OpenAI-style server sends)
            if block[:5] == b"data:" and b"\n" not in block:
                value = block[5:]
                out.append(SSEEvent(value[1:] if value[:1] == b" " else value))
            elif block:
                event = _parse_block(block)
                if event is not None:
                    out.append(event)
        return out

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch a final event whose lines are complete but unterminated.

        A trailing partial line is discarded (it may be a truncated JSON document).
        """
        buf = b"".join([self._buf, *self._parts]) if self._parts else self._buf
        self._buf, self._parts, self._size = b"", [], 0
        self._cr = False
        if not buf or not self._started:
            return []
        if not buf.endswith(b"\n"):
            cut = buf.rfind(b"\n")
            if cut < 0:
                return []
            buf = buf[:cut]
        event = _parse_block(buf)
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    """Parse the lines of one event block (generic path: comments, fields, multi-line data)."""
    data: list[bytes] = []
    event: str | None = None
    event_id: str | None = None
    for line in block.split(b"\n"):
        if not line or line[:1] == b":":
            continue
        name, sep, value = line.partition(b":")
        if b"\0" in name:  # a corrupted line: ignoring it (as the spec would) loses an event
            raise MalformedResponseError(
                "The stream carried a corrupted line (NUL bytes in a field name); an event "
                "would have been lost, so the answer was discarded."
            )
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace") or None
        elif name == b"id" and b"\0" not in value:
            event_id = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(b"\n".join(data), event, event_id)


def iter_events(byte_iter: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Decode a byte stream into events (including ``[DONE]``); no JSON parsing."""
    decoder = SSEDecoder()
    for raw in byte_iter:
        yield from decoder.feed(raw)
    yield from decoder.flush()


async def aiter_events(byte_iter: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """Async variant of `iter_events`."""
    decoder = SSEDecoder()
    async for raw in byte_iter:
        for event in decoder.feed(raw):
            yield event
    for event in decoder.flush():
        yield event


def _error_from_payload(
    payload: Any,
    *,
    trace_id: str | None,
    request_id: str | None,
    raw: bytes | None = None,
    secrets: Sequence[Any] = (),
) -> StreamError:
    """Build a `StreamError` from an error payload (``{"error": {...}}`` or a bare message)."""
    err: Any = payload.get("error") if isinstance(payload, dict) else None
    if err is None and isinstance(payload, dict):
        err = payload
    message: str | None = None
    error_type: str | None = None
    if isinstance(err, dict):
        msg = err.get("message") or err.get("detail") or err.get("error_description")
        message = msg if isinstance(msg, str) else None
        etype = err.get("type") or err.get("code")
        error_type = etype if isinstance(etype, str) and etype != "error" else None
    elif isinstance(err, str):
        message = err
    if message is None:
        text = (raw or b"").decode("utf-8", "replace").strip()
        message = text or "unknown error"
    return StreamError(
        f"The server reported an error in the middle of the stream: {quote(message, secrets, 2000)}",
        status=None,
        error_type=quote(error_type, secrets, 200) if error_type else error_type,
        trace_id=trace_id,
        request_id=request_id,
        hint="The partial answer was discarded; retry the request.",
    )


def parse_event(
    event: SSEEvent,
    *,
    trace_id: str | None = None,
    request_id: str | None = None,
    secrets: Sequence[Any] = (),
) -> dict[str, Any]:
    """Parse one (non-``[DONE]``) event into a chunk dict; raise `StreamError` for errors.

    ``secrets``: the credentials the request carried, scrubbed from any quoted server text.
    """
    if event.event == "error":
        try:
            payload: Any = _loads(event.data)
        except ValueError:
            payload = None
        raise _error_from_payload(
            payload, trace_id=trace_id, request_id=request_id, raw=event.data, secrets=secrets
        )
    try:
        chunk = _loads(event.data)
    except ValueError:
        preview = quote(event.data[:4096].decode("utf-8", "replace"), secrets, 200)
        raise StreamError(
            f"The stream carried an event that is not JSON: {preview!r}",
            trace_id=trace_id,
            request_id=request_id,
            hint="The partial answer was discarded; retry the request.",
        ) from None
    if type(chunk) is not dict:
        raise StreamError(
            f"The stream carried a JSON {type(chunk).__name__} where a chunk object was expected.",
            trace_id=trace_id,
            request_id=request_id,
            hint="The partial answer was discarded; retry the request.",
        )
    if "error" in chunk and chunk["error"] and "choices" not in chunk:
        raise _error_from_payload(
            chunk, trace_id=trace_id, request_id=request_id, raw=event.data, secrets=secrets
        )
    return chunk


def _interrupted(trace_id: str | None, request_id: str | None) -> StreamInterruptedError:
    where = f" (x-trace-id: {trace_id})" if trace_id else ""
    exc = StreamInterruptedError(
        f"The connection closed before the stream finished (no [DONE]){where}; "
        "the answer is incomplete."
    )
    exc.trace_id = trace_id  # type: ignore[attr-defined]
    exc.request_id = request_id  # type: ignore[attr-defined]
    return exc


def _slow(
    block: bytes, trace_id: str | None, request_id: str | None, secrets: Sequence[Any] = ()
) -> dict[str, Any] | bytes | None:
    """Generic path for one block: a chunk dict, DONE, or None (nothing to deliver)."""
    event = _parse_block(block)
    if event is None or event.event not in _DATA_EVENTS:
        return None  # comment-only block, or an unknown named event (e.g. a ping)
    if event.data == DONE and event.event is None:
        return DONE
    return parse_event(event, trace_id=trace_id, request_id=request_id, secrets=secrets)


def iter_chunks(
    byte_iter: Iterable[bytes],
    *,
    trace_id: str | None = None,
    request_id: str | None = None,
    secrets: Sequence[Any] = (),
    max_event_bytes: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield chunk dicts from an SSE byte stream until ``[DONE]``.

    Raises `StreamError` for an error event/payload and `StreamInterruptedError` if the bytes end
    before ``[DONE]``. Stops reading right after ``[DONE]`` (the caller drains/closes).
    """
    decoder = SSEDecoder(max_event_bytes)
    feed = decoder.feed_blocks
    loads = _loads
    for raw in byte_iter:
        for block in feed(raw):
            if block[:6] == b"data: " and b"\n" not in block:  # the hot path
                payload = block[6:]
                if payload == DONE:
                    return
                try:
                    chunk = loads(payload)
                except ValueError:
                    chunk = None
                if type(chunk) is dict and "error" not in chunk:
                    yield chunk
                    continue
            if not block:
                continue
            item = _slow(block, trace_id, request_id, secrets)
            if item is DONE:
                return
            if item is not None:
                yield item  # type: ignore[misc]
    for event in decoder.flush():
        if event.data == DONE and event.event is None:
            return
        if event.event in _DATA_EVENTS:
            yield parse_event(event, trace_id=trace_id, request_id=request_id, secrets=secrets)
    raise _interrupted(trace_id, request_id)


async def aiter_chunks(
    byte_iter: AsyncIterable[bytes],
    *,
    trace_id: str | None = None,
    request_id: str | None = None,
    secrets: Sequence[Any] = (),
    max_event_bytes: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Async variant of `iter_chunks` (same errors, same stop at ``[DONE]``)."""
    decoder = SSEDecoder(max_event_bytes)
    feed = decoder.feed_blocks
    loads = _loads
    async for raw in byte_iter:
        for block in feed(raw):
            if block[:6] == b"data: " and b"\n" not in block:  # the hot path
                payload = block[6:]
                if payload == DONE:
                    return
                try:
                    chunk = loads(payload)
                except ValueError:
                    chunk = None
                if type(chunk) is dict and "error" not in chunk:
                    yield chunk
                    continue
            if not block:
                continue
            item = _slow(block, trace_id, request_id, secrets)
            if item is DONE:
                return
            if item is not None:
                yield item  # type: ignore[misc]
    for event in decoder.flush():
        if event.data == DONE and event.event is None:
            return
        if event.event in _DATA_EVENTS:
            yield parse_event(event, trace_id=trace_id, request_id=request_id, secrets=secrets)
    raise _interrupted(trace_id, request_id)
