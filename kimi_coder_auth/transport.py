"""`Transport`: the one HTTP client of the Kimi Coding API (chat, streams, /models, /usages).

* Connection pools are process-wide: one `httpx.Client` and one `httpx.AsyncClient` per running
  event loop, both with HTTP keep-alive and limits sized for many concurrent streams. An async
  client is closed when its loop shuts down its async generators (``asyncio.run`` does), so a
  second ``asyncio.run`` gets a fresh client and never sees "Event loop is closed".
* Auth (`KimiAuth`) and the timeout are passed per request, so many `Transport` objects (one per
  chat model) share the pools. Constructing a `Transport` does no I/O.
* Errors are mapped from status + body to the typed errors in `errors.py`, carrying the status,
  the error type, the server's message and ``x-trace-id`` / ``x-request-id``.
* Retries: 429 (not quota), 500/502/503/504 and connection errors, at most ``max_retries`` times,
  exponential backoff with jitter, honouring ``Retry-After`` (capped); sleeping goes through
  `kimi_coder_auth.clock`. Streams retry only before their first chunk.
* Streams are lazy: ``stream_chat(body)`` returns at once and the request is sent on the first
  iteration (or explicitly with ``ChatStream.open()`` / ``await AsyncChatStream.aopen()``), so
  errors such as 401/429 surface from the first ``next()`` / ``__anext__()``.

Only method, URL, status and trace id are logged (DEBUG); tokens never are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from . import clock
from ._identity import default_user_agent
from ._redact import redact
from .auth import KimiAuth
from .errors import (
    AccessTerminatedError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    KimiCoderError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterruptedError,
    UserAgentRejectedError,
)
from .sse import aiter_chunks, iter_chunks

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
#: thinking turns can run for minutes before the first byte; connecting should be quick
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0, write=60.0, pool=60.0)
#: pools sized for 50+ concurrent streams per process (the plan allows 30 concurrent requests)
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=60.0)
MODELS_TTL = 600.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_CAP = 60.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0
_DRAIN_LIMIT = 64  # reads after [DONE] to return the connection to the pool

_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
    "exceeds the model's",
)
_SOURCE_LABELS = {
    "explicit": "the api_key argument",
    "env": "KIMI_CODER_API_KEY",
    "kimi-cli": "kimi-cli's login",
    "kimi-code": "Kimi Code's login",
}
_QUOTA_WORDS = ("quota", "insufficient balance", "balance is insufficient", "recharge")


# --------------------------------------------------------------------------- shared pools

_lock = threading.Lock()
_sync_client: httpx.Client | None = None
_async_clients: dict[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, Any]] = {}


_ssl_ctx: Any = None
_ssl_lock = threading.Lock()  # separate from _lock: building the context is slow


def _ssl_context() -> Any:
    """One TLS context for every client (building one costs ~0.1-0.5 s; per-loop clients reuse it)."""
    global _ssl_ctx
    ctx = _ssl_ctx
    if ctx is None:
        with _ssl_lock:
            ctx = _ssl_ctx
            if ctx is None:
                ctx = _ssl_ctx = httpx.create_ssl_context(trust_env=True)
    return ctx


def _new_sync_client(ctx: Any) -> httpx.Client:
    return httpx.Client(limits=LIMITS, timeout=DEFAULT_TIMEOUT, follow_redirects=False, verify=ctx)


def _get_sync_client() -> httpx.Client:
    """The process-wide sync client (created on first use)."""
    global _sync_client
    client = _sync_client
    if client is None or client.is_closed:
        ctx = _ssl_context()
        with _lock:
            client = _sync_client
            if client is None or client.is_closed:
                client = _sync_client = _new_sync_client(ctx)
    return client


async def _closer(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Parked async generator: the loop's ``shutdown_asyncgens`` closes it, closing the client."""
    try:
        yield
    finally:
        with _lock:
            entry = _async_clients.get(loop)
            if entry is not None and entry[0] is client:
                del _async_clients[loop]
        await client.aclose()


