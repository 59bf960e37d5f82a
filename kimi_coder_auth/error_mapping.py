"""Error mapping: an HTTP error answer (status, body, headers) to the typed errors of `errors.py`.

The server's text is scrubbed of the token the request carried before it is quoted anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from . import clock
from ._redact import quote, redact
from .errors import (
    AccessTerminatedError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConcurrencyLimitError,
    ContextTooLongError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    UserAgentRejectedError,
)
from .response_ids import response_ids
from .secret import Secret

__all__ = ["error_from_response", "parse_retry_after"]

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
# Kimi Code's billing wording for a 429 that is a used-up balance, not a throttle. No bare
# "quota": "token quota per minute" throttles stay retryable (kimi-errors.ts@d723cc47).
_BALANCE_WORDS = re.compile(
    r"exceeded your current (?:token )?quota|check your account balance|insufficient balance"
    r"|balance is insufficient|recharge|in arrears"
)
# 403 quota wordings, checked in this order after the identity gate and real terminations
# (reference kimi-service-2026-12.md §1.3); the "5-hour" wording is not documented and is
# matched in case the service adds one.
_QUOTA_403 = (
    (("weekly (7-day)", "7-day window"), "7d"),
    (("monthly usage limit",), "month"),
    (("5-hour", "5 hour"), "5h"),
    (("billing cycle", "next cycle"), "5h-or-month"),
)
_QUOTA_HINTS = {
    "7d": "The weekly (7-day) quota is used up; retrying now will not help. It resets when the "
    "7-day window ends",
    "month": "The plan's monthly usage for this billing cycle is used up; retrying will not help. "
    "Renew or upgrade the plan, or wait for the next cycle",
    "5h": "The 5-hour quota window is used up; retrying now will not help. It resets when the "
    "5-hour window ends",
    "5h-or-month": "A quota is used up: the service says \"billing cycle\" both for the 5-hour "
    "window and for the monthly cycle. If the 5-hour window is the exhausted one it resets within "
    "5 hours; otherwise wait for the next billing cycle",
}
_WAIT_HINT = (
    ". See the windows with `kimi-coder usage` (Python: `get_usage()`); "
    "pass on_quota=\"wait\" to sleep until the reset instead of failing."
)
_RESET_KEYS = ("reset_time", "resetTime", "reset_at", "resetAt")


def _delay(seconds: float) -> float | None:
    """A usable wait: NaN, zero, negative (or a date in the past) mean "no advice" (None)."""
    return seconds if seconds > 0 else None  # NaN > 0 is False


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), else None.

    A negative, past, zero or NaN value is no advice (None), so the normal backoff applies
    rather than none at all.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return _delay(float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _delay(float(value))
    except ValueError:
        pass
    try:
        return _delay(parsedate_to_datetime(value).timestamp() - clock.now())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _extract_error(
    content: bytes, secrets: tuple[Secret, ...] = ()
) -> tuple[str | None, str | None]:
    """(message, type) from an error body: ``{"error": {...}}``, ``{"error": "..."}``, text.

    A text body is scrubbed of ``secrets`` before it is cut to a preview (half a token is
    still a leak).
    """
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        text = content[:8192].decode("utf-8", "replace").strip()
        if text and not text.lstrip().startswith("<"):
            return quote(" ".join(text.split()), secrets, 300), None
        return None, None
    if not isinstance(payload, dict):
        return None, None
    # Both envelopes: OpenAI-style {"error": {...}} and Anthropic-style {"type": "error",
    # "error": {"type", "message"}}; a proxy may nest one more level ({"error": {"error": ...}}).
    err = payload.get("error", payload)
    if isinstance(err, dict) and isinstance(err.get("error"), dict) and not err.get("message"):
        err = err["error"]
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


def _sent_secrets(response: httpx.Response) -> tuple[Secret, ...]:
    """The credentials the request carried (bearer token, ``x-api-key``), to scrub from any
    server text that echoes them; as `Secret` so no frame local or repr shows them."""
    try:
        headers = response.request.headers
    except RuntimeError:  # a Response built by hand has no request
        return ()
    out: list[Secret] = []
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.partition(" ")
        token = token.strip()
        out.append(Secret(token if scheme.lower() == "bearer" and token else value))
    key = headers.get("x-api-key")
    if key and key.strip():
        out.append(Secret(key.strip()))
    return tuple(out)


class SentSecrets(Sequence[Secret]):
    """`_sent_secrets` of a response, read only when first used: a stream needs them only to
    scrub an error, so an error-free stream never reads its request's headers again."""

    __slots__ = ("_response", "_values")

    def __init__(self, response: httpx.Response) -> None:
        self._response: httpx.Response | None = response
        self._values: tuple[Secret, ...] | None = None

    def _get(self) -> tuple[Secret, ...]:
        values = self._values
        if values is None:
            assert self._response is not None
            values = self._values = _sent_secrets(self._response)
            self._response = None
        return values

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[Secret]:
        return iter(self._get())

    def __repr__(self) -> str:
        return f"SentSecrets({len(self)} secret(s))"


def _sent_token(response: httpx.Response) -> Secret | None:
    """The bearer token (or API key) the request carried, if any."""
    secrets = _sent_secrets(response)
    return secrets[0] if secrets else None


