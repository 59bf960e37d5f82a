"""Shared core of kimi-coder: credentials, device login, the Coding API transport and wire format.

The public names are re-exported here; modules with a leading role (sources, refresh, transport,
wire, ...) are importable directly too.
"""

from __future__ import annotations

from ._version import __version__
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .secret import Secret

__all__ = ["Secret", "__version__", *_errors_all]
