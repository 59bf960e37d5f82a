"""`login()` / `alogin()` end to end against the emulator on 127.0.0.1, with an injected clock."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kimi_coder_auth import clock, device, device_login, oauth
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.device import DevicePrompt, alogin, default_prompt, login
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import (
    DeviceAccessDenied,
    DeviceCodeExpired,
    DeviceLoginTimeout,
    OAuthError,
)
from kimi_coder_auth.locks import FlockLock
from kimi_coder_auth.region import kimi_code_slot
from kimi_coder_auth.stores import KimiCliStore
from kimi_coder_auth.token import FILE_FIELDS

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


@pytest.fixture
def fake() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


def cli_file() -> Path:
    """A kimi-cli format file at an explicit path: the default kimi-cli file (the default host's
    one slot) refuses logins from the emulator's host (tests/core/test_region_*.py)."""
    return Path(os.environ["KIMI_SHARE_DIR"]).parent / "explicit-kimi-cli" / "kimi-code.json"


def cli_store() -> KimiCliStore:
    return KimiCliStore(cli_file())


def code_file(emu: Emulator) -> Path:
    """Kimi Code's per-host slot for the emulator's OAuth host (and the default base URL)."""
    slot = kimi_code_slot(emu.oauth_host, "https://api.kimi.com/coding/v1")
    return Path(os.environ["KIMI_CODE_HOME"]) / "credentials" / f"{slot}.json"


class Prompts(list):
    def __call__(self, prompt: DevicePrompt) -> None:
        self.append(prompt)


def device_codes(emu: Emulator) -> list[str]:
    return [
        r.body["device_code"]
        for r in emu.requests
        if isinstance(r.body, dict) and "device_code" in r.body
    ]


