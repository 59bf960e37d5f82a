"""Kimi Code's credential file: `$KIMI_CODE_HOME/credentials/<name>.json`, lock dir under `oauth/`.

Format exactly as Kimi Code's `FileTokenStorage.save`: `JSON.stringify(wire, null, 2)` plus a
newline, integer `expires_at`, temp `<file>.tmp.<pid>.<8 hex>` 0600, fsync, rename, directory
0700. Lock: proper-lockfile on `<home>/oauth/<name>` (see `locks.DirLock`). A rejected login is
recorded with Kimi Code's tombstone (both tokens empty, expiry 0), which reads as ReauthRequired.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

from ..atomic import ensure_private_dir, kimi_code_tmp
from ..errors import ReauthRequired
from ..locks import DirLock
from ..paths import kimi_code_home
from ..token import OAuthToken
from . import FileTokenStore, _held

__all__ = ["KimiCodeStore"]


def _login_command(slot: str) -> str:
    """The `kimi-coder login` that reaches `slot` again (region.py names the slots)."""
    from ..region import REGIONS, kimi_code_slot

    for name, profile in REGIONS.items():
        if kimi_code_slot(profile.oauth_host, profile.base_url) == slot:
            flag = "" if name == "mainland-cn" else f" --region {name}"
            return f"`kimi-coder login --store kimi-code{flag}`"
    return "`kimi-coder login` with the same KIMI_CODE_OAUTH_HOST / KIMI_CODE_BASE_URL"


class KimiCodeStore(FileTokenStore):
    """Kimi Code's login file."""

    name = "kimi-code"
    style = "kimi-code"

    def __init__(self, home: str | Path | None = None, token_name: str | None = None) -> None:
        self._home = Path(home) if home is not None else None
        self._token_name = token_name

    @property
    def home(self) -> Path:
        return self._home if self._home is not None else kimi_code_home()

    @property
    def token_name(self) -> str:
        """The slot: given, else Kimi Code's for the endpoint in force (`kimi-code` only for the
        default host pair; never the default slot for another server)."""
        if self._token_name is not None:
            return self._token_name
        from ..region import resolve_endpoint

        return resolve_endpoint(home=self.home).slot

    @property
    def path(self) -> Path:
        return self.home / "credentials" / f"{self.token_name}.json"

    @property
    def lock_target(self) -> Path:
        """proper-lockfile's sentinel; the lock directory is `<lock_target>.lock`."""
        return self.home / "oauth" / self.token_name

    def _removed_by_logout(self, raw: bytes) -> bool:
        """Kimi Code's logout marker `<name>.removed` says this exact content was logged out."""
        try:
            marker = json.loads(
                (self.path.parent / f"{self.token_name}.removed").read_text("utf-8")
            )
        except (OSError, ValueError, RecursionError):
            return False
        digest = marker.get("file_digest") if isinstance(marker, dict) else None
        return isinstance(digest, str) and digest == hashlib.sha256(raw).hexdigest()

    def _skip(self, raw: bytes) -> bool:
        return self._removed_by_logout(raw)

    def read(self) -> OAuthToken | None:
        """The stored token; raises ReauthRequired for Kimi Code's revoked tombstone."""
        token = super().read()
        if token is not None and token.is_revoked_tombstone:
            message = f"The Kimi Code login in {self.path} was rejected by the server (revoked)."
            strays = self.interrupted_writes()
            if strays:
                message += (
                    f" A newer login left by an interrupted write may be in {strays[0]}; "
                    "kimi-coder restores it on its next use of this login."
                )
            raise ReauthRequired(
                message,
                source=self.name,
                hint=f"Log in again: Kimi Code's `/login`, or {_login_command(self.token_name)}.",
            )
        return token

    def serialize(self, data: dict[str, Any]) -> bytes:
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def _prepare_dir(self) -> None:
        ensure_private_dir(self.path.parent, force_mode=True)

    def _make_temp(self) -> Any:
        return kimi_code_tmp

    def lock(self, timeout: float) -> ContextManager[None]:
        """Kimi Code's lock directory; fails closed (CredentialBusy) after `timeout` seconds."""
        return _held(DirLock(self.lock_target, timeout=timeout))

    def mark_revoked(self, token: OAuthToken) -> None:
        """Write Kimi Code's revoked tombstone, exactly its six fields."""
        self._write_dict(OAuthToken.revoked_tombstone(token).to_file_dict("kimi-code"))