async def _get_async_client() -> httpx.AsyncClient:
    """The async client of the running event loop (one per loop, created on first use)."""
    loop = asyncio.get_running_loop()
    entry = _async_clients.get(loop)
    if entry is not None and not entry[0].is_closed:
        return entry[0]
    # building the TLS context reads CA files (~0.1-0.5 s): keep that off the event loop
    ctx = _ssl_ctx if _ssl_ctx is not None else await asyncio.to_thread(_ssl_context)
    with _lock:
        entry = _async_clients.get(loop)  # another task may have won while we waited
        if entry is not None and not entry[0].is_closed:
            return entry[0]
        for other in [lp for lp in _async_clients if lp.is_closed()]:
            del _async_clients[other]  # loops closed without shutdown_asyncgens: let GC reap
        client = httpx.AsyncClient(
            limits=LIMITS, timeout=DEFAULT_TIMEOUT, follow_redirects=False, verify=ctx
        )
        guard = _closer(loop, client)
        _async_clients[loop] = (client, guard)
    await guard.__anext__()  # registers with the loop's asyncgen hooks
    return client


def close_clients() -> None:
    """Close the shared sync client (a new one is created on next use)."""
    global _sync_client
    with _lock:
        client, _sync_client = _sync_client, None
    if client is not None:
        client.close()


async def aclose_clients() -> None:
    """Close the running loop's shared async client (a new one is created on next use)."""
    loop = asyncio.get_running_loop()
    with _lock:
        entry = _async_clients.pop(loop, None)
    if entry is not None:
        await entry[0].aclose()


def _reset_after_fork() -> None:  # pragma: no cover - exercised only in forked children
    global _sync_client
    _sync_client = None
    _async_clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# --------------------------------------------------------------------------- errors


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), else None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - clock.now())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _extract_error(content: bytes) -> tuple[str | None, str | None]:
    """(message, type) from an error body: ``{"error": {...}}``, ``{"error": "..."}``, text."""
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        text = content.decode("utf-8", "replace").strip()
        if text and not text.lstrip().startswith("<"):
            return " ".join(text.split())[:300], None
        return None, None
    if not isinstance(payload, dict):
        return None, None
    err = payload.get("error", payload)
    if isinstance(err, str):
        desc = payload.get("error_description") or payload.get("message")
        return (desc if isinstance(desc, str) else err), err
    if not isinstance(err, dict):
        return None, None
    message = err.get("message") or err.get("detail") or err.get("error_description")
    etype = err.get("type") or err.get("code")
    if not isinstance(etype, str) or etype == "error":
        etype = None
    return (message if isinstance(message, str) else None), etype


def _sent_token(response: httpx.Response) -> str | None:
    """The bearer token the request carried (to scrub it from an echoing error body)."""
    try:
        value = response.request.headers.get("authorization")
    except RuntimeError:  # a Response built by hand has no request
        return None
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else value


def _scrub(
    response: httpx.Response, message: str | None, etype: str | None
) -> tuple[str | None, str | None]:
    """Server text with the token that was sent (and anything credential-shaped) redacted."""
    if not message and not etype:
        return message, etype
    token = _sent_token(response)
    return (
        redact(message, token) if message else message,
        redact(etype, token) if etype else etype,
    )


def error_from_response(
    response: httpx.Response, *, user_agent: str | None = None, source: str | None = None
) -> APIError:
    """Map an error response (body already read) to the typed error for its status and body.

    The server's text is scrubbed of the bearer token the request carried (proxies echo it).
    """
    status = response.status_code
    headers = response.headers
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    message, etype = _extract_error(content)
    message, etype = _scrub(response, message, etype)
    if not message:
        message = f"HTTP {status} {response.reason_phrase or ''}".strip()
    low = message.lower()
    common: dict[str, Any] = {
        "status": status,
        "error_type": etype,
        "trace_id": headers.get("x-trace-id"),
        "request_id": headers.get("x-request-id"),
    }
    if status in (400, 413, 422):
        if any(w in low for w in _CONTEXT_WORDS) or etype == "context_length_exceeded":
            return ContextTooLongError(message, **common)
        return BadRequestError(message, **common)
    if status == 401:
        where = f" (credentials: {_SOURCE_LABELS.get(source, source)})" if source else ""
        return AuthenticationError(f"The Kimi Coding API rejected the token{where}: {message}", **common)
    if status == 402:
        return QuotaExceededError(message, retry_after=parse_retry_after(headers), **common)
    if status == 403:
        if "coding agent" in low:
            return UserAgentRejectedError(
                f"{message} The request was sent with User-Agent {user_agent!r}.", **common
            )
        if etype == "access_terminated_error" or "access terminated" in low:
            return AccessTerminatedError(message, **common)
        return PermissionDeniedError(
            message,
            hint="Your login or plan does not allow this request; check the model and your subscription.",
            **common,
        )
    if status == 404:
        return NotFoundError(message, **common)
    if status == 429:
        retry_after = parse_retry_after(headers)
        if etype == "exceeded_current_quota_error" or any(w in low for w in _QUOTA_WORDS):
            return QuotaExceededError(message, retry_after=retry_after, **common)
        return RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return ServerError(message, **common)
    return APIError(message, hint="The request was not accepted; see the message above.", **common)


