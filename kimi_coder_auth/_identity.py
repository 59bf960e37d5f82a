"""The package's honest client identity, shared by the OAuth calls and the API transport."""

from __future__ import annotations

import functools
import platform
import sys

from ._version import __version__

__all__ = ["default_user_agent"]


@functools.lru_cache(maxsize=1)
def default_user_agent() -> str:
    """`kimi-coder/<version> (python <x.y>; <platform>)`: who we are, never another client's name."""
    system = platform.system().lower() or "unknown"
    return (
        f"kimi-coder/{__version__} (python {sys.version_info[0]}.{sys.version_info[1]}; {system})"
    )
