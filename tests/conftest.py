"""Suite-wide isolation: a temp home for every test, no stray env, loopback-only sockets."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

_CLEARED_ENV = (
    "KIMI_CODER_API_KEY",
    "KIMI_CODER_CREDENTIALS",
    "KIMI_CODER_USER_AGENT",
    "KIMI_CODE_BASE_URL",
    "KIMI_CODE_OAUTH_HOST",
    "KIMI_OAUTH_HOST",
    "KIMI_DISABLE_OAUTH_LOCK",
    "KIMI_CODER_LIVE",
    "KIMI_CODER_PROTOCOL",
    "KIMI_CODER_REGION",
    "KIMI_WEB_SEARCH_API_KEY",
    "KIMI_WEB_FETCH_API_KEY",
    "KIMI_WEB_SEARCH_BASE_URL",
    "KIMI_WEB_FETCH_BASE_URL",
    "OPENAI_API_KEY",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)


@pytest.fixture(autouse=True, scope="session")
def _close_pooled_clients() -> Iterator[None]:
    """Close the process-wide sync client at the end, so no pooled socket outlives the run."""
    yield
    from kimi_coder_auth.http_pool import close_clients

    close_clients()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point HOME, KIMI_SHARE_DIR and KIMI_CODE_HOME at a fresh temp dir; clear Kimi env vars."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KIMI_SHARE_DIR", str(home / ".kimi"))
    monkeypatch.setenv("KIMI_CODE_HOME", str(home / ".kimi-code"))
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    yield home
    from kimi_coder_auth.routing import forget_switches

    forget_switches()  # an auto switch is per process; tests must not inherit another's
    from kimi_coder_auth.transport_endpoints import _models_cache

    _models_cache.clear()  # per credential + base URL: an emulator may get a port used before


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise OSError(f"tests may only connect to loopback, not {address!r}")
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise OSError(f"tests may only connect to loopback, not {address!r}")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Refuse any outbound connection that is not to 127.0.0.0/8 or ::1."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
