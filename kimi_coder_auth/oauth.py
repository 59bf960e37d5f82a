"""Kimi's OAuth endpoints: host, client id, form POSTs and the refresh grant.

Requests never follow redirects (a device code or refresh token must not travel to another
host), require https except on loopback, and errors carry only status, the OAuth `error` code
and the server's human description, never a response body.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import clock
from ._identity import default_user_agent
from ._redact import redact
from .errors import InsecureTransportError, OAuthConnectionError, OAuthError, ReauthRequired
from .paths import DEFAULT_OAUTH_HOST, default_oauth_host
from .secret import Secret
from .token import OAuthToken

__all__ = [
    "DEFAULT_OAUTH_HOST",
    "DEVICE_AUTHORIZATION_PATH",
    "DEVICE_GRANT_TYPE",
    "KIMI_CODE_CLIENT_ID",
    "TOKEN_PATH",
    "FormData",
    "RefreshRejected",
    "apost_form",
    "oauth_headers",
    "oauth_host",
    "post_form",
    "refresh_access_token",
]

logger = logging.getLogger("kimi_coder_auth.oauth")

KIMI_CODE_CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"
TOKEN_PATH = "/api/oauth/token"
DEVICE_AUTHORIZATION_PATH = "/api/oauth/device_authorization"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
_MAX_DESCRIPTION = 300


class RefreshRejected(ReauthRequired):
    """The OAuth server rejected the refresh token (401/403 or `invalid_grant`)."""

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None
    ) -> None:
        self.status = status
        self.error = error
        super().__init__(message)


def oauth_host() -> str:
    """`$KIMI_CODE_OAUTH_HOST`, then `$KIMI_OAUTH_HOST`, then the region's host (no trailing /)."""
    return default_oauth_host()


def oauth_headers() -> dict[str, str]:
    """Headers for OAuth calls: our own honest User-Agent, JSON answers."""
    return {"User-Agent": default_user_agent(), "Accept": "application/json"}


def _is_loopback(hostname: str) -> bool:
    if hostname in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise InsecureTransportError(
        f"Refusing to send OAuth secrets to {parts.scheme}://{parts.hostname}: https is required "
        "(plain http only for 127.0.0.1/localhost).",
        hint="Set KIMI_CODE_OAUTH_HOST to an https:// URL.",
    )


def _url(path: str, host: str | None) -> str:
    base = (host or oauth_host()).strip().rstrip("/")
    return base + (path if path.startswith("/") else "/" + path)


