"""The RFC 8628 state machine (`DeviceFlow`), fed plain numbers: no I/O, no clock."""

from __future__ import annotations

import pytest

from kimi_coder_auth.device import (
    DEFAULT_EXPIRES_IN,
    DEVICE_GRANT_TYPE,
    DeviceAuthorization,
    DeviceFlow,
    Done,
    Sleep,
)
from kimi_coder_auth.errors import (
    DeviceAccessDenied,
    DeviceCodeExpired,
    DeviceLoginError,
    DeviceLoginTimeout,
    OAuthError,
)

DC = "DC-CANARY-7f3a9"
AT = "AT-CANARY-1b2c3"
RT = "RT-CANARY-4d5e6"


def auth(**over: object) -> dict:
    body = {
        "device_code": DC,
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://auth.example/verify",
        "verification_uri_complete": "https://auth.example/verify?user_code=WDJB-MJHT",
        "expires_in": 600,
        "interval": 5,
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


TOKEN = {
    "access_token": AT,
    "refresh_token": RT,
    "expires_in": 900,
    "scope": "kimi-code",
    "token_type": "Bearer",
}


def pending(code: str = "authorization_pending") -> tuple[int, dict]:
    return 400, {"error": code, "error_description": f"{code} says the server"}


def run(flow: DeviceFlow, answers: list, start: float = 0.0) -> tuple[list[float], object]:
    """Drive `flow` with scripted answers ("conn" = connection error); returns sleeps and result."""
    t = start
    sleeps: list[float] = []
    for answer in answers:
        if answer == "conn":
            step = flow.on_connection_error(monotonic=t)
        else:
            step = flow.on_response(*answer, monotonic=t)
        if isinstance(step, Done):
            return sleeps, step
        assert isinstance(step, Sleep)
        sleeps.append(step.seconds)
        t += step.seconds
    return sleeps, None


def make(timeout: float | None = None, **over: object) -> DeviceFlow:
    return DeviceFlow(auth(**over), now=1_800_000_000.0, monotonic=0.0, timeout=timeout)


def test_rfc_sequence_pending_slowdown_success() -> None:
    flow = make()
    answers = [pending(), pending("slow_down"), pending(), pending("slow_down"), (200, TOKEN)]
    sleeps, result = run(flow, answers)
    assert sleeps == [5, 10, 10, 15]
    assert isinstance(result, Done)
    assert result.payload["access_token"] == AT
    assert flow.polls == 5
    assert flow.interval == 15  # slow_down is permanent


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        ("access_denied", DeviceAccessDenied),
        ("expired_token", DeviceCodeExpired),
        ("unsupported_grant_type", DeviceLoginError),
        ("invalid_client", DeviceLoginError),
    ],
)
def test_terminal_errors_stop_with_their_own_type(code: str, exc_type: type[Exception]) -> None:
    flow = make()
    assert isinstance(flow.on_response(*pending(), monotonic=0), Sleep)
    with pytest.raises(exc_type) as info:
        flow.on_response(*pending(code), monotonic=5)
    assert type(info.value) is exc_type  # not merely a subclass match
    assert "Nothing was written" in str(info.value)
    assert "kimi-coder login" in str(info.value)  # says what to do next
    assert DC not in str(info.value)


def test_unknown_error_shows_code_and_server_message_briefly() -> None:
    flow = make()
    with pytest.raises(DeviceLoginError) as info:
        flow.on_response(400, {"error": "weird", "error_description": "x" * 5000}, monotonic=0)
    text = str(info.value)
    assert "'weird'" in text
    assert len(text) < 600


def test_4xx_without_error_code_is_a_login_error() -> None:
    with pytest.raises(DeviceLoginError, match="HTTP 404"):
        make().on_response(404, {}, monotonic=0)


def test_http_5xx_fails_with_oauth_error() -> None:
    flow = make()
    flow.on_response(*pending(), monotonic=0)
    with pytest.raises(OAuthError) as info:
        flow.on_response(503, {"error": "server_error"}, monotonic=5)
    assert info.value.status == 503


def test_redirect_fails_and_is_not_followed() -> None:
    with pytest.raises(OAuthError, match="redirect"):
        make().on_response(307, {}, monotonic=0)


def test_200_without_access_token_names_the_field_not_values() -> None:
    with pytest.raises(OAuthError) as info:
        make().on_response(200, {"refresh_token": RT}, monotonic=0)
    assert "access_token" in str(info.value)
    assert RT not in str(info.value)


def test_bare_429_is_treated_as_slow_down() -> None:
    flow = make()
    assert flow.on_response(429, {}, monotonic=0) == Sleep(10)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (None, 5),
        (0, 1),
        (-3, 1),
        (0.2, 1),
        (2, 2),
        (30, 30),
        (3600, 60),
        ("7", 7),
        ("soon", 5),
        (True, 5),
    ],
)
def test_interval_clamped_1_to_60_missing_is_5(interval: object, expected: float) -> None:
    flow = make(interval=interval)
    assert flow.interval == expected
    assert flow.on_response(*pending(), monotonic=0) == Sleep(expected)


