"""Device login drivers: `login()` / `alogin()` run `device.DeviceFlow` over HTTP and save the token.

They do the HTTP (via `oauth.py`), sleep with the injectable clock, check before the browser step
that the chosen store can be written, and on success write the token atomically under the
store's lock. `login_target` picks the store so one server's login never replaces another's.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import clock
from .errors import (
    APIConnectionError,
    OAuthConnectionError,
    RegionError,
)

if TYPE_CHECKING:
    from .region import Endpoint
    from .token import OAuthToken

from .device import (
    _REQUEST_TIMEOUT,
    DEVICE_AUTHORIZATION_PATH,
    STORE_LOCK_TIMEOUT,
    STORE_NAMES,
    TOKEN_PATH,
    DeviceAuthorization,
    DeviceFlow,
    DeviceProgress,
    DevicePrompt,
    Done,
    Step,
    _authorization_error,
    _minutes,
)

__all__ = ["alogin", "default_prompt", "login", "login_target", "resolve_store"]

logger = logging.getLogger("kimi_coder_auth.device")


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
