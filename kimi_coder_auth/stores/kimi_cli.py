"""kimi-cli's credential file: `<share>/credentials/kimi-code.json`, flock on `kimi-code.lock`.

Format exactly as kimi-cli's `OAuthToken.to_dict` + `_save_to_file`: compact JSON
(`json.dumps(..., ensure_ascii=False)`), no trailing newline, all six fields, float `expires_at`
and `expires_in`. A rejected refresh never touches this file (kimi-cli#1996); it is recorded in
a sidecar of our own naming, `kimi-code.kimi-coder-rejected` (no `.json`: nothing kimi-cli reads),
holding the sha256 of the file's exact bytes. While the file still has those bytes, `read()`
raises ReauthRequired in every process; any new login or rotation changes them and voids it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

from .. import clock
from ..atomic import atomic_write_bytes, ensure_private_dir
from ..errors import ReauthRequired
from ..locks import FlockLock
from ..paths import kimi_cli_credentials_path, kimi_cli_lock_path
from ..token import OAuthToken
from . import FileTokenStore, _decode, _held

logger = logging.getLogger("kimi_coder_auth.stores")
REJECTED_SUFFIX = ".kimi-coder-rejected"

__all__ = ["KimiCliStore"]


class KimiCliStore(FileTokenStore):
    """kimi-cli's login file (also what `kimi-coder login` writes by default)."""

    name = "kimi-cli"
    style = "kimi-cli"

    def __init__(self, path: str | Path | None = None, lock_path: str | Path | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock_path = Path(lock_path) if lock_path is not None else None

    @property
    def path(self) -> Path:
        """The credential file, resolved from `$KIMI_SHARE_DIR` at call time."""
        return self._path if self._path is not None else kimi_cli_credentials_path()

    @property
    def lock_path(self) -> Path:
        """The flock file next to it (never deleted)."""
        if self._lock_path is not None:
            return self._lock_path
        if self._path is not None:
            return self._path.with_suffix(".lock")
        return kimi_cli_lock_path()

    def serialize(self, data: dict[str, Any]) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")

    def _prepare_dir(self) -> None:
        ensure_private_dir(self.path.parent)

    def lock(self, timeout: float) -> ContextManager[None]:
        """kimi-cli's flock, waiting up to `timeout` seconds (CredentialBusy after that)."""
        return _held(FlockLock(self.lock_path, timeout=timeout))

    @property
    def rejected_marker(self) -> Path:
        """Our sidecar recording a server rejection of the login in `path` (never read by kimi-cli)."""
        return self.path.with_name(self.path.stem + REJECTED_SUFFIX)

    def _marked_rejected(self) -> bool:
        try:
            marker = json.loads(self.rejected_marker.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        digest = marker.get("file_digest") if isinstance(marker, dict) else None
        raw = self.read_bytes() if isinstance(digest, str) else None
        return raw is not None and hashlib.sha256(raw).hexdigest() == digest

    def read(self) -> OAuthToken | None:
        """The stored token; raises ReauthRequired when the server rejected exactly this login."""
        token = super().read()
        if token is not None and token.refresh_token and self._marked_rejected():
            raise ReauthRequired(
                f"The kimi-cli login in {self.path} was rejected by the server (refresh token "
                "revoked or expired); the file was left as it was.",
                source=self.name,
                hint="Log in again: `kimi-coder login`, or kimi-cli's `kimi login`.",
            )
        return token

    def mark_revoked(self, token: OAuthToken) -> None:
        """Record the rejection beside the file (the file itself stays untouched), only while the
        file still holds the rejected refresh token; a write failure is logged, never raised."""
        try:
            raw = self.read_bytes()
        except Exception:
            return
        if raw is None:
            return
        current, _ = _decode(raw)
        if current is None or current.refresh_token != token.refresh_token:
            return  # changed meanwhile (another tool rotated or logged in): nothing to record
        payload = {
            "version": 1,
            "file_digest": hashlib.sha256(raw).hexdigest(),
            "rejected_at": clock.now(),
            "by": "kimi-coder",
        }
        try:
            atomic_write_bytes(self.rejected_marker, json.dumps(payload).encode("utf-8"))
        except OSError as exc:
            logger.warning(
                "Could not record the rejected login next to %s (%s).",
                self.path,
                exc.strerror or type(exc).__name__,
            )
