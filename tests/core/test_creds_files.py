"""Credential files and locks: formats, corruption, atomicity, permissions, lock protocols."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kimi_coder_auth.errors import (
    CredentialBusy,
    CredentialFileCorrupt,
    CredentialStoreUnwritable,
    OAuthError,
    ReauthRequired,
)
from kimi_coder_auth.locks import DirLock, FlockLock
from kimi_coder_auth.paths import kimi_code_scoped_name, kimi_code_token_name
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

WORKER = Path(__file__).parent / "_workers" / "creds_worker.py"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions and flock")

KIMI_CLI_GOLDEN = {
    "access_token": "AT-CANARY-cli",
    "refresh_token": "RT-CANARY-cli",
    "expires_at": 1800000900.123456,
    "scope": "kimi-code",
    "token_type": "Bearer",
    "expires_in": 900.0,
}


def token(
    at: str = "AT-1", rt: str = "RT-1", expires_at: float = 1800000900.5, expires_in: float = 900.0
) -> OAuthToken:
    return OAuthToken(Secret(at), Secret(rt), expires_at, expires_in, "kimi-code", "Bearer")


def cli_path(home: Path) -> Path:
    return home / ".kimi" / "credentials" / "kimi-code.json"


def code_path(home: Path) -> Path:
    return home / ".kimi-code" / "credentials" / "kimi-code.json"


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------- formats


def test_kimi_cli_write_is_byte_identical_to_kimi_cli_to_dict(isolated_home: Path) -> None:
    store = KimiCliStore()
    store.write(OAuthToken.from_file_dict(KIMI_CLI_GOLDEN))
    raw = cli_path(isolated_home).read_bytes()
    # kimi-cli: json.dumps(token.to_dict(), ensure_ascii=False), no trailing newline
    assert raw == json.dumps(KIMI_CLI_GOLDEN, ensure_ascii=False).encode()
    assert not raw.endswith(b"\n")


def test_kimi_cli_writes_all_six_fields_as_floats(isolated_home: Path) -> None:
    KimiCliStore().write(token(expires_at=1800000000, expires_in=900))
    data = json.loads(cli_path(isolated_home).read_text())
    assert list(data) == [
        "access_token",
        "refresh_token",
        "expires_at",
        "scope",
        "token_type",
        "expires_in",
    ]
    assert isinstance(data["expires_at"], float) and isinstance(data["expires_in"], float)


def test_kimi_code_format_pretty_integer_expiry_trailing_newline(isolated_home: Path) -> None:
    KimiCodeStore().write(token(expires_at=1800000900.9, expires_in=900.0))
    raw = code_path(isolated_home).read_text()
    expected = {
        "access_token": "AT-1",
        "refresh_token": "RT-1",
        "expires_at": 1800000900,
        "scope": "kimi-code",
        "token_type": "Bearer",
        "expires_in": 900,
    }
    assert raw == json.dumps(expected, indent=2) + "\n"  # JSON.stringify(wire, null, 2) + "\n"


def test_unknown_fields_survive_a_write_back(isolated_home: Path) -> None:
    original = {**KIMI_CLI_GOLDEN, "future_field": {"nested": [1, 2]}, "note": "ü"}
    write_file(cli_path(isolated_home), json.dumps(original).encode())
    store = KimiCliStore()
    read = store.read()
    assert read is not None
    store.write(token(at="AT-2", rt="RT-2").with_extra(read.extra))
    data = json.loads(cli_path(isolated_home).read_text())
    assert data["future_field"] == {"nested": [1, 2]} and data["note"] == "ü"
    assert data["access_token"] == "AT-2"


def test_unknown_fields_kept_even_when_writing_a_brand_new_token(isolated_home: Path) -> None:
    write_file(code_path(isolated_home), json.dumps({**KIMI_CLI_GOLDEN, "x_keep": 1}).encode())
    KimiCodeStore().write(token(at="AT-9"))  # e.g. a fresh device login
    assert json.loads(code_path(isolated_home).read_text())["x_keep"] == 1


def test_lenient_reading_of_missing_fields(isolated_home: Path) -> None:
    write_file(cli_path(isolated_home), b'{"access_token": "AT", "refresh_token": "RT"}')
    tok = KimiCliStore().read()
    assert tok is not None
    assert tok.expires_at == 0 and tok.expires_in == 0 and tok.refresh_token == Secret("RT")
    assert tok.needs_refresh(time.time())  # expires_at 0 -> refresh at once, like kimi-cli


def test_missing_file_reads_as_none(isolated_home: Path) -> None:
    assert KimiCliStore().read() is None
    assert KimiCodeStore().read() is None


CORRUPT = [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"{", "not valid JSON"),
    (b"[]", "expected a JSON object, found array"),
    (b"null", "found null"),
    (b'"AT-CANARY-x"', "found string"),
    (b'{"access_token": 5, "refresh_token": "RT-CANARY-x"}', "'access_token' should be a string"),
    (b'{"access_token": "AT-CANARY-x", "expires_at": "soon"}', "'expires_at' should be a number"),
    (b'{"access_token": "AT-CANARY-x", "expires_at": true}', "'expires_at' should be a number"),
    (b"\xff\xfe\x00binary", "binary"),
]


@pytest.mark.parametrize("store_cls", [KimiCliStore, KimiCodeStore])
@pytest.mark.parametrize(("content", "problem"), CORRUPT)
def test_corrupt_file_is_reported_and_left_byte_identical(
    isolated_home: Path, store_cls: type, content: bytes, problem: str
) -> None:
    store = store_cls()
    write_file(store.path, content)
    with pytest.raises(CredentialFileCorrupt) as info:
        store.read()
    assert problem in str(info.value)
    assert str(store.path) in str(info.value)
    assert "CANARY" not in str(info.value)
    assert "left untouched" in str(info.value)
    assert store.path.read_bytes() == content


def test_unreadable_file_is_reported(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_file(cli_path(isolated_home), json.dumps(KIMI_CLI_GOLDEN).encode())
    real_open = open

    def denied(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == str(cli_path(isolated_home)):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(CredentialFileCorrupt, match="permission denied") as info:
        KimiCliStore().read()
    assert "chmod 600" in str(info.value)


def test_kimi_code_tombstone_is_written_exactly_and_reads_as_reauth(isolated_home: Path) -> None:
    store = KimiCodeStore()
    store.write(token())
    store.mark_revoked(token())
    raw = code_path(isolated_home).read_text()
    assert (
        raw
        == json.dumps(
            {
                "access_token": "",
                "refresh_token": "",
                "expires_at": 0,
                "scope": "kimi-code",
                "token_type": "Bearer",
                "expires_in": 0,
            },
            indent=2,
        )
        + "\n"
    )
    with pytest.raises(ReauthRequired) as info:
        store.read()
    assert not isinstance(info.value, CredentialFileCorrupt)
    assert "log in" in str(info.value).lower()


def test_kimi_cli_mark_revoked_leaves_file_alone(isolated_home: Path) -> None:
    write_file(cli_path(isolated_home), json.dumps(KIMI_CLI_GOLDEN).encode())
    before = cli_path(isolated_home).read_bytes()
    KimiCliStore().mark_revoked(token())
    assert cli_path(isolated_home).read_bytes() == before


def test_delete_removes_file_under_lock_and_keeps_lock_file(isolated_home: Path) -> None:
    store = KimiCliStore()
    store.write(token())
    assert store.delete() is True
    assert not store.path.exists()
    assert store.lock_path.exists()
    assert store.delete() is False


# ---------------------------------------------------------------------------- token parsing


def test_from_response_names_missing_fields_without_values() -> None:
    with pytest.raises(OAuthError) as info:
        OAuthToken.from_response({"refresh_token": "RT-CANARY-z", "expires_in": "abc"}, now=0)
    msg = str(info.value)
    assert "access_token" in msg and "expires_in" in msg and "CANARY" not in msg


def test_from_response_keeps_previous_refresh_token_and_extra() -> None:
    prev = token(rt="RT-OLD").with_extra({"keep": True})
    new = OAuthToken.from_response(
        {"access_token": "AT-N", "expires_in": 900}, now=100.0, previous=prev
    )
    assert new.refresh_token == Secret("RT-OLD") and new.extra == {"keep": True}
    assert new.expires_at == 1000.0 and new.token_type == "Bearer"


@pytest.mark.parametrize("bad", [0, -5, None, "x", True, float("nan")])
def test_from_response_rejects_unusable_expires_in(bad: object) -> None:
    with pytest.raises(OAuthError, match="expires_in"):
        OAuthToken.from_response(
            {"access_token": "a", "refresh_token": "r", "expires_in": bad}, now=0
        )


def test_from_response_parses_numeric_string_and_clamps_huge() -> None:
    assert (
        OAuthToken.from_response(
            {"access_token": "a", "refresh_token": "r", "expires_in": "900"}, now=0
        ).expires_in
        == 900
    )
    huge = OAuthToken.from_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 1e12}, now=0
    )
    assert huge.expires_in == 365 * 24 * 3600


@pytest.mark.parametrize(
    ("expires_in", "left", "due"),
    [
        (900, 451, False),
        (900, 449, True),
        (0, 301, False),
        (0, 299, True),
        (3600, 1801, False),
        (3600, 1799, True),
    ],
)
def test_refresh_threshold_is_max_300_or_half_lifetime(
    expires_in: float, left: float, due: bool
) -> None:
    assert token(expires_at=10_000 + left, expires_in=expires_in).needs_refresh(10_000) is due


def test_token_repr_never_shows_secrets() -> None:
    tok = token(at="AT-CANARY-repr", rt="RT-CANARY-repr").with_extra({"id_token": "IT-CANARY"})
    assert "CANARY" not in repr(tok) and "CANARY" not in str(tok)


# ---------------------------------------------------------------------------- atomic writes


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022])
@pytest.mark.parametrize("store_cls", [KimiCliStore, KimiCodeStore])
def test_new_files_are_0600_and_new_dirs_0700_under_any_umask(
    isolated_home: Path, umask: int, store_cls: type
) -> None:
    old = os.umask(umask)
    try:
        store = store_cls()
        store.write(token())
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


@posix_only
def test_existing_0644_file_becomes_0600(isolated_home: Path) -> None:
    write_file(cli_path(isolated_home), json.dumps(KIMI_CLI_GOLDEN).encode())
    os.chmod(cli_path(isolated_home), 0o644)
    KimiCliStore().write(token())
    assert stat.S_IMODE(cli_path(isolated_home).stat().st_mode) == 0o600


@posix_only
def test_kimi_code_dir_is_tightened_to_0700(isolated_home: Path) -> None:
    d = code_path(isolated_home).parent
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    KimiCodeStore().write(token())
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


@pytest.mark.parametrize("store_cls", [KimiCliStore, KimiCodeStore])
def test_failed_replace_leaves_old_file_valid_and_no_temp(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, store_cls: type
) -> None:
    store = store_cls()
    store.write(token(at="AT-OLD"))
    before = store.path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "disk on fire")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", boom)
        with pytest.raises(CredentialStoreUnwritable) as info:
            store.write(token(at="AT-NEW"))
    assert str(store.path) in str(info.value) and "disk on fire" in str(info.value)
    assert store.path.read_bytes() == before
    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]


@posix_only
@pytest.mark.parametrize("store_name", ["kimi-cli", "kimi-code"])
def test_sigkill_before_replace_leaves_old_file_valid(isolated_home: Path, store_name: str) -> None:
    store = KimiCliStore() if store_name == "kimi-cli" else KimiCodeStore()
    store.write(token(at="AT-OLD"))
    before = store.path.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "write-pause", store_name], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("PAUSED")
        tmp = Path(line.split()[1])
        assert tmp.exists() and tmp.parent == store.path.parent
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        proc.kill()
    finally:
        proc.wait(timeout=10)
    assert store.path.read_bytes() == before
    assert store.read().access_token == Secret("AT-OLD")  # type: ignore[union-attr]
    store.write(token(at="AT-NEXT"))  # the next successful write still works
    assert store.read().access_token == Secret("AT-NEXT")  # type: ignore[union-attr]


@posix_only
def test_symlinked_credentials_file_is_written_through(isolated_home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kimi-code.json"
    real.parent.mkdir()
    real.write_text(json.dumps(KIMI_CLI_GOLDEN))
    link = cli_path(isolated_home)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    KimiCliStore().write(token(at="AT-LINK"))
    assert link.is_symlink()
    assert json.loads(real.read_text())["access_token"] == "AT-LINK"


# ---------------------------------------------------------------------------- flock (kimi-cli)


@posix_only
def test_flock_file_is_0600_and_never_deleted(isolated_home: Path) -> None:
    store = KimiCliStore()
    with store.lock(1):
        pass
    first = store.lock_path.stat()
    with store.lock(1):
        pass
    second = store.lock_path.stat()
    assert stat.S_IMODE(first.st_mode) == 0o600
    assert first.st_ino == second.st_ino


@posix_only
def test_kimi_cli_holder_blocks_our_lock_and_ours_blocks_kimi_cli(isolated_home: Path) -> None:
    import fcntl

    store = KimiCliStore()
    store.lock_path.parent.mkdir(parents=True)
    fd = os.open(str(store.lock_path), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # exactly kimi-cli's _acquire
    try:
        t0 = time.monotonic()
        with pytest.raises(CredentialBusy), store.lock(0.3):
            pass
        assert 0.25 < time.monotonic() - t0 < 2
    finally:
        os.close(fd)
    # and the reverse: while we hold it, kimi-cli's non-blocking flock fails
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "hold-our-lock", "kimi-cli", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "LOCKED"  # type: ignore[union-attr]
        fd = os.open(str(store.lock_path), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        proc.wait(timeout=10)


@posix_only
def test_unopenable_lock_file_warns_once_and_proceeds(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_open = os.open

    def fake_open(path: str, *args: object, **kwargs: object) -> int:
        if str(path).endswith("eacces.lock"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)
    lock_path = isolated_home / "eacces.lock"
    with caplog.at_level(logging.WARNING, logger="kimi_coder_auth.locks"):
        for _ in range(3):
            lock = FlockLock(lock_path, timeout=0.1)
            assert lock.acquire() is False
            lock.release()
    assert (
        len([r for r in caplog.records if "Cannot open the credential lock" in r.getMessage()]) == 1
    )


@posix_only
def test_flock_unsupported_does_not_switch_lock_kind(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import fcntl

    def nosys(fd: int, op: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", nosys)
    before = set(isolated_home.rglob("*"))
    lock_path = isolated_home / "nosys.lock"
    with caplog.at_level(logging.WARNING, logger="kimi_coder_auth.locks"):
        lock = FlockLock(lock_path, timeout=0.1)
        assert lock.acquire() is False
        lock.release()
    assert any("flock is not supported" in r.getMessage() for r in caplog.records)
    # only the (unlocked) lock file itself appeared: no .lock dirs, no O_EXCL side files
    assert set(isolated_home.rglob("*")) - before == {lock_path}


# ---------------------------------------------------------------------------- Kimi Code dir lock


def lock_dir(home: Path) -> Path:
    return home / ".kimi-code" / "oauth" / "kimi-code.lock"


@posix_only
def test_dir_lock_creates_sentinel_and_removes_lock_dir(isolated_home: Path) -> None:
    store = KimiCodeStore()
    with store.lock(1):
        assert lock_dir(isolated_home).is_dir()
        assert (isolated_home / ".kimi-code" / "oauth" / "kimi-code").is_file()
    assert not lock_dir(isolated_home).exists()
    assert (isolated_home / ".kimi-code" / "oauth" / "kimi-code").read_bytes() == b""


@posix_only
def test_stale_lock_dir_is_taken_over(isolated_home: Path) -> None:
    d = lock_dir(isolated_home)
    d.mkdir(parents=True)
    old = time.time() - 10
    os.utime(d, (old, old))
    t0 = time.monotonic()
    with KimiCodeStore().lock(2):
        assert time.monotonic() - t0 < 0.5
        assert d.stat().st_mtime > old + 5
    assert not d.exists()


@posix_only
def test_fresh_lock_dir_held_by_peer_fails_closed(isolated_home: Path) -> None:
    d = lock_dir(isolated_home)
    d.mkdir(parents=True)
    t0 = time.monotonic()
    with pytest.raises(CredentialBusy), KimiCodeStore().lock(0.3):
        pass
    assert 0.25 < time.monotonic() - t0 < 2
    assert d.is_dir()  # a peer's lock is never removed while fresh


@posix_only
def test_peer_lock_dir_delays_us_until_released(isolated_home: Path) -> None:
    d = lock_dir(isolated_home)
    d.mkdir(parents=True)
    threading.Timer(0.3, d.rmdir).start()
    t0 = time.monotonic()
    with KimiCodeStore().lock(3):
        waited = time.monotonic() - t0
    assert 0.25 < waited < 2


@posix_only
def test_lock_dir_mtime_is_refreshed_while_held(isolated_home: Path) -> None:
    lock = DirLock(isolated_home / "oauth" / "kimi-code", timeout=1, update=0.1)
    with lock:
        d = lock.lock_dir
        old = time.time() - 4
        os.utime(d, (old, old))
        time.sleep(0.35)
        assert d.stat().st_mtime > time.time() - 1


@posix_only
def test_dir_lock_disabled_by_env(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_DISABLE_OAUTH_LOCK", "1")
    d = lock_dir(isolated_home)
    d.mkdir(parents=True)  # held by someone: irrelevant when disabled
    with KimiCodeStore().lock(0.1):
        pass


# ---------------------------------------------------------------------------- Kimi Code naming


def test_kimi_code_uses_the_per_host_slot_for_any_non_default_host(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another host never reads or writes the default slot, even before its own file exists."""
    assert kimi_code_scoped_name() is None
    assert kimi_code_token_name() == "kimi-code"
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", "http://127.0.0.1:9/")
    scoped = kimi_code_scoped_name()
    assert (
        scoped is not None
        and scoped.startswith("kimi-code-env-")
        and len(scoped) == len("kimi-code-env-") + 16
    )
    assert kimi_code_token_name() == scoped  # no fallback to kimi-code.json
    assert KimiCodeStore().path.name == f"{scoped}.json"
    assert KimiCodeStore().lock_target.name == scoped


