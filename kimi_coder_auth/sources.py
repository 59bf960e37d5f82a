"""Credential discovery: which login to use, decided lazily on first use.

Order (first usable wins): explicit `api_key` > `$KIMI_CODER_API_KEY` (empty = unset) > kimi-cli's
file > Kimi Code's file. A source can be pinned with `credentials=` or `$KIMI_CODER_CREDENTIALS`
(`env`, `kimi-cli`, `kimi-code`); a pinned source that is unusable fails loudly with its reason.
When nothing is usable, `CredentialsUnavailable` lists every source and why it was skipped.
Building a credential does no I/O; lower sources are never read once a higher one is usable.

Region (`region.py`): discovery first settles the endpoint (region, OAuth host, base URL, Kimi
Code slot). For the default host pair it reads kimi-cli's file and Kimi Code's `kimi-code` slot;
for any other host only Kimi Code's per-host slot, because kimi-cli's single file belongs to the
default host. The login found is refreshed only against that endpoint's OAuth host.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import replace
from pathlib import Path

from . import clock
from .errors import (
    CredentialError,
    CredentialFileCorrupt,
    CredentialsUnavailable,
    ReauthRequired,
    SourceAttempt,
)
from .paths import kimi_code_home, kimi_share_dir
from .refresh import Credential, CredentialStatus, OAuthCredential, _is_rejected
from .region import Endpoint, check_region, clear_region_cache, resolve_endpoint
from .secret import Secret
from .stores import FileTokenStore, KimiCliStore, KimiCodeStore

__all__ = [
    "ENV_API_KEY",
    "ENV_PIN",
    "SOURCES",
    "Credential",
    "CredentialStatus",
    "DiscoveredCredential",
    "OAuthCredential",
    "StaticCredential",
    "clear_credential_cache",
    "default_credential",
    "oauth_credential_for",
    "resolve_credential",
]

ENV_API_KEY = "KIMI_CODER_API_KEY"
ENV_PIN = "KIMI_CODER_CREDENTIALS"
SOURCES = ("env", "kimi-cli", "kimi-code")


class StaticCredential:
    """A fixed bearer token (an API key): no refresh, nothing better after a 401."""

    def __init__(self, api_key: str | Secret, *, source: str = "explicit") -> None:
        secret = api_key if isinstance(api_key, Secret) else Secret(api_key)
        if not secret.reveal().strip():
            raise CredentialError(
                "The API key is empty.",
                hint="Pass a Kimi Code API key, or leave api_key unset to use the Kimi CLI login.",
            )
        self._secret = Secret(secret.reveal().strip())
        self.source = source

    def __copy__(self) -> StaticCredential:
        """Credentials are shared objects: copying returns the same one (one cache, one lock)."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> StaticCredential:
        return self

    def __repr__(self) -> str:
        return f"StaticCredential(source={self.source!r}, token=Secret('**********'))"

    def get_token(self) -> Secret:
        return self._secret

    async def aget_token(self) -> Secret:
        return self._secret

    def on_unauthorized(self, rejected: Secret) -> Secret | None:
        return None

    async def aon_unauthorized(self, rejected: Secret) -> Secret | None:
        return None

    def describe(self) -> CredentialStatus:
        where = ENV_API_KEY if self.source == "env" else "api_key argument"
        return CredentialStatus(self.source, where, None, False, "static API key (never refreshed)")


# One OAuthCredential per credential file and OAuth host, process-wide, so every model shares
# one cache/lock.
_oauth_credentials: dict[tuple[str, str, str | None], OAuthCredential] = {}
_registry_lock = threading.Lock()


def oauth_credential_for(store: FileTokenStore, oauth_host: str | None = None) -> OAuthCredential:
    """The process-wide `OAuthCredential` for `store`'s file, refreshed at `oauth_host` (default:
    the host in force at its first refresh)."""
    key = (store.name, str(store.path), oauth_host)
    with _registry_lock:
        cred = _oauth_credentials.get(key)
        if cred is None:
            cred = _oauth_credentials[key] = OAuthCredential(store, oauth_host=oauth_host)
        return cred


def _not_for_kimi_cli(endpoint: Endpoint) -> str:
    return (
        f"not used for {endpoint.oauth_host} ({endpoint.region}): kimi-cli keeps one login, "
        "for the default host https://auth.kimi.com only"
    )


def _login_hint(endpoint: Endpoint) -> str:
    how = f" --region {endpoint.region}" if endpoint.region != "custom" else ""
    return (
        f"Run `kimi-coder login{how}` with the same settings (it saves to Kimi Code's slot "
        f"{endpoint.slot}), or Kimi Code's `/login`; or set KIMI_CODER_API_KEY to an API key."
    )


