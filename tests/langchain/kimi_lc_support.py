"""Constants shared by the LangChain adapter tests (imported by conftest and test modules)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

API_KEY = "sk-kimi-langchain-test"

# Captured at import, before the suite-wide fixtures clear the environment and guard sockets:
# live tests (opt-in) need the real key, the real home and real outbound connections.
REAL_API_KEY = os.environ.get("KIMI_CODER_API_KEY") or None
REAL_HOME = Path(os.environ.get("HOME") or Path.home())
REAL_SHARE_DIR = os.environ.get("KIMI_SHARE_DIR")
REAL_CODE_HOME = os.environ.get("KIMI_CODE_HOME")
REAL_BASE_URL = os.environ.get("KIMI_CODE_BASE_URL")
LIVE_OPT_IN = os.environ.get("KIMI_CODER_LIVE") == "1"
REAL_CONNECT = socket.socket.connect
REAL_CONNECT_EX = socket.socket.connect_ex


def live_enabled() -> bool:
    """Live tests run with KIMI_CODER_API_KEY set, or KIMI_CODER_LIVE=1 and a credential file."""
    if REAL_API_KEY:
        return True
    if not LIVE_OPT_IN:
        return False
    share = Path(REAL_SHARE_DIR) if REAL_SHARE_DIR else REAL_HOME / ".kimi"
    code_home = Path(REAL_CODE_HOME) if REAL_CODE_HOME else REAL_HOME / ".kimi-code"
    return (share / "credentials" / "kimi-code.json").is_file() or (
        code_home / "credentials" / "kimi-code.json"
    ).is_file()
