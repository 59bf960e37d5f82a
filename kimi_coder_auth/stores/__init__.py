"""Credential file stores, one per official CLI, each following its owner's format and lock.

`TokenStore` is the contract (docs/ARCHITECTURE.md "Stores"); `KimiCliStore` and `KimiCodeStore`
implement it. `FileTokenStore` holds the shared read / merge / write logic.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..atomic import atomic_write_bytes, probe_writable, resolve_target, stray_temps
from ..errors import CredentialFileCorrupt, CredentialStoreUnwritable
from ..token import FILE_FIELDS, FileStyle, OAuthToken

__all__ = ["FileTokenStore", "KimiCliStore", "KimiCodeStore", "TokenStore", "store_for"]

logger = logging.getLogger("kimi_coder_auth.stores")

PROBE_MIN_BYTES = 4096  # a refreshed file is a few hundred bytes; probe with room to spare
PROBE_MAX_BYTES = 1 << 20


@runtime_checkable
class TokenStore(Protocol):
    """A login's persistent home, with its owner's cross-process lock."""

    name: str

    @property
    def path(self) -> Path: ...

    def read(self) -> OAuthToken | None: ...

    def write(self, token: OAuthToken) -> None: ...

    def lock(self, timeout: float) -> ContextManager[None]: ...

    def mark_revoked(self, token: OAuthToken) -> None: ...

    def delete(self) -> bool: ...

    def check_writable(self) -> None: ...

    def recover_interrupted_write(self) -> Path | None: ...

    def interrupted_writes(self) -> list[Path]: ...


def _writer_alive(pid: int) -> bool:
    """Is process `pid` still running? (POSIX; a pid we cannot signal belongs to a live process.)"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _unwritable(path: Path, exc: OSError) -> CredentialStoreUnwritable:
    return CredentialStoreUnwritable(
        str(path), exc.strerror or type(exc).__name__, errno=exc.errno
    )


def _corrupt(path: Path, problem: str) -> CredentialFileCorrupt:
    return CredentialFileCorrupt(str(path), problem)


def _decode(raw: bytes) -> tuple[OAuthToken, None] | tuple[None, str]:
    """Parse a credential file's bytes without raising: (token, None) or (None, problem).

    Returning instead of raising keeps the content out of tracebacks: this frame (holding the
    text) is gone before the caller raises, and no `JSONDecodeError` (whose `.doc` is the whole
    file) becomes the `__context__` of the error. The problem never quotes the content.
    """
    if not raw.strip():
        return None, "the file is empty"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text (binary content)"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        return None, problem
    except RecursionError:
        return None, "nested too deeply to be a credential file"
    except ValueError:  # an integer longer than Python's int/str conversion limit (4300 digits)
        return None, "holds a number too long to read"
    try:
        return OAuthToken.from_file_dict(value), None
    except (ValueError, OverflowError, RecursionError) as exc:
        problem = str(exc) if isinstance(exc, ValueError) else "a field is out of range"
        return None, problem


def _write_file(path: Path, payload: bytes, make_temp: Any) -> OSError | None:
    """Write atomically; an OSError comes back as a fresh copy (errno, strerror, filename) so
    neither its traceback (frames holding `payload`) nor its chain survives this frame."""
    try:
        atomic_write_bytes(path, payload, make_temp=make_temp)
    except OSError as exc:
        return OSError(exc.errno, exc.strerror or type(exc).__name__, exc.filename)
    return None