def _connection_error(exc: httpx.HTTPError, method: str, url: str) -> tuple[APIConnectionError, bool]:
    """(error, retryable) for an httpx exception raised before a response arrived."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        # A read timeout on a chat POST means the server is still thinking: retrying would
        # double the wait and the quota spent. Connect/pool timeouts and GETs are retried.
        retry = method == "GET" or isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        return APITimeoutError(f"{method} {url} timed out ({name})."), retry
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return APIConnectionError(f"Cannot send {method} {url}: {exc}"), False
    return APIConnectionError(f"Could not reach {url} ({name}: {exc})."), True


def _retryable(err: Exception) -> bool:
    if isinstance(err, QuotaExceededError):
        return False
    if isinstance(err, RateLimitError):
        return True
    return isinstance(err, ServerError) and err.status in RETRY_STATUSES


def _backoff(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``; None = do not retry (too long)."""
    if retry_after is not None:
        return retry_after if retry_after <= RETRY_AFTER_CAP else None
    base: float = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0**attempt)
    return base * random.uniform(0.75, 1.25)


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


def _headers_dict(headers: httpx.Headers) -> dict[str, str]:
    """``dict(headers)`` (lower-case names, repeated values joined by ", ") in one pass."""
    out: dict[str, str] = {}
    for key, value in headers.multi_items():
        prev = out.get(key)
        out[key] = value if prev is None else prev + ", " + value
    return out


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
    """A non-streaming chat answer: the JSON body, the trace id and the response headers."""

    data: dict[str, Any]
    trace_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


_models_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, list[dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary()
)


# --------------------------------------------------------------------------- transport


