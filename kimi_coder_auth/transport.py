"""`Transport`: the one HTTP client of the Kimi Coding API (chat, streams, /models, /usages).

* Connection pools are process-wide: one `httpx.Client` and one `httpx.AsyncClient` per running
  event loop, both with HTTP keep-alive and limits sized for many concurrent streams. An async
  client is closed when its loop shuts down its async generators (``asyncio.run`` does), so a
  second ``asyncio.run`` gets a fresh client and never sees "Event loop is closed".
* Auth (`KimiAuth`) and the timeout are passed per request, so many `Transport` objects (one per
  chat model) share the pools. Constructing a `Transport` does no I/O.
* Errors are mapped from status + body to the typed errors in `errors.py`, carrying the status,
  the error type, the server's message and the trace/request ids (`response_ids`: ``x-trace-id``,
  ``X-Msh-Trace-Id``, ``x-request-id``, ``Msh-Request-Id``).
* Retries: 429 (not quota), 500/502/503/504 and connection errors, at most ``max_retries`` times,
  exponential backoff with jitter, honouring ``Retry-After`` (capped); sleeping goes through
  `kimi_coder_auth.clock`. Streams retry only before their first chunk.
* Streams are lazy: ``stream_chat(body)`` returns at once and the request is sent on the first
  iteration (or explicitly with ``ChatStream.open()`` / ``await AsyncChatStream.aopen()``), so
  errors such as 401/429 surface from the first ``next()`` / ``__anext__()``.

Pools live in `http_pool`, error mapping in `error_mapping`, retry policy in `retries`, stream
readers in `streams`. Only method, URL, status and trace id are logged (DEBUG); tokens never are.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from . import clock, http_pool, paths, quota_pacing
from ._identity import default_user_agent
from .auth import KimiAuth
from .codecs.anthropic_request import ANTHROPIC_VERSION, MESSAGES_PATH
from .error_mapping import (
    _body_error,
    _connection_error,
    _extract_error,
    _scrub,
    _sent_secrets,
    error_from_response,
    parse_retry_after,
)
from .errors import APIError, KimiCoderError, MalformedResponseError
from .http_pool import DEFAULT_TIMEOUT, LIMITS, _headers_dict, aclose_clients, close_clients
from .limits import Deadlines, Limits
from .reading import aread_body, attempt_timeout, deadline_error, read_body
from .response_ids import request_id as _request_id
from .response_ids import trace_id as _trace_id
from .retries import _backoff, _retryable
from .streams import AsyncChatStream, ChatStream

if TYPE_CHECKING:
    from .refresh import Credential

try:  # optional: faster request encoding
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ENV_BASE_URL",
    "ENV_USER_AGENT",
    "LIMITS",
    "AsyncChatStream",
    "ChatResult",
    "ChatStream",
    "Transport",
    "aclose_clients",
    "close_clients",
    "error_from_response",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.kimi.com/coding/v1"
ENV_BASE_URL = "KIMI_CODE_BASE_URL"
ENV_USER_AGENT = "KIMI_CODER_USER_AGENT"
MODELS_TTL = 600.0


def _encode(body: Mapping[str, Any]) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(body)
        except TypeError:
            pass  # let the standard library produce its clearer message
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The request body is not JSON-serialisable: {exc}") from None


_URLS: dict[str, httpx.URL] = {}


def _parsed_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per distinct URL (parsing costs ~40 us per request)."""
    parsed = _URLS.get(url)
    if parsed is None:
        parsed = httpx.URL(url)
        if len(_URLS) >= 64:
            _URLS.clear()
        _URLS[url] = parsed
    return parsed


_FRAMING_HEADERS = ("host", "content-length", "transfer-encoding")


def _base_headers(
    client: httpx.Client | httpx.AsyncClient, url: httpx.URL, headers: dict[str, str]
) -> list[tuple[bytes, bytes]] | bool:
    """``Host`` + the client's default headers updated with ours, as httpx orders them; False
    when ours set a framing header themselves (then httpx's own path decides)."""
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    if any(name in merged for name in _FRAMING_HEADERS):
        return False
    return [(b"Host", url.netloc), *merged.raw]


