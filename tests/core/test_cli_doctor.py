"""`kimi-coder doctor` against the emulator with the User-Agent gate on (runs in CI)."""

from __future__ import annotations

import json

import pytest

from kimi_coder_auth.cli import main
from kimi_coder_auth.emulator import Emulator

KEY = "sk-kimi-doctor-test-key"


def test_doctor_reports_both_routes_models_and_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(api_keys=[KEY], ua_gate="real") as emu:
        emu.models[2]["protocol"] = "anthropic"
        monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
        rc = main(["doctor", "--base-url", emu.base_url, "--json"])
        assert emu.counts["ua_rejected"] == 1 and emu.counts["messages"] == 2
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["credential"]["source"] == "env" and report["user_agent"].startswith("kimi-coder/")
    models = {m["id"]: m for m in report["models"]}
    assert models["k3"]["protocol"] == "anthropic" and models["k3"]["efforts"] == ["low", "high", "max"]
    assert models["kimi-for-coding"]["thinking"] == "only"  # K2.7 Code always thinks
    openai, messages = report["routes"]
    assert openai["route"] == "openai" and openai["admitted"] is False and "Coding Agents" in openai["detail"]
    assert messages["admitted"] is True and messages["tool_calls"] == ["get_time"]
    assert messages["reasoning"] and messages["signed_thinking"] and messages["answer_ok"]
    assert messages["usage_arrived"] == ["message_delta event", "message_start event"]


def test_doctor_without_gate_runs_both_round_trips_and_text_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Emulator(api_keys=[KEY]) as emu:
        monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
        rc = main(["doctor", "--base-url", emu.base_url])
    out = capsys.readouterr().out
    assert rc == 0 and "result: working routes: openai, anthropic" in out
    assert "OpenAI /chat/completions: admitted" in out and "(choices[0].usage)" in out


def test_doctor_with_no_login_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(api_keys=[KEY]) as emu:
        rc = main(["doctor", "--base-url", emu.base_url])
    out = capsys.readouterr().out
    assert rc == 1 and "no route completed a round trip" in out and "kimi-coder login" in out
