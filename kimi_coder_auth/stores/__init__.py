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
        """Decode the file's bytes; the problem description never quotes the content."""
        path = self.path
        if not raw.strip():
            raise _corrupt(path, "the file is empty")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _corrupt(path, "not UTF-8 text (binary content)") from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _corrupt(
                path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        try:
            return OAuthToken.from_file_dict(value)
        except ValueError as exc:
            raise _corrupt(path, str(exc)) from None

    def read(self) -> OAuthToken | None:
        """The stored token; None when the file is missing; raises CredentialFileCorrupt."""
        raw = self.read_bytes()
        if raw is None:
            return None
        return self.parse(raw)

    def _current_unknown_fields(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as fh:
                value = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError):
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
        atomic_write_bytes(self.path, self.serialize(data), make_temp=self._make_temp())

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