def _scrub(
    response: httpx.Response, message: str | None, etype: str | None
) -> tuple[str | None, str | None]:
    """Server text with the token that was sent (and anything credential-shaped) redacted."""
    if not message and not etype:
        return message, etype
    secrets = _sent_secrets(response)
    return (
        redact(message, *secrets) if message else message,
        redact(etype, *secrets) if etype else etype,
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
    message, etype = _extract_error(content, _sent_secrets(response))
    message, etype = _scrub(response, message, etype)
    if not message:
        message = f"HTTP {status} {response.reason_phrase or ''}".strip()
    low = message.lower()
    trace, request = response_ids(headers)
    common: dict[str, Any] = {
        "status": status,
        "error_type": etype,
        "trace_id": trace,
        "request_id": request,
    }
    if status in (400, 413, 422):
        if any(w in low for w in _CONTEXT_WORDS) or etype == "context_length_exceeded":
            return ContextTooLongError(message, **common)
        return BadRequestError(message, **common)
    if status == 401:
        where = f" (credentials: {_SOURCE_LABELS.get(source, source)})" if source else ""
        if source and source.startswith("env:KIMI_WEB_"):  # a side service's own key
            var = source[4:]
            return AuthenticationError(
                f"The Kimi Coding API rejected the token{where}: {message}",
                hint=f"Check {var} (this service's own key), or unset it to use your login.",
                **common,
            )
        return AuthenticationError(f"The Kimi Coding API rejected the token{where}: {message}", **common)
    if status == 402:
        return QuotaExceededError(
            message,
            retry_after=parse_retry_after(headers),
            hint="The Kimi membership has expired; renew the plan (kimi.com membership page).",
            **common,
        )
    if status == 403:
        return _classify_403(message, low, etype, content, headers, user_agent, common)
    if status == 404:
        return NotFoundError(message, **common)
    if status == 429:
        retry_after = parse_retry_after(headers)
        if etype == "exceeded_current_quota_error" or _BALANCE_WORDS.search(low):
            return QuotaExceededError(
                message,
                retry_after=retry_after,
                hint="The account's balance or token quota is used up; recharge it, then retry "
                "(retrying now will not help). See the plan's windows with `kimi-coder usage` "
                "(Python: `get_usage()`).",
                **common,
            )
        return RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        return ServerError(message, **common)
    if 300 <= status < 400:
        location = headers.get("location")
        where = f" to {quote(location, _sent_secrets(response), 200)!r}" if location else ""
        return APIError(
            f"The server answered with a redirect (HTTP {status}){where}; kimi-coder does not "
            "follow redirects, so a token never travels to another address.",
            hint="Set base_url= (or KIMI_CODE_BASE_URL) to the final address, e.g. "
            "https://api.kimi.com/coding/v1.",
            **common,
        )
    return APIError(message, hint="The request was not accepted; see the message above.", **common)


def _classify_403(
    message: str,
    low: str,
    etype: str | None,
    content: bytes,
    headers: Mapping[str, str],
    user_agent: str | None,
    common: dict[str, Any],
) -> APIError:
    """A 403 by the reference's decision table: gate, termination, quota windows, concurrency."""
    if "coding agent" in low:
        return UserAgentRejectedError(
            f"{message} The request was sent with User-Agent {user_agent!r}.", **common
        )
    if "access terminated" in low or "community guidelines" in low:
        return AccessTerminatedError(message, **common)
    for words, window in _QUOTA_403:
        if any(w in low for w in words):
            retry_after = parse_retry_after(headers)
            reset_at = _reset_from_body(content)
            if reset_at is None and retry_after is not None:
                reset_at = clock.now() + retry_after
            return QuotaExceededError(
                message,
                retry_after=retry_after,
                window=window,
                reset_at=reset_at,
                hint=_QUOTA_HINTS[window] + _WAIT_HINT,
                **common,
            )
    if "concurrent request limit" in low:
        return ConcurrencyLimitError(message, retry_after=parse_retry_after(headers), **common)
    if etype == "access_terminated_error":
        return AccessTerminatedError(message, **common)
    return PermissionDeniedError(
        message,
        hint="Your login or plan does not allow this request; check the model and your subscription.",
        **common,
    )


def _reset_from_body(content: bytes) -> float | None:
    """A reset time the error body carries (``reset_time``/``resetAt`` at either level), else None."""
    from .usage import parse_time

    try:
        payload = json.loads(content) if content else None
    except ValueError:
        return None
    for obj in (payload.get("error"), payload) if isinstance(payload, dict) else ():
        if isinstance(obj, dict):
            for key in _RESET_KEYS:
                when = parse_time(obj.get(key))
                if when is not None:
                    return when
    return None


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


def _body_error(exc: httpx.HTTPError, method: str, url: str) -> tuple[APIConnectionError, bool]:
    """(error, retryable) for a 2xx answer whose body broke mid-read: retried only for a GET,
    since the server may already have run (and billed) a POST."""
    name = type(exc).__name__
    retry = method == "GET"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {url} timed out while reading the answer ({name})."), retry
    again = "" if retry else "; not retried, because the server may already have processed it"
    return (
        APIConnectionError(
            f"The connection broke while reading the answer to {method} {url} ({name}){again}."
        ),
        retry,
    )
