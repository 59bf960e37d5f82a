"""Credential file stores, one per official CLI, each following its owner's format and lock.

`TokenStore` is the contract (docs/ARCHITECTURE.md "Stores"); `KimiCliStore` and `KimiCodeStore`
implement it. `FileTokenStore` holds the shared read / merge / write logic.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..atomic import atomic_write_bytes
from ..errors import CredentialFileCorrupt
from ..token import FILE_FIELDS, FileStyle, OAuthToken

__all__ = ["FileTokenStore", "KimiCliStore", "KimiCodeStore", "TokenStore", "store_for"]


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
        self._prepare_dir()
        failure = _write_file(self.path, self.serialize(data), self._make_temp())
        del data  # holds the revealed tokens: keep them out of the raising frame's locals
        if failure is not None:
            raise failure

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
