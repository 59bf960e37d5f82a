"""The two cross-process lock protocols, each exactly as its owner implements it.

`FlockLock` is kimi-cli's: `fcntl.flock(LOCK_EX|LOCK_NB)` on `credentials/kimi-code.lock`
(Windows: `msvcrt.locking` on byte 0). `DirLock` is Kimi Code's (npm proper-lockfile): an atomic
`mkdir` of `<target>.lock`, stale after 5 s without an mtime update, refreshed while held, removed
on release. Locks coordinate with real processes, so their waits use real time, not the clock seam.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import CredentialBusy, CredentialError

__all__ = ["DirLock", "FlockLock", "LockTimeout"]

logger = logging.getLogger("kimi_coder_auth.locks")

_UNSUPPORTED = {
    errno.ENOSYS,
    errno.EOPNOTSUPP,
    getattr(errno, "ENOTSUP", errno.EOPNOTSUPP),
    errno.ENOLCK,
}
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: object) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message, *args)


class LockTimeout(CredentialBusy):
    """The lock was held by another process for longer than we wait."""


class FlockLock:
    """kimi-cli's cross-process lock on `path`; a context manager, reusable, not reentrant.

    If the lock file cannot be opened (read-only FS, EACCES) or the FS does not support flock,
    a warning is logged once and the body runs without the lock: there is nobody we could
    coordinate with through another mechanism, and kimi-cli behaves the same way.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, poll: float = 0.05
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None
        self.locked = False

    def _open(self) -> int | None:
        try:
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(
                str(self.path), os.O_CREAT | os.O_RDWR | getattr(os, "O_BINARY", 0), 0o600
            )
        except OSError as exc:
            _warn_once(
                f"open:{self.path}",
                "Cannot open the credential lock file %s (%s); refreshing without the cross-process lock.",
                self.path,
                exc.strerror or type(exc).__name__,
            )
            return None

    @staticmethod
    def _try_lock(fd: int) -> bool:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            if os.fstat(fd).st_size == 0:
                os.write(fd, b"\0")
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EDEADLK):
                    return False
                raise
            return True
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return False
            raise
        return True

    def acquire(self) -> bool:
        """Take the lock, waiting up to `timeout`; False = proceeding unlocked (warned once)."""
        fd = self._open()
        if fd is None:
            return False
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    if self._try_lock(fd):
                        self._fd = fd
                        self.locked = True
                        return True
                except OSError as exc:
                    if exc.errno in _UNSUPPORTED:
                        _warn_once(
                            f"flock:{self.path}",
                            "flock is not supported on the file system of %s; refreshing without the "
                            "cross-process lock (no other lock kind is used, kimi-cli could not see it).",
                            self.path,
                        )
                        os.close(fd)
                        return False
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeout(
                        f"Another process held the credential lock {self.path} for more than "
                        f"{self.timeout:g} s."
                    )
                time.sleep(min(self.poll, remaining))
        except BaseException:
            if self._fd is None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise

    def release(self) -> None:
        """Release the lock; the lock file is kept (never unlinked, never truncated)."""
        fd, self._fd = self._fd, None
        self.locked = False
        if fd is None:
            return
        try:
            if sys.platform == "win32":  # pragma: no cover
                import msvcrt

                with contextlib.suppress(OSError):
                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> FlockLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def dir_lock_disabled() -> bool:
    """Kimi Code skips its lock on Windows and with `KIMI_DISABLE_OAUTH_LOCK=1`; so do we."""
    return sys.platform == "win32" or os.environ.get("KIMI_DISABLE_OAUTH_LOCK") == "1"


class DirLock:
    """Kimi Code's proper-lockfile protocol on sentinel `target`; fails closed on timeout.

    The sentinel is created empty if missing; the lock is the directory `<target>.lock` made with
    an atomic mkdir. A lock directory whose mtime is more than `stale` seconds old is abandoned:
    it is removed and the mkdir retried. While held, a daemon thread touches the directory every
    `update` seconds so peers never see it as stale. Release removes the directory.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        stale: float = 5.0,
        update: float = 1.0,
        poll: float = 0.05,
    ) -> None:
        self.target = Path(target)
        self.lock_dir = Path(f"{self.target}.lock")
        self.timeout = timeout
        self.stale = stale
        self.update = min(update, stale / 2)
        self.poll = poll
        self.locked = False
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def _prepare(self) -> None:
        try:
            parent = self.target.parent
            if not parent.is_dir():
                parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(str(self.target), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)
        except OSError as exc:
            raise CredentialError(
                f"Cannot prepare Kimi Code's refresh lock {self.target}: {exc.strerror or exc}.",
                hint="Check that the Kimi Code home (KIMI_CODE_HOME) is writable, "
                "or set KIMI_DISABLE_OAUTH_LOCK=1 to skip this lock.",
            ) from None

    def _is_stale(self) -> bool | None:
        """True/False for an existing lock dir; None if it vanished meanwhile."""
        try:
            mtime = os.stat(self.lock_dir).st_mtime
        except FileNotFoundError:
            return None
        return mtime < time.time() - self.stale

    def _try_acquire(self) -> bool:
        try:
            os.mkdir(self.lock_dir)
            return True
        except FileExistsError:
            pass
        stale = self._is_stale()
        if stale is None:
            return self._mkdir_once()
        if stale:
            logger.debug("Taking over the abandoned lock directory %s", self.lock_dir)
            try:
                os.rmdir(self.lock_dir)
            except FileNotFoundError:
                pass
            except OSError:
                return False
            return self._mkdir_once()
        return False

    def _mkdir_once(self) -> bool:
        try:
            os.mkdir(self.lock_dir)
            return True
        except FileExistsError:
            return False

    def _keep_fresh(self, stop: threading.Event) -> None:
        while not stop.wait(self.update):
            try:
                now = time.time()
                os.utime(self.lock_dir, (now, now))
            except FileNotFoundError:
                logger.warning("The lock directory %s was removed while we held it.", self.lock_dir)
                return
            except OSError:
                continue

    def acquire(self) -> bool:
        """Take the lock within `timeout` or raise `LockTimeout`; False when the lock is disabled."""
        if dir_lock_disabled():
            return False
        self._prepare()
        deadline = time.monotonic() + self.timeout
        while not self._try_acquire():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(
                    f"Kimi Code's refresh lock {self.lock_dir} stayed held for more than "
                    f"{self.timeout:g} s."
                )
            time.sleep(min(self.poll, remaining))
        self.locked = True
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_fresh,
            args=(self._stop,),
            name="kimi-code-lock-keepalive",
            daemon=True,
        )
        self._thread.start()
        return True

    def release(self) -> None:
        """Stop the keep-alive and remove the lock directory."""
        if not self.locked:
            return
        self.locked = False
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._stop = self._thread = None
        with contextlib.suppress(OSError):
            os.rmdir(self.lock_dir)

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def no_lock() -> Iterator[None]:
    """A lock that does nothing (tests, disabled locking)."""
    yield
