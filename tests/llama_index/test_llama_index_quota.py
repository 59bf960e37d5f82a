"""KimiCoderLLM and quota: typed errors, on_quota="wait", usage from the LLM, ids in ``raw``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.llms import ChatMessage

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import QuotaExceededError
from kimi_coder_auth.quota_pacing import reset_gates
from llama_index_kimi_coder import KimiCoderLLM

KEY = "sk-kimi-li-quota"
T0 = 1_800_000_000.0
HI = [ChatMessage(role="user", content="hi")]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    reset_gates()  # gates are per (account, base URL); a reused port must not inherit a block
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_quota_error_on_both_routes(emu: Emulator, protocol: str) -> None:
    emu.quota.exhaust("month")
    llm = KimiCoderLLM(api_key=KEY, base_url=emu.base_url, protocol=protocol)
    with pytest.raises(QuotaExceededError) as info:
        llm.chat(HI)
    assert info.value.window == "month" and len(emu.quota.rejections) == 1


def test_wait_then_answer_with_ids_in_raw(emu: Emulator) -> None:
    emu.quota.id_headers = "both"
    emu.quota.exhaust("7d", resets_at=T0 + 600)
    with use_clock(FakeClock(start=T0)) as fake:
        response = KimiCoderLLM(api_key=KEY, base_url=emu.base_url, on_quota="wait").chat(HI)
    assert fake.sleeps == [600.0] and response.message.content
    assert response.raw["x_trace_id"] and response.raw["x_request_id"]
    assert response.additional_kwargs["request_id"] == response.raw["x_request_id"]
    last = list(KimiCoderLLM(api_key=KEY, base_url=emu.base_url).stream_chat(HI))[-1]
    assert last.raw["x_trace_id"] and last.raw["x_request_id"]


def test_usage_from_the_llm(emu: Emulator) -> None:
    emu.quota.usages_shape = "envelope"
    usage = KimiCoderLLM(api_key=KEY, base_url=emu.base_url).get_usage()
    assert usage.shape == "envelope" and [w.name for w in usage.windows] == ["5h", "7d"]


async def test_async_usage_from_the_llm(emu: Emulator) -> None:
    usage = await KimiCoderLLM(api_key=KEY, base_url=emu.base_url).aget_usage()
    assert usage.window("7d").limit == 1000
