"""Regions and per-host login slots, resolved the way Kimi Code does (`region.ts`,
`managed-kimi-code.ts` `resolveKimiCodeOAuthKey`).

Two region profiles share one client id: `mainland-cn` (auth.kimi.com, api.kimi.com) and
`global` (auth.kimi.ai, api.kimi.ai). Which one applies, first match wins:

1. `region=` / `--region`, then `$KIMI_CODER_REGION` (ours; an OAuth host variable naming
   another host is a conflict, reported as an error);
2. `$KIMI_CODE_OAUTH_HOST` / `$KIMI_OAUTH_HOST` (a host of no profile is region "custom");
3. `oauthHost` of `[providers."managed:kimi-code"].oauth` in `<home>/config.toml`;
4. that ref's key `oauth/kimi-code` (mainland);
5. the marker file `<home>/region` (`mainland-cn` or `global`), written by install scripts;
6. `mainland-cn`.

The login slot is `kimi-code` only for https://auth.kimi.com with https://api.kimi.com/coding/v1;
any other pair gets `kimi-code-env-<first 16 hex of sha256(JSON{oauthHost, baseUrl})>`, so one
server's tokens never land in another's file. kimi-cli has one slot, for the default pair only.
Kimi Code's files are read once per home and process (`clear_region_cache()` forgets them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RegionError

__all__ = [
    "DEFAULT_REGION",
    "ENV_REGION",
    "REGIONS",
    "Endpoint",
    "RegionProfile",
    "check_region",
    "clear_region_cache",
    "kimi_code_slot",
    "normalize_region",
    "resolve_endpoint",
]

ENV_REGION = "KIMI_CODER_REGION"
DEFAULT_REGION = "mainland-cn"
DEFAULT_SLOT = "kimi-code"


@dataclass(frozen=True)
class RegionProfile:
    """One region's OAuth host and Coding API base URL."""

    oauth_host: str
    base_url: str


REGIONS: dict[str, RegionProfile] = {
    "mainland-cn": RegionProfile("https://auth.kimi.com", "https://api.kimi.com/coding/v1"),
    "global": RegionProfile("https://auth.kimi.ai", "https://api.kimi.ai/coding/v1"),
}
_ALIASES = {
    "mainland-cn": "mainland-cn",
    "mainland": "mainland-cn",
    "cn": "mainland-cn",
    "china": "mainland-cn",
    "kimi.com": "mainland-cn",
    "global": "global",
    "intl": "global",
    "international": "global",
    "kimi.ai": "global",
}
_SLOT_RE = re.compile(r"kimi-code(-env-[0-9a-f]{16})?")
_ENV_HOSTS = ("KIMI_CODE_OAUTH_HOST", "KIMI_OAUTH_HOST")


@dataclass(frozen=True)
class Endpoint:
    """Where a login comes from and is used: region, OAuth host, API base URL, login slot."""

    region: str  # "mainland-cn" | "global" | "custom" (a host of no profile)
    oauth_host: str
    base_url: str
    slot: str  # Kimi Code's credential name: "kimi-code" or "kimi-code-env-<16 hex>"
    reason: str  # how the region was chosen, in the words of the setting

    @property
    def is_default(self) -> bool:
        """True for the default host pair, the only one kimi-cli's single slot may hold."""
        return self.slot == DEFAULT_SLOT


def normalize_region(value: str, *, via: str = "region=") -> str:
    """The canonical region name for `value` (aliases: cn, mainland, intl, ...); RegionError names `via`."""
    key = value.strip().lower() if isinstance(value, str) else ""
    name = _ALIASES.get(key)
    if name is None:
        raise RegionError(
            f"Unknown region {value!r} in {via}.",
            hint=f"Use {via} mainland-cn (alias cn; auth.kimi.com) or global (alias intl; "
            "auth.kimi.ai), or leave it unset.",
        )
    return name


def _host(value: str) -> str:
    return value.strip().rstrip("/")


def _base(value: str) -> str:
    return value.rstrip("/")  # Kimi Code strips slashes only


