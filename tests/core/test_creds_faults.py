"""Fault probes on credential storage (issue 12): hostile files, unwritable stores, killed writers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth import refresh as refresh_mod
from kimi_coder_auth import sources
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import (
    CredentialBusy,
    CredentialFileCorrupt,
    CredentialStoreUnwritable,
    ReauthRequired,
)
from kimi_coder_auth.refresh import OAuthCredential
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import FileTokenStore, KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

STORES = [KimiCliStore, KimiCodeStore]
STORE_NAMES = {KimiCliStore: "kimi-cli", KimiCodeStore: "kimi-code"}
WORKER = Path(__file__).parent / "_workers" / "creds_worker.py"
ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    sources.clear_credential_cache()
    refresh_mod._rejected.clear()
    yield
    sources.clear_credential_cache()
    refresh_mod._rejected.clear()


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as e:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", e.oauth_host)
        yield e


def seed(store: FileTokenStore, emu: Emulator, left: float) -> dict:
    """Store an emulator-issued login with `left` seconds of life (by the clock in force)."""
    from kimi_coder_auth import clock

    data = {**emu.issue_token(), "expires_at": clock.now() + left, "expires_in": 900.0}
    store.write(OAuthToken.from_file_dict(data))
    return data


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def immutable(folder: Path) -> Iterator[None]:
    """Make `folder` immutable (`chattr +i`): nothing can be created in it, not even by root."""
    if not _chattr("+i", folder):
        pytest.skip("chattr +i is not available here (needs root and ext4/xfs/btrfs)")
    try:
        yield
    finally:
        _chattr("-i", folder)


def no_secret_in(text: str, *values: str) -> None:
    for value in values:
        assert value not in text


def login_dict(at: str = "AT-CANARY-f", rt: str = "RT-CANARY-f", left: float = 800) -> dict:
    return {
        "access_token": at,
        "refresh_token": rt,
        "expires_at": time.time() + left,
        "scope": "kimi-code",
        "token_type": "Bearer",
        "expires_in": 900.0,
    }


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------- item 2: hostile files

_AT = '"access_token": "AT-CANARY-h", "refresh_token": "RT-CANARY-h"'
HOSTILE = {
    "nested 1000 deep": b"[" * 1000 + b"]" * 1000,
    "nested field 1000 deep": (
        '{' + _AT + ', "x": ' + "[" * 1000 + "]" * 1000 + "}"
    ).encode(),
    "400-digit expires_at": ("{" + _AT + ', "expires_at": ' + "9" * 400 + "}").encode(),
    "400-digit expires_in": ("{" + _AT + ', "expires_in": ' + "9" * 400 + "}").encode(),
    "5000-digit expires_at": ("{" + _AT + ', "expires_at": ' + "9" * 5000 + "}").encode(),
}


@pytest.mark.parametrize("store_cls", STORES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_corrupt_naming_the_file_and_left_alone(
    isolated_home: Path, store_cls: type, name: str
) -> None:
    store = store_cls()
    put(store.path, HOSTILE[name])
    with pytest.raises(CredentialFileCorrupt) as info:
        store.read()
    text = str(info.value)
    assert str(store.path) in text
    assert "CANARY" not in text and "9999" not in text
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert store.path.read_bytes() == HOSTILE[name]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_discovery_goes_on_past_a_hostile_file(isolated_home: Path, name: str) -> None:
    cli, code = KimiCliStore(), KimiCodeStore()
    put(cli.path, HOSTILE[name])
    put(code.path, json.dumps(login_dict(at="AT-CODE")).encode())
    cred = sources.resolve_credential()
    assert cred.get_token() == Secret("AT-CODE")
    assert cred.source == "kimi-code"
    assert cli.path.read_bytes() == HOSTILE[name]


@pytest.mark.parametrize("store_cls", STORES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_new_login_replaces_a_hostile_file(isolated_home: Path, store_cls: type, name: str) -> None:
    store = store_cls()
    put(store.path, HOSTILE[name])
    store.write(OAuthToken.from_file_dict(login_dict(at="AT-NEW")))
    assert store.read().access_token == Secret("AT-NEW")  # type: ignore[union-attr]


def test_hostile_logout_marker_does_not_crash_kimi_code_reads(isolated_home: Path) -> None:
    store = KimiCodeStore()
    put(store.path, json.dumps(login_dict(at="AT-CODE")).encode())
    put(store.path.parent / "kimi-code.removed", b"[" * 1000 + b"]" * 1000)
    assert store.read().access_token == Secret("AT-CODE")  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- item 1: unwritable store


@pytest.mark.parametrize("store_cls", STORES)
def test_unwritable_folder_spends_no_refresh_token_and_keeps_the_login(
    emu: Emulator, store_cls: type
) -> None:
    store = store_cls()
    old = seed(store, emu, -10)
    before = store.path.read_bytes()
    cred = OAuthCredential(store)
    with immutable(store.path.parent), pytest.raises(CredentialStoreUnwritable) as info:
        cred.get_token()
    text = str(info.value)
    assert emu.counts["refresh"] == 0  # the refresh token was not spent
    assert store.path.read_bytes() == before
    assert str(store.path) in text and "Operation not permitted" in text
    assert "not attempted" in text and "writable" in text
    assert info.value.path == str(store.path)
    no_secret_in(text, old["access_token"], old["refresh_token"])
    # once the folder is writable again, the same login refreshes normally
    assert emu.is_access_valid(cred.get_token().reveal())
    assert emu.counts["refresh"] == 1


def test_unwritable_folder_in_the_advisory_window_serves_the_current_token(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    store = KimiCliStore()
    old = seed(store, emu, 200)  # inside the 450 s refresh window, far from expiry
    with immutable(store.path.parent), caplog.at_level(logging.WARNING, "kimi_coder_auth"):
        assert OAuthCredential(store).get_token() == Secret(old["access_token"])
    assert emu.counts["refresh"] == 0
    assert str(store.path) in caplog.text and "cannot be written" in caplog.text
    no_secret_in(caplog.text, old["access_token"], old["refresh_token"])


@posix_only
@pytest.mark.parametrize("store_cls", STORES)
def test_full_disk_spends_no_refresh_token(emu: Emulator, store_cls: type) -> None:
    """RLIMIT_FSIZE in a worker: the kernel refuses file growth (EFBIG), as a full disk would."""
    store = store_cls()
    old = seed(store, emu, -10)
    before = store.path.read_bytes()
    done = subprocess.run(
        [sys.executable, str(WORKER), "refresh-file-limit", STORE_NAMES[store_cls], "64"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    kind, name, message = done.stdout.split(" ", 2)
    assert (kind, name) == ("ERROR", "CredentialStoreUnwritable")
    message = json.loads(message)
    assert "File too large" in message and str(store.path) in message
    no_secret_in(done.stdout + done.stderr, old["access_token"], old["refresh_token"])
    assert emu.counts["refresh"] == 0
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("store_cls", STORES)
def test_save_failing_after_the_refresh_is_raised_and_the_login_kept_in_memory(
    emu: Emulator, store_cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_cls()
    with use_clock(FakeClock(time.time())) as fake:
        old = seed(store, emu, -10)
        before = store.path.read_bytes()
        real_refresh = refresh_mod.refresh_access_token
        folder = store.path.parent

        def refresh_then_lose_the_folder(*args: object, **kwargs: object) -> OAuthToken:
            new = real_refresh(*args, **kwargs)  # type: ignore[arg-type]
            if not _chattr("+i", folder):  # the disk "fills up" right after the POST
                pytest.skip("chattr +i is not available here")
            return new

        monkeypatch.setattr(refresh_mod, "refresh_access_token", refresh_then_lose_the_folder)
        cred = OAuthCredential(store)
        try:
            with pytest.raises(CredentialStoreUnwritable) as info:
                cred.get_token()
            text = str(info.value)
            assert emu.counts["refresh"] == 1
            assert str(store.path) in text and "Operation not permitted" in text
            assert "only valid copy is in the memory of this process" in text
            assert "kimi-coder login" in text
            assert store.path.read_bytes() == before  # nothing half-written
            # the rotated login is used from memory, without another refresh
            new = cred.get_token()
            assert emu.is_access_valid(new.reveal()) and emu.counts["refresh"] == 1
            no_secret_in(text, old["access_token"], old["refresh_token"], new.reveal())
            # every later error says where the login is
            with pytest.raises(CredentialStoreUnwritable) as later:
                cred.on_unauthorized(new)
            assert "could not be saved" in str(later.value) and str(os.getpid()) in str(later.value)
            assert emu.counts["refresh"] == 1
        finally:
            _chattr("-i", folder)
        fake.advance(31)  # the save is retried at the latest 30 s later
        assert cred.get_token() == new
        on_disk = json.loads(store.path.read_text())
        assert on_disk["access_token"] == new.reveal()
        assert on_disk["refresh_token"] != old["refresh_token"]
        assert emu.counts["refresh"] == 1


def test_unwritable_revoked_marker_is_a_typed_error_naming_the_file(isolated_home: Path) -> None:
    store = KimiCodeStore()
    login = OAuthToken.from_file_dict(login_dict())
    store.write(login)
    with immutable(store.path.parent), pytest.raises(CredentialStoreUnwritable) as info:
        store.mark_revoked(login)
    assert str(store.path) in str(info.value) and "Operation not permitted" in str(info.value)
    assert store.read().access_token == login.access_token  # type: ignore[union-attr]


def test_rejected_refresh_whose_revoked_marker_cannot_be_written_says_both(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KimiCodeStore()
    store.write(OAuthToken.from_file_dict(login_dict(left=-10)))  # a refresh token the server never issued
    real_refresh = refresh_mod.refresh_access_token
    folder = store.path.parent

    def refresh_then_lose_the_folder(*args: object, **kwargs: object) -> OAuthToken:
        try:
            return real_refresh(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            if not _chattr("+i", folder):
                pytest.skip("chattr +i is not available here")

    monkeypatch.setattr(refresh_mod, "refresh_access_token", refresh_then_lose_the_folder)
    try:
        with pytest.raises(ReauthRequired) as info:
            OAuthCredential(store).get_token()
    finally:
        _chattr("-i", folder)
    text = str(info.value)
    assert emu.counts["refresh_rejected"] == 1
    assert "revoked marker could not be written" in text and str(store.path) in text
    assert "Operation not permitted" in text
    no_secret_in(text, "AT-CANARY-f", "RT-CANARY-f")


# ---------------------------------------------------------------------------- item 8: killed writers


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def kill_mid_refresh(store_cls: type) -> Path:
    """A worker refreshes (the server rotates the refresh token) and is SIGKILLed before its rename."""
    proc = spawn("refresh-pause", STORE_NAMES[store_cls])
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("PAUSED"), proc.stderr.read()  # type: ignore[union-attr]
        proc.kill()
    finally:
        proc.wait(timeout=10)
    return Path(line.split()[1])


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


@posix_only
@pytest.mark.parametrize("store_cls", STORES)
def test_next_use_restores_the_rotated_login_a_killed_writer_left_in_its_temp_file(
    emu: Emulator, store_cls: type
) -> None:
    store = store_cls()
    old = seed(store, emu, -10)
    temp = kill_mid_refresh(store_cls)
    assert emu.counts["refresh"] == 1
    left = json.loads(temp.read_text())
    assert json.loads(store.path.read_text())["refresh_token"] == old["refresh_token"]  # dead now
    # a Kimi Code killed holder leaves its lock directory: we wait for it to go stale (5 s)
    token = OAuthCredential(store).get_token()
    assert token == Secret(left["access_token"])
    assert emu.counts["refresh"] == 1 and emu.counts["refresh_rejected"] == 0
    assert json.loads(store.path.read_text()) == left
    assert store.interrupted_writes() == [] and not temp.exists()
    assert [p.name for p in store.path.parent.iterdir() if ".tmp" in p.name] == []


@posix_only
def test_kimi_code_revoked_marker_over_a_killed_writers_login_is_recovered(
    emu: Emulator,
) -> None:
    store = KimiCodeStore()
    old = seed(store, emu, -10)
    temp = kill_mid_refresh(KimiCodeStore)
    left = json.loads(temp.read_text())
    # the next client used the dead refresh token, was rejected and wrote the revoked marker
    store.mark_revoked(OAuthToken.from_file_dict(old))
    with pytest.raises(ReauthRequired) as info:
        store.read()
    assert str(temp) in str(info.value)
    no_secret_in(str(info.value), left["access_token"], left["refresh_token"])
    cred = sources.resolve_credential()  # discovery does not skip it as revoked
    assert cred.get_token() == Secret(left["access_token"])
    assert cred.source == "kimi-code"
    assert json.loads(store.path.read_text()) == left and not temp.exists()
    assert emu.counts["refresh"] == 1


@posix_only
@pytest.mark.parametrize("store_cls", STORES)
def test_dead_writers_leftovers_that_are_not_newer_are_removed_live_ones_kept(
    emu: Emulator, store_cls: type
) -> None:
    store = store_cls()
    seed(store, emu, -10)
    folder, name, pid = store.path.parent, store.path.name, dead_pid()
    partial = folder / f".{name}.{pid}.abcd1234.tmp"
    partial.write_text('{"access_token": "AT-CANARY-partial", "refre')
    older = folder / f"{name}.tmp.{pid}.0badc0de"
    older.write_text(json.dumps(login_dict(at="AT-CANARY-old", rt="RT-CANARY-old", left=-5000)))
    live = folder / f".{name}.{os.getpid()}.zzzz9999.tmp"  # a write in progress: never touched
    live.write_text(json.dumps(login_dict(at="AT-CANARY-live", rt="RT-CANARY-live")))
    token = OAuthCredential(store).get_token()
    assert emu.counts["refresh"] == 1 and emu.is_access_valid(token.reveal())
    assert not partial.exists() and not older.exists()
    assert live.exists()


def test_a_leftover_never_replaces_a_missing_or_corrupt_file(isolated_home: Path) -> None:
    store = KimiCliStore()
    store.path.parent.mkdir(parents=True)
    stray = store.path.parent / f".{store.path.name}.{dead_pid()}.abcd1234.tmp"
    stray.write_text(json.dumps(login_dict()))
    assert store.recover_interrupted_write() is None  # missing: logged out, stays logged out
    store.path.write_bytes(b"{")
    assert store.recover_interrupted_write() is None
    assert store.path.read_bytes() == b"{" and stray.exists()


# ---------------------------------------------------------------------------- item 9: Kimi Code's stale rule


@posix_only
def test_kimi_code_lock_of_a_killed_holder_is_taken_over_by_kimi_codes_5_s_rule(
    isolated_home: Path,
) -> None:
    """proper-lockfile (stale: 5000): a lock directory is abandoned once its mtime is > 5 s old."""
    store = KimiCodeStore()
    lock_dir = store.lock_target.parent / f"{store.lock_target.name}.lock"
    proc = spawn("hold-our-lock", "kimi-code", "60")
    try:
        assert proc.stdout.readline().startswith("LOCKED")  # type: ignore[union-attr]
        proc.kill()
    finally:
        proc.wait(timeout=10)
    assert lock_dir.is_dir()  # a killed holder cannot remove it
    last_touch = lock_dir.stat().st_mtime
    with store.lock(15):
        taken_at = time.time()
    assert taken_at >= last_touch + 5.0  # never taken over while fresh
    assert not lock_dir.exists()
    # the boundary, without waiting: 4.5 s old is still held (fail closed), 5.5 s old is abandoned
    lock_dir.mkdir()
    os.utime(lock_dir, (time.time() - 4.5,) * 2)
    with pytest.raises(CredentialBusy), store.lock(0.1):
        pass
    assert lock_dir.is_dir()
    os.utime(lock_dir, (time.time() - 5.5,) * 2)
    with store.lock(0.1):
        pass
    assert not lock_dir.exists()
