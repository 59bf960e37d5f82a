"""A token type whose repr and str never show the value.

Tokens travel through the package as `Secret`; only the code that writes a header or a file
calls `reveal()`. `fingerprint()` gives a short, stable, non-reversible tag for logs.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["Secret", "fingerprint"]


def fingerprint(value: str) -> str:
    """Return an 8-hex-digit SHA-256 tag of a secret, safe to log."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


class Secret:
    """An opaque secret string: redacted in repr/str/format, compared by value."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret itself; call only where it is written to a header or a file."""
        return self._value

    def fingerprint(self) -> str:
        """A short hash of the value for logs and debugging."""
        return fingerprint(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("Secret values are not picklable")
