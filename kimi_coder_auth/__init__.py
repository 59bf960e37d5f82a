"""Shared core of kimi-coder: credentials, device login, the Coding API transport and wire format.

A flat public namespace, as httpx has. Heavier names are imported lazily on first access so that
`import kimi_coder_auth` stays cheap; the modules themselves (`sources`, `refresh`, `transport`,
`wire`, ...) are importable directly too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .secret import Secret

_LAZY = {
    # discovery and credentials
    "Credential": "refresh",
    "CredentialStatus": "refresh",
    "OAuthCredential": "refresh",
    "StaticCredential": "sources",
    "DiscoveredCredential": "sources",
    "resolve_credential": "sources",
    "default_credential": "sources",
    "OAuthToken": "token",
    "KimiCliStore": "stores.kimi_cli",
    "KimiCodeStore": "stores.kimi_code",
    "Endpoint": "region",
    "resolve_endpoint": "region",
    # device login
    "login": "device",
    "alogin": "device",
    "DevicePrompt": "device",
    # transport
    "KimiClient": "client",
    "Transport": "transport",
    "KimiAuth": "auth",
    "default_user_agent": "_identity",
    # wire format and models
    "build_request": "wire",
    "StreamAccumulator": "wire",
    "Completion": "wire",
    "Usage": "wire",
    "ToolCall": "wire",
    "ModelInfo": "catalogue",
    "get_model_info": "catalogue",
    # quota and usage
    "get_usage": "usage",
    "aget_usage": "usage",
    "PlanUsage": "usage",
    "UsageWindow": "usage",
    "QuotaPacer": "quota_pacing",
    # side services (/search, /fetch, /files)
    "KimiServices": "services",
    "SearchResult": "services",
    # emulator
    "Emulator": "emulator",
}

__all__ = ["Secret", "__version__", *_errors_all, *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kimi_coder_auth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ._identity import default_user_agent
    from .auth import KimiAuth
    from .catalogue import ModelInfo, get_model_info
    from .client import KimiClient
    from .device import DevicePrompt, alogin, login
    from .emulator import Emulator
    from .quota_pacing import QuotaPacer
    from .refresh import Credential, CredentialStatus, OAuthCredential
    from .region import Endpoint, resolve_endpoint
    from .services import KimiServices, SearchResult
    from .sources import (
        DiscoveredCredential,
        StaticCredential,
        default_credential,
        resolve_credential,
    )
    from .stores.kimi_cli import KimiCliStore
    from .stores.kimi_code import KimiCodeStore
    from .token import OAuthToken
    from .transport import Transport
    from .usage import PlanUsage, UsageWindow, aget_usage, get_usage
    from .wire import Completion, StreamAccumulator, ToolCall, Usage, build_request