def dead_host() -> str:
    """A loopback address where nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_sync_login_writes_kimi_cli_file(
    emu: Emulator, fake: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.script_device(["authorization_pending", "slow_down", "approve"])
    prompts = Prompts()
    token = login(store=cli_store(), prompt=prompts, open_browser=False, oauth_host=emu.oauth_host)

    assert fake.sleeps == [5, 10]
    assert emu.counts["device_authorization"] == 1
    assert emu.counts["device_token"] == 3
    polls = [r for r in emu.requests if r.path == "/api/oauth/token"]
    assert all(r.body["grant_type"] == device.DEVICE_GRANT_TYPE for r in polls)
    assert all(r.body["client_id"] == oauth.KIMI_CODE_CLIENT_ID for r in polls)
    auth_req = next(r for r in emu.requests if r.path == "/api/oauth/device_authorization")
    assert auth_req.body == {"client_id": oauth.KIMI_CODE_CLIENT_ID}

    (p,) = prompts
    assert p.user_code and p.user_code in (p.verification_uri_complete or "")
    assert p.verification_uri == f"{emu.oauth_host}/verify"
    assert p.expires_at == pytest.approx(fake.now() - 15 + 600)

    path = cli_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(FILE_FIELDS) <= set(data)
    assert isinstance(data["expires_at"], float)
    assert data["access_token"] == token.access_token.reveal()
    assert data["refresh_token"] == token.refresh_token.reveal()
    assert data["expires_at"] == pytest.approx(fake.now() + 900)
    assert emu.is_access_valid(data["access_token"])
    assert not code_file(emu).exists()

    # canary: neither the device code nor the tokens reach the logs
    secrets = [*device_codes(emu), data["access_token"], data["refresh_token"]]
    for secret in secrets:
        assert secret not in caplog.text
    assert "device login" in caplog.text  # it does log, just not secrets


def test_login_to_kimi_code_store(emu: Emulator, fake: FakeClock) -> None:
    token = login(
        store="kimi-code", prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host
    )
    data = json.loads(code_file(emu).read_text())
    assert isinstance(data["expires_at"], int)
    assert data["access_token"] == token.access_token.reveal()
    assert stat.S_IMODE(code_file(emu).stat().st_mode) == 0o600
    assert not cli_file().exists()
    assert fake.sleeps == []  # approved on the first poll


def test_login_keeps_unknown_fields_and_replaces_corrupt_tokens(
    emu: Emulator, fake: FakeClock
) -> None:
    path = cli_file()
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"access_token": "old", "refresh_token": "old", "future_field": {"x": 1}})
    )
    login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
    data = json.loads(path.read_text())
    assert data["future_field"] == {"x": 1}
    assert data["access_token"] != "old"


def test_host_from_environment(
    emu: Emulator, fake: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", emu.oauth_host)
    login(store=cli_store(), prompt=Prompts(), open_browser=False)
    assert emu.counts["device_token"] == 1


async def test_async_login(emu: Emulator, fake: FakeClock) -> None:
    emu.script_device(
        ["authorization_pending", "slow_down", "authorization_pending", "slow_down", "approve"]
    )
    seen: list[DevicePrompt] = []

    async def prompt(p: DevicePrompt) -> None:
        seen.append(p)

    token = await alogin(store=cli_store(), prompt=prompt, open_browser=False, oauth_host=emu.oauth_host)
    assert fake.sleeps == [5, 10, 10, 15]
    assert emu.counts["device_token"] == 5
    assert len(seen) == 1
    assert json.loads(cli_file().read_text())["access_token"] == token.access_token.reveal()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("step", "exc_type"),
    [("access_denied", DeviceAccessDenied), ("expired_token", DeviceCodeExpired)],
)
async def test_terminal_answers_stop_and_write_nothing(
    emu: Emulator, fake: FakeClock, mode: str, step: str, exc_type: type[Exception]
) -> None:
    emu.script_device(["authorization_pending", step, "authorization_pending"])
    kwargs: dict[str, Any] = {
        "store": cli_store(),
        "prompt": Prompts(),
        "open_browser": False,
        "oauth_host": emu.oauth_host,
    }
    with pytest.raises(exc_type):
        if mode == "sync":
            login(**kwargs)
        else:
            await alogin(**kwargs)
    assert emu.counts["device_token"] == 2  # no poll after the terminal answer
    assert fake.sleeps == [5]
    assert not cli_file().exists()


def test_token_endpoint_5xx_fails(emu: Emulator, fake: FakeClock) -> None:
    emu.script_device(["authorization_pending"])
    emu.inject("device_token", status=502, body={"error": "bad_gateway"})
    with pytest.raises(OAuthError) as info:
        login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
    assert info.value.status == 502
    assert emu.counts["device_token"] == 1
    assert not cli_file().exists()


def test_authorization_endpoint_error_shows_no_prompt(emu: Emulator, fake: FakeClock) -> None:
    emu.inject("device_authorization", status=503, body={"error": "temporarily_unavailable"})
    prompts = Prompts()
    with pytest.raises(OAuthError, match="refused to start"):
        login(store=cli_store(), prompt=prompts, open_browser=False, oauth_host=emu.oauth_host)
    assert prompts == []
    assert emu.counts["device_token"] == 0


def test_deadline_from_caller_timeout(emu: Emulator, fake: FakeClock) -> None:
    emu.script_device(["authorization_pending"] * 50)
    with pytest.raises(DeviceLoginTimeout):
        login(store=cli_store(), prompt=Prompts(), open_browser=False, timeout=20, oauth_host=emu.oauth_host)
    assert fake.sleeps == [5, 5, 5, 5]
    assert emu.counts["device_token"] == 5
    assert not cli_file().exists()


def test_deadline_from_expires_in(fake: FakeClock) -> None:
    with Emulator(device_expires_in=30, device_interval=10) as emu:
        emu.script_device(["authorization_pending"] * 50)
        with pytest.raises((DeviceLoginTimeout, DeviceCodeExpired)):
            login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
        assert sum(fake.sleeps) == pytest.approx(30)
        assert emu.counts["device_token"] <= 4


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_connection_errors_back_off_then_succeed(
    emu: Emulator, fake: FakeClock, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The first two polls hit a port where nothing listens; polling continues with backoff."""
    dead = dead_host()
    real_post, real_apost = oauth.post_form, oauth.apost_form
    calls = {"token": 0}

    def pick(path: str, host: str | None) -> str | None:
        if path == device.TOKEN_PATH:
            calls["token"] += 1
            if calls["token"] <= 2:
                return dead
        return host

    def post_form(path: str, data: Any, *, host: str | None = None, timeout: float = 10.0) -> Any:
        return real_post(path, data, host=pick(path, host), timeout=timeout)

    async def apost_form(
        path: str, data: Any, *, host: str | None = None, timeout: float = 10.0
    ) -> Any:
        return await real_apost(path, data, host=pick(path, host), timeout=timeout)

    monkeypatch.setattr(oauth, "post_form", post_form)
    monkeypatch.setattr(oauth, "apost_form", apost_form)
    emu.script_device(["authorization_pending", "approve"])
    kwargs: dict[str, Any] = {
        "store": cli_store(),
        "prompt": Prompts(),
        "open_browser": False,
        "oauth_host": emu.oauth_host,
    }
    if mode == "sync":
        login(**kwargs)
    else:
        await alogin(**kwargs)
    assert fake.sleeps == [10, 20, 5]  # doubled twice, then back to the interval after an answer
    assert emu.counts["device_token"] == 2
    assert cli_file().exists()


