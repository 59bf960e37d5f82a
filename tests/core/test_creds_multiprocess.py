"""Cross-process behaviour with real subprocesses: one refresh for many, adopting a peer's token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import FileTokenStore, KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks and signals"),
]

WORKER = Path(__file__).parent / "_workers" / "creds_worker.py"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as e:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", e.oauth_host)
        yield e


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def release_barrier(barrier: Path, n: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 30
    while len(list(barrier.glob("ready-*"))) < n:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"worker died early: {p.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "workers never became ready"
        time.sleep(0.01)
    (barrier / "go").touch()


def finish(procs: list[subprocess.Popen[str]], timeout: float = 30) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        outs.append(out)
    return outs


def seed(store: FileTokenStore, emu: Emulator, left: float) -> dict:
    issued = emu.issue_token()
    data = {**issued, "expires_at": time.time() + left, "expires_in": 900.0}
    store.write(OAuthToken.from_file_dict(data))
    return data


@pytest.mark.parametrize("store_cls", [KimiCliStore, KimiCodeStore])
def test_four_processes_refresh_an_expired_token_exactly_once(
    emu: Emulator, tmp_path: Path, store_cls: type
) -> None:
    store = store_cls()
    old = seed(store, emu, -30)
    emu.inject("refresh", delay=0.2)  # widen the race window
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("refresh", store.name, str(barrier), str(i)) for i in range(4)]
    release_barrier(barrier, 4, procs)
    outs = finish(procs)
    tokens = {
        line.split()[1] for out in outs for line in out.splitlines() if line.startswith("TOKEN")
    }
    assert emu.counts["refresh"] == 1
    assert len(tokens) == 1
    (new,) = tokens
    assert new != old["access_token"] and emu.is_access_valid(new)
    on_disk = json.loads(store.path.read_text())
    assert on_disk["access_token"] == new
    assert emu.is_refresh_valid(on_disk["refresh_token"])


def test_kimi_cli_holding_its_lock_delays_us_and_we_adopt_its_token(emu: Emulator) -> None:
    store = KimiCliStore()
    seed(store, emu, -30)
    theirs = {**emu.issue_token(), "expires_at": time.time() + 900, "expires_in": 900.0}
    holder = spawn("kimicli-hold", "0.8", json.dumps(theirs))
    try:
        assert holder.stdout.readline().strip() == "LOCKED"  # type: ignore[union-attr]
        from kimi_coder_auth.refresh import OAuthCredential

        t0 = time.monotonic()
        token = OAuthCredential(store, lock_timeout=10).get_token()
        waited = time.monotonic() - t0
    finally:
        finish([holder])
    assert token == Secret(theirs["access_token"])
    assert emu.counts["refresh"] == 0
    assert waited > 0.3
    # kimi-cli's own reader still parses what is on disk
    assert json.loads(store.path.read_text()) == theirs


def test_kimi_code_peer_holding_its_lock_delays_us_and_we_adopt(emu: Emulator) -> None:
    store = KimiCodeStore(token_name="kimi-code")  # the worker's slot (the lock protocol under test)
    seed(store, emu, -30)
    theirs = {**emu.issue_token(), "expires_at": int(time.time()) + 900, "expires_in": 900}
    holder = spawn("kimicode-hold", "0.8", json.dumps(theirs))
    try:
        assert holder.stdout.readline().strip() == "LOCKED"  # type: ignore[union-attr]
        from kimi_coder_auth.refresh import OAuthCredential

        token = OAuthCredential(store, lock_timeout=10).get_token()
    finally:
        finish([holder])
    assert token == Secret(theirs["access_token"])
    assert emu.counts["refresh"] == 0


@pytest.mark.parametrize("store_name", ["kimi-cli", "kimi-code"])
def test_store_lock_excludes_other_processes(tmp_path: Path, store_name: str) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [spawn("counter", store_name, str(barrier), str(i), "10") for i in range(4)]
    release_barrier(barrier, 4, procs)
    finish(procs, timeout=60)
    assert (barrier / "counter").read_text() == "40"
    lines = (barrier / "log").read_text().split()
    assert len(lines) == 80
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter[0] == "<" and leave[0] == ">" and enter[1:] == leave[1:]
    if store_name == "kimi-cli":
        assert KimiCliStore().lock_path.exists()  # never deleted
    else:
        assert not (
            KimiCodeStore().lock_target.parent / f"{KimiCodeStore().token_name}.lock"
        ).exists()  # removed on release
