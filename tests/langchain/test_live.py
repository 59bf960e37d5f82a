"""Live checks against the real Kimi Coding API, recorded with vcrpy (pytest-recording).

Run only with credentials: ``KIMI_CODER_API_KEY=... pytest -m live tests/langchain/test_live.py``
or ``KIMI_CODER_LIVE=1`` with a kimi-cli / Kimi Code login on this machine. Without them every
test here is skipped. Cassettes (tests/langchain/cassettes) are written only by a live run, with
the Authorization header and token fields scrubbed; never write one by hand.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from kimi_lc_support import (
    REAL_API_KEY,
    REAL_BASE_URL,
    REAL_CODE_HOME,
    REAL_CONNECT,
    REAL_CONNECT_EX,
    REAL_HOME,
    REAL_SHARE_DIR,
    live_enabled,
)
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_kimi_coder import ChatKimiCoder

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not live_enabled(),
        reason="live: set KIMI_CODER_API_KEY, or KIMI_CODER_LIVE=1 with a Kimi login on this machine",
    ),
]

_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token", "device_code")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Replace OAuth token values in recorded response bodies (refreshes during a live run)."""
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes) and any(f.encode() in body for f in _TOKEN_FIELDS):
        try:
            data = json.loads(body)
        except ValueError:
            return response
        if isinstance(data, dict):
            for field in _TOKEN_FIELDS:
                if field in data:
                    data[field] = "REDACTED"
            response["body"]["string"] = json.dumps(data).encode()
    return response


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any]) -> dict[str, Any]:
    return {**vcr_config, "before_record_response": _scrub_response}


@pytest.fixture(autouse=True)
def live_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo the suite's isolation for this opted-in run: real key/home, real sockets."""
    from kimi_coder_auth.sources import clear_credential_cache

    monkeypatch.setattr(socket.socket, "connect", REAL_CONNECT)
    monkeypatch.setattr(socket.socket, "connect_ex", REAL_CONNECT_EX)
    monkeypatch.setenv("HOME", str(REAL_HOME))
    for name, value in (("KIMI_SHARE_DIR", REAL_SHARE_DIR), ("KIMI_CODE_HOME", REAL_CODE_HOME),
                        ("KIMI_CODER_API_KEY", REAL_API_KEY),
                        ("KIMI_CODE_BASE_URL", REAL_BASE_URL)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    clear_credential_cache()
    yield
    clear_credential_cache()


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 21 degrees in {city}."


class Capital(BaseModel):
    """The capital city of a country."""

    country: str
    capital: str


@pytest.mark.vcr
def test_live_invoke_with_reasoning() -> None:
    msg = ChatKimiCoder(thinking=True, max_tokens=2048).invoke("Reply with one word: hello.")
    assert msg.text
    assert isinstance(msg.additional_kwargs.get("reasoning_content"), str)
    assert msg.content_blocks[0]["type"] == "reasoning"
    assert msg.usage_metadata and msg.usage_metadata["input_tokens"] > 0
    assert msg.response_metadata["model_name"]


@pytest.mark.vcr
def test_live_stream_usage_and_trace_id() -> None:
    full: AIMessageChunk | None = None
    for chunk in ChatKimiCoder(max_tokens=2048).stream("Count from 1 to 5."):
        full = chunk if full is None else full + chunk
    assert full is not None and full.text
    assert full.usage_metadata and full.usage_metadata["output_tokens"] > 0
    assert full.response_metadata.get("finish_reason") == "stop"


@pytest.mark.vcr
def test_live_tool_round_trip_with_thinking() -> None:
    """Kimi 400s unless the tool-call turn's reasoning is replayed: this proves the payload."""
    llm = ChatKimiCoder(thinking=True, max_tokens=4096).bind_tools([get_weather])
    history: list[Any] = [HumanMessage("What's the weather in Paris? Use the tool.")]
    first = llm.invoke(history)
    assert first.tool_calls and first.tool_calls[0]["name"] == "get_weather"
    history += [first, get_weather.invoke(first.tool_calls[0])]
    answer = llm.invoke(history)
    assert answer.text and not answer.tool_calls


@pytest.mark.vcr
def test_live_structured_output() -> None:
    out = ChatKimiCoder(max_tokens=2048).with_structured_output(Capital).invoke(
        "What is the capital of France?"
    )
    assert isinstance(out, Capital) and "paris" in out.capital.lower()


def test_live_credentials_source_reported() -> None:
    """No request: just that discovery picks the real source without touching the network."""
    llm = ChatKimiCoder()
    source = llm._get_transport().credential.describe().source
    assert source in ("env", "kimi-cli", "kimi-code")
    assert os.environ.get("KIMI_CODER_API_KEY") == REAL_API_KEY or REAL_API_KEY is None