def _to_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    seconds = float(timeout)
    if seconds <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ChatResult:
    """A non-streaming chat answer: the JSON body, the trace id, the response headers, the request id."""

    data: dict[str, Any]
    trace_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None


_models_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, list[dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary()
)


# --------------------------------------------------------------------------- transport


class Transport:
    """HTTP access to the Coding API for one credential (cheap; shares process-wide pools).

    ``timeout``: seconds (or an `httpx.Timeout`); default connect 10 s, read 300 s, because a
    thinking turn may stay silent for minutes. ``deadline`` / ``first_event_timeout`` /
    ``event_timeout`` bound the call itself (see `limits.Deadlines`; by default a non-stream
    call ends within the read timeout and a stream's first event and each gap between events
    are bounded by it). ``max_response_bytes`` / ``max_stream_bytes`` / ``max_event_bytes``
    cap what a server may send (see `limits`). ``default_headers`` are sent with every request;
    a ``User-Agent`` among them counts like ``user_agent=``, an ``Authorization`` is ignored.
    ``on_quota="wait"`` sleeps until a used-up quota window resets (at most ``max_quota_wait``
    seconds per request, None = no limit) instead of raising `QuotaExceededError` (`quota_pacing`).
    """

    def __init__(
        self,
        *,
        credential: Credential,
        base_url: str | None = None,
        user_agent: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        first_event_timeout: float | None = None,
        event_timeout: float | None = None,
        max_response_bytes: int | None = None,
        max_stream_bytes: int | None = None,
        max_event_bytes: int | None = None,
        on_quota: str = "raise",
        max_quota_wait: float | None = quota_pacing.DEFAULT_MAX_QUOTA_WAIT,
    ) -> None:
        if on_quota not in quota_pacing.ON_QUOTA:
            raise ValueError(f"on_quota={on_quota!r}; use \"raise\" (default) or \"wait\"")
        if max_quota_wait is not None and max_quota_wait < 0:
            raise ValueError(f"max_quota_wait must be >= 0 seconds or None, got {max_quota_wait!r}")
        self.on_quota = on_quota
        self.max_quota_wait = max_quota_wait
        self._quota_gate: tuple[str, int, quota_pacing.QuotaGate] | None = None
        if credential is None:
            raise TypeError("Transport needs a credential (see kimi_coder_auth.resolve_credential)")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        self.credential = credential
        self._base_url = base_url or None
        self._headers: dict[str, str] = {}
        self._user_agent = user_agent or None
        if default_headers:
            for k, v in default_headers.items():
                if k.lower() == "user-agent":
                    self._user_agent = self._user_agent or v
                elif k.lower() != "authorization":
                    self._headers[k] = v
        self._timeout = _to_timeout(timeout)
        self.deadlines = Deadlines.resolve(
            self._timeout.read,
            deadline=deadline,
            first_event_timeout=first_event_timeout,
            event_timeout=event_timeout,
        )
        self.limits = Limits.resolve(max_response_bytes, max_stream_bytes, max_event_bytes)
        self.max_retries = int(max_retries)
        self._auth = KimiAuth(credential)
        self._key_auth = KimiAuth(credential, header="x-api-key")  # the Anthropic route
        self._base_headers: weakref.WeakKeyDictionary[
            Any, dict[tuple[Any, ...], list[tuple[bytes, bytes]] | bool]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        src = getattr(self.credential, "source", "?")
        return f"Transport(base_url={self.base_url!r}, source={src!r}, max_retries={self.max_retries})"

    # ------------------------------------------------------------------ settings

    @property
    def base_url(self) -> str:
        """Argument, then ``$KIMI_CODE_BASE_URL``, then the public endpoint (no trailing /)."""
        return (self._base_url or paths.default_base_url()).rstrip("/")

    @property
    def user_agent(self) -> str:
        """Argument (or ``default_headers``), then ``$KIMI_CODER_USER_AGENT``, then ours."""
        return self._user_agent or os.environ.get(ENV_USER_AGENT) or default_user_agent()

    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path  # a side service configured with its own full URL
        base = self.base_url
        scheme, sep, rest = base.partition("://")
        if sep and scheme.lower() in ("https", "http") and scheme != scheme.lower():
            base = scheme.lower() + "://" + rest  # schemes are case-insensitive (RFC 3986)
        if not base.startswith(("https://", "http://")):
            raise KimiCoderError(
                f"The base URL {base!r} is not an http(s) URL.",
                hint=f"Set base_url= or {ENV_BASE_URL} to e.g. {DEFAULT_BASE_URL} (the default).",
            )
        return base + path

    def _request_headers(self, *, stream: bool, has_body: bool) -> dict[str, str]:
        headers = dict(self._headers)
        headers["User-Agent"] = self.user_agent
        headers["Accept"] = "text/event-stream" if stream else "application/json"
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _build_request(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        """The request ``client.build_request`` would make, from a cached header list.

        httpx merges the client's default headers into ours and normalises every header three
        times per request (~35 us, on the path to the first token). The merged list, ``Host``
        included, is cached per client, URL and header set; only ``Content-Length`` is added per
        call, in httpx's order, so the request is identical (tested). Cookies in the client's
        jar, an empty body other than a GET's, or a caller-set framing header take httpx's own
        path.
        """
        parsed = _parsed_url(url)
        timeout = timeout or self._timeout
        if not client.cookies.jar and (content or (content is None and method == "GET")):
            cache = self._base_headers.get(client)
            if cache is None:  # held weakly: a closed per-loop client is not kept alive
                cache = self._base_headers[client] = {}
            key = (url, tuple(headers.items()))
            base = cache.get(key)
            if base is None:
                if len(cache) >= 16:
                    cache.clear()
                base = cache[key] = _base_headers(client, parsed, headers)
            if base:
                if content:
                    raw, body = [*base, (b"Content-Length", str(len(content)).encode())], content
                else:
                    raw, body = base, b""
                request = httpx.Request(
                    method, parsed, headers=raw, stream=httpx.ByteStream(body),
                    extensions={"timeout": timeout.as_dict()},
                )
                request.read()  # as httpx does for in-memory bodies (auth may replay it)
                return request
        return client.build_request(
            method, parsed, content=content, headers=headers, timeout=timeout
        )

    def _source(self) -> str | None:
        try:
            return str(self.credential.source)
        except Exception:  # a lazy credential may not know its source yet
            return None

    # ------------------------------------------------------------------ sending (sync)

    def _attempt_timeout(self, deadline_at: float | None, read_floor: float | None) -> httpx.Timeout:
        """This attempt's network timeouts: the configured ones, capped at the time left."""
        if deadline_at is None:
            return self._timeout
        remaining = deadline_at - clock.monotonic()
        if remaining <= 0:
            raise deadline_error("The request", self.deadlines.total)
        return attempt_timeout(self._timeout, remaining, read_floor=read_floor)

    def _call_deadline(self, stream: bool, deadline_at: float | None) -> float | None:
        if deadline_at is None and not stream and self.deadlines.total is not None:
            return clock.monotonic() + self.deadlines.total
        return deadline_at

    def _send(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any
    ) -> tuple[httpx.Response, int]:
        """`_send_retrying` under the quota policy (``on_quota``); ``/usages`` is never paced.

        Time spent waiting for a quota reset moves a caller's ``deadline_at`` along with it."""
        deadline_at = kw.pop("deadline_at", None)

        def call(waited: float = 0.0) -> tuple[httpx.Response, int]:
            due = None if deadline_at is None else deadline_at + waited
            result = self._send_retrying(method, path, body, deadline_at=due, **kw)
            if waited:  # a stream's reader moves its own deadlines by as much
                result[0].extensions["kimi_quota_waited"] = waited
            return result

        if path == "/usages":
            return call()
        if self.on_quota == "wait":
            return quota_pacing.send(self, call)
        return quota_pacing.observe(self, call)

    async def _asend(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any
    ) -> tuple[httpx.Response, int]:
        """Async `_send`."""
        deadline_at = kw.pop("deadline_at", None)

        async def call(waited: float = 0.0) -> tuple[httpx.Response, int]:
            due = None if deadline_at is None else deadline_at + waited
            result = await self._asend_retrying(method, path, body, deadline_at=due, **kw)
            if waited:
                result[0].extensions["kimi_quota_waited"] = waited
            return result

        if path == "/usages":
            return await call()
        if self.on_quota == "wait":
            return await quota_pacing.asend(self, call)
        return await quota_pacing.aobserve(self, call)

    def _send_retrying(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        attempt: int = 0,
        raw: tuple[bytes | None, Mapping[str, str]] | None = None,
        route: str = "openai",
        deadline_at: float | None = None,
        read_floor: float | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return (a 2xx response, the attempt number that produced it).

        A non-stream answer is read here, under ``max_response_bytes`` and the call deadline
        (``deadline_at``, on `clock.monotonic`; default now + ``deadlines.total``; a stream's
        reader passes its own). A body that breaks mid-read is retried only for a GET: the
        server may already have run a POST. ``raw``: (body bytes, header overrides) for a
        non-JSON request.
        """
        client = http_pool._get_sync_client()
        url = self._url(path)
        content = _encode(body) if body is not None else (raw[0] if raw else None)
        headers = self._request_headers(stream=stream, has_body=content is not None)
        if raw:
            headers.update(raw[1])
        deadline_at = self._call_deadline(stream, deadline_at)
        cap = self.limits.response
        auth = self._auth
        if route == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            auth = self._key_auth
        while True:
            timeout = self._attempt_timeout(deadline_at, read_floor)
            request = self._build_request(client, method, url, content, headers, timeout)
            retry_after = None
            try:
                response = client.send(request, auth=auth, stream=True)
            except httpx.HTTPError as exc:
                err: KimiCoderError
                err, retry = _connection_error(exc, method, url)
                cause: BaseException | None = exc
                logger.debug("%s %s -> %s", method, url, type(exc).__name__)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d (x-trace-id %s)",
                        method, url, response.status_code, _trace_id(response.headers),
                    )
                if response.status_code < 300:
                    if stream:
                        return response, attempt
                    try:
                        read_body(response, cap, deadline_at, self.deadlines.total)
                        return response, attempt
                    except httpx.HTTPError as exc:
                        (err, retry), cause = _body_error(exc, method, url), exc
                else:
                    try:
                        read_body(response, cap, deadline_at, self.deadlines.total)
                    except (httpx.HTTPError, KimiCoderError):
                        pass  # the status alone still says what happened
                    err = error_from_response(response, user_agent=headers["User-Agent"], source=self._source())
                    retry, cause = _retryable(err), None
                    retry_after = getattr(err, "retry_after", None)
            delay = self._retry_delay(retry, attempt, retry_after, deadline_at)
            if delay is None:
                raise err from cause
            logger.debug("retrying %s %s in %.2f s after %s", method, url, delay, type(err).__name__)
            clock.sleep(delay)
            attempt += 1

    def _retry_delay(
        self, retry: bool, attempt: int, retry_after: float | None, deadline_at: float | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None: not retryable, out of attempts,
        or the wait would end past the call's deadline."""
        delay = _backoff(attempt, retry_after) if retry and attempt < self.max_retries else None
        if delay is not None and deadline_at is not None and clock.monotonic() + delay >= deadline_at:
            return None
        return delay

    async def _asend_retrying(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        attempt: int = 0,
        raw: tuple[bytes | None, Mapping[str, str]] | None = None,
        route: str = "openai",
        deadline_at: float | None = None,
        read_floor: float | None = None,
    ) -> tuple[httpx.Response, int]:
        """Async `_send_retrying`."""
        client = await http_pool._get_async_client()
        url = self._url(path)
        content = _encode(body) if body is not None else (raw[0] if raw else None)
        headers = self._request_headers(stream=stream, has_body=content is not None)
        if raw:
            headers.update(raw[1])
        deadline_at = self._call_deadline(stream, deadline_at)
        cap = self.limits.response
        auth = self._auth
        if route == "anthropic":
            headers["anthropic-version"] = ANTHROPIC_VERSION
            auth = self._key_auth
        while True:
            timeout = self._attempt_timeout(deadline_at, read_floor)
            request = self._build_request(client, method, url, content, headers, timeout)
            retry_after = None
            try:
                response = await client.send(request, auth=auth, stream=True)
            except httpx.HTTPError as exc:
                err: KimiCoderError
                err, retry = _connection_error(exc, method, url)
                cause: BaseException | None = exc
                logger.debug("%s %s -> %s", method, url, type(exc).__name__)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d (x-trace-id %s)",
                        method, url, response.status_code, _trace_id(response.headers),
                    )
                if response.status_code < 300:
                    if stream:
                        return response, attempt
                    try:
                        await aread_body(response, cap, deadline_at, self.deadlines.total)
                        return response, attempt
                    except httpx.HTTPError as exc:
                        (err, retry), cause = _body_error(exc, method, url), exc
                else:
                    try:
                        await aread_body(response, cap, deadline_at, self.deadlines.total)
                    except (httpx.HTTPError, KimiCoderError):
                        pass  # the status alone still says what happened
                    err = error_from_response(response, user_agent=headers["User-Agent"], source=self._source())
                    retry, cause = _retryable(err), None
                    retry_after = getattr(err, "retry_after", None)
            delay = self._retry_delay(retry, attempt, retry_after, deadline_at)
            if delay is None:
                raise err from cause
            logger.debug("retrying %s %s in %.2f s after %s", method, url, delay, type(err).__name__)
            await clock.asleep(delay)
            attempt += 1

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            raise APIError(
                f"The {what} answer was not valid JSON.",
                status=response.status_code,
                trace_id=_trace_id(response.headers),
                request_id=_request_id(response.headers),
                hint="Check that the base URL points at the Kimi Coding API (…/coding/v1).",
            ) from None

    def _chat_result(self, response: httpx.Response) -> ChatResult:
        data = self._json(response, "chat")
        if not isinstance(data, dict):
            raise APIError(
                "The chat answer was not a JSON object.",
                status=response.status_code,
                trace_id=_trace_id(response.headers),
            )
        if data.get("error") and "choices" not in data:  # an error object with a 2xx status
            message, etype = _scrub(response, *_extract_error(response.content, _sent_secrets(response)))
            raise MalformedResponseError(
                f"The server answered with an error and a success status: {message or 'no message'}",
                status=response.status_code,
                error_type=etype,
                trace_id=_trace_id(response.headers),
                request_id=_request_id(response.headers),
            )
        headers = response.headers
        return ChatResult(data, _trace_id(headers), _headers_dict(headers), _request_id(headers))

    @staticmethod
    def _non_stream_body(body: Mapping[str, Any]) -> Mapping[str, Any]:
        if body.get("stream") or "stream_options" in body:
            body = {k: v for k, v in body.items() if k != "stream_options"}
            body["stream"] = False
        return body

    # ------------------------------------------------------------------ chat

    def chat(self, body: Mapping[str, Any]) -> ChatResult:
        """``POST /chat/completions`` without streaming."""
        response, _ = self._send("POST", "/chat/completions", self._non_stream_body(body))
        return self._chat_result(response)

    async def achat(self, body: Mapping[str, Any]) -> ChatResult:
        """Async `chat`."""
        response, _ = await self._asend("POST", "/chat/completions", self._non_stream_body(body))
        return self._chat_result(response)

    def stream_chat(self, body: Mapping[str, Any]) -> ChatStream:
        """A lazy stream of chunk dicts; the request is sent on first iteration or `open()`."""
        return ChatStream(self, body if body.get("stream") is True else {**body, "stream": True})

    def astream_chat(self, body: Mapping[str, Any]) -> AsyncChatStream:
        """A lazy async stream of chunk dicts; sent on first ``__anext__`` or `aopen()`."""
        return AsyncChatStream(self, body if body.get("stream") is True else {**body, "stream": True})

    def request(
        self, method: str, path: str, *, json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One authenticated request to ``{base}{path}`` (or a full URL) with the transport's
        retries and typed errors; returns the read 2xx response (side services use this)."""
        raw = (content, dict(headers or {}))
        response, _ = self._send(method, path, json_body, raw=raw)
        return response

    async def arequest(
        self, method: str, path: str, *, json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Async `request`."""
        raw = (content, dict(headers or {}))
        response, _ = await self._asend(method, path, json_body, raw=raw)
        return response
    # ------------------------------------------------------------------ messages (Anthropic)

    def messages(self, body: Mapping[str, Any]) -> ChatResult:
        """``POST /messages`` (the Anthropic route, ``x-api-key`` auth) without streaming."""
        body = {k: v for k, v in body.items() if k != "stream"} if body.get("stream") else body
        response, _ = self._send("POST", MESSAGES_PATH, body, route="anthropic")
        return self._chat_result(response)

    async def amessages(self, body: Mapping[str, Any]) -> ChatResult:
        """Async `messages`."""
        body = {k: v for k, v in body.items() if k != "stream"} if body.get("stream") else body
        response, _ = await self._asend("POST", MESSAGES_PATH, body, route="anthropic")
        return self._chat_result(response)

    def stream_messages(self, body: Mapping[str, Any]) -> ChatStream:
        """A lazy stream of Messages event dicts (until ``message_stop``)."""
        from .anthropic_sse import iter_message_events

        return ChatStream(
            self, body if body.get("stream") is True else {**body, "stream": True},
            path=MESSAGES_PATH, route="anthropic", decode=iter_message_events,
        )

    def astream_messages(self, body: Mapping[str, Any]) -> AsyncChatStream:
        """A lazy async stream of Messages event dicts (until ``message_stop``)."""
        from .anthropic_sse import aiter_message_events

        return AsyncChatStream(
            self, body if body.get("stream") is True else {**body, "stream": True},
            path=MESSAGES_PATH, route="anthropic", decode=aiter_message_events,
        )

    # ------------------------------------------------------------------ models / usages

    def _cached_models(self) -> list[dict[str, Any]] | None:
        try:
            per_url = _models_cache.get(self.credential)
        except TypeError:
            return None
        hit = per_url.get(self.base_url) if per_url else None
        if hit is not None and hit[0] > clock.monotonic():
            return deepcopy(hit[1])
        return None

    def _store_models(self, models: list[dict[str, Any]]) -> None:
        try:
            per_url = _models_cache.setdefault(self.credential, {})
        except TypeError:
            return  # credential not weak-referenceable: no cache
        per_url[self.base_url] = (clock.monotonic() + MODELS_TTL, deepcopy(models))

    def _models_from(self, response: httpx.Response) -> list[dict[str, Any]]:
        data = self._json(response, "/models")
        models = data.get("data") if isinstance(data, dict) else data
        if not isinstance(models, list):
            raise APIError(
                "The /models answer had no model list.",
                status=response.status_code,
                trace_id=_trace_id(response.headers),
            )
        return [m for m in models if isinstance(m, dict)]

    def list_models(self) -> list[dict[str, Any]]:
        """``GET /models`` entries, cached for 10 minutes per (credential, base URL)."""
        cached = self._cached_models()
        if cached is not None:
            return cached
        response, _ = self._send("GET", "/models")
        models = self._models_from(response)
        self._store_models(models)
        return models

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async `list_models` (same cache)."""
        cached = self._cached_models()
        if cached is not None:
            return cached
        response, _ = await self._asend("GET", "/models")
        models = self._models_from(response)
        self._store_models(models)
        return models

    def invalidate_models(self) -> None:
        """Forget the cached ``/models`` answer for this credential and base URL."""
        try:
            per_url = _models_cache.get(self.credential)
        except TypeError:
            return
        if per_url:
            per_url.pop(self.base_url, None)

    def model_info(self, model: str) -> dict[str, Any] | None:
        """The live ``/models`` entry for ``model``, or None if the server does not list it."""
        return next((m for m in self.list_models() if m.get("id") == model), None)

    async def amodel_info(self, model: str) -> dict[str, Any] | None:
        """Async `model_info`."""
        return next((m for m in await self.alist_models() if m.get("id") == model), None)

    def get_usages(self) -> dict[str, Any]:
        """``GET /usages``: the plan's quota windows (numbers arrive as decimal strings)."""
        response, _ = self._send("GET", "/usages")
        return self._usages_from(response)

    async def aget_usages(self) -> dict[str, Any]:
        """Async `get_usages`."""
        response, _ = await self._asend("GET", "/usages")
        return self._usages_from(response)

    def _usages_from(self, response: httpx.Response) -> dict[str, Any]:
        data = self._json(response, "/usages")
        if not isinstance(data, dict):
            raise APIError("The /usages answer was not a JSON object.", status=response.status_code)
        return data
