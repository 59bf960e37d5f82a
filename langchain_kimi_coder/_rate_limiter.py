"""``KimiQuotaRateLimiter``: kimi-coder's quota pacing as a LangChain ``BaseRateLimiter``.

Plug it into any chat model's ``rate_limiter=``: while a Kimi quota window is known to be used
up, ``acquire`` holds each request until the window resets (one probe goes first; the rest
follow once it gets through). It paces the requests after a quota answer; ``on_quota="wait"``
on ``ChatKimiCoder`` also resumes the request that got it. The mechanism lives in
``kimi_coder_auth.quota_pacing``.
"""

from __future__ import annotations

from langchain_core.rate_limiters import BaseRateLimiter

from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT, QuotaPacer

from ._errors import translate_error

__all__ = ["KimiQuotaRateLimiter"]


class KimiQuotaRateLimiter(BaseRateLimiter):
    """Hold requests while a Kimi quota window is used up (``ChatKimiCoder.quota_rate_limiter()``
    paces that model's account; ``KimiQuotaRateLimiter()`` every account the process has used)."""

    def __init__(
        self, *, max_quota_wait: float | None = DEFAULT_MAX_QUOTA_WAIT, pacer: QuotaPacer | None = None
    ) -> None:
        self._pacer = pacer or QuotaPacer(max_quota_wait=max_quota_wait)

    def acquire(self, *, blocking: bool = True) -> bool:
        """Wait until no known quota block stands; False at once if ``blocking=False`` and one does."""
        try:
            return self._pacer.acquire(blocking=blocking)
        except Exception as exc:
            raise translate_error(exc) from None

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Async :meth:`acquire`."""
        try:
            return await self._pacer.aacquire(blocking=blocking)
        except Exception as exc:
            raise translate_error(exc) from None
