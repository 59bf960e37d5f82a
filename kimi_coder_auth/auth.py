"""`KimiAuth`: the httpx auth flow that attaches the bearer token and handles one 401.

The token is fetched *before* the request is yielded (so no lock is ever held across a yield);
on a 401 the credential is told which token was rejected and may hand back a better one
(refreshed, or rotated by another process), with which the request is retried exactly once.
A second 401 is returned to the caller, who maps it to `AuthenticationError`.

Bearer tokens only travel over https; plain http is allowed for loopback hosts (tests, the
emulator) and refused for everything else with `InsecureTransportError` before anything is sent.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from .errors import InsecureTransportError
from .secret import Secret

if TYPE_CHECKING:
    from .refresh import Credential

__all__ = ["KimiAuth", "check_secure_url", "is_loopback_host"]


@functools.lru_cache(maxsize=256)
def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` itself and literal loopback addresses (127.0.0.0/8, ``::1``).

    ``*.localhost`` names are not trusted: whether they resolve to loopback depends on the
    resolver, and a token must not travel in clear text on a guess.
    """
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure_url(url: httpx.URL) -> None:
    """Raise `InsecureTransportError` unless a bearer token may be sent to ``url``."""
    if url.scheme == "https" or (url.scheme == "http" and is_loopback_host(url.host)):
        return
    raise InsecureTransportError(
        f"Refusing to send a bearer token to {url.scheme}://{url.host}: "
        "only https (or http to a loopback address) is allowed. Nothing was sent."
    )


def _replayable(request: httpx.Request) -> bool:
    """True when the request body is in memory and can be sent a second time."""
    try:
        request.content  # noqa: B018 - raises RequestNotRead for an unread streaming body
    except httpx.RequestNotRead:
        return False
    return True


class KimiAuth(httpx.Auth):
    """Bearer auth from a `Credential`: refresh-once-and-retry-once on 401."""

    requires_request_body = True  # the body is read up front so a retry can replay it

    def __init__(self, credential: Credential, *, header: str = "authorization") -> None:
        # header "authorization": ``Bearer <token>`` (OpenAI route); "x-api-key": the raw token
        # in ``x-api-key`` (Anthropic route, as Kimi Code sends it), no Authorization header.
        self.credential = credential
        self.header = header

    def __repr__(self) -> str:
        return f"KimiAuth(source={getattr(self.credential, 'source', '?')!r})"

    def _set(self, request: httpx.Request, token: Secret) -> None:
        if self.header == "authorization":
            request.headers["Authorization"] = "Bearer " + token.reveal()
        else:
            request.headers[self.header] = token.reveal()

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        check_secure_url(request.url)
        token = self.credential.get_token()
        self._set(request, token)
        response = yield request
        if response.status_code != 401:
            return
        new = self.credential.on_unauthorized(token)
        if new is None or new == token or not _replayable(request):
            return
        self._set(request, new)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        check_secure_url(request.url)
        token = await self.credential.aget_token()
        self._set(request, token)
        response = yield request
        if response.status_code != 401:
            return
        new = await self.credential.aon_unauthorized(token)
        if new is None or new == token or not _replayable(request):
            return
        self._set(request, new)
        yield request