class Transport:
    """HTTP access to the Coding API for one credential (cheap; shares process-wide pools).

    ``timeout``: seconds (or an `httpx.Timeout`); default connect 10 s, read 300 s, because a
    thinking turn may stay silent for minutes. ``default_headers`` are sent with every request;
    a ``User-Agent`` among them counts like ``user_agent=``, an ``Authorization`` is ignored.
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
    ) -> None:
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
        self.max_retries = int(max_retries)
        self._auth = KimiAuth(credential)
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
        return (self._base_url or __import__("kimi_coder_auth.paths").paths.default_base_url()).rstrip("/")

    @property
    def user_agent(self) -> str:
        """Argument (or ``default_headers``), then ``$KIMI_CODER_USER_AGENT``, then ours."""
        return self._user_agent or os.environ.get(ENV_USER_AGENT) or default_user_agent()

    def _url(self, path: str) -> str:
        base = self.base_url
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
                    extensions={"timeout": self._timeout.as_dict()},
                )
                request.read()  # as httpx does for in-memory bodies (auth may replay it)
                return request
        return client.build_request(
            method, parsed, content=content, headers=headers, timeout=self._timeout
        )

    def _source(self) -> str | None:
        try:
            return str(self.credential.source)
        except Exception:  # a lazy credential may not know its source yet
            return None

    # ------------------------------------------------------------------ sending (sync)

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        attempt: int = 0,
    ) -> tuple[httpx.Response, int]:
        """Send with retries; return (a 2xx response, the attempt number that produced it)."""
        client = _get_sync_client()
        url = self._url(path)
        content = _encode(body) if body is not None else None
        headers = self._request_headers(stream=stream, has_body=content is not None)
        while True:
            request = self._build_request(client, method, url, content, headers)
            try:
                response = client.send(request, auth=self._auth, stream=stream)
            except httpx.HTTPError as exc:
                err: KimiCoderError
                err, retry = _connection_error(exc, method, url)
                cause: BaseException | None = exc
                retry_after = None
                logger.debug("%s %s -> %s", method, url, type(exc).__name__)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d (x-trace-id %s)",
                        method, url, response.status_code, response.headers.get("x-trace-id"),
                    )
                if response.status_code < 400:
                    return response, attempt
                try:
                    if stream:
                        response.read()
                except httpx.HTTPError:
                    pass  # the status alone still says what happened
                finally:
                    response.close()
                err = error_from_response(response, user_agent=headers["User-Agent"], source=self._source())
                retry, cause = _retryable(err), None
                retry_after = getattr(err, "retry_after", None)
            delay = _backoff(attempt, retry_after) if retry and attempt < self.max_retries else None
            if delay is None:
                raise err from cause
            logger.debug("retrying %s %s in %.2f s after %s", method, url, delay, type(err).__name__)
            clock.sleep(delay)
            attempt += 1

    async def _asend(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        attempt: int = 0,
    ) -> tuple[httpx.Response, int]:
        """Async `_send`."""
        client = await _get_async_client()
        url = self._url(path)
        content = _encode(body) if body is not None else None
        headers = self._request_headers(stream=stream, has_body=content is not None)
        while True:
            request = self._build_request(client, method, url, content, headers)
            try:
                response = await client.send(request, auth=self._auth, stream=stream)
            except httpx.HTTPError as exc:
                err: KimiCoderError
                err, retry = _connection_error(exc, method, url)
                cause: BaseException | None = exc
                retry_after = None
                logger.debug("%s %s -> %s", method, url, type(exc).__name__)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d (x-trace-id %s)",
                        method, url, response.status_code, response.headers.get("x-trace-id"),
                    )
                if response.status_code < 400:
                    return response, attempt
                try:
                    if stream:
                        await response.aread()
                except httpx.HTTPError:
                    pass  # the status alone still says what happened
                finally:
                    await response.aclose()
                err = error_from_response(response, user_agent=headers["User-Agent"], source=self._source())
                retry, cause = _retryable(err), None
                retry_after = getattr(err, "retry_after", None)
            delay = _backoff(attempt, retry_after) if retry and attempt < self.max_retries else None
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
                trace_id=response.headers.get("x-trace-id"),
                request_id=response.headers.get("x-request-id"),
                hint="Check that the base URL points at the Kimi Coding API (…/coding/v1).",
            ) from None

    def _chat_result(self, response: httpx.Response) -> ChatResult:
        data = self._json(response, "chat")
        if not isinstance(data, dict):
            raise APIError(
                "The chat answer was not a JSON object.",
                status=response.status_code,
                trace_id=response.headers.get("x-trace-id"),
            )
        return ChatResult(data, response.headers.get("x-trace-id"), _headers_dict(response.headers))

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
                trace_id=response.headers.get("x-trace-id"),
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


# --------------------------------------------------------------------------- streams


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


def _is_json_type(content_type: str) -> bool:
    """Whether a 2xx answer's Content-Type is JSON rather than an event stream."""
    ctype = content_type.lower()
    return "json" in ctype and "event-stream" not in ctype


def _json_instead_of_stream(response: httpx.Response) -> StreamError:
    """A 2xx JSON answer to a streaming request: an error object, or a proxy that ignores SSE."""
    message, etype = _scrub(response, *_extract_error(response.content))
    return StreamError(
        message or "The server answered a streaming request with plain JSON instead of an event stream.",
        status=response.status_code,
        error_type=etype,
        trace_id=response.headers.get("x-trace-id"),
        request_id=response.headers.get("x-request-id"),
        hint="Check that the base URL points at the Kimi Coding API (…/coding/v1), then retry.",
    )


