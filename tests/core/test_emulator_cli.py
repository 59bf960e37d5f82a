"""`kimi-coder emulator` as a real process: prints where it listens, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from kimi_coder_auth.cli import build_parser, main


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kimi_coder_auth", "emulator", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_urls(proc: subprocess.Popen[str]) -> tuple[str, str]:
    base = oauth = ""
    deadline = time.monotonic() + 8
    assert proc.stdout is not None
    while time.monotonic() < deadline and not (base and oauth):
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.search(r"base URL:\s+(\S+)", line):
            base = m.group(1)
        if m := re.search(r"OAuth host:\s+(\S+)", line):
            oauth = m.group(1)
    return base, oauth


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_emulator_serves_and_stops_on_sigint() -> None:
    proc = _spawn("--port", "0", "--api-key", "sk-kimi-cli", "--ua-gate", "^kimi-coder/", "--token-ttl", "60")
    try:
        base, oauth = _read_urls(proc)
        assert base.startswith("http://127.0.0.1:") and base.endswith("/coding/v1")
        assert base == oauth + "/coding/v1"
        h = {"Authorization": "Bearer sk-kimi-cli"}
        assert httpx.get(f"{base}/models", headers=h, timeout=5).status_code == 200
        body = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}
        gated = httpx.post(f"{base}/chat/completions", json=body, headers={**h, "User-Agent": "curl/8"}, timeout=5)
        assert gated.status_code == 403
        ok = httpx.post(f"{base}/chat/completions", json=body, headers={**h, "User-Agent": "kimi-coder/0.1"}, timeout=5)
        assert ok.status_code == 200
        # token TTL flag: a device login issues 60-second tokens
        dev = httpx.post(f"{oauth}/api/oauth/device_authorization",
                         data={"client_id": "17e5f671-d194-4dfb-9706-5516cb48c098"}, timeout=5).json()
        assert dev["interval"] == 1
        tok = httpx.post(f"{oauth}/api/oauth/token", data={
            "client_id": "17e5f671-d194-4dfb-9706-5516cb48c098", "device_code": dev["device_code"],
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, timeout=5).json()
        assert tok["expires_in"] == 60
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=8)
        assert proc.returncode == 0, err
        assert "Emulator stopped." in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_emulator_stops_on_sigterm() -> None:
    proc = _spawn("--port", "0")
    try:
        base, _ = _read_urls(proc)
        assert base
        proc.terminate()
        proc.communicate(timeout=8)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err


def test_cli_bad_ua_gate_regex(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--ua-gate", "("]) == 2
    assert "--ua-gate" in capsys.readouterr().err


def test_cli_parser_defaults() -> None:
    args = build_parser().parse_args(["emulator"])
    assert (args.port, args.host, args.ua_gate, args.token_ttl) == (8765, "127.0.0.1", None, 900)
    assert callable(args.handler)


def test_run_emulator_in_process_with_stop_event(capsys: pytest.CaptureFixture[str]) -> None:
    from kimi_coder_auth.cli.emulator_cmd import run_emulator

    args = build_parser().parse_args(["emulator", "--port", "0", "--api-key", "k"])
    ready, stop = threading.Event(), threading.Event()
    rc: list[int] = []
    t = threading.Thread(target=lambda: rc.append(run_emulator(args, ready=ready, stop=stop)))
    t.start()
    assert ready.wait(5)
    base = re.search(r"base URL:\s+(\S+)", capsys.readouterr().out)
    assert base is not None
    assert httpx.get(f"{base.group(1)}/models", headers={"Authorization": "Bearer k"}, timeout=5).status_code == 200
    stop.set()
    t.join(5)
    assert rc == [0]
