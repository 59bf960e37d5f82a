"""LangChain / LangGraph integration for Moonshot's Kimi Coding Plan: ``ChatKimiCoder``."""

from __future__ import annotations

from .chat_models import ChatKimiCoder

__all__ = ["ChatKimiCoder"]
