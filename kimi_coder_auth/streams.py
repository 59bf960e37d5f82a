"""Stream readers: a streaming chat response as a lazy (async) iterator of chunk dicts.

Lazy: the request is sent on the first iteration (or ``open()`` / ``aopen()``), so errors such
as 401/429 surface from the first ``next()``. A stream that ends before its terminator raises
`StreamInterruptedError`; a stream that broke before its first chunk is retried.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from . import clock
from .error_mapping import SentSecrets, _extract_error, _scrub, _sent_secrets
from .errors import (
    APIConnectionError,
    APITimeoutError,
    KimiCoderError,
    StreamError,
    StreamInterruptedError,
)
from .http_pool import _headers_dict
from .limits import too_large
from .reading import aread_body, deadline_error, read_body, scrub_error
from .response_ids import lowered_response_ids, response_ids
from .retries import _backoff
from .secret import Secret
from .sse import aiter_chunks, iter_chunks

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["AsyncChatStream", "ChatStream"]

logger = logging.getLogger("kimi_coder_auth.transport")

_DRAIN_LIMIT = 64  # reads after [DONE] to return the connection to the pool


def _stream_error(exc: httpx.HTTPError, trace_id: str | None) -> APIConnectionError:
    where = f" (x-trace-id: {trace_id})" if trace_id else ""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"The stream stalled: no data within the read timeout{where}.")
    err = StreamInterruptedError(
        f"The connection broke before the stream finished ({type(exc).__name__}){where}; "
        "the answer is incomplete."
    )
    err.trace_id = trace_id  # type: ignore[attr-defined]
    return err


_SSE_TYPE = "text/event-stream"


def _is_json_type(content_type: str) -> bool:
    """Whether a 2xx answer's Content-Type is JSON rather than an event stream."""
    ctype = content_type.lower()
    return "json" in ctype and "event-stream" not in ctype


def _is_html_type(content_type: str) -> bool:
    """Whether a 2xx answer is a web page (a proxy's or portal's), never an event stream."""
    ctype = content_type.lower()
    return "text/html" in ctype or "xhtml" in ctype


def _html_instead_of_stream(response: httpx.Response) -> StreamError:
    """A 2xx HTML page answering a streaming request: not retried, not "closed before [DONE]"."""
    ctype = response.headers.get("content-type", "")
    return StreamError(
        f"The server answered a streaming request with a web page ({ctype}) instead of an "
        "event stream.",
        status=response.status_code,
        trace_id=response_ids(response.headers)[0],
        request_id=response_ids(response.headers)[1],
        hint="Check that the base URL points at the Kimi Coding API (…/coding/v1) and that no "
        "proxy or captive portal sits in between, then retry.",
    )


class _StreamClock:
    """A stream's deadlines as absolute `clock.monotonic` times (inf = none)."""

    __slots__ = ("between", "due", "first_due", "send_deadline", "total_due")

    def __init__(self, transport: Transport) -> None:
        d = transport.deadlines
        now = clock.monotonic()
        inf = float("inf")
        self.total_due = now + d.stream_total if d.stream_total is not None else inf
        self.first_due = min(now + d.first_event if d.first_event is not None else inf, self.total_due)
        self.between = d.between_events if d.between_events is not None else inf
        self.due = self.first_due  # the next complete event must arrive by then
        self.send_deadline = self.first_due if self.first_due != inf else None

    def shift(self, response: httpx.Response) -> None:
        """Move the deadlines along by the time the request waited for a quota reset."""
        waited = response.extensions.get("kimi_quota_waited")
        if waited:
            self.total_due += waited
            self.first_due += waited
            self.due = self.first_due

    def late(self, yielded: bool, transport: Transport) -> APITimeoutError:
        d = transport.deadlines
        if clock.monotonic() > self.total_due:
            return deadline_error("The stream", d.stream_total)
        if not yielded:
            return deadline_error("The stream's first event", d.first_event)
        return deadline_error("The stream's next event", d.between_events)


def _scrubbed(exc: KimiCoderError, secrets: Sequence[Secret]) -> KimiCoderError:
    """``exc`` with the sent credentials scrubbed, and without the decoder's frames in its
    traceback: their locals hold the raw server bytes, which may echo a credential."""
    scrub_error(exc, secrets)
    return exc.with_traceback(None)


def _stream_too_large(cap: int) -> KimiCoderError:
    return too_large("a stream", cap, "max_stream_bytes= (or KIMI_CODER_MAX_STREAM_BYTES)")


def _json_instead_of_stream(response: httpx.Response) -> StreamError:
    """A 2xx JSON answer to a streaming request: an error object, or a proxy that ignores SSE."""
    message, etype = _scrub(response, *_extract_error(response.content, _sent_secrets(response)))
    return StreamError(
        message or "The server answered a streaming request with plain JSON instead of an event stream.",
        status=response.status_code,
        error_type=etype,
        trace_id=response_ids(response.headers)[0],
        request_id=response_ids(response.headers)[1],
        hint="Check that the base URL points at the Kimi Coding API (…/coding/v1), then retry.",
    )


