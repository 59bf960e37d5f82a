"""Device login (OAuth 2.0 Device Authorization Grant, RFC 8628) for Kimi Code.

Two layers:

* `DeviceFlow`, an I/O-free state machine. Built from the device-authorization response, it is
  fed each token-poll result (or a connection error) and answers `Sleep(seconds)` ("wait, then
  poll again"), `Done(payload)` ("here is the token response"), or raises the typed error. It
  never touches the network, files or the clock, so every RFC rule is unit-testable.
* `login()` / `alogin()` (in `device_login.py`), thin sync and async drivers that do the HTTP (via `oauth.py`), sleep
  with the injectable clock (`kimi_coder_auth.clock`) and, on success, write the token atomically
  under the chosen store's lock.

Polling rules (RFC 8628 §3.4-3.5, hardened as the reference notes recommend):

* The first poll happens right after the code is shown (the user cannot have approved yet, so it
  only costs one `authorization_pending`); after every non-final answer the driver sleeps.
* `interval` from the server is clamped to 1..60 s (missing or not a number: 5 s).
* `authorization_pending`: poll again after `interval`.
* `slow_down` (and a bare HTTP 429): `interval += 5` for this and every later poll.
* `access_denied` -> `DeviceAccessDenied`; `expired_token` -> `DeviceCodeExpired`; any other error
  code -> `DeviceLoginError`. Polling stops immediately on each of them.
* `expired_token` is **not** restarted automatically: RFC 8628 says the client should wait for the
  user before starting over, and a fresh code means a fresh browser approval anyway. The error
  tells the user to run `kimi-coder login` again.
* Connection errors (refused, reset, timeout): back off by doubling the wait (from `interval`, up
  to 60 s) and keep polling until the deadline; any answer from the server resets the backoff.
* HTTP 5xx (and redirects, which are never followed so the device code stays put) -> `OAuthError`.
* Deadline = min(`expires_in` (900 s when missing or invalid), caller `timeout`), measured on the
  monotonic clock from when the code is received -> `DeviceLoginTimeout`.

Ctrl-C (sync) or task cancellation (async) propagates straight out of the sleep: nothing is
written and no lock is held, because the store is only touched after a token arrived.
The device code and tokens never appear in messages, reprs or logs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._redact import redact
from .errors import (
    DeviceAccessDenied,
    DeviceCodeExpired,
    DeviceLoginError,
    DeviceLoginTimeout,
    OAuthError,
)
from .secret import Secret

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "DEFAULT_INTERVAL",
    "DEVICE_AUTHORIZATION_PATH",
    "DEVICE_GRANT_TYPE",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "SLOW_DOWN_STEP",
    "TOKEN_PATH",
    "DeviceAuthorization",
    "DeviceFlow",
    "DeviceFlowState",
    "DeviceProgress",
    "DevicePrompt",
    "Done",
    "Sleep",
]

logger = logging.getLogger(__name__)

DEVICE_AUTHORIZATION_PATH = "/api/oauth/device_authorization"
TOKEN_PATH = "/api/oauth/token"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"

DEFAULT_INTERVAL = 5.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 60.0
SLOW_DOWN_STEP = 5.0
DEFAULT_EXPIRES_IN = 900.0  # Kimi Code's 15-minute local login deadline
STORE_LOCK_TIMEOUT = 30.0
_REQUEST_TIMEOUT = 15.0
_MAX_MESSAGE = 200
STORE_NAMES = ("kimi-cli", "kimi-code")


# --------------------------------------------------------------------------- typed values


@dataclass(frozen=True)
class DevicePrompt:
    """What the user must see: where to go, which code to check, and until when (epoch seconds)."""

    verification_uri: str
    verification_uri_complete: str | None
    user_code: str
    expires_at: float

    @property
    def url(self) -> str:
        """The page to open: the complete URI (code pre-filled) when the server gave one."""
        return self.verification_uri_complete or self.verification_uri


@dataclass(frozen=True)
class DeviceAuthorization:
    """The parsed device-authorization response. `device_code` is a `Secret`."""

    device_code: Secret
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DeviceAuthorization:
        """Validate the server's answer; raises `OAuthError` naming missing fields (never values)."""
        if not isinstance(body, Mapping):
            raise OAuthError(
                "The device authorization response was not a JSON object.",
                hint="Check KIMI_CODE_OAUTH_HOST points at Kimi's OAuth server, then retry.",
            )
        missing = [
            name for name in ("device_code", "user_code") if not _nonempty_str(body.get(name))
        ]
        complete = body.get("verification_uri_complete")
        plain = body.get("verification_uri")
        if not _nonempty_str(complete) and not _nonempty_str(plain):
            missing.append("verification_uri_complete")
        if missing:
            raise OAuthError(
                "The device authorization response lacks required field(s): "
                + ", ".join(missing)
                + ".",
                hint="Check KIMI_CODE_OAUTH_HOST points at Kimi's OAuth server, then retry.",
            )
        complete_s = complete if _nonempty_str(complete) else None
        plain_s = str(plain) if _nonempty_str(plain) else _strip_query(complete_s or "")
        return cls(
            device_code=Secret(body["device_code"]),
            user_code=body["user_code"],
            verification_uri=plain_s,
            verification_uri_complete=complete_s,
            expires_in=_parse_expires_in(body.get("expires_in")),
            interval=_clamp_interval(body.get("interval")),
        )


