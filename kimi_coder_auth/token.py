"""`OAuthToken`: a parsed login, its round trip through both CLIs' file formats, and its freshness.

Tokens are `Secret`s; unknown file fields ride along in `extra` so a write-back never drops them.
Refresh threshold is the official clients': refresh when less than `max(300 s, expires_in / 2)`
remains (300 s when `expires_in` is unknown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .errors import OAuthError
from .secret import Secret

__all__ = [
    "FILE_FIELDS",
    "MANDATORY_WINDOW",
    "MIN_REFRESH_THRESHOLD",
    "OAuthToken",
    "refresh_threshold",
]

FILE_FIELDS = ("access_token", "refresh_token", "expires_at", "scope", "token_type", "expires_in")
MIN_REFRESH_THRESHOLD = 300.0
REFRESH_THRESHOLD_RATIO = 0.5
MANDATORY_WINDOW = 60.0
_MAX_EXPIRES_IN = 365 * 24 * 3600.0

FileStyle = Literal["kimi-cli", "kimi-code"]


def refresh_threshold(expires_in: float) -> float:
    """Seconds before expiry at which a refresh is due (official clients' rule)."""
    if expires_in > 0:
        return max(MIN_REFRESH_THRESHOLD, expires_in * REFRESH_THRESHOLD_RATIO)
    return MIN_REFRESH_THRESHOLD


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


def _file_str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} should be a string, found {_type_name(value)}")
    return value


def _file_num(d: Mapping[str, Any], key: str) -> float:
    value = d.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"field {key!r} should be a number, found {_type_name(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"field {key!r} should be a number, found a non-numeric string") from None
    except OverflowError:  # an integer too large for a float (hundreds of digits)
        raise ValueError(f"field {key!r} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"field {key!r} is not a finite number")
    return number


def _int_if_integral(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class OAuthToken:
    """One OAuth login: tokens (as `Secret`), absolute expiry (epoch s), lifetime and metadata."""

    access_token: Secret
    refresh_token: Secret
    expires_at: float
    expires_in: float = 0.0
    scope: str = ""
    token_type: str = "Bearer"
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ parsing

    @classmethod
    def from_response(
        cls, payload: Mapping[str, Any], *, now: float, previous: OAuthToken | None = None
    ) -> OAuthToken:
        """Parse a token-endpoint success body; missing fields are named, values never shown.

        A response without `refresh_token` keeps `previous.refresh_token` (RFC 6749 §6);
        `previous.extra` (unknown file fields) is carried over.
        """
        if not isinstance(payload, Mapping):
            raise OAuthError("The token endpoint answered with something other than a JSON object.")
        problems: list[str] = []
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            problems.append("access_token")
        refresh = payload.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            if previous is not None and previous.refresh_token:
                refresh = previous.refresh_token.reveal()
            else:
                problems.append("refresh_token")
        raw_expires = payload.get("expires_in")
        expires_in = 0.0
        try:
            if isinstance(raw_expires, bool) or raw_expires is None:
                raise ValueError
            expires_in = float(raw_expires)
            if not math.isfinite(expires_in) or expires_in <= 0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append("expires_in")
        if problems:
            raise OAuthError(
                "The token endpoint's answer lacks a valid "
                + ", ".join(problems)
                + " (values not shown).",
                hint="This is a server-side problem; retry later or run `kimi-coder login`.",
            )
        expires_in = min(expires_in, _MAX_EXPIRES_IN)
        scope = payload.get("scope")
        token_type = payload.get("token_type")
        return cls(
            access_token=Secret(access),  # type: ignore[arg-type]
            refresh_token=Secret(refresh),  # type: ignore[arg-type]
            expires_at=now + expires_in,
            expires_in=expires_in,
            scope=scope if isinstance(scope, str) else (previous.scope if previous else ""),
            token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
            extra=dict(previous.extra) if previous is not None else {},
        )

    @classmethod
    def from_file_dict(cls, d: Any) -> OAuthToken:
        """Parse a credential file's JSON value leniently (missing fields get defaults).

        Raises ValueError (with a description that never contains values) when `d` is not an
        object or a known field has the wrong type.
        """
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, found {_type_name(d)}")
        return cls(
            access_token=Secret(_file_str(d, "access_token")),
            refresh_token=Secret(_file_str(d, "refresh_token")),
            expires_at=_file_num(d, "expires_at"),
            expires_in=_file_num(d, "expires_in"),
            scope=_file_str(d, "scope"),
            token_type=_file_str(d, "token_type"),
            extra={k: v for k, v in d.items() if k not in FILE_FIELDS},
        )

    def to_file_dict(self, style: FileStyle = "kimi-cli") -> dict[str, Any]:
        """The six fields in the owners' order (plus unknown fields kept), typed as `style` writes them.

        kimi-cli: float `expires_at` / `expires_in`. Kimi Code: integer `expires_at`.
        """
        if style == "kimi-code":
            expires_at: int | float = math.floor(self.expires_at)
            expires_in: int | float = _int_if_integral(self.expires_in)
        elif style == "kimi-cli":
            expires_at = float(self.expires_at)
            expires_in = float(self.expires_in)
        else:
            raise ValueError(f"unknown file style {style!r}")
        out: dict[str, Any] = {
            "access_token": self.access_token.reveal(),
            "refresh_token": self.refresh_token.reveal(),
            "expires_at": expires_at,
            "scope": self.scope,
            "token_type": self.token_type,
            "expires_in": expires_in,
        }
        for key, value in self.extra.items():
            if key not in out:
                out[key] = value
        return out

    def with_extra(self, extra: Mapping[str, Any]) -> OAuthToken:
        """A copy carrying `extra` as its unknown fields."""
        return replace(self, extra=dict(extra))

    # ------------------------------------------------------------------ freshness

    @property
    def threshold(self) -> float:
        """Seconds before expiry at which a refresh is due."""
        return refresh_threshold(self.expires_in)

    @property
    def fresh_until(self) -> float:
        """Epoch second after which `needs_refresh` is true."""
        return self.expires_at - self.threshold

    def needs_refresh(self, now: float) -> bool:
        """True inside the refresh window (or past expiry)."""
        return self.expires_at - now < self.threshold

    def is_expired(self, now: float) -> bool:
        """True once the access token's expiry has passed."""
        return self.expires_at <= now

    def in_mandatory_window(self, now: float) -> bool:
        """Expired, or so close to it (< 60 s) that a failed refresh must be raised."""
        return self.expires_at - now < MANDATORY_WINDOW

    @property
    def is_revoked_tombstone(self) -> bool:
        """Kimi Code's "login rejected" marker: an empty access token."""
        return not self.access_token

    @classmethod
    def revoked_tombstone(cls, prior: OAuthToken) -> OAuthToken:
        """Kimi Code's tombstone for `prior`: tokens blanked, expiry 0, scope/token_type kept."""
        return cls(Secret(""), Secret(""), 0.0, 0.0, prior.scope, prior.token_type, {})
