"""The CLI as users run it (real subprocesses, temp homes in the official layouts, the emulator
on loopback): an emulator login never replaces the default login, status shows region and slot,
and a login the server rejected is reported as such in a new process."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_region import (
    GLOBAL_SLOT,
    write_global_config,
    write_kimi_cli_login,
    write_kimi_code_login,
)

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import ReauthRequired
from kimi_coder_auth.refresh import OAuthCredential
from kimi_coder_auth.region import kimi_code_slot
from kimi_coder_auth.stores import KimiCliStore

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    full.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "kimi_coder_auth", *argv], env=full,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def emulator_env(emu: Emulator) -> dict[str, str]:
    return {"KIMI_CODE_OAUTH_HOST": emu.oauth_host, "KIMI_CODE_BASE_URL": emu.base_url}


def test_emulator_login_leaves_the_default_logins_byte_for_byte(isolated_home: Path) -> None:
    """Issue 11: a real default-host login exists; `kimi-coder login` against the emulator."""
    now = time.time()
    cli_file = write_kimi_cli_login(isolated_home, "AT-real-cli", "RT-real-cli", now + 800.5)
    code_file = write_kimi_code_login(isolated_home, "kimi-code", "AT-real-kc", "RT-real-kc",
                                      int(now) + 800)
    config = isolated_home / ".kimi-code" / "config.toml"
    config.write_text('[providers."managed:kimi-code"]\nbase_url = "https://api.kimi.com/coding/v1"\n'
                      'oauth = {storage="file", key="oauth/kimi-code"}\n')
    before = {p: p.read_bytes() for p in (cli_file, code_file, config)}

    with Emulator() as emu:
        env = emulator_env(emu)
        slot = kimi_code_slot(emu.oauth_host, emu.base_url)
        slot_file = isolated_home / ".kimi-code" / "credentials" / f"{slot}.json"

        proc = run("login", "--no-browser", env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"Logged in to {emu.oauth_host} (custom region; from KIMI_CODE_OAUTH_HOST)" in proc.stdout
        assert f"Saved to Kimi Code's file (slot {slot}): {slot_file}" in proc.stdout
        assert {p: p.read_bytes() for p in before} == before
        saved = json.loads(slot_file.read_text())
        assert emu.is_access_valid(saved["access_token"]) and isinstance(saved["expires_at"], int)
        assert slot_file.read_text().endswith("}\n")  # Kimi Code's pretty format
        assert stat.S_IMODE(slot_file.stat().st_mode) == 0o600
        assert not (isolated_home / ".kimi-code" / "oauth" / f"{slot}.lock").exists()

        # asking for kimi-cli's file explicitly is refused before any request
        emu.reset_counts()
        proc = run("login", "--no-browser", "--store", "kimi-cli", env=env)
        assert proc.returncode == 2
        assert "--store kimi-code" in proc.stderr and "https://auth.kimi.com" in proc.stderr
        assert emu.counts["device_authorization"] == 0
        proc = run("logout", "--store", "kimi-cli", env=env)
        assert proc.returncode == 2 and cli_file.exists()

        # the emulator's login is the one used against the emulator, and refreshed there
        proc = run("status", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "Source:     Kimi Code login" in proc.stdout
        assert f"Slot:       {slot}" in proc.stdout
        assert "kimi-cli keeps one login" in proc.stdout
        emu.expire_access_tokens()
        proc = run("models", env=env)
        assert proc.returncode == 0, proc.stderr
        assert emu.counts["refresh"] == 1
        assert json.loads(slot_file.read_text())["refresh_token"] != saved["refresh_token"]
        assert {p: p.read_bytes() for p in before} == before

        # logging out of the emulator removes its slot only
        proc = run("logout", env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"removed the Kimi Code login {slot_file}" in proc.stdout
        assert not slot_file.exists()
        assert {p: p.read_bytes() for p in before} == before

    # without the emulator settings the real default login is still the one in use
    proc = run("status")
    assert proc.returncode == 0, proc.stderr
    assert "Source:     kimi-cli login" in proc.stdout
    assert ("Region:     mainland-cn (OAuth host https://auth.kimi.com, API "
            "https://api.kimi.com/coding/v1; from oauth key oauth/kimi-code in") in proc.stdout
    assert "Slot:       kimi-code (its only one)" in proc.stdout
    assert {p: p.read_bytes() for p in before} == before


def test_status_reports_the_global_layout(isolated_home: Path) -> None:
    write_global_config(isolated_home)
    write_kimi_code_login(isolated_home, GLOBAL_SLOT, "AT-g", "RT-g", int(time.time()) + 900)
    proc = run("status")
    assert proc.returncode == 0, proc.stderr
    assert "Source:     Kimi Code login" in proc.stdout
    assert ("Region:     global (OAuth host https://auth.kimi.ai, API https://api.kimi.ai/coding/v1;"
            " from oauthHost in") in proc.stdout
    assert f"Slot:       {GLOBAL_SLOT}" in proc.stdout
    proc = run("status", "--json")
    data = json.loads(proc.stdout)
    assert data["endpoint"] == {
        "region": "global",
        "region_reason": f"oauthHost in {isolated_home / '.kimi-code' / 'config.toml'}",
        "oauth_host": "https://auth.kimi.ai",
        "base_url": "https://api.kimi.ai/coding/v1",
        "slot": GLOBAL_SLOT,
    }
    assert data["slot"] == GLOBAL_SLOT and data["region"] == "global"
    # --region / KIMI_CODER_REGION choose the other region's slot (empty here)
    proc = run("status", "--region", "cn")
    assert proc.returncode == 1 and "Region:     mainland-cn (" in proc.stderr
    assert "from --region 'cn'); Kimi Code slot kimi-code" in proc.stderr


def test_region_flag_and_variable_errors_name_what_the_user_typed(isolated_home: Path) -> None:
    proc = run("login", "--no-browser", "--region", "moon")
    assert proc.returncode == 2 and "--region" in proc.stderr and "global" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run("status", env={"KIMI_CODER_REGION": "moon"})
    assert proc.returncode == 2 and "KIMI_CODER_REGION" in proc.stderr
    proc = run("login", "--no-browser", "--region", "global", "--store", "kimi-cli")
    assert proc.returncode == 2 and "--store kimi-code" in proc.stderr
    assert GLOBAL_SLOT in proc.stderr
    assert not (isolated_home / ".kimi").exists() and not (isolated_home / ".kimi-code").exists()


def test_kimi_cli_rejection_is_known_to_status_in_another_process(isolated_home: Path) -> None:
    """Issue 11: after the server rejected the refresh token, status says so and what to do;
    kimi-cli's file is never changed, and a new login (new bytes) voids the record."""
    with Emulator() as emu:
        tok = emu.issue_token()
        cli_file = write_kimi_cli_login(isolated_home, tok["access_token"], tok["refresh_token"],
                                        time.time() - 60)
        before = cli_file.read_bytes()
        proc = run("status")
        assert "Refreshes:  yes, on next use" in proc.stdout  # nothing known yet
        emu.revoke_refresh_tokens()
        # the kimi-cli store's login, refreshed (explicitly) at the host that issued it
        with pytest.raises(ReauthRequired):
            OAuthCredential(KimiCliStore(), oauth_host=emu.oauth_host).get_token()
        assert emu.counts["refresh_rejected"] == 1
    assert cli_file.read_bytes() == before
    marker = cli_file.with_name("kimi-code.kimi-coder-rejected")
    assert marker.exists() and stat.S_IMODE(marker.stat().st_mode) == 0o600
    assert not list(cli_file.parent.glob("*.tmp"))

    proc = run("status")
    assert proc.returncode == 1
    assert "revoked" in proc.stderr and "kimi-coder login" in proc.stderr
    assert "Refreshes:  yes" not in proc.stdout + proc.stderr
    data = json.loads(run("status", "--json").stdout)
    kimi_cli = next(s for s in data["sources"] if s["source"] == "kimi-cli")
    assert kimi_cli["detail"].startswith("revoked") and "Next step" in kimi_cli["detail"]
    assert kimi_cli["refreshable"] is False

    # kimi-cli logs in again: different bytes, the record no longer applies
    write_kimi_cli_login(isolated_home, "AT-new", "RT-new", time.time() + 800)
    proc = run("status")
    assert proc.returncode == 0 and "Source:     kimi-cli login" in proc.stdout


