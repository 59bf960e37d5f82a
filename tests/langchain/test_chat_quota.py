"""ChatKimiCoder and quota: the standard rate-limit error, on_quota="wait", usage, ids, rate limiter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.rate_limiters import BaseRateLimiter

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import QuotaExceededError
from kimi_coder_auth.quota_pacing import reset_gates
from langchain_kimi_coder import ChatKimiCoder, KimiQuotaRateLimiter

KEY = "sk-kimi-lc-quota"
T0 = 1_800_000_000.0


@pytest.fixture
def emu() -> Iterator[Emulator]:
    reset_gates()  # gates are per (account, base URL); a reused port must not inherit a block
    with Emulator(api_keys=[KEY]) as e:  # a fresh base URL per test: quota gates are per account+URL
        yield e


@pytest.fixture
def fake() -> Iterator[FakeClock]:
    with use_clock(FakeClock(start=T0)) as c:
        yield c  # type: ignore[misc]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_quota_is_langchains_rate_limit_error_on_both_routes(emu: Emulator, protocol: str) -> None:
    emu.quota.exhaust("7d")
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url, protocol=protocol, max_retries=3)
    with pytest.raises(QuotaExceededError) as info:
        llm.invoke("hi")
    err = info.value
    assert isinstance(err, ModelRateLimitError) and err.is_retryable is False
    assert err.window == "7d" and "kimi-coder usage" in str(err)
    assert len(emu.quota.rejections) == 1  # never retried


def test_on_quota_wait_sleeps_until_the_reset(emu: Emulator, fake: FakeClock) -> None:
    emu.quota.exhaust("5h", resets_at=T0 + 900)
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url, on_quota="wait")
    assert llm.invoke("hi").content
    assert fake.sleeps == [900.0]
    assert [c.content for c in llm.stream("hi")]  # the gate is open again: no more waiting
    assert fake.sleeps == [900.0]


def test_usage_from_the_model(emu: Emulator) -> None:
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url)
    usage = llm.get_usage()
    assert usage.window("5h").limit == 100 and usage.membership_level == "LEVEL_STANDARD"


async def test_async_usage_from_the_model(emu: Emulator) -> None:
    emu.quota.usages_shape = "ratio"
    usage = await ChatKimiCoder(api_key=KEY, base_url=emu.base_url).aget_usage()
    assert usage.shape == "ratio" and usage.window("month") is not None


def test_trace_and_request_ids_in_response_metadata(emu: Emulator) -> None:
    emu.quota.id_headers = "msh"
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url)
    meta = llm.invoke("hi").response_metadata
    assert meta["x_trace_id"] and meta["x_request_id"] == f"req-{meta['x_trace_id']}"
    last = list(llm.stream("hi"))[-1].response_metadata
    assert last["x_trace_id"] and last["x_request_id"] == f"req-{last['x_trace_id']}"


def test_rate_limiter_holds_the_next_request_until_the_reset(emu: Emulator, fake: FakeClock) -> None:
    base = ChatKimiCoder(api_key=KEY, base_url=emu.base_url)
    limiter = base.quota_rate_limiter()
    assert isinstance(limiter, BaseRateLimiter) and isinstance(limiter, KimiQuotaRateLimiter)
    llm = base.model_copy(update={"rate_limiter": limiter})
    emu.quota.exhaust("7d", resets_at=T0 + 1200)
    with pytest.raises(ModelRateLimitError):
        llm.invoke("hi")  # on_quota="raise": this one fails ...
    assert llm.invoke("hi").content  # ... the limiter holds the next until the reset
    assert fake.sleeps == [1200.0] and len(emu.quota.rejections) == 1


def test_rate_limiter_beyond_max_wait_raises_langchains_error(emu: Emulator, fake: FakeClock) -> None:
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url, max_quota_wait=60)
    llm = llm.model_copy(update={"rate_limiter": llm.quota_rate_limiter()})
    emu.quota.exhaust("7d", resets_at=T0 + 1200)
    with pytest.raises(ModelRateLimitError):
        llm.invoke("hi")
    with pytest.raises(ModelRateLimitError, match="max_quota_wait=60"):
        llm.invoke("hi")
    assert fake.sleeps == []


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_a_stream_waits_past_its_own_deadline_for_the_reset(emu: Emulator, fake: FakeClock, protocol: str) -> None:
    # the wait (an hour) is far longer than a stream's first-event deadline; it is moved along
    emu.quota.exhaust("7d", resets_at=T0 + 3600)
    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url, on_quota="wait", protocol=protocol)
    chunks = list(llm.stream("hi"))
    assert "".join(str(c.content) for c in chunks) and fake.sleeps == [3600.0]