class FileTokenStore:
    """Shared logic of the JSON credential files; subclasses fix format, paths and lock."""

    name: str = ""
    style: FileStyle = "kimi-cli"

    @property
    def path(self) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ reading

    def read_bytes(self) -> bytes | None:
        """The file's raw bytes; None if missing; CredentialFileCorrupt if it cannot be read."""
        path = self.path
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise _corrupt(path, "it is a directory, not a file") from None
        except PermissionError:
            raise CredentialFileCorrupt(
                str(path),
                "permission denied",
                hint=f"Make {path} readable by this user (chmod 600, correct owner).",
            ) from None
        except OSError as exc:
            raise _corrupt(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None

    def parse(self, raw: bytes) -> OAuthToken:
        """Decode the file's bytes; the problem description never quotes the content.

        The content never stays in a frame that raises (traceback locals) nor in the error's
        chain: decoding happens in `_decode`, which returns a problem instead of raising.
        """
        token, problem = _decode(raw)
        del raw
        if token is None:
            raise _corrupt(self.path, problem or "unreadable")
        return token

    def _skip(self, raw: bytes) -> bool:
        """True when `raw` is to be treated as "no login" (Kimi Code's logout marker)."""
        return False

    def _load(self) -> tuple[OAuthToken | None, str | None]:
        """(token, None), (None, None) when missing or skipped, or (None, problem); never raises
        for bad content, so the raw file text is gone before anyone raises."""
        raw = self.read_bytes()
        if raw is None or self._skip(raw):
            return None, None
        return _decode(raw)

    def read(self) -> OAuthToken | None:
        """The stored token; None when the file is missing; raises CredentialFileCorrupt."""
        token, problem = self._load()
        if problem is not None:
            raise _corrupt(self.path, problem)
        return token

    def _current_unknown_fields(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                value = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # unreadable or corrupt: nothing to keep
            return {}
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if k not in FILE_FIELDS}

    # ------------------------------------------------------------------ writing

    def serialize(self, data: dict[str, Any]) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare_dir(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write_dict(self, data: dict[str, Any]) -> None:
        path = self.path
        try:
            self._prepare_dir()
        except OSError as exc:
            raise _unwritable(path, exc) from None
        failure = _write_file(path, self.serialize(data), self._make_temp())
        del data  # holds the revealed tokens: keep them out of the raising frame's locals
        if failure is not None:
            raise _unwritable(path, failure) from None

    def check_writable(self) -> None:
        """Raise CredentialStoreUnwritable unless a rewrite of the file could succeed now.

        Creates, fills and fsyncs a temp file of at least twice the current size in the file's
        folder, then removes it: called before spending a refresh token, whose rotation would be
        lost if the result could not be saved.
        """
        path = self.path
        try:
            size = min(max(PROBE_MIN_BYTES, 2 * os.stat(path).st_size), PROBE_MAX_BYTES)
        except OSError:
            size = PROBE_MIN_BYTES
        try:
            self._prepare_dir()
            probe_writable(path, size, make_temp=self._make_temp())
        except OSError as exc:
            raise _unwritable(path, exc) from None

    # ------------------------------------------------------------------ interrupted writes

    def interrupted_writes(self) -> list[Path]:
        """Temp files of this file left by writers that are no longer running (never on Windows)."""
        if sys.platform == "win32":
            return []
        return [p for p, pid in stray_temps(self.path) if not _writer_alive(pid)]

    def _load_stray(self, path: Path) -> OAuthToken | None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            return None
        token, _ = _decode(raw)
        del raw
        return token

    def recover_interrupted_write(self) -> Path | None:
        """Under the store's lock: promote a dead writer's complete, newer temp file; remove the rest.

        A writer killed between writing its temp file and the rename leaves the only copy of a
        rotated refresh token there. A temp file that parses completely, holds both tokens, a
        refresh token different from the main file's and a later expiry replaces the main file
        (an atomic rename); other leftovers of dead writers are removed, so no live token stays in
        a stray file. Nothing happens when the main file is missing, logged out or corrupt (a
        corrupt file is reported, never replaced). Returns the promoted temp file's old path.
        """
        strays = self.interrupted_writes()
        if not strays:
            return None
        try:
            current, problem = self._load()
        except CredentialFileCorrupt:
            return None
        if current is None or problem is not None:
            return None
        best: tuple[Path, float] | None = None
        for stray in strays:
            token = self._load_stray(stray)
            if (
                token is not None
                and token.access_token
                and token.refresh_token
                and token.refresh_token != current.refresh_token
                and token.expires_at > current.expires_at
                and (best is None or token.expires_at > best[1])
            ):
                best = (stray, token.expires_at)
        promoted: Path | None = None
        if best is not None:
            try:
                os.replace(best[0], resolve_target(self.path))
                promoted = best[0]
            except OSError as exc:
                logger.warning(
                    "Could not restore the login left in %s by an interrupted write (%s).",
                    best[0],
                    exc.strerror or type(exc).__name__,
                )
                return None
            logger.warning(
                "Restored the newer login that an interrupted write had left in %s to %s.",
                promoted,
                self.path,
            )
        for stray in strays:
            if stray != promoted:
                with contextlib.suppress(OSError):
                    os.unlink(stray)
        return promoted

    def _make_temp(self) -> Any:
        return None

    def write(self, token: OAuthToken) -> None:
        """Atomically write `token` (0600), keeping unknown fields already in the file."""
        merged = {**self._current_unknown_fields(), **dict(token.extra)}
        self._write_dict(token.with_extra(merged).to_file_dict(self.style))

    def lock(self, timeout: float) -> ContextManager[None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def mark_revoked(self, token: OAuthToken) -> None:
        """Record that `token` was rejected; the default (kimi-cli) leaves the file alone."""

    def delete(self) -> bool:
        """Remove the credential file under the store's lock (logout); True if a file was removed."""
        with self.lock(30.0):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                return False
            return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"


@contextlib.contextmanager
def _held(lock: Any) -> Iterator[None]:
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def store_for(name: str) -> FileTokenStore:
    """A store by source name: "kimi-cli" or "kimi-code"."""
    if name == "kimi-cli":
        return KimiCliStore()
    if name == "kimi-code":
        return KimiCodeStore()
    raise ValueError(f"unknown credential store {name!r}; use 'kimi-cli' or 'kimi-code'")


from .kimi_cli import KimiCliStore  # noqa: E402
from .kimi_code import KimiCodeStore  # noqa: E402