@pytest.mark.parametrize("expires_in", [None, 0, -5, "nope", float("nan")])
def test_missing_or_invalid_expires_in_defaults_to_15_minutes(expires_in: object) -> None:
    flow = make(expires_in=expires_in)
    assert flow.budget == DEFAULT_EXPIRES_IN == 900
    assert flow.prompt.expires_at == 1_800_000_000.0 + 900


def test_slow_down_adds_five_even_at_the_cap() -> None:
    flow = make(interval=60)
    assert flow.on_response(*pending("slow_down"), monotonic=0) == Sleep(65)


def test_connection_errors_back_off_doubling_to_cap_then_reset() -> None:
    flow = make(expires_in=3600)
    sleeps, result = run(flow, ["conn"] * 6 + [pending(), "conn"])
    assert sleeps == [10, 20, 40, 60, 60, 60, 5, 10]
    assert result is None
    assert flow.interval == 5  # connection trouble does not change the server's interval


def test_connection_errors_until_deadline_have_bounded_polls() -> None:
    flow = make(expires_in=600)
    t = 0.0
    attempts = 0
    with pytest.raises(DeviceLoginTimeout) as info:
        while True:
            attempts += 1
            step = flow.on_connection_error(monotonic=t)
            t += step.seconds
            assert attempts < 100
    assert t == pytest.approx(600)
    assert attempts <= 15  # 10+20+40+60*9 ... no hot loop
    assert "network" in str(info.value)


def test_deadline_is_expires_in_when_server_pends_forever() -> None:
    flow = make(expires_in=60, interval=7)
    t = 0.0
    polls = 0
    with pytest.raises(DeviceLoginTimeout) as info:
        while True:
            polls += 1
            step = flow.on_response(*pending(), monotonic=t)
            t += step.seconds
    assert t == pytest.approx(60)  # the last sleep is shortened to end at the deadline
    assert polls == 10  # at 0,7,...,56, then 60 (too late)
    assert "expired" in str(info.value)


def test_caller_timeout_shorter_than_expires_in_wins() -> None:
    flow = make(timeout=12, expires_in=600)
    sleeps = []
    t = 0.0
    with pytest.raises(DeviceLoginTimeout, match="12 s timeout"):
        while True:
            step = flow.on_response(*pending(), monotonic=t)
            sleeps.append(step.seconds)
            t += step.seconds
    assert sleeps == [5, 5, 2]


def test_caller_timeout_longer_than_expires_in_is_capped() -> None:
    flow = make(timeout=10_000, expires_in=600)
    assert flow.budget == 600


@pytest.mark.parametrize("timeout", [0, -1])
def test_nonpositive_timeout_is_rejected(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        make(timeout=timeout)


def test_success_after_deadline_still_counts() -> None:
    # An approval that arrives on the last poll is honoured: the answer wins over the clock.
    flow = make(expires_in=10)
    assert isinstance(flow.on_response(200, TOKEN, monotonic=50), Done)


def test_prompt_contents() -> None:
    flow = DeviceFlow(auth(expires_in=600), now=1000.0, monotonic=0.0)
    p = flow.prompt
    assert p.verification_uri == "https://auth.example/verify"
    assert p.verification_uri_complete == "https://auth.example/verify?user_code=WDJB-MJHT"
    assert p.user_code == "WDJB-MJHT"
    assert p.expires_at == 1600.0
    assert p.url == p.verification_uri_complete


def test_prompt_without_complete_uri_uses_plain_uri() -> None:
    p = make(verification_uri_complete=None).prompt
    assert p.verification_uri_complete is None
    assert p.url == "https://auth.example/verify"


def test_prompt_without_plain_uri_derives_it() -> None:
    p = make(verification_uri=None).prompt
    assert p.verification_uri == "https://auth.example/verify"


@pytest.mark.parametrize("field", ["device_code", "user_code"])
def test_authorization_missing_required_field(field: str) -> None:
    with pytest.raises(OAuthError, match=field):
        DeviceAuthorization.parse(auth(**{field: None}))


def test_authorization_missing_both_uris() -> None:
    with pytest.raises(OAuthError, match="verification_uri"):
        DeviceAuthorization.parse(auth(verification_uri=None, verification_uri_complete=None))


def test_poll_form_is_the_rfc_device_grant() -> None:
    form = make().poll_form("client-1")
    assert form == {"client_id": "client-1", "device_code": DC, "grant_type": DEVICE_GRANT_TYPE}


def test_no_secret_in_reprs() -> None:
    flow = make()
    step = flow.on_response(200, TOKEN, monotonic=0)
    for text in (repr(flow), repr(flow.authorization), repr(step), repr(flow.prompt)):
        assert DC not in text and AT not in text and RT not in text
