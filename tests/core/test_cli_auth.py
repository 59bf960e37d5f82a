"""`kimi-coder login / logout / status` output, through `cli.main([...])` and one real subprocess."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth import device_login
from kimi_coder_auth.cli import main
from kimi_coder_auth.cli.auth_cmds import _Progress
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.device import DeviceProgress
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.locks import FlockLock
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

pytestmark = pytest.mark.timeout(30)

AT = "AT-CANARY-9c8b7a"
RT = "RT-CANARY-6f5e4d"
KEY = "sk-CANARY-3c2b1a"


@pytest.fixture
def fake() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as e:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", e.oauth_host)
        yield e


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []

    def record(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(device_login.webbrowser, "open", record)
    return opened


def cli_file() -> Path:
    return Path(os.environ["KIMI_SHARE_DIR"]) / "credentials" / "kimi-code.json"


def code_file() -> Path:
    return Path(os.environ["KIMI_CODE_HOME"]) / "credentials" / "kimi-code.json"


def emu_file() -> Path:
    """Kimi Code's per-host slot for the OAuth host in force (the emulator's): where a login
    from a non-default host is saved; never kimi-cli's default-host file."""
    from kimi_coder_auth.paths import kimi_code_token_name

    return Path(os.environ["KIMI_CODE_HOME"]) / "credentials" / f"{kimi_code_token_name()}.json"


def store_token(store: KimiCliStore | KimiCodeStore, expires_at: float, refresh: str = RT) -> None:
    store.write(
        OAuthToken(
            Secret(AT),
            Secret(refresh),
            expires_at,
            expires_in=900.0,
            scope="kimi-code",
            token_type="Bearer",
        )
    )


def secrets_of(emu: Emulator) -> list[str]:
    found = [AT, RT, KEY]
    for r in emu.requests:
        if isinstance(r.body, dict) and "device_code" in r.body:
            found.append(r.body["device_code"])
    for path in (cli_file(), code_file(), emu_file()):
        if path.exists():
            data = json.loads(path.read_text())
            found += [data["access_token"], data["refresh_token"]]
    return [s for s in found if s]