class ChatStream:
    """Iterator of chat completion chunk dicts from one streaming request.

    Lazy: the request is sent on the first ``next()`` (or `open()`). ``trace_id`` / ``headers``
    are set once it is open. Always `close()` it (or use ``with``) if you stop early.
    """

    def __init__(
        self,
        transport: Transport,
        body: Mapping[str, Any],
        *,
        path: str = "/chat/completions",
        route: str = "openai",
        decode: Any = None,
    ) -> None:
        self._transport = transport
        self._body = body
        self._path = path
        self._route = route
        self._decode = decode or iter_chunks
        self._response: httpx.Response | None = None
        self._raw: Iterator[bytes] | None = None
        self._chunks: Iterator[dict[str, Any]] | None = None
        self._attempt = 0
        self._yielded = False
        self._closed = False
        self._clock: _StreamClock | None = None
        self._secrets: Sequence[Secret] = ()
        self.trace_id: str | None = None
        self.request_id: str | None = None
        self.headers: dict[str, str] = {}

    def open(self) -> ChatStream:
        """Send the request now (retrying per policy); raises the mapped error on failure."""
        if self._response is None and not self._closed:
            transport = self._transport
            times = self._clock = self._clock or _StreamClock(transport)
            response, self._attempt = transport._send(
                "POST", self._path, self._body, stream=True, attempt=self._attempt,
                route=self._route, deadline_at=times.send_deadline,
                read_floor=transport.deadlines.between_events,
            )
            self._response = response
            times.shift(response)
            headers = self.headers = _headers_dict(response.headers)
            self.trace_id, self.request_id = lowered_response_ids(headers)
            self._secrets = SentSecrets(response)
            ctype = headers.get("content-type", "")
            if ctype.startswith(_SSE_TYPE):
                pass  # the usual answer: skip the checks below
            elif _is_json_type(ctype):
                try:
                    read_body(response, transport.limits.response, None, None)
                except httpx.HTTPError as exc:
                    raise _stream_error(exc, self.trace_id) from None
                finally:
                    self.close()
                raise _json_instead_of_stream(response)
            elif _is_html_type(ctype):
                self.close()
                raise _html_instead_of_stream(response)
            self._raw = self._bytes(response)
            self._chunks = self._decode(
                self._raw, trace_id=self.trace_id, request_id=self.request_id,
                secrets=self._secrets, max_event_bytes=transport.limits.event,
            )
        return self

    def _bytes(self, response: httpx.Response) -> Iterator[bytes]:
        source = response.iter_bytes() if "content-encoding" in self.headers else response.iter_raw()
        cap = self._transport.limits.stream
        times = self._clock
        assert times is not None
        monotonic = clock.monotonic
        size = 0
        try:
            for data in source:
                size += len(data)
                if size > cap:
                    raise _stream_too_large(cap)
                if monotonic() > times.due:
                    raise times.late(self._yielded, self._transport)
                yield data
        except httpx.HTTPError as exc:
            raise _stream_error(exc, self.trace_id) from None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> dict[str, Any]:
        chunks = self._chunks
        if chunks is None:
            if self._closed:
                raise StopIteration
            try:
                self.open()
            except BaseException:
                self._closed = True  # one request per stream: do not resend on the next next()
                raise
            chunks = self._chunks
            assert chunks is not None
        try:
            chunk = next(chunks)
        except StopIteration:
            self._finish()
            raise
        except StreamInterruptedError as exc:
            if self._retry_before_first_chunk():
                return self.__next__()
            self.close()
            raise _scrubbed(exc, self._secrets) from exc.__cause__
        except KimiCoderError as exc:
            self.close()
            raise _scrubbed(exc, self._secrets) from exc.__cause__
        except BaseException:
            self.close()
            raise
        self._yielded = True
        times = self._clock
        if times is not None and times.due != times.total_due:
            times.due = min(clock.monotonic() + times.between, times.total_due)
        return chunk

    def _retry_before_first_chunk(self) -> bool:
        """Reconnect when the stream broke before anything was yielded (budget and deadline
        permitting)."""
        if self._yielded or self._closed or self._attempt >= self._transport.max_retries:
            return False
        delay = _backoff(self._attempt, None)
        times = self._clock
        if times is not None and clock.monotonic() + (delay or 0.0) >= times.first_due:
            return False
        self._discard()
        logger.debug("stream interrupted before its first chunk; retrying in %.2f s", delay)
        clock.sleep(delay or 0.0)
        self._attempt += 1
        return True

    def _finish(self) -> None:
        """After ``[DONE]``: read the (empty) rest so the connection returns to the pool."""
        raw = self._raw
        if raw is not None:
            try:
                for _i, _ in zip(range(_DRAIN_LIMIT), raw, strict=False):
                    pass
            except Exception:
                pass
        self.close()

    def _discard(self) -> None:
        response, self._response = self._response, None
        raw, chunks = self._raw, self._chunks
        self._raw = self._chunks = None
        for gen in (chunks, raw):
            close = getattr(gen, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
        if response is not None:
            response.close()

    def close(self) -> None:
        """Release the connection; further iteration stops."""
        self._closed = True
        self._discard()

    def __enter__(self) -> ChatStream:
        return self

    def __del__(self) -> None:  # an abandoned stream must not pin a pooled connection
        try:
            if self._response is not None:
                self._response.close()
        except Exception:
            pass

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChatStream:
    """Async iterator of chunk dicts; lazy like `ChatStream` (sent on first ``__anext__``)."""

    def __init__(
        self,
        transport: Transport,
        body: Mapping[str, Any],
        *,
        path: str = "/chat/completions",
        route: str = "openai",
        decode: Any = None,
    ) -> None:
        self._transport = transport
        self._body = body
        self._path = path
        self._route = route
        self._decode = decode or aiter_chunks
        self._response: httpx.Response | None = None
        self._raw: AsyncIterator[bytes] | None = None
        self._chunks: AsyncIterator[dict[str, Any]] | None = None
        self._attempt = 0
        self._yielded = False
        self._closed = False
        self._clock: _StreamClock | None = None
        self._secrets: Sequence[Secret] = ()
        self.trace_id: str | None = None
        self.request_id: str | None = None
        self.headers: dict[str, str] = {}

    async def aopen(self) -> AsyncChatStream:
        """Send the request now (retrying per policy); raises the mapped error on failure."""
        if self._response is None and not self._closed:
            transport = self._transport
            times = self._clock = self._clock or _StreamClock(transport)
            response, self._attempt = await transport._asend(
                "POST", self._path, self._body, stream=True, attempt=self._attempt,
                route=self._route, deadline_at=times.send_deadline,
                read_floor=transport.deadlines.between_events,
            )
            self._response = response
            times.shift(response)
            headers = self.headers = _headers_dict(response.headers)
            self.trace_id, self.request_id = lowered_response_ids(headers)
            self._secrets = SentSecrets(response)
            ctype = headers.get("content-type", "")
            if ctype.startswith(_SSE_TYPE):
                pass  # the usual answer: skip the checks below
            elif _is_json_type(ctype):
                try:
                    await aread_body(response, transport.limits.response, None, None)
                except httpx.HTTPError as exc:
                    raise _stream_error(exc, self.trace_id) from None
                finally:
                    await self.aclose()
                raise _json_instead_of_stream(response)
            elif _is_html_type(ctype):
                await self.aclose()
                raise _html_instead_of_stream(response)
            self._raw = self._bytes(response)
            self._chunks = self._decode(
                self._raw, trace_id=self.trace_id, request_id=self.request_id,
                secrets=self._secrets, max_event_bytes=transport.limits.event,
            )
        return self

    async def _bytes(self, response: httpx.Response) -> AsyncIterator[bytes]:
        source = response.aiter_bytes() if "content-encoding" in self.headers else response.aiter_raw()
        cap = self._transport.limits.stream
        times = self._clock
        assert times is not None
        monotonic = clock.monotonic
        size = 0
        try:
            async for data in source:
                size += len(data)
                if size > cap:
                    raise _stream_too_large(cap)
                if monotonic() > times.due:
                    raise times.late(self._yielded, self._transport)
                yield data
        except httpx.HTTPError as exc:
            raise _stream_error(exc, self.trace_id) from None

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            chunks = self._chunks
            if chunks is None:
                if self._closed:
                    raise StopAsyncIteration
                try:
                    await self.aopen()
                except BaseException:
                    self._closed = True  # one request per stream: do not resend
                    raise
                chunks = self._chunks
                assert chunks is not None
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                await self._finish()
                raise
            except StreamInterruptedError as exc:
                if await self._retry_before_first_chunk():
                    continue
                await self.aclose()
                raise _scrubbed(exc, self._secrets) from exc.__cause__
            except KimiCoderError as exc:
                await self.aclose()
                raise _scrubbed(exc, self._secrets) from exc.__cause__
            except BaseException:
                await self.aclose()
                raise
            self._yielded = True
            times = self._clock
            if times is not None and times.due != times.total_due:
                times.due = min(clock.monotonic() + times.between, times.total_due)
            return chunk

    async def _retry_before_first_chunk(self) -> bool:
        if self._yielded or self._closed or self._attempt >= self._transport.max_retries:
            return False
        delay = _backoff(self._attempt, None)
        times = self._clock
        if times is not None and clock.monotonic() + (delay or 0.0) >= times.first_due:
            return False
        await self._discard()
        logger.debug("stream interrupted before its first chunk; retrying in %.2f s", delay)
        await clock.asleep(delay or 0.0)
        self._attempt += 1
        return True

    async def _finish(self) -> None:
        raw = self._raw
        if raw is not None:
            try:
                for _ in range(_DRAIN_LIMIT):
                    await raw.__anext__()
            except (StopAsyncIteration, Exception):
                pass
        await self.aclose()

    async def _discard(self) -> None:
        response, self._response = self._response, None
        raw, chunks = self._raw, self._chunks
        self._raw = self._chunks = None
        for gen in (chunks, raw):
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    pass
        if response is not None:
            await response.aclose()

    async def aclose(self) -> None:
        """Release the connection; further iteration stops."""
        self._closed = True
        await self._discard()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
