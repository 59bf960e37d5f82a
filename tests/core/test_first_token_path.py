"""The shortcuts on the path to the first token keep the behaviour they replace."""

from __future__ import annotations

import httpx
import pytest

from kimi_coder_auth import clock
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.error_mapping import SentSecrets, _sent_secrets
from kimi_coder_auth.errors import APITimeoutError
from kimi_coder_auth.response_ids import lowered_response_ids, response_ids
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

TOKEN = "sk-kimi-first-token-path-0123456789"


def _transport(timeout: float | httpx.Timeout | None = 60.0) -> Transport:
    return Transport(credential=StaticCredential(TOKEN), base_url="http://127.0.0.1:9/coding/v1",
                     timeout=timeout)


def test_a_far_deadline_keeps_the_configured_timeout_and_a_near_one_caps_every_step() -> None:
    t = _transport(60.0)
    with use_clock(FakeClock()):
        now = clock.monotonic()
        assert t._attempt_timeout(now + 60.0, None) is t._timeout  # 60 s left of a 60 s timeout
        capped = t._attempt_timeout(now + 5.0, None)
        assert capped.as_dict() == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
        floored = t._attempt_timeout(now + 5.0, 30.0)  # a stream's reads may wait for the next event
        assert floored.read == 30.0 and floored.connect == 5.0
        with pytest.raises(APITimeoutError):
            t._attempt_timeout(now - 0.1, None)


def test_an_unbounded_step_is_always_capped_by_a_deadline() -> None:
    t = _transport(httpx.Timeout(None))
    with use_clock(FakeClock()):
        capped = t._attempt_timeout(clock.monotonic() + 1e6, None)
    assert capped is not t._timeout
    assert capped.read == pytest.approx(1e6)


def test_use_clock_rebinds_the_module_monotonic_and_restores_it() -> None:
    real = clock.monotonic
    fake = FakeClock()
    with use_clock(fake):
        before = clock.monotonic()
        fake.advance(7.5)
        assert clock.monotonic() - before == 7.5
    assert clock.monotonic is real


def _response(headers: dict[str, str]) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1:9/coding/v1/messages", headers=headers)
    return httpx.Response(200, request=request)


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {TOKEN}"},
    {"x-api-key": f"  {TOKEN} "},
    {"Authorization": f"Bearer {TOKEN}", "x-api-key": "sk-kimi-other"},
    {},
])
def test_sent_secrets_are_read_lazily_and_equal_the_eager_ones(headers: dict[str, str]) -> None:
    response = _response(headers)
    lazy = SentSecrets(response)
    assert lazy._values is None  # nothing read until an error needs it
    assert tuple(lazy) == _sent_secrets(response)
    assert len(lazy) == len(_sent_secrets(response)) and bool(lazy) == bool(headers)
    assert TOKEN not in repr(lazy)


@pytest.mark.parametrize("headers", [
    {"x-trace-id": "t1", "x-request-id": "r1"},
    {"x-msh-trace-id": "t2", "msh-request-id": "r2"},
    {"msh-trace-id": "t3", "x-msh-request-id": "r3"},
    {"x-trace-id": "", "x-msh-trace-id": "t4"},
    {"content-type": "text/event-stream"},
])
def test_lowered_ids_match_the_general_lookup(headers: dict[str, str]) -> None:
    assert lowered_response_ids(headers) == response_ids(headers)
    assert lowered_response_ids(headers) == response_ids(httpx.Headers(headers))