def test_kimi_code_tombstone_status_names_the_regions_login(isolated_home: Path) -> None:
    write_global_config(isolated_home)
    path = write_kimi_code_login(isolated_home, GLOBAL_SLOT, "", "", 0)  # Kimi Code's tombstone
    wire = json.loads(path.read_text())
    wire["expires_in"] = 0
    path.write_text(json.dumps(wire, indent=2) + "\n")
    proc = run("status")
    assert proc.returncode == 1
    assert "revoked" in proc.stderr
    assert "kimi-coder login --region global" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_emulator_removes_an_unused_throwaway_home() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kimi_coder_auth", "emulator", "--port", "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    home = ""
    try:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            if m := re.match(r"\s+export KIMI_CODE_HOME=(\S+)$", line):
                home = m.group(1)
            if line.startswith("Press Ctrl-C"):
                break
        assert home and Path(home).parent.is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert not Path(home).parent.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_emulator_prints_lines_that_keep_real_logins_safe(isolated_home: Path) -> None:
    """Run `kimi-coder emulator`, apply its printed lines, log in: only the throwaway home changes."""
    real = write_kimi_cli_login(isolated_home, "AT-real", "RT-real", time.time() + 800)
    before = real.read_bytes()
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kimi_coder_auth", "emulator", "--port", "0"],
        env={**full, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    exports: dict[str, str] = {}
    unset: list[str] = []
    try:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            if m := re.match(r"\s+export (\w+)=(\S+)$", line):
                exports[m.group(1)] = m.group(2)
            if m := re.match(r"\s+unset (.+)$", line):
                unset = m.group(1).split()
            if line.startswith("Press Ctrl-C"):
                break
        assert set(exports) == {"KIMI_CODE_BASE_URL", "KIMI_CODE_OAUTH_HOST", "KIMI_SHARE_DIR",
                                "KIMI_CODE_HOME"}
        assert "KIMI_CODER_REGION" in unset and "KIMI_CODER_API_KEY" in unset
        throwaway = Path(exports["KIMI_SHARE_DIR"]).parent
        assert throwaway.is_dir() and not str(throwaway).startswith(str(isolated_home))
        env = {k: v for k, v in full.items() if k not in unset}
        env.update(exports)
        env["PYTHONPATH"] = str(ROOT)
        login = subprocess.run([sys.executable, "-m", "kimi_coder_auth", "login", "--no-browser"],
                               env=env, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert login.returncode == 0, login.stderr
        assert exports["KIMI_CODE_HOME"] in login.stdout
        slots = list((Path(exports["KIMI_CODE_HOME"]) / "credentials").glob("kimi-code-env-*.json"))
        assert len(slots) == 1
        assert real.read_bytes() == before
        assert not (Path(exports["KIMI_SHARE_DIR"]) / "credentials" / "kimi-code.json").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if exports:
            assert Path(exports["KIMI_CODE_HOME"]).is_dir()  # it holds a login: kept
            import shutil

            shutil.rmtree(Path(exports["KIMI_SHARE_DIR"]).parent, ignore_errors=True)


def test_models_usage_doctor_and_chat_take_region(isolated_home: Path) -> None:
    """`--region` on the API commands picks the region's login slot and API host, as `region=`
    does in Python; a bad value is an error that names the flag (no network is needed)."""
    from kimi_coder_auth.cli import build_parser
    from kimi_coder_auth.cli.api_cmds import _transport
    from langchain_kimi_coder.chat_cli import build_chat_model

    write_kimi_code_login(isolated_home, GLOBAL_SLOT, "AT-g", "RT-g", int(time.time()) + 900)
    parser = build_parser()
    for command in ("models", "usage"):
        t = _transport(parser.parse_args([command, "--region", "global"]))
        assert t.base_url == "https://api.kimi.ai/coding/v1"
        status = t.credential.describe()
        assert status.source == "kimi-code" and GLOBAL_SLOT in str(status.location)
        t = _transport(parser.parse_args([command]))  # the default region: the other slot (empty)
        assert t.base_url == "https://api.kimi.com/coding/v1" and t.credential.describe().source == "none"
    model = build_chat_model(parser.parse_args(["chat", "--region", "intl", "hi"]))
    assert model.region == "intl" and model._get_transport().base_url == "https://api.kimi.ai/coding/v1"
    for argv in (["models", "--region", "moon"], ["usage", "--region", "moon"],
                 ["doctor", "--region", "moon"], ["chat", "--region", "moon", "hi"]):
        proc = run(*argv)
        assert proc.returncode != 0 and "--region" in proc.stderr and "region=" not in proc.stderr, argv
        assert "global" in proc.stderr and "Traceback" not in proc.stderr, argv
