"""Where the two official CLIs keep their logins; every function reads the environment when called.

kimi-cli: `$KIMI_SHARE_DIR` (default `~/.kimi`) / `credentials/kimi-code.json`, lock
`credentials/kimi-code.lock`. Kimi Code: `$KIMI_CODE_HOME` (default `~/.kimi-code`) /
`credentials/<name>.json`, lock directory `oauth/<name>.lock`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .region import resolve_endpoint

__all__ = [
    "DEFAULT_KIMI_CODE_BASE_URL",
    "DEFAULT_OAUTH_HOST",
    "KIMI_CODE_DEFAULT_NAME",
    "default_base_url",
    "default_oauth_host",
    "kimi_cli_credentials_path",
    "kimi_cli_lock_path",
    "kimi_code_credentials_dir",
    "kimi_code_credentials_path",
    "kimi_code_home",
    "kimi_code_lock_target",
    "kimi_code_scoped_name",
    "kimi_code_token_name",
    "kimi_share_dir",
]

DEFAULT_OAUTH_HOST = "https://auth.kimi.com"
DEFAULT_KIMI_CODE_BASE_URL = "https://api.kimi.com/coding/v1"
KIMI_CODE_DEFAULT_NAME = "kimi-code"


def _env_dir(name: str, default: str) -> Path:
    value = os.environ.get(name)
    if value:
        return Path(value)
    return Path.home() / default


def kimi_share_dir() -> Path:
    """kimi-cli's share directory: `$KIMI_SHARE_DIR`, else `~/.kimi`."""
    return _env_dir("KIMI_SHARE_DIR", ".kimi")


def kimi_code_home() -> Path:
    """Kimi Code's home: `$KIMI_CODE_HOME`, else `~/.kimi-code`."""
    return _env_dir("KIMI_CODE_HOME", ".kimi-code")


def kimi_cli_credentials_path() -> Path:
    """kimi-cli's credential file (shared with `kimi login`)."""
    return kimi_share_dir() / "credentials" / "kimi-code.json"


def kimi_cli_lock_path() -> Path:
    """kimi-cli's flock file; it is never deleted or truncated."""
    return kimi_share_dir() / "credentials" / "kimi-code.lock"


def kimi_code_credentials_dir() -> Path:
    """Kimi Code's credential directory."""
    return kimi_code_home() / "credentials"


def kimi_code_scoped_name() -> str | None:
    """Kimi Code's per-host slot name in force, or None for the default host pair.

    Kimi Code stores a login made against a non-default OAuth host or API base URL under
    `kimi-code-env-<first 16 hex of sha256(JSON{oauthHost, baseUrl})>` (managed-kimi-code.ts
    `resolveKimiCodeOAuthKey`), so tokens for different servers never mix (see `region.py`).
    """
    name = kimi_code_token_name()
    return None if name == KIMI_CODE_DEFAULT_NAME else name


def kimi_code_token_name() -> str:
    """The Kimi Code slot for the endpoint in force: `kimi-code` only for the default host pair."""
    return resolve_endpoint().slot


def default_base_url() -> str:
    """The Coding API base URL in force: `$KIMI_CODE_BASE_URL`, else the region's (region-aware)."""
    return resolve_endpoint().base_url  # KIMI_CODE_BASE_URL first, cached per environment


def default_oauth_host() -> str:
    """The OAuth host in force: the host variables, else the region's (no trailing /)."""
    return resolve_endpoint().oauth_host


def kimi_code_credentials_path(name: str | None = None) -> Path:
    """Kimi Code's credential file for slot `name` (default: `kimi_code_token_name()`)."""
    return kimi_code_credentials_dir() / f"{name or kimi_code_token_name()}.json"


def kimi_code_lock_target(name: str | None = None) -> Path:
    """proper-lockfile's sentinel file; the lock itself is the directory `<target>.lock`."""
    return kimi_code_home() / "oauth" / (name or kimi_code_token_name())