@dataclass(frozen=True)
class Sleep:
    """Wait `seconds`, then poll the token endpoint again."""

    seconds: float


class Done:
    """The token endpoint answered with a token; `payload` is the raw token response."""

    __slots__ = ("payload",)

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def __repr__(self) -> str:  # the payload holds tokens: never show it
        return f"Done(<token response with fields {sorted(self.payload)}>)"


Step = Sleep | Done


@dataclass(frozen=True)
class DeviceProgress:
    """A polling event for progress displays (no secrets)."""

    event: str  # "pending" | "slow_down" | "connection_error"
    next_poll_in: float  # seconds until the next poll
    remaining: float  # seconds until the deadline
    interval: float  # the current polling interval
    polls: int  # token polls made so far


# --------------------------------------------------------------------------- the state machine


class DeviceFlow:
    """RFC 8628 polling rules as a pure state machine (no I/O, no clock reads).

    The caller passes the monotonic time with every event, so tests drive it with plain numbers.
    """

    def __init__(
        self,
        authorization: DeviceAuthorization | Mapping[str, Any],
        *,
        now: float,
        monotonic: float,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(authorization, DeviceAuthorization):
            authorization = DeviceAuthorization.parse(authorization)
        if timeout is not None and not (timeout > 0):
            raise ValueError("timeout must be a positive number of seconds (or None).")
        self.authorization = authorization
        self.interval = authorization.interval
        self.started = monotonic
        budget = (
            authorization.expires_in if timeout is None else min(authorization.expires_in, timeout)
        )
        self.budget = budget
        self.deadline = monotonic + budget
        self.expires_at = now + authorization.expires_in
        self.timed_by_caller = timeout is not None and timeout < authorization.expires_in
        self.polls = 0
        self.connection_errors = 0
        self._backoff: float | None = None
        self.last_event: str | None = None

    # ---- what the driver needs

    @property
    def prompt(self) -> DevicePrompt:
        """The typed prompt for the user."""
        a = self.authorization
        return DevicePrompt(
            verification_uri=a.verification_uri,
            verification_uri_complete=a.verification_uri_complete,
            user_code=a.user_code,
            expires_at=self.expires_at,
        )

    def poll_form(self, client_id: str) -> dict[str, str]:
        """The form body of the next token poll (reveals the device code for the wire only)."""
        return {
            "client_id": client_id,
            "device_code": self.authorization.device_code.reveal(),
            "grant_type": DEVICE_GRANT_TYPE,
        }

    def secret_poll_form(self, client_id: str) -> dict[str, str | Secret]:
        """`poll_form` with the device code kept a `Secret` (what `oauth.post_form` reveals
        only while building the request), so no caller frame holds it in the clear."""
        return {
            "client_id": client_id,
            "device_code": self.authorization.device_code,
            "grant_type": DEVICE_GRANT_TYPE,
        }

    def remaining(self, monotonic: float) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - monotonic)

    # ---- events

    def on_response(self, status: int, body: Mapping[str, Any] | None, *, monotonic: float) -> Step:
        """Feed one token-poll answer; returns the next step or raises the typed error."""
        self.polls += 1
        body = body if isinstance(body, Mapping) else {}
        if status == 200:
            token = body.get("access_token")
            if _nonempty_str(token):
                self.last_event = "approved"
                return Done(dict(body))
            raise OAuthError(
                "The token endpoint answered 200 without an access_token.",
                status=status,
                hint="Run `kimi-coder login` again; if it persists, Kimi's OAuth server is misbehaving.",
            )
        if 300 <= status < 400:
            raise OAuthError(
                f"The token endpoint answered with a redirect ({status}); it was not followed so the "
                "device code stays private.",
                status=status,
                hint="Check KIMI_CODE_OAUTH_HOST (use the https:// address of Kimi's OAuth server).",
            )
        if status >= 500:
            raise OAuthError(
                f"Kimi's OAuth server failed while waiting for approval (HTTP {status}). Nothing was written.",
                status=status,
                error=redact(_error_code(body) or "", self.authorization.device_code) or None,
                hint="Run `kimi-coder login` again in a minute.",
            )
        self._backoff = None
        code = _error_code(body)
        if code == "authorization_pending":
            return self._wait("pending", monotonic)
        if code == "slow_down" or (status == 429 and code is None):
            self.interval += SLOW_DOWN_STEP
            return self._wait("slow_down", monotonic)
        if code == "access_denied":
            raise DeviceAccessDenied(
                "The login was declined in the browser (access_denied). Nothing was written.",
                hint="Run `kimi-coder login` again and choose to authorize.",
            )
        if code == "expired_token":
            raise DeviceCodeExpired(
                "The login code expired before it was approved (expired_token). Nothing was written.",
                hint="Run `kimi-coder login` again and approve it in the browser within "
                f"{_minutes(self.authorization.expires_in)}.",
            )
        detail = _server_message(body)
        if detail:  # a server or proxy echoing the device code must not put it into the error
            detail = redact(detail, self.authorization.device_code)
        if code:
            code = redact(code, self.authorization.device_code)
        what = f"error {code!r}" if code else f"HTTP {status}"
        raise DeviceLoginError(
            f"The device login failed: the token endpoint answered {what}"
            + (f" ({detail})" if detail else "")
            + ". Nothing was written.",
        )

    def on_connection_error(self, *, monotonic: float) -> Sleep:
        """A poll did not reach the server: slow down (double, up to 60 s) and keep polling."""
        self.connection_errors += 1
        base = self._backoff if self._backoff is not None else self.interval
        self._backoff = min(MAX_INTERVAL, max(base * 2, MIN_INTERVAL))
        return self._wait("connection_error", monotonic, wait=self._backoff)

    def progress(self, monotonic: float, next_poll_in: float) -> DeviceProgress:
        """A snapshot for progress displays."""
        return DeviceProgress(
            event=self.last_event or "pending",
            next_poll_in=next_poll_in,
            remaining=self.remaining(monotonic),
            interval=self.interval,
            polls=self.polls,
        )

    def _wait(self, event: str, monotonic: float, *, wait: float | None = None) -> Sleep:
        self.last_event = event
        left = self.deadline - monotonic
        if left <= 0:
            raise self._timeout_error()
        return Sleep(min(self.interval if wait is None else wait, left))

    def _timeout_error(self) -> DeviceLoginTimeout:
        if self.timed_by_caller:
            msg = f"No approval arrived within the {_seconds(self.budget)} timeout. Nothing was written."
        else:
            msg = (
                f"No approval arrived before the login code expired ({_minutes(self.budget)}). "
                "Nothing was written."
            )
        if self.connection_errors and self.last_event == "connection_error":
            msg += (
                " The OAuth server could not be reached on the last attempts; check your network."
            )
        return DeviceLoginTimeout(msg)

    def __repr__(self) -> str:
        return (
            f"DeviceFlow(interval={self.interval}, polls={self.polls}, "
            f"budget={self.budget}, last_event={self.last_event!r})"
        )


