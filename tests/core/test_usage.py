"""`get_usage()` / `aget_usage()`: every documented `/usages` shape as typed windows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.quota_pacing import reset_gates
from kimi_coder_auth.usage import aget_usage, get_usage, parse_time, parse_usages

KEY = "sk-kimi-usage-test"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC

# legacy keys (reference §2): https://github.com/getpaseo/paseo/issues/3024
LEGACY = {
    "usage": {"limit": "100", "used": "26", "remaining": "74", "resetTime": "2026-08-11T15:53:05.519605Z"},
    "limits": [{"window": {"duration": 300, "timeUnit": "TIME_UNIT_MINUTE"},
                "detail": {"limit": "100", "used": "27", "remaining": "73", "resetTime": "2026-08-11T12:00:00Z"}}],
    "parallel": {"limit": "30"}, "totalQuota": {}, "subType": "TYPE_PURCHASE",
    "user": {"membership": {"level": "LEVEL_STANDARD"}},
    "boosterWallet": {"balance": {"type": "BALANCE_BOOSTER", "amount": "10", "amountLeft": "4"}},
}
# ratio map: https://github.com/kunchenguid/quota-axi/pull/201
RATIOS = {"usages": {"limit_5h": {"used_ratio": 0.3, "reset_time": "2026-09-16T20:00:00Z"},
                     "limit_7d": {"used_ratio": 0.2, "reset_time": "2026-09-20T00:00:00Z"},
                     "limit_month_total": {"used_ratio": 0.4, "reset_time": "2026-10-01T00:00:00Z"},
                     "limit_month_code": {"used_ratio": 0.25, "reset_time": "2026-10-01T00:00:00Z"}}}
# camelCase envelope: https://github.com/MoonshotAI/kimi-code/issues/3908
ENVELOPE = {"code": 0, "data": {"kind": "ok", "quota": {"extraUsage": None, "usages": {
    "limit5h": {"resetAt": "2026-09-16T20:00:00Z", "usedRatio": 0}, "limit7d": {"resetAt": 1789603200000, "usedRatio": 0.5}}}}}


def test_legacy_usage_is_the_weekly_window() -> None:
    usage = parse_usages(LEGACY)
    assert usage.shape == "legacy" and [w.name for w in usage.windows] == ["5h", "7d"]
    five, week = usage.windows
    assert (five.limit, five.used, five.remaining) == (100, 27, 73)
    assert week.label == "weekly (7-day) window" and week.remaining == 74 and week.used_ratio == 0.26
    assert week.reset_at == parse_time("2026-08-11T15:53:05.519605Z") and week.reset_time.startswith("2026-08-11T15:53")
    assert usage.membership_level == "LEVEL_STANDARD" and usage.parallel_limit == 30
    assert usage.extras["boosterWallet"]["balance"]["amountLeft"] == "4" and usage.extras["totalQuota"] == {}


def test_ratio_map_and_both_together() -> None:
    usage = parse_usages(RATIOS)
    assert usage.shape == "ratio"
    assert {w.name: w.used_ratio for w in usage.windows} == {"5h": 0.3, "7d": 0.2, "month": 0.4, "month_code": 0.25}
    assert usage.window("month").reset_at == parse_time("2026-10-01T00:00:00Z")
    both = parse_usages({**LEGACY, **RATIOS})
    assert both.shape == "legacy+ratio" and both.window("5h").used == 27  # counts win, ratio kept
    assert both.window("month") is not None and len(both.windows) == 4


def test_camel_case_envelope() -> None:
    usage = parse_usages(ENVELOPE)
    assert usage.shape == "envelope" and usage.window("5h").used_ratio == 0
    assert usage.window("7d").reset_at == 1789603200.0 and usage.window("7d").used_ratio == 0.5


@pytest.mark.parametrize("body", [{}, {"quotaInfo": 1}, [], "text", None, {"code": 0, "data": {"x": 1}}])
def test_unknown_shapes_are_reported_not_raised(body: object) -> None:
    usage = parse_usages(body)
    assert usage.shape == "unknown" and usage.windows == [] and usage.to_dict()["raw"] == body


@pytest.fixture
def emu() -> Iterator[Emulator]:
    reset_gates()  # gates are per (account, base URL); a reused port must not inherit a block
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.mark.parametrize(
    ("shape", "names"),
    [("legacy", ["5h", "7d"]), ("ratio", ["5h", "7d", "month", "month_code"]),
     ("both", ["5h", "7d", "month", "month_code"]), ("envelope", ["5h", "7d"]), ("unknown", [])],
)
def test_every_emulated_shape_through_get_usage(emu: Emulator, shape: str, names: list[str]) -> None:
    emu.quota.usages_shape = shape
    with use_clock(FakeClock(start=T0)):
        emu.quota.exhaust("5h", resets_at=T0 + 1800)
        usage = get_usage(api_key=KEY, base_url=emu.base_url)
    assert [w.name for w in usage.windows] == names
    if names:
        five = usage.window("5h")
        assert five is not None and five.exhausted and five.reset_at == T0 + 1800
    else:
        assert usage.shape == "unknown"


async def test_aget_usage(emu: Emulator) -> None:
    usage = await aget_usage(api_key=KEY, base_url=emu.base_url)
    assert usage.membership_level == "LEVEL_STANDARD" and usage.window("5h").remaining == 100