def assert_no_secrets(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


def local_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


# --------------------------------------------------------------------------- login


def test_login_no_browser(
    emu: Emulator, fake: FakeClock, no_browser: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script_device(["authorization_pending", "slow_down", "approve"])
    assert main(["login", "--no-browser"]) == 0
    out, err = capsys.readouterr()

    auth = next(r for r in emu.requests if r.path == "/api/oauth/device_authorization")
    assert auth.body == {"client_id": device_client_id()}
    data = json.loads(emu_file().read_text())
    assert f"{emu.oauth_host}/verify?user_code=" in out
    user_code = out.split("verify?user_code=")[1].split()[0]
    assert f"shows this code: {user_code}" in out
    assert f"Saved to Kimi Code's file (slot {emu_file().stem}): {emu_file()}" in out
    assert not cli_file().exists() and not code_file().exists()
    assert local_time(fake.now() + 900) in out and "in 15 min" in out
    assert "Opening your browser" not in out
    assert no_browser == []
    assert "Waiting for approval" in err
    assert "slow down; polling every 10 s" in err
    assert fake.sleeps == [5, 10]
    assert data["access_token"]
    assert_no_secrets(out + err, secrets_of(emu))


def device_client_id() -> str:
    from kimi_coder_auth.oauth import KIMI_CODE_CLIENT_ID

    return KIMI_CODE_CLIENT_ID


def test_login_opens_browser_and_saves_to_kimi_code(
    emu: Emulator, fake: FakeClock, no_browser: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--store", "kimi-code"]) == 0
    out, _ = capsys.readouterr()
    assert len(no_browser) == 1 and no_browser[0] in out
    assert "Opening your browser" in out
    assert f"Saved to Kimi Code's file (slot {emu_file().stem}): {emu_file()}" in out
    assert emu_file().exists() and not code_file().exists() and not cli_file().exists()


def test_login_browser_failure_is_not_fatal(
    emu: Emulator,
    fake: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(url: str) -> bool:
        raise OSError("no browser here")

    monkeypatch.setattr(device_login.webbrowser, "open", broken)
    assert main(["login"]) == 0
    assert emu_file().exists()


def test_login_timeout(
    emu: Emulator, fake: FakeClock, no_browser: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script_device(["authorization_pending"] * 20)
    assert main(["login", "--no-browser", "--timeout", "12"]) == 1
    _, err = capsys.readouterr()
    assert "error: No approval arrived within the 12 s timeout" in err
    assert "kimi-coder login" in err
    assert fake.sleeps == [5, 5, 2]
    assert not cli_file().exists()


@pytest.mark.parametrize(
    ("step", "phrase"), [("access_denied", "declined"), ("expired_token", "expired")]
)
def test_login_terminal_errors(
    emu: Emulator,
    fake: FakeClock,
    no_browser: list[str],
    capsys: pytest.CaptureFixture[str],
    step: str,
    phrase: str,
) -> None:
    emu.script_device([step])
    assert main(["login", "--no-browser"]) == 1
    _, err = capsys.readouterr()
    assert phrase in err and "Nothing was written" in err
    assert not cli_file().exists()
    assert_no_secrets(err, secrets_of(emu))


class CtrlCClock(FakeClock):
    def sleep(self, seconds: float) -> None:
        raise KeyboardInterrupt


def test_login_ctrl_c(
    emu: Emulator, no_browser: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script_device(["authorization_pending"] * 5)
    with use_clock(CtrlCClock()):
        assert main(["login", "--no-browser"]) == 130
    _, err = capsys.readouterr()
    assert "Login cancelled; nothing was written." in err
    assert not cli_file().exists()
    lock = FlockLock(cli_file().with_suffix(".lock"), timeout=0.0)
    assert lock.acquire() is not False  # the lock is free
    lock.release()


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "nan"])
def test_login_rejects_bad_timeout(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["login", "--timeout", bad])
    assert info.value.code == 2
    assert "timeout" in capsys.readouterr().err


def test_progress_spinner_on_a_tty() -> None:
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = TTY()
    progress = _Progress(stream)
    progress.start(600)
    time.sleep(0.4)
    progress.update(DeviceProgress("connection_error", 10, 590, 5, 2))
    progress.stop()
    text = stream.getvalue()
    assert "Waiting for approval in the browser..." in text
    assert "left (Ctrl-C to cancel)" in text
    assert "\r" in text
    assert "retrying in 10 s" in text
    assert text.endswith("\r\033[K")  # the spinner line is cleared at the end


# --------------------------------------------------------------------------- status


def test_status_kimi_cli(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 14 * 60)
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "Source:     kimi-cli login" in out
    assert f"File:       {cli_file()}" in out
    assert f"Expires:    {local_time(fake.now() + 14 * 60)} (in 14 min)" in out
    assert "Refreshes:  yes, automatically" in out
    assert " * kimi-cli " in out
    assert_no_secrets(out, [AT, RT])


def test_status_kimi_code_pinned(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 600)
    store_token(KimiCodeStore(), fake.now() + 300)
    assert main(["status", "--credentials", "kimi-code"]) == 0
    out, _ = capsys.readouterr()
    assert "Source:     Kimi Code login" in out
    assert f"File:       {code_file()}" in out
    assert "(in 5 min)" in out
    assert_no_secrets(out, [AT, RT])


def test_status_env_key(
    fake: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
    store_token(KimiCliStore(), fake.now() + 600)
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "Source:     KIMI_CODER_API_KEY" in out
    assert "Expires:    never" in out
    assert "Refreshes:  no" in out
    assert_no_secrets(out, [AT, RT, KEY])


def test_status_pinned_env_missing(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 600)
    assert main(["status", "--credentials", "env"]) == 1
    _, err = capsys.readouterr()
    assert "env" in err and "not set" in err


def test_status_nothing_found(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "No usable Kimi Coding credentials" in err
    assert str(cli_file()) in err and str(code_file()) in err
    assert "kimi-coder login" in err
    assert not cli_file().parent.exists()  # status creates nothing


def test_status_expired_but_refreshable(
    fake: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    store_token(KimiCliStore(), fake.now() - 180)
    before = cli_file().read_bytes()
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "(expired 3 min ago)" in out
    assert "Refreshes:  yes, on next use" in out
    assert cli_file().read_bytes() == before  # status never refreshes or rewrites


def test_status_expired_without_refresh_token(
    fake: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    store_token(KimiCliStore(), fake.now() - 180, refresh="")
    assert main(["status"]) == 1
    _, err = capsys.readouterr()
    assert "no refresh token" in err
    assert_no_secrets(err, [AT])


def test_status_corrupt_file(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    path = cli_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"access_token": "AT-CANARY-9c8b7a", ')
    assert main(["status", "--credentials", "kimi-cli"]) == 1
    _, err = capsys.readouterr()
    assert str(path) in err and "not valid JSON" in err
    assert AT not in err
    assert path.read_bytes() == b'{"access_token": "AT-CANARY-9c8b7a", '


def test_status_json(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 900)
    assert main(["status", "--json"]) == 0
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert data["source"] == "kimi-cli"
    assert data["location"] == str(cli_file())
    assert data["expires_at"] == pytest.approx(fake.now() + 900)
    assert data["expires_in_seconds"] == pytest.approx(900)
    assert data["expired"] is False and data["refreshable"] is True
    assert [s["source"] for s in data["sources"]] == ["env", "kimi-cli", "kimi-code"]
    assert_no_secrets(out, [AT, RT])


def test_status_json_nothing_found(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["source"] is None and "kimi-coder login" in data["error"]


def test_status_after_login_reflects_new_file(
    emu: Emulator, fake: FakeClock, no_browser: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 1
    assert main(["login", "--no-browser"]) == 0
    capsys.readouterr()
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "Source:     Kimi Code login" in out and "(in 15 min)" in out
    assert f"Slot:       {emu_file().stem}" in out
    assert_no_secrets(out, secrets_of(emu))


# --------------------------------------------------------------------------- logout


def test_logout_kimi_cli(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 600)
    lock_file = cli_file().with_suffix(".lock")
    assert main(["logout"]) == 0
    out, _ = capsys.readouterr()
    assert f"removed the kimi-cli login {cli_file()}" in out
    assert not cli_file().exists()
    assert lock_file.exists()  # kimi-cli's lock file is never deleted
    assert main(["logout"]) == 0
    assert "No kimi-cli login to remove" in capsys.readouterr().out


def test_logout_kimi_code(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 600)
    store_token(KimiCodeStore(), fake.now() + 600)
    assert main(["logout", "--store", "kimi-code"]) == 0
    out, _ = capsys.readouterr()
    assert f"removed the Kimi Code login {code_file()}" in out
    assert not code_file().exists()
    assert cli_file().exists()  # the other store is untouched
    home = Path(os.environ["KIMI_CODE_HOME"])
    assert not (home / "oauth" / "kimi-code.lock").exists()  # lock directory released


def test_logout_nothing_creates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logout", "--store", "kimi-code"]) == 0
    assert "No Kimi Code login to remove" in capsys.readouterr().out
    assert not Path(os.environ["KIMI_CODE_HOME"]).exists()


def test_logout_waits_for_the_lock(fake: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    store_token(KimiCliStore(), fake.now() + 600)
    holder = FlockLock(cli_file().with_suffix(".lock"), timeout=1.0)
    assert holder.acquire()
    seen: dict[str, bool] = {}

    def release_later() -> None:
        time.sleep(0.3)
        seen["file_while_locked"] = cli_file().exists()
        holder.release()

    t = threading.Thread(target=release_later)
    t.start()
    assert main(["logout"]) == 0
    t.join()
    assert seen["file_while_locked"] is True  # logout did not delete while the lock was held
    assert not cli_file().exists()


def test_logout_mentions_env_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
    assert main(["logout"]) == 0
    out = capsys.readouterr().out
    assert "KIMI_CODER_API_KEY is still set" in out
    assert KEY not in out


# --------------------------------------------------------------------------- real process


def test_status_in_a_real_subprocess(isolated_home: Path) -> None:
    store = KimiCliStore()
    expires_at = time.time() + 1800
    store_token(store, expires_at)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.run(
        [sys.executable, "-m", "kimi_coder_auth", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Source:     kimi-cli login" in proc.stdout
    assert str(cli_file()) in proc.stdout
    assert "(in 30 min)" in proc.stdout
    assert_no_secrets(proc.stdout + proc.stderr, [AT, RT])

    cli_file().unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "kimi_coder_auth", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 1
    assert "No usable Kimi Coding credentials" in proc.stderr


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_ctrl_c_in_a_real_login_process(isolated_home: Path, inherited: str) -> None:
    """SIGINT while polling: exit 130 promptly, the cancel message, no file, lock free.

    The child's SIGINT disposition is set explicitly, so the test does not depend on how the
    suite was started (`nohup ... &` makes children inherit SIGINT ignored); with it ignored,
    login restores a default handler so Ctrl-C still cancels."""
    import signal

    disposition = signal.SIG_DFL if inherited == "default" else signal.SIG_IGN

    with Emulator() as emu:
        emu.script_device(["authorization_pending"] * 50)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env["KIMI_CODE_OAUTH_HOST"] = emu.oauth_host
        proc = subprocess.Popen(
            [sys.executable, "-m", "kimi_coder_auth", "login", "--no-browser"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
        )
        try:
            deadline = time.monotonic() + 15
            while emu.counts["device_token"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert emu.counts["device_token"] == 1
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
            elapsed = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert elapsed < 3.0  # well under the 5 s poll interval: the sleep was interrupted
        assert "Login cancelled; nothing was written." in err
        assert "Traceback" not in err
        assert "verify?user_code=" in out
        assert emu.counts["device_token"] == 1
    assert not cli_file().exists()
    lock = FlockLock(cli_file().with_suffix(".lock"), timeout=0.0)
    assert lock.acquire() is not False
    lock.release()
