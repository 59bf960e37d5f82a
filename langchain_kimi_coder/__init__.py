"""LangChain / LangGraph integration for Moonshot's Kimi Coding Plan: ``ChatKimiCoder``."""

from __future__ import annotations

# langchain-core is entered through its chat-model module, as `from langchain_core.language_models
# import BaseChatModel` does. Entered through chat_models.py's sorted imports instead, the very same
# modules took ~0.1 s longer to load (profiled: the extra time is inside pydantic's model
# construction for langchain-core's and langsmith's models; import order is the only difference).
import langchain_core.language_models.chat_models  # noqa: F401  (import order, see above)

from ._rate_limiter import KimiQuotaRateLimiter
from .chat_models import ChatKimiCoder

__all__ = ["ChatKimiCoder", "KimiQuotaRateLimiter"]
