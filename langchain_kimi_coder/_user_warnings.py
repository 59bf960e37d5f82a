"""Warnings that point at the caller's own line rather than at LangChain/LangGraph internals."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

__all__ = ["emit_warnings", "user_stacklevel"]

_FRAMEWORK_PACKAGES = ("langchain_kimi_coder", "langchain_core", "langchain", "langgraph", "pydantic")


def user_stacklevel() -> int:
    """Stack level of the first frame outside LangChain/LangGraph, so a warning points at the
    caller's own line rather than at framework internals."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] not in _FRAMEWORK_PACKAGES:
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return 2


def emit_warnings(messages: Sequence[str]) -> None:
    """Surface the core's request warnings (e.g. a forced tool choice relaxed to auto)."""
    if messages:
        level = user_stacklevel()
        for text in messages:
            warnings.warn(text, UserWarning, stacklevel=level)