class ChatStream:
    """Iterator of chat completion chunk dicts from one streaming request.

    Lazy: the request is sent on the first ``next()`` (or `open()`). ``trace_id`` / ``headers``
    are set once it is open. Always `close()` it (or use ``with``) if you stop early.
    """

    def __init__(self, transport: Transport, body: Mapping[str, Any]) -> None:
        self._transport = transport
        self._body = body
        self._response: httpx.Response | None = None
        self._raw: Iterator[bytes] | None = None
        self._chunks: Iterator[dict[str, Any]] | None = None
        self._attempt = 0
        self._yielded = False
        self._closed = False
        self.trace_id: str | None = None
        self.request_id: str | None = None
        self.headers: dict[str, str] = {}

    def open(self) -> ChatStream:
        """Send the request now (retrying per policy); raises the mapped error on failure."""
        if self._response is None and not self._closed:
            response, self._attempt = self._transport._send(
                "POST", "/chat/completions", self._body, stream=True, attempt=self._attempt
            )
            self._response = response
            headers = self.headers = _headers_dict(response.headers)
            self.trace_id = headers.get("x-trace-id")
            self.request_id = headers.get("x-request-id")
            if _is_json_type(headers.get("content-type", "")):
                try:
                    response.read()
                except httpx.HTTPError as exc:
                    raise _stream_error(exc, self.trace_id) from None
                finally:
                    self.close()
                raise _json_instead_of_stream(response)
            self._raw = self._bytes(response)
            self._chunks = iter_chunks(self._raw, trace_id=self.trace_id, request_id=self.request_id)
        return self

    def _bytes(self, response: httpx.Response) -> Iterator[bytes]:
        source = response.iter_bytes() if "content-encoding" in self.headers else response.iter_raw()
        try:
            yield from source
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
        except StreamInterruptedError:
            if self._retry_before_first_chunk():
                return self.__next__()
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        self._yielded = True
        return chunk

    def _retry_before_first_chunk(self) -> bool:
        """Reconnect when the stream broke before anything was yielded (budget permitting)."""
        if self._yielded or self._closed or self._attempt >= self._transport.max_retries:
            return False
        delay = _backoff(self._attempt, None)
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

    def __init__(self, transport: Transport, body: Mapping[str, Any]) -> None:
        self._transport = transport
        self._body = body
        self._response: httpx.Response | None = None
        self._raw: AsyncIterator[bytes] | None = None
        self._chunks: AsyncIterator[dict[str, Any]] | None = None
        self._attempt = 0
        self._yielded = False
        self._closed = False
        self.trace_id: str | None = None
        self.request_id: str | None = None
        self.headers: dict[str, str] = {}

    async def aopen(self) -> AsyncChatStream:
        """Send the request now (retrying per policy); raises the mapped error on failure."""
        if self._response is None and not self._closed:
            response, self._attempt = await self._transport._asend(
                "POST", "/chat/completions", self._body, stream=True, attempt=self._attempt
            )
            self._response = response
            headers = self.headers = _headers_dict(response.headers)
            self.trace_id = headers.get("x-trace-id")
            self.request_id = headers.get("x-request-id")
            if _is_json_type(headers.get("content-type", "")):
                try:
                    await response.aread()
                except httpx.HTTPError as exc:
                    raise _stream_error(exc, self.trace_id) from None
                finally:
                    await self.aclose()
                raise _json_instead_of_stream(response)
            self._raw = self._bytes(response)
            self._chunks = aiter_chunks(self._raw, trace_id=self.trace_id, request_id=self.request_id)
        return self

    async def _bytes(self, response: httpx.Response) -> AsyncIterator[bytes]:
        source = response.aiter_bytes() if "content-encoding" in self.headers else response.aiter_raw()
        try:
            async for data in source:
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
            except StreamInterruptedError:
                if await self._retry_before_first_chunk():
                    continue
                await self.aclose()
                raise
            except BaseException:
                await self.aclose()
                raise
            self._yielded = True
            return chunk

    async def _retry_before_first_chunk(self) -> bool:
        if self._yielded or self._closed or self._attempt >= self._transport.max_retries:
            return False
        delay = _backoff(self._attempt, None)
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
