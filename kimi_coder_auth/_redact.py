"""Scrub secrets out of server-provided text before it becomes part of an error or a log line.

Servers and proxies sometimes echo what they were sent ("Invalid API key: sk-kimi-..."); the
code that sent a secret knows it and removes it here, plus anything shaped like a credential
(``Bearer <x>``, ``sk-kimi-...`` keys, JWTs) as defence in depth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .secret import Secret

__all__ = ["REDACTED", "quote", "redact"]

REDACTED = "[REDACTED]"

_PATTERNS = re.compile(
    r"(?i:bearer)\s+[^\s\"',;]+"  # an echoed Authorization header value
    r"|sk-kimi-[A-Za-z0-9._\-]+"  # Kimi Code API keys
    r"|eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"  # JWTs (access tokens)
)


def _replace(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[:6].lower() == "bearer":
        return text[:6] + " " + REDACTED
    return REDACTED


def redact(text: str, *secrets: Secret | str | None) -> str:
    """`text` with each given secret (exact value) and credential-looking substring replaced."""
    if not text:
        return text
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return _PATTERNS.sub(_replace, text)


def quote(text: str, secrets: Sequence[Secret | str | None] = (), limit: int = 300) -> str:
    """Server text fit to quote in an error: secrets scrubbed first, then cut to ``limit``.

    Scrubbing before cutting matters: a secret cut in half is no longer found, yet half of
    it is still a leak.
    """
    return redact(text, *secrets)[:limit]
