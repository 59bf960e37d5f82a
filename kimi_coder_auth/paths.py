"""Where the two official CLIs keep their logins; every function reads the environment when called.

kimi-cli: `$KIMI_SHARE_DIR` (default `~/.kimi`) / `credentials/kimi-code.json`, lock
`credentials/kimi-code.lock`. Kimi Code: `$KIMI_CODE_HOME` (default `~/.kimi-code`) /
`credentials/<name>.json`, lock directory `oauth/<name>.lock`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = [
    "DEFAULT_KIMI_CODE_BASE_URL",
    "DEFAULT_OAUTH_HOST",
    "KIMI_CODE_DEFAULT_NAME",
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


def _normalize_endpoint(value: str) -> str:
    return value.strip().rstrip("/")


def kimi_code_scoped_name() -> str | None:
    """Kimi Code's per-environment slot name, or None when host and base URL are the defaults.

    Kimi Code stores a login made against a non-default OAuth host or API base URL under
    `kimi-code-env-<first 16 hex of sha256(JSON{oauthHost, baseUrl})>` (managed-kimi-code.ts
    `resolveKimiCodeOAuthKey`), so tokens for different servers never mix.
    """
    host_env = os.environ.get("KIMI_CODE_OAUTH_HOST") or os.environ.get("KIMI_OAUTH_HOST")
    base_env = os.environ.get("KIMI_CODE_BASE_URL")
    oauth_host = _normalize_endpoint(host_env or DEFAULT_OAUTH_HOST)
    base_url = _normalize_endpoint(base_env or DEFAULT_KIMI_CODE_BASE_URL)
    if oauth_host == DEFAULT_OAUTH_HOST and base_url == DEFAULT_KIMI_CODE_BASE_URL:
        return None
    payload = json.dumps(
        {"oauthHost": oauth_host, "baseUrl": base_url}, separators=(",", ":"), ensure_ascii=False
    )
    return "kimi-code-env-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def kimi_code_token_name() -> str:
    """The Kimi Code slot we use: its per-environment slot if Kimi Code created one, else `kimi-code`.

    The default slot is what the docs and users expect (`credentials/kimi-code.json`); when a
    non-default host/base URL is configured and Kimi Code has already logged in for exactly that
    environment, its scoped file is the right one and we follow it (a stat, only at first use).
    """
    scoped = kimi_code_scoped_name()
    if scoped is not None and (kimi_code_credentials_dir() / f"{scoped}.json").exists():
        return scoped
    return KIMI_CODE_DEFAULT_NAME


def kimi_code_credentials_path(name: str | None = None) -> Path:
    """Kimi Code's credential file for slot `name` (default: `kimi_code_token_name()`)."""
    return kimi_code_credentials_dir() / f"{name or kimi_code_token_name()}.json"


def kimi_code_lock_target(name: str | None = None) -> Path:
    """proper-lockfile's sentinel file; the lock itself is the directory `<target>.lock`."""
    return kimi_code_home() / "oauth" / (name or kimi_code_token_name())
