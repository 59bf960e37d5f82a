"""Quota and limit answers classified by the reference's decision table, on both envelopes.

Bodies are the service's own as quoted in shared/reference/kimi-service-2026-12.md §1.1 (byte for
byte where quoted in full; the quoted part where the reference abridges), each with its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.emulator.quota import error_body
from kimi_coder_auth.error_mapping import error_from_response
from kimi_coder_auth.errors import (
    AccessTerminatedError,
    ConcurrencyLimitError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    UserAgentRejectedError,
)
from kimi_coder_auth.quota_pacing import reset_gates
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

KEY = "sk-kimi-quota-test"
BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}

# row a, quoted in full: https://github.com/openclaw/openclaw/pull/142656
# (also https://github.com/openclaw/openclaw/issues/142524, https://github.com/MoonshotAI/kimi-code/issues/3951)
WEEKLY = (
    "You've reached your weekly (7-day) usage limit. Your quota will reset when the current 7-day "
    "window ends. To continue now, purchase extra usage or upgrade your plan: "
    "https://www.kimi.com/membership/subscription?tab=quota"
)
# row b: https://github.com/can1357/oh-my-pi/pull/11827
MONTHLY = "You've reached your monthly usage limit for this billing cycle"
# row c (abridged in the reference after "purchase extra usage"): https://github.com/NanmiCoder/cc-haha/issues/1208
# fired for the 5-hour cap too: https://github.com/MoonshotAI/kimi-code/issues/2121
BILLING = (
    "You've reached your usage limit for this billing cycle. Your quota will be refreshed in the "
    "next cycle. To continue now, purchase extra usage"
)
# row d, quoted in full: https://github.com/Wei-Shaw/sub2api/issues/6203
CONCURRENT = (
    "You've reached your concurrent request limit. Please wait for your ongoing requests to finish "
    "and try again."
)
# row e (abridged): https://github.com/MoonshotAI/kimi-code/issues/636
GATE = "Kimi For Coding is currently only available for Coding Agents such as Kimi CLI, Claude Code, "
# row f (abridged; base reference, pi #5009)
TERMINATED = "Access terminated. Review our Community Guidelines"
# row g: https://github.com/MoonshotAI/kimi-cli/issues/901
THROTTLE = "We're receiving too many requests at the moment"
# row i (fragments): MoonshotAI/kimi-code:packages/kosong/src/providers/kimi-errors.ts@d723cc47
BALANCE = "exceeded your current token quota, please check your account balance"


def _envelope(kind: str, etype: str, message: str) -> bytes:
    if kind == "anthropic":
        return json.dumps({"type": "error", "error": {"type": etype, "message": message}}).encode()
    return json.dumps({"error": {"message": message, "type": etype}}).encode()


def _map(status: int, kind: str, etype: str, message: str, headers: dict[str, str] | None = None) -> Any:
    response = httpx.Response(status, content=_envelope(kind, etype, message), headers=headers or {})
    return error_from_response(response, user_agent="kimi-coder/test")


ENVELOPES = ("openai", "anthropic")


@pytest.mark.parametrize("kind", ENVELOPES)
@pytest.mark.parametrize(
    ("message", "etype", "window"),
    [
        (WEEKLY, "access_terminated_error", "7d"),
        (MONTHLY, "access_terminated_error", "month"),
        (BILLING, "permission_error", "5h-or-month"),
        (BILLING, "access_terminated_error", "5h-or-month"),  # OpenAI-route type unverified
    ],
)
def test_quota_403s_are_quota_errors_naming_the_window(kind: str, message: str, etype: str, window: str) -> None:
    err = _map(403, kind, etype, message)
    assert type(err) is QuotaExceededError and not isinstance(err, AccessTerminatedError)
    assert err.window == window and err.status == 403 and err.message == message
    text = str(err)
    assert "kimi-coder usage" in text and "get_usage()" in text and "on_quota=" in text
    assert "support@moonshot.cn" not in text and "suspend" not in text
    if window == "5h-or-month":
        assert "5-hour" in text and "billing cycle" in text  # names both


@pytest.mark.parametrize("kind", ENVELOPES)
def test_gate_termination_concurrency_and_other_403s(kind: str) -> None:
    assert type(_map(403, kind, "access_terminated_error", GATE)) is UserAgentRejectedError
    assert type(_map(403, kind, "permission_error", TERMINATED)) is AccessTerminatedError
    assert type(_map(403, kind, "access_terminated_error", TERMINATED)) is AccessTerminatedError
    conc = _map(403, kind, "permission_error", CONCURRENT)
    assert type(conc) is ConcurrencyLimitError and isinstance(conc, RateLimitError)
    assert "parallel" in str(conc)
    assert type(_map(403, kind, "permission_error", "You may not use this model")) is PermissionDeniedError


@pytest.mark.parametrize("kind", ENVELOPES)
def test_429_balance_is_quota_and_throttles_stay_rate_limits(kind: str) -> None:
    bal = _map(429, kind, "exceeded_current_quota_error", BALANCE)
    assert type(bal) is QuotaExceededError and bal.window is None and "recharge" in str(bal)
    assert type(_map(429, kind, "rate_limit_reached_error", BALANCE)) is QuotaExceededError  # by wording
    assert type(_map(429, kind, "rate_limit_reached_error", THROTTLE)) is RateLimitError
    assert type(_map(429, kind, "engine_overloaded_error", "The engine is currently overloaded")) is RateLimitError
    # Kimi Code deliberately matches no bare "quota": per-minute token throttles stay retryable
    assert type(_map(429, kind, "rate_limit_reached_error", "token quota per minute exceeded")) is RateLimitError
    assert type(_map(402, kind, "membership_expired_error", "Membership expired")) is QuotaExceededError


def test_reset_time_from_body_or_retry_after() -> None:
    body = json.dumps({"error": {"message": WEEKLY, "type": "access_terminated_error",
                                 "reset_time": "2027-01-15T13:00:00Z"}}).encode()
    err = error_from_response(httpx.Response(403, content=body))
    assert err.reset_at == 1_800_018_000.0 and "2027-01-15 13:00 UTC" in str(err)
    with use_clock(FakeClock(start=1_800_000_000.0)):
        err = _map(403, "openai", "access_terminated_error", WEEKLY, {"Retry-After": "120"})
    assert err.reset_at == 1_800_000_120.0
    assert _map(403, "openai", "access_terminated_error", WEEKLY).reset_at is None


@pytest.mark.parametrize(
    ("headers", "trace", "req"),
    [
        ({"x-trace-id": "t1", "x-request-id": "r1"}, "t1", "r1"),
        ({"X-Msh-Trace-Id": "t2", "Msh-Request-Id": "r2"}, "t2", "r2"),
        ({"X-MSH-TRACE-ID": "t3", "msh-request-id": "r3"}, "t3", "r3"),
    ],
)
def test_ids_in_every_spelling_on_errors(headers: dict[str, str], trace: str, req: str) -> None:
    err = _map(403, "openai", "access_terminated_error", WEEKLY, headers)
    assert (err.trace_id, err.request_id) == (trace, req)


# --------------------------------------------------------------------------- through the emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    reset_gates()  # gates are per (account, base URL); a reused port must not inherit a block
    with Emulator(api_keys=[KEY]) as e:
        yield e


def _transport(emu: Emulator) -> Transport:
    return Transport(credential=StaticCredential(KEY), base_url=emu.base_url, max_retries=3)


@pytest.mark.parametrize(("window", "expected"), [("7d", "7d"), ("month", "month"), ("5h", "5h-or-month")])
def test_emulator_quota_403_is_never_retried(emu: Emulator, window: str, expected: str) -> None:
    emu.quota.exhaust(window)
    emu.quota.id_headers = "msh"
    with use_clock(FakeClock()) as fake, pytest.raises(QuotaExceededError) as info:
        _transport(emu).chat(BODY)
    assert info.value.window == expected and emu.counts["chat"] == 1 and fake.sleeps == []
    assert info.value.trace_id and info.value.request_id and info.value.request_id.startswith("req-")


def test_emulator_bodies_are_the_quoted_ones() -> None:
    assert error_body("7d") == {"error": {"message": WEEKLY, "type": "access_terminated_error"}}
    assert error_body("billing", "anthropic") == {
        "type": "error", "error": {"type": "permission_error", "message": BILLING},
    }
    assert error_body("concurrency")["error"]["message"] == CONCURRENT
    assert error_body("month")["error"]["message"] == MONTHLY


def test_concurrency_403_is_retried_with_short_backoff(emu: Emulator) -> None:
    emu.inject("chat", status=403, body=error_body("concurrency"), times=2)
    with use_clock(FakeClock()) as fake:
        result = _transport(emu).chat(BODY)
    assert result.data["choices"] and emu.counts["chat"] == 3
    assert len(fake.sleeps) == 2 and all(s < 5 for s in fake.sleeps)


def test_ids_on_success_in_msh_spelling(emu: Emulator) -> None:
    emu.quota.id_headers = "msh"
    result = _transport(emu).chat(BODY)
    assert result.trace_id and result.request_id == f"req-{result.trace_id}"
    with _transport(emu).stream_chat(BODY) as stream:
        list(stream)
        assert stream.trace_id and stream.request_id == f"req-{stream.trace_id}"
