"""OAuthCredential against the emulator: adopt-or-refresh, windows, rejection, single flight."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator

import pytest

from kimi_coder_auth import refresh as refresh_mod
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import CredentialBusy, OAuthError, ReauthRequired
from kimi_coder_auth.locks import FlockLock
from kimi_coder_auth.refresh import OAuthCredential
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import FileTokenStore, KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as e:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", e.oauth_host)
        yield e


@pytest.fixture
def fake() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _clear_rejections() -> Iterator[None]:
    refresh_mod._rejected.clear()
    yield
    refresh_mod._rejected.clear()


def seed(store: FileTokenStore, emu: Emulator, left: float, *, extra: dict | None = None) -> dict:
    """Store an emulator-issued token with `left` seconds of life (by the clock in force)."""
    from kimi_coder_auth import clock

    issued = emu.issue_token()
    data = {**issued, "expires_at": clock.now() + left, "expires_in": 900.0, **(extra or {})}
    store.write(OAuthToken.from_file_dict(data))
    return data


def seed_raw(store: FileTokenStore, at: str, rt: str, left: float) -> None:
    from kimi_coder_auth import clock

    store.write(
        OAuthToken(Secret(at), Secret(rt), clock.now() + left, 900.0, "kimi-code", "Bearer")
    )


STORES = [KimiCliStore, KimiCodeStore]


# ---------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("store_cls", STORES)
def test_fresh_token_is_used_without_refresh_and_cached(
    emu: Emulator, store_cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_cls()
    data = seed(store, emu, 800)
    cred = OAuthCredential(store)
    assert cred.get_token() == Secret(data["access_token"])

    def no_reads() -> None:
        raise AssertionError("hot path read the file")

    monkeypatch.setattr(store, "read", no_reads)
    for _ in range(100):
        assert cred.get_token() == Secret(data["access_token"])
    assert emu.counts["refresh"] == 0


def test_hot_path_is_cheap(emu: Emulator) -> None:
    store = KimiCliStore()
    seed(store, emu, 800)
    cred = OAuthCredential(store)
    cred.get_token()
    n = 50_000
    t0 = time.perf_counter()
    for _ in range(n):
        cred.get_token()
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} µs per get_token on the hot path"


@pytest.mark.parametrize("store_cls", STORES)
def test_expired_token_refreshes_once_and_is_written_back(
    emu: Emulator, store_cls: type, fake: FakeClock
) -> None:
    store = store_cls()
    old = seed(store, emu, -10, extra={"future_field": {"x": 1}})
    cred = OAuthCredential(store)
    new = cred.get_token()
    assert new != Secret(old["access_token"])
    assert emu.counts["refresh"] == 1
    assert emu.is_access_valid(new.reveal())
    on_disk = json.loads(store.path.read_text())
    assert on_disk["access_token"] == new.reveal()
    assert on_disk["refresh_token"] != old["refresh_token"]
    assert on_disk["future_field"] == {"x": 1}
    assert set(on_disk) >= {
        "access_token",
        "refresh_token",
        "expires_at",
        "scope",
        "token_type",
        "expires_in",
    }
    expected_type = float if store_cls is KimiCliStore else int
    assert isinstance(on_disk["expires_at"], expected_type)
    assert abs(on_disk["expires_at"] - (fake.now() + 900)) <= 1
    # the refresh request carried the stored refresh token and our client id
    req = [r for r in emu.requests if r.path.endswith("/api/oauth/token")][-1]
    assert req.body["refresh_token"] == old["refresh_token"]
    assert req.body["grant_type"] == "refresh_token"
    assert req.headers["user-agent"].startswith("kimi-coder/")
    assert cred.get_token() == new and emu.counts["refresh"] == 1


def test_refresh_inside_threshold_window(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    data = seed(store, emu, 451)  # threshold max(300, 900/2) = 450
    cred = OAuthCredential(store)
    assert cred.get_token() == Secret(data["access_token"]) and emu.counts["refresh"] == 0
    fake.advance(2)  # 449 s left: inside the advisory window
    assert cred.get_token() != Secret(data["access_token"])
    assert emu.counts["refresh"] == 1


def test_clock_jump_refreshes_before_use(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    seed(store, emu, 800)
    cred = OAuthCredential(store)
    first = cred.get_token()
    fake.advance(3600)  # laptop slept
    assert cred.get_token() != first
    assert emu.counts["refresh"] == 1


def test_response_without_refresh_token_keeps_old_one(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    old = seed(store, emu, -5)
    emu.inject(
        "refresh",
        status=200,
        body={
            "access_token": "AT-NEW",
            "expires_in": 900,
            "scope": "kimi-code",
            "token_type": "Bearer",
        },
    )
    assert OAuthCredential(store).get_token() == Secret("AT-NEW")
    on_disk = json.loads(store.path.read_text())
    assert on_disk["refresh_token"] == old["refresh_token"]
    assert list(on_disk)[:6] == [
        "access_token",
        "refresh_token",
        "expires_at",
        "scope",
        "token_type",
        "expires_in",
    ]


def test_stale_in_memory_refresh_token_is_never_used(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    seed(store, emu, 800)
    cred = OAuthCredential(store)
    cred.get_token()
    rotated = seed(store, emu, 800)  # another tool rotated: RT2 on disk
    fake.advance(790)
    cred.get_token()
    req = [r for r in emu.requests if r.path.endswith("/api/oauth/token")][-1]
    assert req.body["refresh_token"] == rotated["refresh_token"]


def test_expired_without_refresh_token_needs_login(fake: FakeClock) -> None:
    store = KimiCliStore()
    store.write(OAuthToken(Secret("AT-x"), Secret(""), fake.now() - 1, 900.0))
    with pytest.raises(ReauthRequired, match="no refresh token"):
        OAuthCredential(store).get_token()


# ---------------------------------------------------------------------------- advisory / mandatory


def test_advisory_failure_returns_old_token_and_rate_limits(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    data = seed(store, emu, 200)  # inside the window, far from expiry
    emu.inject("refresh", status=500, times=None)
    cred = OAuthCredential(store)
    assert cred.get_token() == Secret(data["access_token"])
    assert emu.counts["refresh"] == 1
    for _ in range(5):
        fake.advance(5)
        assert cred.get_token() == Secret(data["access_token"])
    assert emu.counts["refresh"] == 1  # no new attempt within 30 s
    fake.advance(10)
    cred.get_token()
    assert emu.counts["refresh"] == 2
    emu.clear_faults()
    fake.advance(31)
    assert cred.get_token() != Secret(data["access_token"])


def test_mandatory_failure_raises(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    seed(store, emu, 30)  # < 60 s left
    emu.inject("refresh", status=503)
    with pytest.raises(OAuthError) as info:
        OAuthCredential(store).get_token()
    assert info.value.status == 503


# ---------------------------------------------------------------------------- rejection


def test_invalid_grant_leaves_kimi_cli_file_byte_identical(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    seed(store, emu, -10)
    before = store.path.read_bytes()
    emu.revoke_refresh_tokens()
    cred = OAuthCredential(store)
    with pytest.raises(ReauthRequired) as info:
        cred.get_token()
    assert "log in" in str(info.value).lower() or "login" in str(info.value).lower()
    assert store.path.read_bytes() == before
    assert emu.counts["refresh"] == 1
    # inside the cooldown: no new POST, even from a brand-new credential object
    with pytest.raises(ReauthRequired):
        OAuthCredential(store).get_token()
    assert emu.counts["refresh"] == 1
    assert store.path.read_bytes() == before
    # a new login written from outside clears the tombstone
    fresh = seed(store, emu, -10)
    assert cred.get_token() != Secret(fresh["access_token"])
    assert emu.counts["refresh"] == 2


def test_invalid_grant_writes_kimi_code_tombstone(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCodeStore()
    seed(store, emu, -10)
    emu.revoke_refresh_tokens()
    with pytest.raises(ReauthRequired):
        OAuthCredential(store).get_token()
    assert json.loads(store.path.read_text()) == {
        "access_token": "",
        "refresh_token": "",
        "expires_at": 0,
        "scope": "kimi-code",
        "token_type": "Bearer",
        "expires_in": 0,
    }
    with pytest.raises(ReauthRequired):
        store.read()
    with pytest.raises(ReauthRequired):
        OAuthCredential(store).get_token()
    assert emu.counts["refresh"] == 1


def test_invalid_grant_after_unlocked_rotation_adopts(
    emu: Emulator, fake: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KimiCliStore()
    seed(store, emu, -10)
    emu.revoke_refresh_tokens()
    real = refresh_mod.refresh_access_token
    rotated: dict = {}

    def racing(*args: object, **kwargs: object) -> OAuthToken:
        rotated.update(seed(store, emu, 900))  # another tool wrote RT2 without the lock
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(refresh_mod, "refresh_access_token", racing)
    assert OAuthCredential(store).get_token() == Secret(rotated["access_token"])
    assert json.loads(store.path.read_text())["refresh_token"] == rotated["refresh_token"]


# ---------------------------------------------------------------------------- reactive 401


def test_on_unauthorized_semantics(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    data = seed(store, emu, 800)
    cred = OAuthCredential(store)
    current = cred.get_token()
    # an old token got the 401: the current one is returned, no refresh
    assert cred.on_unauthorized(Secret("AT-old")) == current
    assert emu.counts["refresh"] == 0
    # the current token got the 401: exactly one forced refresh
    new = cred.on_unauthorized(current)
    assert new is not None and new != current and emu.counts["refresh"] == 1
    assert new.reveal() != data["access_token"]
    # someone else already replaced it on disk: adopt, no refresh
    other = seed(store, emu, 800)
    adopted = cred.on_unauthorized(new)
    assert adopted == Secret(other["access_token"]) and emu.counts["refresh"] == 1


async def test_aon_unauthorized_and_aget_token(emu: Emulator) -> None:
    store = KimiCodeStore()
    seed(store, emu, 800)
    cred = OAuthCredential(store)
    tok = await cred.aget_token()
    new = await cred.aon_unauthorized(tok)
    assert new is not None and new != tok and emu.counts["refresh"] == 1


# ---------------------------------------------------------------------------- locks


def test_lock_held_past_budget_raises_busy_without_post(emu: Emulator) -> None:
    store = KimiCliStore()
    seed(store, emu, -10)
    before = store.path.read_bytes()
    holder = FlockLock(store.lock_path, timeout=1)
    holder.acquire()
    try:
        t0 = time.monotonic()
        with pytest.raises(CredentialBusy):
            OAuthCredential(store, lock_timeout=0.3).get_token()
        assert time.monotonic() - t0 < 2
    finally:
        holder.release()
    assert emu.counts["refresh"] == 0
    assert store.path.read_bytes() == before


def test_lock_busy_in_advisory_window_returns_current_token(emu: Emulator) -> None:
    store = KimiCliStore()
    data = seed(store, emu, 200)
    holder = FlockLock(store.lock_path, timeout=1)
    holder.acquire()
    try:
        cred = OAuthCredential(store, lock_timeout=30)
        t0 = time.monotonic()
        assert cred.get_token() == Secret(data["access_token"])
        assert time.monotonic() - t0 < 2  # a request is not held up for the whole lock budget
        t0 = time.monotonic()
        assert cred.get_token() == Secret(data["access_token"])
        assert time.monotonic() - t0 < 0.05  # and the next ones are served from memory
    finally:
        holder.release()
    assert emu.counts["refresh"] == 0


def test_kimi_code_lock_held_delays_then_adopts(emu: Emulator) -> None:
    store = KimiCodeStore()
    seed(store, emu, -10)
    lock_dir = store.lock_target.parent / f"{store.token_name}.lock"
    lock_dir.mkdir(parents=True)
    rotated: dict = {}

    def peer() -> None:
        rotated.update(seed(store, emu, 900))
        lock_dir.rmdir()

    threading.Timer(0.3, peer).start()
    assert OAuthCredential(store, lock_timeout=5).get_token() == Secret(rotated["access_token"])
    assert emu.counts["refresh"] == 0


# ---------------------------------------------------------------------------- single flight


def test_single_flight_across_threads_and_event_loops(emu: Emulator) -> None:
    store = KimiCliStore()
    seed(store, emu, -10)
    emu.inject("refresh", delay=0.2)
    cred = OAuthCredential(store)
    results: list[Secret] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def sync_worker() -> None:
        try:
            start.wait()
            results.append(cred.get_token())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def loop_worker() -> None:
        async def many() -> list[Secret]:
            return list(await asyncio.gather(*(cred.aget_token() for _ in range(10))))

        try:
            start.wait()
            results.extend(asyncio.run(many()))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=sync_worker) for _ in range(8)]
    threads += [threading.Thread(target=loop_worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert len(results) == 48
    assert len(set(results)) == 1
    assert emu.counts["refresh"] == 1
    assert json.loads(store.path.read_text())["access_token"] == results[0].reveal()


# ---------------------------------------------------------------------------- describe / secrets


def test_describe_never_shows_tokens(emu: Emulator, fake: FakeClock) -> None:
    store = KimiCliStore()
    data = seed(store, emu, 600)
    status = OAuthCredential(store).describe()
    assert status.source == "kimi-cli" and status.refreshable and status.location == str(store.path)
    assert "10 min" in status.detail
    assert data["access_token"] not in repr(status) and data["refresh_token"] not in repr(status)
    store.path.write_text("{")
    assert "not valid JSON" in OAuthCredential(store).describe().detail


def test_canary_tokens_never_leak(
    fake: FakeClock, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    store = KimiCliStore()
    store.write(OAuthToken(Secret("AT-CANARY-1"), Secret("RT-CANARY-1"), fake.now() - 5, 900.0))
    cred = OAuthCredential(store)
    texts: list[str] = [repr(cred), str(cred), repr(store)]
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ReauthRequired) as info:  # unknown refresh token -> invalid_grant
            cred.get_token()
        texts += [
            str(info.value),
            repr(info.value),
            "".join(traceback.format_exception(info.value)),
        ]
        # a successful refresh at DEBUG, too
        good = seed(store, emu, -5)
        refresh_mod._rejected.clear()
        new = cred.get_token()
        emu.inject("refresh", status=500)
        fake.advance(1000)
        with pytest.raises(OAuthError) as info2:
            cred.get_token()
        texts += [str(info2.value), "".join(traceback.format_exception(info2.value))]
    texts += [caplog.text, repr(cred.describe())]
    blob = "\n".join(texts)
    for secret in ("CANARY", good["access_token"], good["refresh_token"], new.reveal()):
        assert secret not in blob


def test_rejected_then_rotated_with_expired_access_refreshes_with_new_token_not_tombstone(
    emu: Emulator, fake: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KimiCodeStore()
    seed(store, emu, -10)
    emu.revoke_refresh_tokens()
    real = refresh_mod.refresh_access_token
    calls: list[int] = []

    def racing(*args: object, **kwargs: object) -> OAuthToken:
        if not calls:
            seed(store, emu, -10)  # a peer rotated (new refresh token) but its access token is old
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(refresh_mod, "refresh_access_token", racing)
    tok = OAuthCredential(store).get_token()
    assert emu.is_access_valid(tok.reveal())
    assert emu.counts["refresh"] == 2 and emu.counts["refresh_rejected"] == 1
    assert json.loads(store.path.read_text())["access_token"] == tok.reveal()  # no tombstone


def test_refresh_still_works_when_lock_file_cannot_be_opened(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno
    import os

    store = KimiCliStore()
    seed(store, emu, -10)
    real_open = os.open

    def fake_open(path: str, *args: object, **kwargs: object) -> int:
        if str(path) == str(store.lock_path):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)
    with caplog.at_level(logging.WARNING):
        tok = OAuthCredential(store).get_token()
    assert emu.is_access_valid(tok.reveal()) and emu.counts["refresh"] == 1
    assert sum("Cannot open the credential lock" in r.getMessage() for r in caplog.records) == 1


def test_unpreparable_kimi_code_lock_in_advisory_window_returns_current_token(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kimi_coder_auth.errors import CredentialError
    from kimi_coder_auth.locks import DirLock

    store = KimiCodeStore()
    data = seed(store, emu, 200)

    def cannot(self: DirLock) -> None:
        raise CredentialError("Cannot prepare Kimi Code's refresh lock: read-only file system.")

    monkeypatch.setattr(DirLock, "_prepare", cannot)
    assert OAuthCredential(store).get_token() == Secret(data["access_token"])
    assert emu.counts["refresh"] == 0
    seed(store, emu, -5)  # expired: fail closed, never refresh without the lock
    with pytest.raises(CredentialError, match="read-only"):
        OAuthCredential(store).get_token()
    assert emu.counts["refresh"] == 0


def test_slow_token_endpoint_times_out_once_and_releases_the_lock(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refresh_mod, "REFRESH_TIMEOUT", 0.3)
    store = KimiCliStore()
    data = seed(store, emu, 200)  # advisory window
    emu.inject("refresh", delay=1.0)
    t0 = time.monotonic()
    assert OAuthCredential(store).get_token() == Secret(data["access_token"])
    assert time.monotonic() - t0 < 0.9  # one short attempt, no retry loop under the lock
    assert emu.counts["refresh"] == 1
    probe = FlockLock(store.lock_path, timeout=0.1)
    assert probe.acquire() is True  # the lock was released
    probe.release()