def kimi_code_slot(oauth_host: str, base_url: str) -> str:
    """Kimi Code's credential name for this host pair (`resolveKimiCodeOAuthKey`)."""
    host, base = _host(oauth_host), _base(base_url)
    default = REGIONS[DEFAULT_REGION]
    if host == default.oauth_host and base == default.base_url:
        return DEFAULT_SLOT
    payload = json.dumps({"oauthHost": host, "baseUrl": base}, separators=(",", ":"), ensure_ascii=False)
    return "kimi-code-env-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _region_of(host: str) -> str:
    for name, profile in REGIONS.items():
        if profile.oauth_host == host:
            return name
    return "custom"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value and value.strip() else None


def _env_host() -> tuple[str, str] | None:
    for name in _ENV_HOSTS:
        value = _env(name)
        if value is not None:
            return name, _host(value)
    return None


def check_region(region: str | None, *, via: str = "region=") -> str | None:
    """Validate the explicit region (argument, else `$KIMI_CODER_REGION`) without file I/O.

    Returns the canonical name or None; raises RegionError for an unknown value or when an OAuth
    host variable names a different host than the region's.
    """
    if region is None:
        raw = _env(ENV_REGION)
        if raw is None:
            return None
        region, via = raw, ENV_REGION
    name = normalize_region(region, via=via)
    env_host = _env_host()
    if env_host is not None and env_host[1] != REGIONS[name].oauth_host:
        raise RegionError(
            f"{via} {region!r} means the OAuth host {REGIONS[name].oauth_host}, but {env_host[0]} "
            f"is {env_host[1]}.",
            hint=f"Unset {env_host[0]} to use the {name} region, or drop {via} to use that host.",
        )
    return name


# ------------------------------------------------------------------ Kimi Code's own files


@dataclass(frozen=True)
class _KimiCodeChoice:
    region: str | None
    oauth_host: str | None
    base_url: str | None
    slot: str | None
    reason: str


_cache: dict[str, _KimiCodeChoice] = {}
_cache_lock = threading.Lock()
# Resolved endpoints by (arguments, the variables they depend on): the transport asks per request.
_endpoints: dict[tuple[object, ...], Endpoint] = {}
_KEY_ENV = (
    ENV_REGION, *_ENV_HOSTS, "KIMI_CODE_BASE_URL", "KIMI_CODE_HOME", "HOME", "USERPROFILE"
)
# The cache key reads these per request; `os.environ.get` of a missing name costs ~1 us (it
# raises inside), so the key is read from the mapping's own storage when it has one (CPython).
_ENVIRON = os.environ
_RAW = getattr(_ENVIRON, "_data", None)
_encode = getattr(_ENVIRON, "encodekey", None)
_RAW_KEYS = tuple(_encode(n) for n in _KEY_ENV) if _RAW is not None and _encode else None


def _env_state() -> tuple[object, ...]:
    """The values (raw) of every variable an endpoint depends on, as a cache key."""
    if _RAW_KEYS is not None and os.environ is _ENVIRON:
        return tuple(map(_RAW.get, _RAW_KEYS))  # type: ignore[union-attr]
    return tuple(os.environ.get(n) for n in _KEY_ENV)


def clear_region_cache() -> None:
    """Forget what was read from Kimi Code's config.toml and region file (re-read on next use)."""
    with _cache_lock:
        _cache.clear()
        _endpoints.clear()


def _load_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)