def _probe_store(
    store: FileTokenStore, oauth_host: str | None = None
) -> tuple[OAuthCredential | None, SourceAttempt, BaseException | None]:
    """Check whether `store` holds a usable login; never raises for file problems."""
    location = str(store.path)
    try:
        token = store.read()
    except ReauthRequired as exc:
        if store.interrupted_writes():  # a killed writer's newer login: recovered on first use
            return oauth_credential_for(store), SourceAttempt(store.name, "usable", location), None
        return (
            None,
            SourceAttempt(store.name, "revoked: the login was rejected; log in again", location),
            exc,
        )
    except CredentialFileCorrupt as exc:
        reason = exc.problem
        kind = "unreadable" if "permission" in reason or "cannot be read" in reason else "corrupt"
        return None, SourceAttempt(store.name, f"{kind}: {reason}", location), exc
    if token is None:
        return None, SourceAttempt(store.name, "missing", location), None
    now = clock.now()
    usable_access = bool(token.access_token) and not token.is_expired(now)
    if not token.refresh_token and not usable_access:
        reason = (
            "empty login (no tokens)"
            if not token.access_token
            else "no refresh token (access token expired)"
        )
        return None, SourceAttempt(store.name, reason, location), None
    if (
        token.refresh_token
        and not usable_access
        and _is_rejected(location, token.refresh_token, now)
    ):
        return (
            None,
            SourceAttempt(store.name, "revoked: the refresh token was rejected", location),
            None,
        )
    return oauth_credential_for(store, oauth_host), SourceAttempt(store.name, "usable", location), None


class DiscoveredCredential:
    """The lazily discovered credential: walks the sources on first use, then sticks to the winner."""

    def __init__(
        self,
        pin: str | None = None,
        *,
        share_dir: Path | None = None,
        code_home: Path | None = None,
        region: str | None = None,
        base_url: str | None = None,
        via: str = "region=",
    ) -> None:
        self.pin = pin
        self._share_dir = share_dir
        self._code_home = code_home
        self._region = region
        self._base_url = base_url
        self._via = via
        self._endpoint: Endpoint | None = None
        self._delegate: Credential | None = None
        self._lock = threading.Lock()

    def __copy__(self) -> DiscoveredCredential:
        """Credentials are shared objects: copying returns the same one (one cache, one lock)."""
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> DiscoveredCredential:
        return self

    def __repr__(self) -> str:
        return f"DiscoveredCredential(pin={self.pin!r}, resolved={self.source!r})"

    @property
    def source(self) -> str:
        """The winning source once resolved; before that the pin or "auto"."""
        if self._delegate is not None:
            return self._delegate.source
        return self.pin or "auto"

    @property
    def endpoint(self) -> Endpoint:
        """Region, OAuth host, base URL and Kimi Code slot this discovery uses (read once)."""
        endpoint = self._endpoint
        if endpoint is None:
            endpoint = self._endpoint = resolve_endpoint(
                self._region, base_url=self._base_url, via=self._via, home=self._code_home
            )
        return endpoint

    def _stores(self) -> list[FileTokenStore]:
        cli = (
            KimiCliStore(self._share_dir / "credentials" / "kimi-code.json")
            if self._share_dir
            else KimiCliStore()
        )
        slot = self.endpoint.slot
        code = KimiCodeStore(self._code_home, slot) if self._code_home else KimiCodeStore(None, slot)
        return [cli, code]

    def _walk(self) -> Credential:
        attempts: list[SourceAttempt] = []
        wanted = [self.pin] if self.pin else list(SOURCES)
        endpoint = self.endpoint
        cli, code = self._stores()
        for name in wanted:
            if name == "env":
                value = os.environ.get(ENV_API_KEY)
                if value is not None and value.strip():
                    return StaticCredential(value, source="env")
                reason = "not set" if value is None else "set but empty"
                attempts.append(SourceAttempt("env", reason, ENV_API_KEY))
                continue
            store = cli if name == "kimi-cli" else code
            if store is cli and not endpoint.is_default:
                attempts.append(SourceAttempt("kimi-cli", _not_for_kimi_cli(endpoint), str(cli.path)))
                continue
            cred, attempt, exc = _probe_store(store, endpoint.oauth_host)
            if cred is not None:
                return cred
            if self.pin and exc is not None:
                raise exc  # pinned: the typed error (corrupt, revoked) says exactly what is wrong
            attempts.append(attempt)
        hint = None if endpoint.is_default else _login_hint(endpoint)
        if self.pin:
            raise CredentialsUnavailable(
                attempts,
                message=f"The pinned credential source {self.pin!r} is not usable:",
                hint=hint,
            )
        raise CredentialsUnavailable(attempts, hint=hint)

    def resolve(self) -> Credential:
        """Discover (once) and return the credential in use."""
        delegate = self._delegate
        if delegate is not None:
            return delegate
        with self._lock:
            if self._delegate is None:
                self._delegate = self._walk()
            return self._delegate

    def get_token(self) -> Secret:
        delegate = self._delegate
        return (delegate or self.resolve()).get_token()

    async def aget_token(self) -> Secret:
        delegate = self._delegate
        if delegate is None:
            delegate = await asyncio.to_thread(self.resolve)
        return await delegate.aget_token()

    def on_unauthorized(self, rejected: Secret) -> Secret | None:
        return self.resolve().on_unauthorized(rejected)

    async def aon_unauthorized(self, rejected: Secret) -> Secret | None:
        delegate = self._delegate
        if delegate is None:
            delegate = await asyncio.to_thread(self.resolve)
        return await delegate.aon_unauthorized(rejected)

    def _with_endpoint(self, status: CredentialStatus) -> CredentialStatus:
        ep = self.endpoint
        return replace(status, region=ep.region, oauth_host=ep.oauth_host, slot=ep.slot)

    def describe(self) -> CredentialStatus:
        """Status of the credential in use, or of the failure to find one (never raises)."""
        try:
            return self._with_endpoint(self.resolve().describe())
        except CredentialError as exc:
            return CredentialStatus(self.pin or "none", None, None, False, str(exc))

    def describe_all(self) -> list[CredentialStatus]:
        """Status of every candidate source (for `kimi-coder status`); reads every file."""
        out: list[CredentialStatus] = []
        value = os.environ.get(ENV_API_KEY, "")
        out.append(
            CredentialStatus(
                "env",
                ENV_API_KEY,
                None,
                False,
                "set (static API key)" if value.strip() else "not set",
            )
        )
        endpoint = self.endpoint
        for store in self._stores():
            if store.name == "kimi-cli" and not endpoint.is_default:
                status = CredentialStatus(
                    "kimi-cli", str(store.path), None, False, _not_for_kimi_cli(endpoint)
                )
            else:
                status = OAuthCredential(store, oauth_host=endpoint.oauth_host).describe()
            out.append(self._with_endpoint(status))
        return out