class BlockingClock(FakeClock):
    """Sleeping blocks until cancelled (async) or is interrupted by Ctrl-C (sync)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        raise KeyboardInterrupt

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


def assert_unlocked_and_unwritten() -> None:
    assert not cli_file().exists()
    lock = FlockLock(cli_file().with_suffix(".lock"), timeout=0.0)
    assert lock.acquire() is not False  # nobody holds kimi-cli's lock
    lock.release()


async def test_cancel_alogin_during_sleep(emu: Emulator) -> None:
    emu.script_device(["authorization_pending"] * 5)
    prompts = Prompts()
    with use_clock(BlockingClock()) as c:
        task = asyncio.create_task(
            alogin(store=cli_store(), prompt=prompts, open_browser=False, oauth_host=emu.oauth_host)
        )
        await asyncio.wait_for(c.sleeping.wait(), 5)  # type: ignore[attr-defined]
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0
    assert len(prompts) == 1
    assert emu.counts["device_token"] == 1
    assert_unlocked_and_unwritten()


def test_ctrl_c_during_sync_sleep(emu: Emulator) -> None:
    emu.script_device(["authorization_pending"] * 5)
    with use_clock(BlockingClock()), pytest.raises(KeyboardInterrupt):
        login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
    assert emu.counts["device_token"] == 1
    assert_unlocked_and_unwritten()


def test_login_waits_for_kimi_cli_lock_holder(emu: Emulator, fake: FakeClock) -> None:
    """A concurrent kimi-cli-style holder delays our write instead of racing it."""
    path = cli_file()
    path.parent.mkdir(parents=True)
    holder = FlockLock(path.with_suffix(".lock"), timeout=1.0)
    assert holder.acquire()
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        path.write_text(
            json.dumps({"access_token": "theirs", "refresh_token": "theirs", "kept": 1})
        )
        holder.release()
        released.set()

    t = threading.Thread(target=release_later)
    t.start()
    login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
    t.join()
    assert released.is_set()
    data = json.loads(path.read_text())
    assert data["access_token"] != "theirs"  # ours was written after theirs, not before
    assert data["kept"] == 1


def test_default_prompt_shows_url_and_code(
    capsys: pytest.CaptureFixture[str], fake: FakeClock
) -> None:
    p = DevicePrompt(
        verification_uri="https://auth.example/verify",
        verification_uri_complete="https://auth.example/verify?user_code=ABCD-EFGH",
        user_code="ABCD-EFGH",
        expires_at=fake.now() + 600,
    )
    default_prompt(p)
    err = capsys.readouterr().err
    assert "https://auth.example/verify?user_code=ABCD-EFGH" in err
    assert "ABCD-EFGH" in err
    assert "10 min" in err


def test_open_browser_called_and_failure_not_fatal(
    emu: Emulator, fake: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def broken_open(url: str) -> bool:
        opened.append(url)
        raise RuntimeError("no display")

    monkeypatch.setattr(device_login.webbrowser, "open", broken_open)
    prompts = Prompts()
    login(store=cli_store(), prompt=prompts, oauth_host=emu.oauth_host)
    assert opened == [prompts[0].verification_uri_complete]
    assert cli_file().exists()


def test_bad_arguments_fail_before_any_request(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="kimi-cli"):
        login(store="elsewhere", oauth_host=emu.oauth_host, open_browser=False)
    with pytest.raises(ValueError, match="timeout"):
        login(store=cli_store(), timeout=0, oauth_host=emu.oauth_host, open_browser=False)
    assert emu.counts["device_authorization"] == 0


def test_progress_callback_reports_events(emu: Emulator, fake: FakeClock) -> None:
    emu.script_device(["authorization_pending", "slow_down", "approve"])
    events: list[device.DeviceProgress] = []
    login(
        store=cli_store(),
        prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host, on_progress=events.append
    )
    assert [(e.event, e.next_poll_in, e.polls) for e in events] == [
        ("pending", 5, 1),
        ("slow_down", 10, 2),
    ]
    assert events[0].remaining == pytest.approx(600)


def test_clock_is_the_only_time_source(emu: Emulator, fake: FakeClock) -> None:
    """Tokens expire relative to the injected clock, as the emulator and status see it."""
    token = login(store=cli_store(), prompt=Prompts(), open_browser=False, oauth_host=emu.oauth_host)
    assert token.expires_at == pytest.approx(clock.now() + 900)


def test_login_into_an_unwritable_folder_fails_before_the_device_flow(
    emu: Emulator, fake: FakeClock
) -> None:
    """A login that could not be saved is refused before any code is shown or approved."""
    from test_creds_faults import immutable  # same folder (pytest puts it on sys.path)

    from kimi_coder_auth.errors import CredentialStoreUnwritable

    folder = cli_file().parent
    folder.mkdir(parents=True, exist_ok=True)
    prompts = Prompts()
    with immutable(folder), pytest.raises(CredentialStoreUnwritable) as info:
        login(store=cli_store(), prompt=prompts, open_browser=False, oauth_host=emu.oauth_host)
    assert str(folder) in str(info.value)
    assert prompts == []
    assert emu.counts["device_authorization"] == 0
    assert not cli_file().exists()