def _from_config(home: Path) -> _KimiCodeChoice | None:
    """The managed provider's oauth ref in `<home>/config.toml`, if it says anything."""
    path = home / "config.toml"
    try:
        data = _load_toml(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return _KimiCodeChoice(
            None, None, None, None, f"{path} unreadable ({type(exc).__name__}), ignored; default"
        )
    providers = data.get("providers")
    provider = providers.get("managed:kimi-code") if isinstance(providers, dict) else None
    oauth = provider.get("oauth") if isinstance(provider, dict) else None
    if not isinstance(oauth, dict):
        return None
    key = oauth.get("key")
    slot = None
    if isinstance(key, str) and key.startswith("oauth/") and _SLOT_RE.fullmatch(key[6:]):
        slot = key[6:]
    base = provider.get("base_url") if isinstance(provider.get("base_url"), str) else None
    host = oauth.get("oauthHost")
    if isinstance(host, str) and host.strip():
        host = _host(host)
        return _KimiCodeChoice(_region_of(host), host, base, slot, f"oauthHost in {path}")
    if slot == DEFAULT_SLOT:
        return _KimiCodeChoice(DEFAULT_REGION, None, base, slot, f"oauth key oauth/kimi-code in {path}")
    return None


def _from_files(home: Path) -> _KimiCodeChoice:
    key = str(home)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    choice = _from_config(home)
    if choice is None:
        marker = home / "region"
        try:
            text = marker.read_text("utf-8").strip()
        except OSError:
            text = None
        if text in REGIONS:
            choice = _KimiCodeChoice(text, None, None, None, f"region file {marker}")
        elif text is not None:
            choice = _KimiCodeChoice(None, None, None, None, f"default ({marker} unrecognised, ignored)")
        else:
            choice = _KimiCodeChoice(None, None, None, None, "default")
    with _cache_lock:
        _cache[key] = choice
    return choice


def resolve_endpoint(
    region: str | None = None,
    *,
    base_url: str | None = None,
    oauth_host: str | None = None,
    via: str = "region=",
    home: Path | None = None,
) -> Endpoint:
    """The endpoint in force (see the module docstring for the order).

    `base_url` (an argument) beats `$KIMI_CODE_BASE_URL`, which beats the region's; `oauth_host`
    (an argument) counts like the host variables. Kimi Code's files are read only when neither
    a region nor a host is given.
    """
    key = (region, base_url, oauth_host, via, home, *_env_state())
    hit = _endpoints.get(key)
    if hit is None:
        hit = _resolve(region, base_url, oauth_host, via, home)
        with _cache_lock:
            if len(_endpoints) > 256:
                _endpoints.clear()
            _endpoints[key] = hit
    return hit


def _resolve(
    region: str | None, base_url: str | None, oauth_host: str | None, via: str, home: Path | None
) -> Endpoint:
    from .paths import kimi_code_home

    env_base = _env("KIMI_CODE_BASE_URL")
    given_base = base_url or env_base
    name = check_region(region, via=via) if oauth_host is None else None
    if name is not None:
        reason = f"{via} {region!r}" if region is not None else ENV_REGION
        profile = REGIONS[name]
        base = _base(given_base or profile.base_url)
        return Endpoint(name, profile.oauth_host, base, kimi_code_slot(profile.oauth_host, base), reason)
    if region is not None:  # with an explicit oauth_host: still validate the region
        name = normalize_region(region, via=via)
        if _host(oauth_host or "") != REGIONS[name].oauth_host:
            raise RegionError(
                f"{via} {region!r} conflicts with the OAuth host {oauth_host}.",
                hint=f"Pass either {via} or an OAuth host, not both.",
            )
    explicit = ("oauth_host argument", _host(oauth_host)) if oauth_host else _env_host()
    if explicit is not None:
        host = explicit[1]
        name = _region_of(host)
        profile = REGIONS.get(name, REGIONS[DEFAULT_REGION])
        base = _base(given_base or profile.base_url)
        return Endpoint(name, host, base, kimi_code_slot(host, base), explicit[0])
    choice = _from_files(home if home is not None else kimi_code_home())
    name = choice.region or DEFAULT_REGION
    profile = REGIONS.get(name, REGIONS[DEFAULT_REGION])
    host = choice.oauth_host or profile.oauth_host
    base = _base(given_base or choice.base_url or profile.base_url)
    slot = kimi_code_slot(host, base)
    if choice.slot is not None and given_base is None:
        slot = choice.slot  # the file Kimi Code itself reads for this provider
    return Endpoint(name, host, base, slot, choice.reason)
