"""Retry policy: which errors are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import random

from .errors import QuotaExceededError, RateLimitError, ServerError

__all__ = ["BACKOFF_INITIAL", "BACKOFF_MAX", "RETRY_AFTER_CAP", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})  # 529: Anthropic-style overloaded
RETRY_AFTER_CAP = 60.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0


def _retryable(err: Exception) -> bool:
    if isinstance(err, QuotaExceededError):
        return False
    if isinstance(err, RateLimitError):
        return True
    return isinstance(err, ServerError) and err.status in RETRY_STATUSES


def _backoff(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``; None = do not retry (too long)."""
    if retry_after is not None:
        return retry_after if retry_after <= RETRY_AFTER_CAP else None
    base: float = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0**attempt)
    return base * random.uniform(0.75, 1.25)
