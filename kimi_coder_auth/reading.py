"""Reading an answer under its size cap and its deadline (shared by calls and streams).

`read_body` / `aread_body` read a whole (decompressed) body, stopping at the cap with
`ResponseTooLargeError` and at the call's deadline with `APITimeoutError`. `attempt_timeout`
gives each attempt's network steps at most the time left. `scrub_error` removes the sent
credentials from an error built out of server text by any decoder (a last line of defence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from . import clock
from ._redact import redact
from .errors import APITimeoutError, KimiCoderError
from .limits import too_large
from .secret import Secret

__all__ = ["aread_body", "attempt_timeout", "deadline_error", "read_body", "scrub_error"]

_TIMEOUT_KEYS = ("connect", "read", "write", "pool")


def deadline_error(what: str, seconds: float | None) -> APITimeoutError:
    """The typed error for a call or stream that ran past its deadline."""
    limit = f" of {seconds:g} s" if seconds else ""
    return APITimeoutError(
        f"{what} did not finish within its deadline{limit}; the answer was discarded.",
        hint="Raise deadline= / first_event_timeout= / event_timeout= (or timeout=) if the "
        "server is expected to be this slow.",
    )


def attempt_timeout(
    timeout: httpx.Timeout, remaining: float | None, *, read_floor: float | None = None
) -> httpx.Timeout:
    """``timeout`` with every step capped at ``remaining`` seconds (None = unchanged).

    ``read_floor``: for a stream, reads may wait this long even past ``remaining`` (the
    first-event deadline), because later reads are bounded by the gap between events.
    """
    if remaining is None:
        return timeout
    steps: dict[str, Any] = timeout.as_dict()
    for key in _TIMEOUT_KEYS:
        cap = remaining if key != "read" or read_floor is None else max(remaining, read_floor)
        value = steps.get(key)
        steps[key] = cap if value is None else min(value, cap)
    return httpx.Timeout(**steps)


def _add(parts: list[bytes], size: int, data: bytes, cap: int) -> int:
    size += len(data)
    if size > cap:
        raise too_large("a response body", cap, "max_response_bytes= (or KIMI_CODER_MAX_RESPONSE_BYTES)")
    parts.append(data)
    return size


def read_body(response: httpx.Response, cap: int, deadline_at: float | None, seconds: float | None) -> bytes:
    """Read ``response`` to the end (decompressed, at most ``cap`` bytes) and close it.

    Sets the response's content as ``response.read()`` would. Raises `ResponseTooLargeError`,
    `APITimeoutError` (deadline) or the httpx error of a broken read.
    """
    parts: list[bytes] = []
    size = 0
    try:
        for data in response.iter_bytes():
            size = _add(parts, size, data, cap)
            if deadline_at is not None and clock.monotonic() > deadline_at:
                raise deadline_error("The request", seconds)
    finally:
        response.close()
    content = response._content = b"".join(parts)  # what httpx's own read() stores
    return content


async def aread_body(
    response: httpx.Response, cap: int, deadline_at: float | None, seconds: float | None
) -> bytes:
    """Async `read_body`."""
    parts: list[bytes] = []
    size = 0
    try:
        async for data in response.aiter_bytes():
            size = _add(parts, size, data, cap)
            if deadline_at is not None and clock.monotonic() > deadline_at:
                raise deadline_error("The request", seconds)
    finally:
        await response.aclose()
    content = response._content = b"".join(parts)
    return content


def scrub_error(exc: BaseException, secrets: Sequence[Secret]) -> None:
    """Remove ``secrets`` from an error's message, hint, error type and args, in place."""
    if not secrets or not isinstance(exc, KimiCoderError):
        return
    for name in ("message", "hint", "error_type"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            scrubbed = redact(value, *secrets)
            if scrubbed != value:
                setattr(exc, name, scrubbed)
    exc.args = tuple(redact(a, *secrets) if isinstance(a, str) else a for a in exc.args)