_discovered: dict[tuple[object, ...], DiscoveredCredential] = {}


def _check_pin(credentials: str | None) -> str | None:
    pin = credentials if credentials is not None else (os.environ.get(ENV_PIN) or None)
    if pin is None:
        return None
    pin = pin.strip().lower()
    if pin in ("", "auto"):
        return None
    if pin not in SOURCES:
        raise CredentialError(
            f"Unknown credential source {pin!r}.",
            hint=f"Use one of {', '.join(SOURCES)} (argument credentials= or {ENV_PIN}), or leave it unset.",
        )
    return pin


def _endpoint_env() -> tuple[str | None, ...]:
    names = ("KIMI_CODER_REGION", "KIMI_CODE_OAUTH_HOST", "KIMI_OAUTH_HOST", "KIMI_CODE_BASE_URL")
    return tuple(os.environ.get(name) for name in names)


def resolve_credential(
    api_key: str | Secret | None = None,
    credentials: str | None = None,
    *,
    region: str | None = None,
    base_url: str | None = None,
    via: str = "region=",
) -> Credential:
    """The credential to use, without any I/O (discovery runs on first `get_token()`).

    `api_key` wins and is never refreshed. Otherwise a process-wide `DiscoveredCredential` for
    (pin, homes, region, base URL, endpoint variables) is returned, so many chat models share one
    token cache. An unknown or contradictory region raises `RegionError` here, naming `via`.
    """
    if region is not None or os.environ.get("KIMI_CODER_REGION"):
        check_region(region, via=via)  # env only: a bad region fails before any request
    if api_key is not None:
        return StaticCredential(api_key, source="explicit")
    pin = _check_pin(credentials)
    share_dir, code_home = kimi_share_dir(), kimi_code_home()
    key = (pin, str(share_dir), str(code_home), region, base_url, via, *_endpoint_env())
    with _registry_lock:
        cred = _discovered.get(key)
        if cred is None:
            cred = _discovered[key] = DiscoveredCredential(
                pin,
                share_dir=share_dir,
                code_home=code_home,
                region=region,
                base_url=base_url,
                via=via,
            )
        return cred


def clear_credential_cache() -> None:
    """Forget every shared credential object and what was read of Kimi Code's config/region files
    (tests; after changing KIMI_SHARE_DIR or those files at runtime)."""
    with _registry_lock:
        _discovered.clear()
        _oauth_credentials.clear()
    clear_region_cache()


def default_credential() -> Credential:
    """`resolve_credential()` with no arguments: env, then kimi-cli's file, then Kimi Code's."""
    return resolve_credential()