DeviceFlowState = DeviceFlow  # the name used in issue discussions


# --------------------------------------------------------------------------- helpers


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _clamp_interval(value: object) -> float:
    number = _as_number(value)
    if number is None:
        return DEFAULT_INTERVAL
    return min(MAX_INTERVAL, max(MIN_INTERVAL, number))


def _parse_expires_in(value: object) -> float:
    number = _as_number(value)
    if number is None or number <= 0:
        return DEFAULT_EXPIRES_IN
    return number


def _error_code(body: Mapping[str, Any]) -> str | None:
    code = body.get("error")
    if isinstance(code, str) and code.strip():
        return code.strip()
    return None


def _server_message(body: Mapping[str, Any]) -> str | None:
    """A short human message from an OAuth error body (error_description/message/detail)."""
    for key in ("error_description", "message", "detail"):
        value = body.get(key)
        if isinstance(value, Mapping):
            value = value.get("message")
        if _nonempty_str(value):
            text = " ".join(str(value).split())
            return text[:_MAX_MESSAGE] + ("…" if len(text) > _MAX_MESSAGE else "")
    return None


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _minutes(value: float) -> str:
    minutes = value / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{value:.0f} s"


def _authorization_error(status: int, body: Mapping[str, Any] | None) -> OAuthError:
    body = body if isinstance(body, Mapping) else {}
    detail = _server_message(body) or _error_code(body)
    return OAuthError(
        f"Kimi's OAuth server refused to start a device login (HTTP {status}"
        + (f": {detail}" if detail else "")
        + ").",
        status=status,
        error=_error_code(body),
        hint="Retry in a minute; check KIMI_CODE_OAUTH_HOST if you set it.",
    )


_DRIVERS = frozenset({"alogin", "default_prompt", "login", "login_target", "resolve_store"})


def __getattr__(name: str) -> Any:
    """The drivers live in `device_login`; `device.login` and friends still resolve (lazily, so
    importing either module first works)."""
    if name in _DRIVERS:
        from . import device_login

        return getattr(device_login, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
