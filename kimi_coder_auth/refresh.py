"""`OAuthCredential`: a cached access token that refreshes itself safely across threads, event
loops and processes.

Hot path: a fresh cached token is returned without touching the file or any lock. Slow path
(one thread at a time, `threading.Lock`; async callers reach it through `asyncio.to_thread`):
read the file and adopt a newer token; otherwise take the store's cross-process lock, re-read,
adopt a rotation made by another process, or make one refresh POST, write the result, release.

Windows: advisory (inside `max(300, expires_in/2)` of expiry) vs mandatory (expired or < 60 s
left). A failed refresh in the advisory window returns the still-valid token and waits 30 s
before trying again; in the mandatory window it raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from dataclasses import dataclass

from . import clock
from .credential import Credential, CredentialStatus
from .errors import (
    CredentialError,
    CredentialStoreUnwritable,
    CredentialsUnavailable,
    OAuthError,
    ReauthRequired,
    SourceAttempt,
)
from .oauth import RefreshRejected, oauth_host, refresh_access_token
from .secret import Secret
from .stores import TokenStore
from .token import MANDATORY_WINDOW, OAuthToken

__all__ = [
    "ADVISORY_RETRY_DELAY",
    "REJECTED_COOLDOWN",
    "Credential",
    "CredentialStatus",
    "OAuthCredential",
]

logger = logging.getLogger("kimi_coder_auth.refresh")

ADVISORY_RETRY_DELAY = 30.0
REJECTED_COOLDOWN = 300.0
REFRESH_TIMEOUT = 5.0  # one POST while holding a lock kimi-cli waits ~5-10 s for
REJECTED_REREAD_DELAY = 0.2
ADVISORY_LOCK_WAIT = 1.0  # max wait for the cross-process lock while the token is still good
BUSY_HOLD = 5.0  # serve the current token this long after finding the lock busy


@dataclass(frozen=True)
class _Unsaved:
    """A rotated login the store could not save: this process holds its only valid copy."""

    token: OAuthToken
    replaced: Secret  # the refresh token it replaced (now dead at the server)
    os_error: str


# Refresh tokens the server rejected, process-wide (as kimi-cli does): key -> retry-after (epoch).
# Keys are hashes, never the token itself.
_rejected: dict[tuple[str, str], float] = {}
_rejected_lock = threading.Lock()


def _rt_key(store_path: str, refresh_token: Secret) -> tuple[str, str]:
    return store_path, hashlib.sha256(refresh_token.reveal().encode("utf-8")).hexdigest()


def _is_rejected(store_path: str, refresh_token: Secret, now: float) -> bool:
    key = _rt_key(store_path, refresh_token)
    with _rejected_lock:
        until = _rejected.get(key)
        if until is None:
            return False
        if now >= until:
            del _rejected[key]
            return False
        return True


def _mark_rejected(store_path: str, refresh_token: Secret, now: float) -> None:
    with _rejected_lock:
        _rejected[_rt_key(store_path, refresh_token)] = now + REJECTED_COOLDOWN


def _humanize(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class OAuthCredential:
    """A refreshing credential backed by one `TokenStore`; safe to share between threads and loops."""

    def __init__(
        self, store: TokenStore, *, oauth_host: str | None = None, lock_timeout: float = 30.0
    ) -> None:
        self.store = store
        self.source: str = store.name
        self._oauth_host = oauth_host
        self.lock_timeout = lock_timeout
        self._lock = threading.Lock()
        self._token: OAuthToken | None = None
        # (access token, fresh until): one attribute so the lock-free hot path reads it atomically
        self._hot: tuple[Secret, float] | None = None
        self._retry_after = float("-inf")
        self._unsaved: _Unsaved | None = None

    def __copy__(self) -> OAuthCredential:
        """Credentials are shared objects: copying returns the same one (one cache, one lock)."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> OAuthCredential:
        return self

    def __repr__(self) -> str:
        return f"OAuthCredential(source={self.source!r}, store={self.store!r})"

    # ------------------------------------------------------------------ public API

    def get_token(self) -> Secret:
        """A token fresh enough to use; refreshes (blocking) when due."""
        hot = self._hot
        if hot is not None and clock.now() < hot[1]:
            return hot[0]
        token = self._token
        if token is not None and token.access_token and not token.in_mandatory_window(clock.now()):
            # Advisory window: never wait for a refresh another thread is already doing.
            if not self._lock.acquire(blocking=False):
                return token.access_token
        else:
            self._lock.acquire()
        try:
            hot = self._hot
            if hot is not None and clock.now() < hot[1]:
                return hot[0]
            return self._slow_path(rejected=None)
        finally:
            self._lock.release()

    async def aget_token(self) -> Secret:
        """Async `get_token`; the hot path stays on the loop, the slow path runs in a thread."""
        hot = self._hot
        if hot is not None and clock.now() < hot[1]:
            return hot[0]
        return await asyncio.to_thread(self.get_token)

    def on_unauthorized(self, rejected: Secret) -> Secret | None:
        """After a 401 with `rejected`: a different current token, or one forced refresh."""
        with self._lock:
            current = self._token.access_token if self._token is not None else None
            if current and current != rejected and not self._token.is_expired(clock.now()):  # type: ignore[union-attr]
                return current
            return self._slow_path(rejected=rejected)

    async def aon_unauthorized(self, rejected: Secret) -> Secret | None:
        """Async `on_unauthorized` (runs in a worker thread)."""
        return await asyncio.to_thread(self.on_unauthorized, rejected)

    def invalidate(self) -> None:
        """Forget the cached token so the next call re-reads the file."""
        with self._lock:
            self._set(None)

    def describe(self) -> CredentialStatus:
        """Status for humans; reads the file, never raises for file problems, never shows tokens."""
        location = str(self.store.path)
        try:
            token = self.store.read()
        except ReauthRequired as exc:
            detail = f"revoked: {exc.message} Next step: {exc.hint}"
            return CredentialStatus(self.source, location, None, False, detail)
        except CredentialsUnavailable as exc:  # pragma: no cover - defensive
            return CredentialStatus(self.source, location, None, False, exc.message)
        except Exception as exc:  # CredentialFileCorrupt and friends
            return CredentialStatus(
                self.source, location, None, False, getattr(exc, "message", str(exc))
            )
        if token is None:
            return CredentialStatus(self.source, location, None, False, "missing: no login stored")
        now = clock.now()
        refreshable = bool(token.refresh_token)
        left = token.expires_at - now
        if not token.access_token and not refreshable:
            detail = "empty login (no tokens): log in again"
        elif left > 0:
            detail = f"access token valid for {_humanize(left)}"
            detail += "; refreshes automatically" if refreshable else "; cannot be refreshed"
        else:
            detail = f"access token expired {_humanize(left)} ago"
            detail += (
                "; refreshes on next use" if refreshable else "; no refresh token: log in again"
            )
        return CredentialStatus(
            self.source, location, token.expires_at or None, refreshable, detail
        )

    # ------------------------------------------------------------------ internals

    def _set(self, token: OAuthToken | None) -> None:
        self._token = token
        if token is None or not token.access_token:
            self._hot = None
        else:
            self._hot = (token.access_token, token.fresh_until)

    def _location(self) -> str:
        return str(self.store.path)

    def _read(self) -> OAuthToken:
        unsaved = self._unsaved
        try:
            token = self.store.read()
        except ReauthRequired:
            if unsaved is not None:  # tombstoned by a peer that used the dead refresh token
                return unsaved.token
            raise
        if unsaved is not None and token is not None and token.refresh_token == unsaved.replaced:
            return unsaved.token  # the file still holds the login our unsaved rotation replaced
        if token is None:
            raise CredentialsUnavailable(
                [SourceAttempt(self.source, "missing (no login stored)", self._location())],
                message="The stored login is gone (logged out?).",
            )
        return token

    def _usable(self, token: OAuthToken, rejected: Secret | None, now: float) -> bool:
        """Can `token` be handed out without refreshing?"""
        if not token.access_token or token.is_expired(now):
            return False
        if rejected is not None:
            return token.access_token != rejected
        return not token.needs_refresh(now)

    def _unsaved_note(self) -> str:
        unsaved = self._unsaved
        if unsaved is None:
            return ""
        return (
            f" Note: an earlier refreshed login could not be saved to {self._location()} "
            f"({unsaved.os_error}); its only valid copy is in the memory of process "
            f"{os.getpid()}, which saves it as soon as the folder is writable again."
        )

    def _reauth(self, why: str) -> ReauthRequired:
        return ReauthRequired(
            f"The {self.source} login in {self._location()} {why}{self._unsaved_note()}",
            source=self.source,
        )

    def _read_or_recover(self) -> OAuthToken:
        """`_read`, but a revoked marker with a dead writer's temp file next to it gets one
        recovery attempt under the store's lock (issue: a kill mid-write, then a tombstone)."""
        try:
            return self._read()
        except ReauthRequired:
            if not self.store.interrupted_writes():
                raise
            with self.store.lock(self.lock_timeout):
                self.store.recover_interrupted_write()
            return self._read()

    def _save_unsaved(self) -> None:
        """Try again to save a rotated login only this process holds (under the store's lock)."""
        unsaved = self._unsaved
        if unsaved is None:
            return
        try:
            with self.store.lock(min(self.lock_timeout, ADVISORY_LOCK_WAIT)):
                try:
                    disk = self.store.read()
                except ReauthRequired:
                    disk = None  # a peer's tombstone for the dead refresh token: ours is newer
                else:
                    if disk is None or disk.refresh_token != unsaved.replaced:
                        # logged out, or a new login was stored meanwhile: that one wins
                        self._unsaved = None
                        return
                self.store.write(unsaved.token)
        except CredentialStoreUnwritable:
            return
        except CredentialError as exc:
            logger.debug("Could not retry saving the %s login: %s", self.source, exc.message)
            return
        self._unsaved = None
        logger.warning("Saved the refreshed %s login to %s.", self.source, self._location())

    def _store_unwritable(
        self, disk: OAuthToken, rejected: Secret | None, exc: CredentialStoreUnwritable
    ) -> Secret:
        """The refresh cannot be saved, so it is not attempted: keep the current token."""
        now = clock.now()
        if rejected is None and disk.access_token and not disk.in_mandatory_window(now):
            logger.warning(
                "Not refreshing the %s token: %s cannot be written (%s); using the current one, "
                "which is valid for %s more, and checking again in %.0f s.",
                self.source,
                exc.path,
                exc.os_error,
                _humanize(disk.expires_at - now),
                ADVISORY_RETRY_DELAY,
            )
            self._retry_after = clock.monotonic() + ADVISORY_RETRY_DELAY
            self._set_stale(disk, ADVISORY_RETRY_DELAY)
            return disk.access_token
        raise CredentialStoreUnwritable(
            exc.path,
            exc.os_error,
            errno=exc.errno,
            message=(
                f"The {self.source} login needs a refresh, but {exc.path} cannot be written "
                f"({exc.os_error}). The refresh was not attempted, so the stored login is "
                f"unchanged.{self._unsaved_note()}"
            ),
        ) from None

    def _slow_path(self, *, rejected: Secret | None) -> Secret:
        """Holding `self._lock`: adopt from the file or refresh under the cross-process lock."""
        if self._unsaved is not None:
            self._save_unsaved()
        now = clock.now()
        disk = self._read_or_recover()
        if self._usable(disk, rejected, now):
            self._set(disk)
            return disk.access_token
        if (
            rejected is None
            and self._retry_after > clock.monotonic()
            and not disk.in_mandatory_window(now)
        ):
            # A refresh failed recently; the token is still good for a while.
            self._set_stale(disk, self._retry_after - clock.monotonic())
            return disk.access_token
        instead = self._check_refreshable(disk, rejected, now)
        if instead is not None:
            return instead

        # Advisory window: a peer holding the lock is probably refreshing; wait only briefly.
        advisory = rejected is None and not disk.in_mandatory_window(now)
        lock = self.store.lock(
            min(self.lock_timeout, ADVISORY_LOCK_WAIT) if advisory else self.lock_timeout
        )
        try:
            lock.__enter__()
        except CredentialError as exc:
            # Lock held too long by a peer (CredentialBusy) or impossible to prepare: never
            # refresh without it; use what the file holds if that is still valid.
            logger.debug("Credential lock unavailable: %s", exc.message)
            now = clock.now()
            again = self._read()
            if again.access_token and not again.is_expired(now) and again.access_token != rejected:
                if again.needs_refresh(now):
                    self._set_stale(again, BUSY_HOLD)
                else:
                    self._set(again)
                return again.access_token
            raise
        try:
            return self._refresh_locked(disk, rejected)
        finally:
            lock.__exit__(None, None, None)

    def _set_stale(self, token: OAuthToken, hold: float = 0.0) -> None:
        """Cache a token handed out while its refresh is postponed.

        The hot path may serve it for `hold` more seconds, never into the mandatory window.
        """
        self._token = token
        until = min(clock.now() + hold, token.expires_at - MANDATORY_WINDOW)
        self._hot = (token.access_token, until) if hold > 0 and token.access_token else None

    def _check_refreshable(
        self, disk: OAuthToken, rejected: Secret | None, now: float
    ) -> Secret | None:
        """None if `disk` can be refreshed; a token to use instead; raises when neither works."""
        if disk.refresh_token and not _is_rejected(self._location(), disk.refresh_token, now):
            return None
        if disk.access_token and not disk.is_expired(now) and disk.access_token != rejected:
            self._set_stale(disk, ADVISORY_RETRY_DELAY)
            return disk.access_token
        self._set(None)
        if not disk.refresh_token:
            if not disk.access_token:
                raise self._reauth("is empty (no access or refresh token).")
            raise self._reauth("has no refresh token and its access token is no longer valid.")
        raise self._reauth("was rejected by the server a moment ago.")

    def _refresh_locked(
        self, before: OAuthToken, rejected: Secret | None, *, retry: bool = True
    ) -> Secret:
        """Inside the store's lock: re-read, adopt a peer's rotation, or refresh once."""
        self.store.recover_interrupted_write()
        now = clock.now()
        disk = self._read()
        rotated = disk.refresh_token != before.refresh_token
        if self._usable(disk, rejected, now) or (
            rotated
            and disk.access_token
            and not disk.is_expired(now)
            and disk.access_token != rejected
        ):
            logger.debug("Adopting a token another process stored in %s", self._location())
            self._set(disk)
            return disk.access_token
        instead = self._check_refreshable(disk, rejected, now)
        if instead is not None:
            return instead
        try:
            self.store.check_writable()
        except CredentialStoreUnwritable as exc:
            return self._store_unwritable(disk, rejected, exc)
        logger.debug(
            "Refreshing the %s access token (refresh token %s)",
            self.source,
            disk.refresh_token.fingerprint(),
        )
        try:
            if self._oauth_host is None:  # bound once: this login is refreshed only there
                self._oauth_host = oauth_host()
            new = refresh_access_token(
                disk.refresh_token, host=self._oauth_host, timeout=REFRESH_TIMEOUT, previous=disk
            )
        except RefreshRejected:
            return self._handle_rejected(disk, rejected, retry=retry)
        except OAuthError as exc:
            now = clock.now()
            if rejected is None and disk.access_token and not disk.in_mandatory_window(now):
                # error class and status only: the message may carry server-provided text
                logger.warning(
                    "Refreshing the %s token failed (%s%s); using the current one, which is valid "
                    "for %s more, and retrying in %.0f s.",
                    self.source,
                    type(exc).__name__,
                    f", HTTP {exc.status}" if exc.status is not None else "",
                    _humanize(disk.expires_at - now),
                    ADVISORY_RETRY_DELAY,
                )
                self._retry_after = clock.monotonic() + ADVISORY_RETRY_DELAY
                self._set_stale(disk, ADVISORY_RETRY_DELAY)
                return disk.access_token
            raise
        try:
            self.store.write(new)
        except CredentialStoreUnwritable as exc:
            # The server already rotated the refresh token: the new login must not be lost.
            self._unsaved = _Unsaved(new, disk.refresh_token, exc.os_error)
            self._retry_after = float("-inf")
            self._set_stale(new, ADVISORY_RETRY_DELAY)  # served from memory; save retried in 30 s
            logger.error(
                "The refreshed %s login could not be saved to %s (%s); process %d keeps the only "
                "valid copy in memory.",
                self.source,
                exc.path,
                exc.os_error,
                os.getpid(),
            )
            raise CredentialStoreUnwritable(
                exc.path,
                exc.os_error,
                errno=exc.errno,
                message=(
                    f"The refreshed {self.source} login could not be saved to {exc.path} "
                    f"({exc.os_error}). The server has already replaced the refresh token, so "
                    f"the only valid copy is in the memory of this process ({os.getpid()}): it is "
                    "used for the next requests and saved as soon as the folder is writable again."
                ),
                hint=(
                    f"Free disk space or make {os.path.dirname(exc.path)} writable and keep this "
                    "process running until its next request; if it exits first, run "
                    "`kimi-coder login`."
                ),
            ) from None
        self._unsaved = None
        self._retry_after = float("-inf")
        self._set(new)
        return new.access_token

    def _handle_rejected(self, disk: OAuthToken, rejected: Secret | None, *, retry: bool) -> Secret:
        """invalid_grant: someone may have rotated without the lock; else log in again."""
        clock.sleep(REJECTED_REREAD_DELAY)
        now = clock.now()
        try:
            again = self.store.read()
        except Exception:
            again = None
        if again is not None and again.refresh_token and again.refresh_token != disk.refresh_token:
            # Another tool rotated without the lock: never tombstone over its login.
            logger.debug(
                "Refresh rejected but %s holds a newer login; adopting it", self._location()
            )
            if again.access_token and not again.is_expired(now) and again.access_token != rejected:
                self._set(again)
                return again.access_token
            if retry:
                return self._refresh_locked(again, rejected, retry=False)
            self._set(None)
            raise self._reauth("keeps changing while its refresh is rejected; log in again.")
        _mark_rejected(self._location(), disk.refresh_token, now)
        self._set(None)
        if self._unsaved is not None and disk.refresh_token == self._unsaved.token.refresh_token:
            self._unsaved = None  # the unsaved login itself was rejected: nothing left to save
        try:
            self.store.mark_revoked(disk)
        except CredentialStoreUnwritable as exc:
            raise self._reauth(
                "was rejected by the server (refresh token revoked or expired), and the revoked "
                f"marker could not be written to {exc.path} ({exc.os_error}): free disk space or "
                "make that folder writable before logging in again."
            ) from None
        raise self._reauth("was rejected by the server (refresh token revoked or expired).")
