"""Route choice: auto switches to the Messages route after the User-Agent gate, once per
process and login; a pinned protocol never switches; /models' protocol is honoured."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import UserAgentRejectedError
from kimi_coder_auth.routing import ChatCall, remembered_protocol, resolve_protocol
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

KEY = "sk-kimi-routing-test-key"
WORKER = Path(__file__).parent / "_workers" / "route_worker.py"
ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "hello"}]


def _transport(emu: Emulator) -> Transport:
    return Transport(credential=StaticCredential(KEY), base_url=emu.base_url, max_retries=0)


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_default_adapter_behind_the_gate_completes_a_thinking_tool_loop(adapter: str, tmp_path: Path) -> None:
    with Emulator(api_keys=[KEY], ua_gate="real") as emu:
        env = {**os.environ, "KIMI_CODER_API_KEY": KEY, "KIMI_CODE_BASE_URL": emu.base_url,
               "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, str(WORKER), adapter], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert emu.counts["ua_rejected"] == 1  # exactly one rejected OpenAI request per process
        assert emu.counts["chat"] == 1 and emu.counts["messages"] >= 3
    assert "5" in out["answer"] and "20" in out["answer"]
    assert set(out["routes"]) == {"anthropic"}
    assert all(out["signed"])  # signed thinking came back on every tool turn (and was replayed)
    switch_logs = [line for line in proc.stderr.splitlines() if "using the Anthropic Messages route" in line]
    assert len(switch_logs) == 1 and "INFO" in switch_logs[0]
    assert KEY not in proc.stderr and KEY not in proc.stdout


def test_pinned_openai_raises_and_auto_remembers(caplog: pytest.LogCaptureFixture) -> None:
    with Emulator(api_keys=[KEY], ua_gate="real") as emu:
        t = _transport(emu)
        with pytest.raises(UserAgentRejectedError):
            ChatCall.prepare(t, "kimi-for-coding", HI, protocol="openai").complete()
        with pytest.raises(UserAgentRejectedError):
            list(ChatCall.prepare(t, "kimi-for-coding", HI, protocol="openai", stream=True).stream())
        assert remembered_protocol(t) is None and emu.counts["messages"] == 0
        with caplog.at_level(logging.INFO, logger="kimi_coder_auth.routing"):
            first = ChatCall.prepare(t, "kimi-for-coding", HI, stream=True)
            deltas = list(first.stream())
            again = ChatCall.prepare(t, "kimi-for-coding", HI)
            assert again.protocol == "anthropic"  # chosen up front, no second rejection
            done = again.complete()
        assert any(d.content for d in deltas) and done.protocol == "anthropic" and done.content
        assert emu.counts["ua_rejected"] == 3 and remembered_protocol(t) == "anthropic"
        assert sum("Anthropic Messages route" in r.getMessage() for r in caplog.records) == 1


def test_models_protocol_is_used_when_the_list_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(api_keys=[KEY]) as emu:
        emu.models[0]["protocol"] = "anthropic"
        t = _transport(emu)
        assert ChatCall.prepare(t, "kimi-for-coding", HI).protocol == "openai"  # list not loaded
        t.list_models()
        call = ChatCall.prepare(t, "kimi-for-coding", HI)
        assert call.protocol == "anthropic" and call.complete().protocol == "anthropic"
        assert emu.counts["chat"] == 0 and emu.counts["messages"] == 1
        assert ChatCall.prepare(t, "kimi-for-coding", HI, protocol="openai").protocol == "openai"
        monkeypatch.setenv("KIMI_CODER_PROTOCOL", "openai")
        assert ChatCall.prepare(t, "kimi-for-coding", HI).protocol == "openai"


def test_protocol_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_protocol(None) == "auto" and resolve_protocol("Anthropic") == "anthropic"
    monkeypatch.setenv("KIMI_CODER_PROTOCOL", "grpc")
    with pytest.raises(ValueError, match="KIMI_CODER_PROTOCOL"):
        resolve_protocol(None)
    with pytest.raises(ValueError, match="protocol="):
        resolve_protocol("soap")
