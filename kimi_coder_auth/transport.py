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
readers in `streams`, 2xx JSON answers in `json_answers`; the cached request fast path
(`request_building`) and the /models, /usages and side-service requests (`transport_endpoints`)
are mixed into `Transport`. Only method, URL, status and trace id are logged (DEBUG); tokens
never are.
"""

from __future__ import annotations

import copy
import logging
import os
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from . import clock, http_pool, paths, quota_pacing
from ._identity import default_user_agent
from .auth import KimiAuth
from .codecs.anthropic_request import ANTHROPIC_VERSION, MESSAGES_PATH
from .error_mapping import (
    _body_error,
    _connection_error,
    error_from_response,
    parse_retry_after,
)
from .errors import KimiCoderError
from .http_pool import DEFAULT_TIMEOUT, LIMITS, aclose_clients, close_clients
from .json_answers import ChatResult, chat_result, json_answer
from .limits import Deadlines, Limits
from .reading import aread_body, attempt_timeout, deadline_error, read_body
from .request_building import CachedRequestBuilder, _encode
from .response_ids import trace_id as _trace_id
from .retries import _backoff, _retryable
from .streams import AsyncChatStream, ChatStream
from .transport_endpoints import TransportEndpoints

if TYPE_CHECKING:
    from .refresh import Credential

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


def _to_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    seconds = float(timeout)
    if seconds <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


# --------------------------------------------------------------------------- transport


class Transport(CachedRequestBuilder, TransportEndpoints):
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
        self._urls: dict[str, str] = {}  # path -> URL, while base_url is fixed by the argument
        steps = self._timeout.as_dict().values()
        # a deadline this far away cannot shorten any step (by more than 1 %): keep the timeout
        self._uncapped_from = 0.99 * max(steps) if None not in steps else float("inf")
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
        self._cookies: httpx.Cookies | None = None  # this login's own cookies, once it got one
        self._base_headers: weakref.WeakKeyDictionary[
            Any, dict[tuple[Any, ...], list[tuple[bytes, bytes]] | bool]
        ] = weakref.WeakKeyDictionary()

    def with_credential(self, credential: Credential) -> Transport:
        """This transport's settings over another credential (a side service's own key), with
        its own auth, cookies, quota gate and caches: nothing of this login's state is shared."""
        other = copy.copy(self)
        other.credential = credential
        other._auth = KimiAuth(credential)
        other._key_auth = KimiAuth(credential, header="x-api-key")
        other._cookies = None
        other._quota_gate = None
        other._headers = dict(self._headers)
        other._urls = {}
        other._base_headers = weakref.WeakKeyDictionary()
        return other

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
        url = self._urls.get(path)
        if url is None:
            url = self._build_url(path)
            if self._base_url:  # fixed by the argument (an environment default is read each time)
                self._urls[path] = url
        return url

    def _build_url(self, path: str) -> str:
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
        if remaining >= self._uncapped_from:
            return self._timeout
        return attempt_timeout(self._timeout, remaining, read_floor=read_floor)

    def _send(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any
    ) -> tuple[httpx.Response, int]:
        """`_send_retrying` under the quota policy (``on_quota``); ``/usages`` is never paced.

        Time spent waiting for a quota reset moves a caller's ``deadline_at`` along with it."""
        if path == "/usages":
            return self._send_retrying(method, path, body, **kw)
        if self.on_quota != "wait":
            return quota_pacing.observe(self, self._send_retrying, method, path, body, **kw)
        deadline_at = kw.pop("deadline_at", None)

        def call(waited: float = 0.0) -> tuple[httpx.Response, int]:
            due = None if deadline_at is None else deadline_at + waited
            result = self._send_retrying(method, path, body, deadline_at=due, **kw)
            if waited:  # a stream's reader moves its own deadlines by as much
                result[0].extensions["kimi_quota_waited"] = waited
            return result

        return quota_pacing.send(self, call)

    async def _asend(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, **kw: Any
    ) -> tuple[httpx.Response, int]:
        """Async `_send`."""
        if path == "/usages":
            return await self._asend_retrying(method, path, body, **kw)
        if self.on_quota != "wait":
            return await quota_pacing.aobserve(self, self._asend_retrying, method, path, body, **kw)
        deadline_at = kw.pop("deadline_at", None)

        async def call(waited: float = 0.0) -> tuple[httpx.Response, int]:
            due = None if deadline_at is None else deadline_at + waited
            result = await self._asend_retrying(method, path, body, deadline_at=due, **kw)
            if waited:
                result[0].extensions["kimi_quota_waited"] = waited
            return result

        return await quota_pacing.asend(self, call)

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
        if deadline_at is None and not stream and self.deadlines.total is not None:
            deadline_at = clock.monotonic() + self.deadlines.total  # the call's own deadline
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
                if self._cookies is not None or "set-cookie" in response.headers:
                    self._keep_cookies(response)
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
        if deadline_at is None and not stream and self.deadlines.total is not None:
            deadline_at = clock.monotonic() + self.deadlines.total  # the call's own deadline
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
                if self._cookies is not None or "set-cookie" in response.headers:
                    self._keep_cookies(response)
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

    _json = staticmethod(json_answer)  # (response, what) -> the parsed JSON, or APIError
    _chat_result = staticmethod(chat_result)  # response -> ChatResult, or a typed error

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
