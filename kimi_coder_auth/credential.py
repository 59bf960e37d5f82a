"""The credential contract every module relies on: `Credential` and `CredentialStatus`.

See docs/ARCHITECTURE.md, "Credentials". `refresh.OAuthCredential`, `sources.StaticCredential` and
`sources.DiscoveredCredential` implement it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .secret import Secret

__all__ = ["Credential", "CredentialStatus"]


@dataclass(frozen=True)
class CredentialStatus:
    """What `kimi-coder status` shows about a credential; never contains a token."""

    source: str
    location: str | None
    expires_at: float | None
    refreshable: bool
    detail: str
    region: str | None = None  # the endpoint discovery used: region, OAuth host, login slot
    oauth_host: str | None = None
    slot: str | None = None


@runtime_checkable
class Credential(Protocol):
    """Anything that can hand out a bearer token (see docs/ARCHITECTURE.md, "Credentials")."""

    @property
    def source(self) -> str: ...

    def get_token(self) -> Secret: ...

    async def aget_token(self) -> Secret: ...

    def on_unauthorized(self, rejected: Secret) -> Secret | None: ...

    async def aon_unauthorized(self, rejected: Secret) -> Secret | None: ...

    def describe(self) -> CredentialStatus: ...
