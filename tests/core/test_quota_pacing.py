"""``on_quota="wait"``: sleep until a used-up window resets (injectable clock), one probe wakes all."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import QuotaExceededError
from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT, QuotaPacer, reset_gates
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

KEY = "sk-kimi-pacing-test"
T0 = 1_800_000_000.0
BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    reset_gates()  # gates are per (account, base URL); a reused port must not inherit a block
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.fixture
def fake() -> Iterator[FakeClock]:
    with use_clock(FakeClock(start=T0)) as c:
        yield c  # type: ignore[misc]


def _transport(emu: Emulator, **kw: Any) -> Transport:
    return Transport(credential=StaticCredential(KEY), base_url=emu.base_url, **kw)


def test_wait_sleeps_until_the_reset_from_usages_then_continues(
    emu: Emulator, fake: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    emu.quota.exhaust("7d", resets_at=T0 + 3600)
    with caplog.at_level(logging.WARNING, logger="kimi_coder_auth.quota_pacing"):
        result = _transport(emu, on_quota="wait").chat(BODY)
    assert result.data["choices"][0]["message"]["content"]
    assert fake.sleeps == [3600.0] and emu.counts["chat"] == 2 and emu.counts["usages"] == 1
    (record,) = caplog.records
    assert "weekly (7-day)" in record.getMessage() and "3600 s" in record.getMessage()
    assert "2027-01-15 09:00:00 UTC" in record.getMessage()


def test_ambiguous_billing_cycle_waits_for_the_exhausted_5h_window(emu: Emulator, fake: FakeClock) -> None:
    emu.quota.exhaust("5h", resets_at=T0 + 1800)
    _transport(emu, on_quota="wait").chat(BODY)
    assert fake.sleeps == [1800.0]


def test_raise_is_the_default_and_never_sleeps(emu: Emulator, fake: FakeClock) -> None:
    emu.quota.exhaust("7d", resets_at=T0 + 3600)
    with pytest.raises(QuotaExceededError) as info:
        _transport(emu).chat(BODY)
    assert fake.sleeps == [] and emu.counts["usages"] == 0 and info.value.window == "7d"


def test_reset_beyond_max_quota_wait_raises_with_the_reset(emu: Emulator, fake: FakeClock) -> None:
    assert DEFAULT_MAX_QUOTA_WAIT == 6 * 3600
    emu.quota.exhaust("7d", resets_at=T0 + 3 * 86400)
    with pytest.raises(QuotaExceededError) as info:
        _transport(emu, on_quota="wait").chat(BODY)
    assert fake.sleeps == [] and info.value.reset_at == T0 + 3 * 86400
    assert "max_quota_wait=21600.0" in str(info.value) and "2027-01-18 08:00" in str(info.value)
    # a longer budget waits for it
    _transport(emu, on_quota="wait", max_quota_wait=None).chat(BODY)
    assert fake.sleeps == [3 * 86400.0]


def test_unknown_reset_raises_instead_of_waiting(emu: Emulator, fake: FakeClock) -> None:
    emu.quota.usages_shape = "unknown"
    emu.quota.exhaust("7d", resets_at=T0 + 3600)
    with pytest.raises(QuotaExceededError, match="reset time is unknown"):
        _transport(emu, on_quota="wait").chat(BODY)
    assert fake.sleeps == []


def test_threads_share_one_sleeper_and_one_probe_per_reset(emu: Emulator, fake: FakeClock) -> None:
    # the window is used up again at its first reset (other clients): exactly one probe finds out
    emu.quota.exhaust("5h", resets_at=T0 + 1800)
    emu.quota.exhaust("5h", starts_at=T0 + 1800, resets_at=T0 + 3600)
    credential = StaticCredential(KEY)
    raising = Transport(credential=credential, base_url=emu.base_url)
    with pytest.raises(QuotaExceededError):  # the block is known before the batch starts
        raising.chat(BODY)
    transport = Transport(credential=credential, base_url=emu.base_url, on_quota="wait")
    results: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(transport.chat(BODY))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    after_first_reset = [t for t in emu.quota.rejections if t >= T0 + 1800]
    assert len(after_first_reset) == 1  # one probe at the first reset, none at the second
    assert sum(fake.sleeps) == 3600.0  # one sleeper per block: the clock moved exactly to the reset
    assert emu.counts["chat"] == len(emu.quota.rejections) + 6 and emu.counts["usages"] == 2


def test_async_tasks_on_two_event_loops_share_the_gate(emu: Emulator, fake: FakeClock) -> None:
    emu.quota.exhaust("7d", resets_at=T0 + 3600)
    credential = StaticCredential(KEY)
    with pytest.raises(QuotaExceededError):  # the block is known before the batches start
        Transport(credential=credential, base_url=emu.base_url).chat(BODY)
    transport = Transport(credential=credential, base_url=emu.base_url, on_quota="wait")

    async def batch() -> list[Any]:
        return await asyncio.gather(*(transport.achat(BODY) for _ in range(4)))

    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.extend(asyncio.run(batch()))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    loops = [threading.Thread(target=run) for _ in range(2)]
    for t in loops:
        t.start()
    for t in loops:
        t.join()
    assert not errors and len(out) == 8 and sum(fake.sleeps) == 3600.0
    assert not [t for t in emu.quota.rejections if t >= T0 + 3600]


def test_pacer_holds_later_requests_until_the_reset(emu: Emulator, fake: FakeClock) -> None:
    transport = _transport(emu)  # on_quota="raise": the first request fails, the pacer paces the rest
    pacer = QuotaPacer(transport)
    emu.quota.exhaust("7d", resets_at=T0 + 600)
    assert pacer.acquire() is True
    with pytest.raises(QuotaExceededError):
        transport.chat(BODY)
    assert pacer.acquire(blocking=False) is False
    assert pacer.acquire() is True and fake.sleeps == [600.0]  # asked /usages, slept to the reset
    transport.chat(BODY)  # the probe gets through and opens the gate
    assert pacer.acquire(blocking=False) is True


async def test_async_pacer(emu: Emulator, fake: FakeClock) -> None:
    transport = _transport(emu)
    emu.quota.exhaust("5h", resets_at=T0 + 300)
    with pytest.raises(QuotaExceededError):
        await transport.achat(BODY)
    assert await QuotaPacer(transport).aacquire() is True and fake.sleeps == [300.0]
    await transport.achat(BODY)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="on_quota"):
        Transport(credential=StaticCredential(KEY), on_quota="sleep")
    with pytest.raises(ValueError, match="max_quota_wait"):
        Transport(credential=StaticCredential(KEY), max_quota_wait=-1)


def test_one_gate_per_api_key_and_base_url(emu: Emulator, fake: FakeClock) -> None:
    # two models with the same key but other settings are one account: a block one of them hit
    # holds the other's pacer too
    raising = _transport(emu)
    waiting = _transport(emu, on_quota="wait", max_quota_wait=None)
    emu.quota.exhaust("7d", resets_at=T0 + 300)
    with pytest.raises(QuotaExceededError):
        raising.chat(BODY)
    assert QuotaPacer(waiting).acquire(blocking=False) is False
    waiting.chat(BODY)
    assert fake.sleeps == [300.0] and QuotaPacer(raising).acquire(blocking=False) is True
