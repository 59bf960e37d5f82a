"""Live tests against the real Kimi Coding API, recorded with vcrpy (pytest-recording).

Skipped unless KIMI_CODER_LIVE=1 *and* real credentials exist (KIMI_CODER_API_KEY, or a
kimi-cli / Kimi Code login in the real home). The first live run records cassettes under
`tests/llama_index/cassettes/` with the Authorization header removed and the OAuth host not
recorded at all; cassettes are never written by hand.

    KIMI_CODER_LIVE=1 python -m pytest tests/llama_index/test_llama_index_live.py -m live
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentStream, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ThinkingBlock
from llama_index.core.tools import FunctionTool

from llama_index_kimi_coder import KimiCoderLLM

# Read at import time, before the suite-wide fixture points HOME at a temp dir and clears env.
_REAL_ENV = {
    name: os.environ.get(name)
    for name in (
        "HOME",
        "KIMI_SHARE_DIR",
        "KIMI_CODE_HOME",
        "KIMI_CODER_API_KEY",
        "KIMI_CODE_BASE_URL",
        "KIMI_CODER_USER_AGENT",
        "KIMI_CODER_CREDENTIALS",
    )
}
_LIVE = os.environ.get("KIMI_CODER_LIVE") == "1"
# The suite-wide loopback guard is installed by a session fixture, after collection imports
# this module, so these are the real socket methods.
_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex


def _have_credentials() -> bool:
    if _REAL_ENV["KIMI_CODER_API_KEY"]:
        return True
    home = Path(_REAL_ENV["HOME"] or Path.home())
    share = Path(_REAL_ENV["KIMI_SHARE_DIR"] or home / ".kimi")
    code = Path(_REAL_ENV["KIMI_CODE_HOME"] or home / ".kimi-code")
    return any(
        p.is_file()
        for p in (share / "credentials" / "kimi-code.json", code / "credentials" / "kimi-code.json")
    )


pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not (_LIVE and _have_credentials()),
        reason="live test: set KIMI_CODER_LIVE=1 and log in (or set KIMI_CODER_API_KEY)",
    ),
]


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Never record credentials: drop auth headers, keep the OAuth host out of cassettes."""
    return {
        "filter_headers": [
            ("authorization", "REDACTED"),
            ("x-api-key", "REDACTED"),
            ("cookie", "REDACTED"),
            ("set-cookie", "REDACTED"),
        ],
        "filter_post_data_parameters": ["refresh_token", "access_token", "device_code"],
        "ignore_hosts": ["auth.kimi.com"],  # token refreshes are never recorded
        "record_mode": "once" if _LIVE else "none",
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(Path(__file__).parent / "cassettes")


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo the suite's isolation for this test: the real home, env and network."""
    for name, value in _REAL_ENV.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setattr(socket.socket, "connect", _REAL_CONNECT)
    monkeypatch.setattr(socket.socket, "connect_ex", _REAL_CONNECT_EX)
    yield


@pytest.fixture
def live_llm(live_env: None) -> KimiCoderLLM:
    return KimiCoderLLM(thinking=True, max_tokens=2048, timeout=120)


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.mark.vcr
def test_live_chat_reasoning_and_usage(live_llm: KimiCoderLLM) -> None:
    resp = live_llm.chat([ChatMessage(role="user", content="Reply with the single word: pong")])
    assert "pong" in resp.message.content.lower()
    assert isinstance(resp.message.blocks[0], ThinkingBlock)
    assert resp.additional_kwargs["prompt_tokens"] > 0


@pytest.mark.vcr
def test_live_stream_chat(live_llm: KimiCoderLLM) -> None:
    chunks = list(live_llm.stream_chat([ChatMessage(role="user", content="Count from 1 to 5.")]))
    assert "5" in chunks[-1].message.content
    assert chunks[-1].additional_kwargs["completion_tokens"] > 0


@pytest.mark.vcr
async def test_live_function_agent_with_thinking(live_llm: KimiCoderLLM) -> None:
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=multiply)], llm=live_llm)
    handler = agent.run("Use the multiply tool to compute 123 * 45, then tell me the result.")
    thinking = [
        e.thinking_delta
        async for e in handler.stream_events()
        if isinstance(e, AgentStream) and e.thinking_delta
    ]
    result = await handler
    assert "5535" in str(result.response.content).replace(",", "")
    assert thinking
