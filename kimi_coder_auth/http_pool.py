"""Process-wide httpx pools: one sync client, one async client per running event loop.

An async client is closed when its loop shuts down its async generators (``asyncio.run`` does),
so a second ``asyncio.run`` gets a fresh client and never sees "Event loop is closed". Pools
are reset in forked children.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator
from http.cookiejar import CookieJar
from typing import Any

import httpx

__all__ = ["DEFAULT_TIMEOUT", "LIMITS", "aclose_clients", "close_clients"]

#: thinking turns can run for minutes before the first byte; connecting should be quick
DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0, write=60.0, pool=60.0)
#: pools sized for 50+ concurrent streams per process (the plan allows 30 concurrent requests)
LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=60.0)

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


class _NoJar(CookieJar):
    """A jar no cookie enters."""

    def set_cookie(self, cookie: Any) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing.

    One pooled client serves every credential and base URL in the process, so a cookie set in
    answer to one login must never ride on another login's request: each `Transport` keeps its
    own (``request_building.CachedRequestBuilder._keep_cookies``). Skipping httpx's per-response
    cookie parsing also saves ~20 us a request.
    """

    def __init__(self) -> None:
        super().__init__(_NoJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


class _Cookieless:
    """Mixin: the client's ``cookies`` is always an empty :class:`_NoCookies`."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, value: Any) -> None:
        if value:
            raise ValueError("kimi-coder's pooled HTTP clients keep no cookies")


class _Client(_Cookieless, httpx.Client):
    """The pooled sync client (no cookie jar)."""


class _AsyncClient(_Cookieless, httpx.AsyncClient):
    """The pooled async client (no cookie jar)."""


def _new_sync_client(ctx: Any) -> httpx.Client:
    return _Client(limits=LIMITS, timeout=DEFAULT_TIMEOUT, follow_redirects=False, verify=ctx)


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
        client = _AsyncClient(
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


def _headers_dict(headers: httpx.Headers) -> dict[str, str]:
    """``dict(headers)`` (lower-case names, repeated values joined by ", ") in one pass."""
    out: dict[str, str] = {}
    for key, value in headers.multi_items():
        prev = out.get(key)
        out[key] = value if prev is None else prev + ", " + value
    return out