def test_kimi_code_env_slot_hash_matches_kimi_code() -> None:
    # sha256('{"oauthHost":"https://auth.kimi.com","baseUrl":"http://127.0.0.1:8000/coding/v1"}')[:16],
    # as Kimi Code's resolveKimiCodeOAuthKey computes it.
    import hashlib

    payload = '{"oauthHost":"https://auth.kimi.com","baseUrl":"http://127.0.0.1:8000/coding/v1"}'
    expected = "kimi-code-env-" + hashlib.sha256(payload.encode()).hexdigest()[:16]
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("KIMI_CODE_BASE_URL", "http://127.0.0.1:8000/coding/v1/")
        assert kimi_code_scoped_name() == expected
    finally:
        mp.undo()


def test_kimi_code_logout_marker_hides_the_exact_logged_out_content(isolated_home: Path) -> None:
    import hashlib

    store = KimiCodeStore()
    store.write(token())
    raw = store.path.read_bytes()
    marker = store.path.parent / "kimi-code.removed"
    marker.write_text(json.dumps({"version": 1, "file_digest": hashlib.sha256(raw).hexdigest()}))
    assert store.read() is None  # Kimi Code logged this login out; a stale copy reappeared
    store.write(token(at="AT-NEW"))  # a new login changes the content: visible again
    assert store.read().access_token == Secret("AT-NEW")  # type: ignore[union-attr]


@pytest.mark.slow
@posix_only
def test_concurrent_writers_never_expose_a_partial_file(isolated_home: Path) -> None:
    import textwrap

    store = KimiCliStore()
    store.write(token())
    script = textwrap.dedent(
        """
        import sys, time
        from kimi_coder_auth.secret import Secret
        from kimi_coder_auth.stores import store_for
        from kimi_coder_auth.token import OAuthToken
        store = store_for(sys.argv[1])
        for i in range(25):
            store.write(OAuthToken(Secret(f"AT-{sys.argv[2]}-{i}" * 50), Secret("RT"), time.time() + 900, 900.0))
        """
    )
    for name, store in (("kimi-cli", KimiCliStore()), ("kimi-code", KimiCodeStore())):
        store.write(token())
        procs = [subprocess.Popen([sys.executable, "-c", script, name, str(i)]) for i in range(4)]
        parsed = 0
        while any(p.poll() is None for p in procs):
            assert store.read() is not None  # raises CredentialFileCorrupt on a torn read
            parsed += 1
        for p in procs:
            assert p.wait(timeout=30) == 0
        assert parsed > 0
        assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]