def _parse(response: httpx.Response, url: str) -> tuple[int, dict[str, Any]]:
    status = response.status_code
    if 300 <= status < 400:
        raise OAuthError(
            f"The OAuth server answered {status} with a redirect; it was not followed so no "
            "secret leaves for another host.",
            status=status,
            hint="Check KIMI_CODE_OAUTH_HOST (it must be the OAuth server itself).",
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        if status == 200:
            raise OAuthError(
                f"The OAuth server at {urlsplit(url).netloc} answered 200 without a JSON object.",
                status=status,
                hint="Check KIMI_CODE_OAUTH_HOST; retry later.",
            )
        data = {}
    return status, data


def _connection_error(exc: Exception, url: str) -> OAuthConnectionError:
    kind = (
        "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
    )
    return OAuthConnectionError(
        f"The request to the OAuth server {urlsplit(url).netloc} {kind}.",
        hint="Check your network connection and KIMI_CODE_OAUTH_HOST, then retry.",
    )


FormData = Mapping[str, str | Secret]


def _build_request(client: httpx.Client | httpx.AsyncClient, url: str, data: FormData) -> httpx.Request:
    """The POST request; the only place `Secret` form values are revealed. This frame is gone
    before anything is sent, and an `httpx.Request`'s repr shows no body."""
    return client.build_request(
        "POST",
        url,
        data={k: v.reveal() if isinstance(v, Secret) else v for k, v in data.items()},
        headers=oauth_headers(),
    )


def _send(url: str, data: FormData, timeout: float) -> httpx.Response | OAuthConnectionError:
    """Send the form; a transport failure comes back as a clean `OAuthConnectionError` (no
    chain: the httpx error's `.request` holds the body)."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            return client.send(_build_request(client, url, data))
    except httpx.HTTPError as exc:
        return _connection_error(exc, url)


async def _asend(url: str, data: FormData, timeout: float) -> httpx.Response | OAuthConnectionError:
    """Async twin of `_send`."""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            return await client.send(_build_request(client, url, data))
    except httpx.HTTPError as exc:
        return _connection_error(exc, url)


def post_form(
    path: str, data: FormData, *, host: str | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """POST `data` form-encoded to `<host><path>`; returns (status, JSON object or {}).

    Pass secret values (refresh token, device code) as `Secret`: they are revealed only while
    the request is built, so no frame that can raise holds them in the clear.
    """
    url = _url(path, host)
    _check_url(url)
    result = _send(url, data, timeout)
    if isinstance(result, OAuthConnectionError):
        raise result  # outside any except block: no __context__ holding the request
    return _parse(result, url)


async def apost_form(
    path: str, data: FormData, *, host: str | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """Async twin of `post_form`."""
    url = _url(path, host)
    _check_url(url)
    result = await _asend(url, data, timeout)
    if isinstance(result, OAuthConnectionError):
        raise result
    return _parse(result, url)


def error_description(data: Mapping[str, Any]) -> str:
    """The server's human-readable error text (never token material), shortened."""
    for key in ("error_description", "message", "detail", "error"):
        value = data.get(key)
        if isinstance(value, Mapping):
            value = value.get("message")
        if isinstance(value, str) and value:
            return value[:_MAX_DESCRIPTION]
    return ""


def refresh_access_token(
    refresh_token: Secret,
    *,
    host: str | None = None,
    timeout: float = 10.0,
    previous: OAuthToken | None = None,
) -> OAuthToken:
    """Redeem `refresh_token` once (no retries). Raises `RefreshRejected` or `OAuthError`.

    Server-provided text (`error`, `error_description`) is scrubbed of the refresh token (and
    anything credential-shaped) before it becomes part of an error.
    """
    status, data = post_form(
        TOKEN_PATH,
        {
            "client_id": KIMI_CODE_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
        host=host,
        timeout=timeout,
    )
    error = data.get("error") if isinstance(data.get("error"), str) else None
    if status == 200 and error is None:
        parsed = _token_from(data, refresh_token, previous)
        del data  # the new tokens in the clear: keep them out of the raising frame's locals
        if isinstance(parsed, OAuthError):
            raise parsed
        return parsed
    description = redact(error_description(data), refresh_token)
    del data  # the server's answer: keep it out of the raising frame's locals
    if error is not None:
        error = redact(error, refresh_token)
    detail = f" ({description})" if description and description != error else ""
    if status in (401, 403) or error == "invalid_grant":
        raise RefreshRejected(
            f"The OAuth server rejected the refresh token: {status}"
            + (f" {error}" if error else "")
            + detail
            + ". The stored login is no longer valid.",
            status=status,
            error=error,
        )
    raise OAuthError(
        f"Refreshing the access token failed: {status}"
        + (f" {error}" if error else "")
        + detail
        + ".",
        status=status,
        error=error,
        hint="This is usually temporary; retry in a moment.",
    )


def _token_from(
    data: dict[str, Any], refresh_token: Secret, previous: OAuthToken | None
) -> OAuthToken | OAuthError:
    """Parse a 200 answer; a malformed one comes back as a fresh `OAuthError` (no traceback
    through frames holding the answer's tokens, no chain)."""
    base = previous
    if base is None or base.refresh_token != refresh_token:
        base = OAuthToken(
            Secret(""), refresh_token, 0.0, extra=dict(previous.extra) if previous else {}
        )
    try:
        return OAuthToken.from_response(data, now=clock.now(), previous=base)
    except OAuthError as exc:
        return OAuthError(exc.message, status=200, hint=exc.hint)
