"""Device login (OAuth 2.0 Device Authorization Grant, RFC 8628) for Kimi Code.

Two layers:

* `DeviceFlow`, an I/O-free state machine. Built from the device-authorization response, it is
  fed each token-poll result (or a connection error) and answers `Sleep(seconds)` ("wait, then
  poll again"), `Done(payload)` ("here is the token response"), or raises the typed error. It
  never touches the network, files or the clock, so every RFC rule is unit-testable.
* `login()` / `alogin()`, thin sync and async drivers that do the HTTP (via `oauth.py`), sleep
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

import asyncio
import inspect
import logging
import math
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import clock
from ._redact import redact
from .errors import (
    APIConnectionError,
    DeviceAccessDenied,
    DeviceCodeExpired,
    DeviceLoginError,
    DeviceLoginTimeout,
    OAuthConnectionError,
    OAuthError,
    RegionError,
)
from .secret import Secret

if TYPE_CHECKING:
    from .region import Endpoint
    from .token import OAuthToken

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
    "alogin",
    "default_prompt",
    "login",
    "login_target",
    "resolve_store",
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


def default_prompt(prompt: DevicePrompt, *, file: Any = None) -> None:
    """Print the verification URL and the user code (both, so the user can check the code)."""
    out = file if file is not None else sys.stderr
    left = max(0.0, prompt.expires_at - clock.now())
    lines = ["To log in to Kimi Code, open this page in a browser:", f"  {prompt.url}"]
    if prompt.verification_uri_complete and prompt.verification_uri:
        lines.append(f"(or go to {prompt.verification_uri} and enter the code)")
    lines.append(f"Check that the page shows this code: {prompt.user_code}")
    lines.append(f"The code expires in {_minutes(left)}.")
    print("\n".join(lines), file=out, flush=True)


def resolve_store(store: Any, slot: str | None = None) -> Any:
    """Map "kimi-cli" / "kimi-code" (in Kimi Code's `slot`, default: the endpoint in force) to
    its TokenStore; pass a store object through unchanged."""
    if isinstance(store, str):
        if store == "kimi-cli":
            from .stores.kimi_cli import KimiCliStore

            return KimiCliStore()
        if store == "kimi-code":
            from .stores.kimi_code import KimiCodeStore

            return KimiCodeStore(None, slot)
        raise ValueError(f"Unknown store {store!r}; use one of: {', '.join(STORE_NAMES)}.")
    for attr in ("write", "lock"):
        if not hasattr(store, attr):
            raise TypeError(
                f"store must be one of {STORE_NAMES} or a TokenStore, not {type(store).__name__}"
            )
    return store


def _open_browser(url: str) -> None:
    """Open the URL; a missing or failing browser is never fatal."""
    try:
        opened = webbrowser.open(url)
    except Exception:  # any browser failure just means "open it yourself"
        opened = False
    logger.debug("device login: browser %s", "opened" if opened else "not opened")


def _is_connection_error(exc: BaseException) -> bool:
    """True for "the poll never got an answer": worth backing off and polling again.

    `oauth.post_form` reports transport failures as `OAuthConnectionError`; any answer from the
    server, even a redirect or a non-JSON 200, is another `OAuthError` and stays fatal.
    """
    if isinstance(exc, OAuthConnectionError):
        return True
    if isinstance(exc, APIConnectionError):
        return True
    import httpx

    return isinstance(exc, (httpx.TransportError, OSError))


def _to_token(payload: dict[str, Any]) -> OAuthToken:
    from .token import OAuthToken

    return OAuthToken.from_response(payload, now=clock.now())


def login_target(
    store: Any = None,
    *,
    region: str | None = None,
    oauth_host: str | None = None,
    via: str = "region=",
) -> tuple[Any, Endpoint]:
    """The store a login is saved to and the endpoint it comes from; no file is written.

    `store` None: kimi-cli's file for the default host pair, else Kimi Code's per-host slot. A
    login from any other host never goes to kimi-cli's single (default-host) file: asking for
    it raises `RegionError`.
    """
    from .paths import kimi_cli_credentials_path
    from .region import resolve_endpoint
    from .stores.kimi_cli import KimiCliStore
    from .stores.kimi_code import KimiCodeStore

    endpoint = resolve_endpoint(region, oauth_host=oauth_host, via=via)
    if store is None:
        store = "kimi-cli" if endpoint.is_default else "kimi-code"
    target = resolve_store(store, endpoint.slot)
    if isinstance(target, KimiCodeStore) and target._token_name is None:
        target = KimiCodeStore(target.home, endpoint.slot)  # the slot of the login's own host
    if (
        not endpoint.is_default
        and isinstance(target, KimiCliStore)
        and target.path == kimi_cli_credentials_path()
    ):
        raise RegionError(
            f"kimi-cli's file {target.path} holds only the login for the default host "
            f"https://auth.kimi.com; a login from {endpoint.oauth_host} would replace it.",
            hint=f'Use store="kimi-code" (saved to Kimi Code\'s slot {endpoint.slot}) or leave '
            "store unset.",
        )
    return target, endpoint


def _check_writable(store: Any) -> None:
    """Fail before the browser step when the login could not be saved (read-only or full disk):
    approving a login that is then lost would only waste the user's time."""
    check = getattr(store, "check_writable", None)
    if check is not None:
        check()


def _save(store: Any, token: OAuthToken) -> None:
    with store.lock(STORE_LOCK_TIMEOUT):
        store.write(token)


ProgressCallback = Callable[[DeviceProgress], None]
PromptCallback = Callable[[DevicePrompt], Awaitable[None] | None]


def _start(body: Mapping[str, Any] | None, status: int, timeout: float | None) -> DeviceFlow:
    if status != 200:
        raise _authorization_error(status, body)
    flow = DeviceFlow(
        DeviceAuthorization.parse(body or {}),
        now=clock.now(),
        monotonic=clock.monotonic(),
        timeout=timeout,
    )
    logger.debug(
        "device login: code received (interval %ss, expires in %ss)",
        flow.interval,
        flow.authorization.expires_in,
    )
    return flow


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError("timeout must be a positive number of seconds (or None).")


# --------------------------------------------------------------------------- drivers


def login(
    *,
    store: Any = None,
    prompt: PromptCallback | None = None,
    open_browser: bool = True,
    timeout: float | None = None,
    oauth_host: str | None = None,
    on_progress: ProgressCallback | None = None,
    region: str | None = None,
) -> OAuthToken:
    """Run the device login and save the token to `store` ("kimi-cli" or "kimi-code").

    `region` ("mainland-cn" / "global") or `oauth_host` picks the server; `store` None saves a
    default-host login to kimi-cli's file and any other to Kimi Code's per-host slot
    (`login_target`), so one server's login never replaces another's.

    `prompt` receives a `DevicePrompt` (default: print URL and code to stderr). `timeout` bounds
    the wait for approval in seconds (the code's own `expires_in` applies too). Raises
    `DeviceAccessDenied`, `DeviceCodeExpired`, `DeviceLoginTimeout`, `DeviceLoginError` or
    `OAuthError`; KeyboardInterrupt leaves every file untouched.
    """
    from . import oauth

    _check_timeout(timeout)
    target, endpoint = login_target(store, region=region, oauth_host=oauth_host)
    _check_writable(target)
    host = endpoint.oauth_host
    status, body = oauth.post_form(
        DEVICE_AUTHORIZATION_PATH,
        {"client_id": oauth.KIMI_CODE_CLIENT_ID},
        host=host,
        timeout=_REQUEST_TIMEOUT,
    )
    flow = _start(body, status, timeout)
    shown = (prompt if prompt is not None else default_prompt)(flow.prompt)
    if inspect.isawaitable(shown):
        raise TypeError("login() needs a synchronous prompt callback; use alogin() for async ones.")
    if open_browser:
        _open_browser(flow.prompt.url)
    while True:
        try:
            status, body = oauth.post_form(
                TOKEN_PATH,
                flow.secret_poll_form(oauth.KIMI_CODE_CLIENT_ID),
                host=host,
                timeout=_REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            logger.debug("device login: poll failed to connect (%s)", type(exc).__name__)
            step: Step = flow.on_connection_error(monotonic=clock.monotonic())
        else:
            step = flow.on_response(status, body, monotonic=clock.monotonic())
        if isinstance(step, Done):
            break
        logger.debug("device login: %s; next poll in %ss", flow.last_event, step.seconds)
        if on_progress is not None:
            on_progress(flow.progress(clock.monotonic(), step.seconds))
        clock.sleep(step.seconds)
    token = _to_token(step.payload)
    del body, step  # the raw token response must not sit in this frame while saving
    _save(target, token)
    logger.debug("device login: token saved to the %s store", getattr(target, "name", "chosen"))
    return token


async def alogin(
    *,
    store: Any = None,
    prompt: PromptCallback | None = None,
    open_browser: bool = True,
    timeout: float | None = None,
    oauth_host: str | None = None,
    on_progress: ProgressCallback | None = None,
    region: str | None = None,
) -> OAuthToken:
    """Async `login()`: never blocks the event loop; cancelling the task writes nothing.

    `prompt` may be a plain function or a coroutine function.
    """
    from . import oauth

    _check_timeout(timeout)
    target, endpoint = await asyncio.to_thread(  # may read Kimi Code's config.toml
        login_target, store, region=region, oauth_host=oauth_host
    )
    await asyncio.to_thread(_check_writable, target)
    host = endpoint.oauth_host
    status, body = await oauth.apost_form(
        DEVICE_AUTHORIZATION_PATH,
        {"client_id": oauth.KIMI_CODE_CLIENT_ID},
        host=host,
        timeout=_REQUEST_TIMEOUT,
    )
    flow = _start(body, status, timeout)
    shown = (prompt if prompt is not None else default_prompt)(flow.prompt)
    if inspect.isawaitable(shown):
        await shown
    if open_browser:
        await asyncio.to_thread(_open_browser, flow.prompt.url)
    while True:
        try:
            status, body = await oauth.apost_form(
                TOKEN_PATH,
                flow.secret_poll_form(oauth.KIMI_CODE_CLIENT_ID),
                host=host,
                timeout=_REQUEST_TIMEOUT,
            )
        except Exception as exc:
            if not _is_connection_error(exc):
                raise
            logger.debug("device login: poll failed to connect (%s)", type(exc).__name__)
            step: Step = flow.on_connection_error(monotonic=clock.monotonic())
        else:
            step = flow.on_response(status, body, monotonic=clock.monotonic())
        if isinstance(step, Done):
            break
        logger.debug("device login: %s; next poll in %ss", flow.last_event, step.seconds)
        if on_progress is not None:
            on_progress(flow.progress(clock.monotonic(), step.seconds))
        await clock.asleep(step.seconds)
    token = _to_token(step.payload)
    del body, step  # the raw token response must not sit in this frame while saving
    # The lock wait and the write block: run them off the loop. Once a token has arrived the save
    # runs to completion even if the task is cancelled meanwhile (the write is atomic).
    await asyncio.shield(asyncio.to_thread(_save, target, token))
    logger.debug("device login: token saved to the %s store", getattr(target, "name", "chosen"))
    return token
