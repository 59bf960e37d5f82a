"""kimi-cli's credential file: `<share>/credentials/kimi-code.json`, flock on `kimi-code.lock`.

Format exactly as kimi-cli's `OAuthToken.to_dict` + `_save_to_file`: compact JSON
(`json.dumps(..., ensure_ascii=False)`), no trailing newline, all six fields, float `expires_at`
and `expires_in`. A rejected refresh never touches this file (kimi-cli#1996).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

from ..atomic import ensure_private_dir
from ..locks import FlockLock
from ..paths import kimi_cli_credentials_path, kimi_cli_lock_path
from . import FileTokenStore, _held

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
