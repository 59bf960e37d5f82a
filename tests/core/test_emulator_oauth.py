"""The emulator's OAuth server: device flow, refresh rotation, token expiry, static keys."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import CLIENT_ID, Emulator

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def _device(client: httpx.Client, emu: Emulator) -> dict:
    r = client.post(f"{emu.oauth_host}/api/oauth/device_authorization", data={"client_id": CLIENT_ID})
    assert r.status_code == 200
    return r.json()


def _poll(client: httpx.Client, emu: Emulator, device_code: str) -> httpx.Response:
    return client.post(
        f"{emu.oauth_host}/api/oauth/token",
        data={"client_id": CLIENT_ID, "device_code": device_code, "grant_type": DEVICE_GRANT},
    )


def _refresh(client: httpx.Client, emu: Emulator, refresh_token: str) -> httpx.Response:
    return client.post(
        f"{emu.oauth_host}/api/oauth/token",
        data={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def test_urls_point_at_loopback(emu: Emulator) -> None:
    assert emu.oauth_host.startswith("http://127.0.0.1:")
    assert emu.base_url == emu.oauth_host + "/coding/v1"
    assert emu.port > 0


def test_device_authorization_shape(emu: Emulator, client: httpx.Client) -> None:
    data = _device(client, emu)
    assert set(data) == {"user_code", "device_code", "verification_uri", "verification_uri_complete",
                         "expires_in", "interval"}
    assert data["user_code"] in data["verification_uri_complete"]
    assert data["interval"] == 5 and data["expires_in"] == 600
    assert emu.counts["device_authorization"] == 1
    req = emu.requests[-1]
    assert req.path == "/api/oauth/device_authorization" and req.body == {"client_id": CLIENT_ID}
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")


def test_wrong_client_id_is_invalid_client(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.oauth_host}/api/oauth/device_authorization", data={"client_id": "nope"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


def test_default_device_poll_approves_at_once(emu: Emulator, client: httpx.Client) -> None:
    r = _poll(client, emu, _device(client, emu)["device_code"])
    assert r.status_code == 200
    tok = r.json()
    assert tok["scope"] == "kimi-code" and tok["token_type"] == "Bearer" and tok["expires_in"] == 900
    assert emu.is_access_valid(tok["access_token"]) and emu.is_refresh_valid(tok["refresh_token"])


def test_scripted_device_sequence(emu: Emulator, client: httpx.Client) -> None:
    emu.script_device(["authorization_pending", "slow_down", "approve"])
    code = _device(client, emu)["device_code"]
    r1, r2, r3 = (_poll(client, emu, code) for _ in range(3))
    assert (r1.status_code, r1.json()["error"]) == (400, "authorization_pending")
    assert (r2.status_code, r2.json()["error"]) == (400, "slow_down")
    assert "error_description" in r2.json()
    assert r3.status_code == 200 and "access_token" in r3.json()
    # a device code is single use
    r4 = _poll(client, emu, code)
    assert r4.status_code == 400 and r4.json()["error"] == "invalid_grant"
    assert emu.counts["device_token"] == 4


@pytest.mark.parametrize("step", ["access_denied", "expired_token"])
def test_terminal_device_errors_kill_the_code(emu: Emulator, client: httpx.Client, step: str) -> None:
    emu.script_device([step])
    code = _device(client, emu)["device_code"]
    r = _poll(client, emu, code)
    assert r.status_code == 400 and r.json()["error"] == step
    assert _poll(client, emu, code).json()["error"] == "invalid_grant"


def test_expired_token_then_new_code_is_approved(emu: Emulator, client: httpx.Client) -> None:
    emu.script_device(["expired_token", "authorization_pending", "approve"])
    assert _poll(client, emu, _device(client, emu)["device_code"]).json()["error"] == "expired_token"
    code2 = _device(client, emu)["device_code"]
    assert _poll(client, emu, code2).json()["error"] == "authorization_pending"
    assert _poll(client, emu, code2).status_code == 200


def test_device_code_expires_by_clock(client: httpx.Client) -> None:
    with use_clock(FakeClock()) as clk, Emulator() as emu:
        code = _device(client, emu)["device_code"]
        clk.advance(601)
        r = _poll(client, emu, code)
        assert r.status_code == 400 and r.json()["error"] == "expired_token"


def test_script_device_rejects_unknown_step(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="approve"):
        emu.script_device(["approved"])


def test_refresh_rotates_and_rejects_reuse(emu: Emulator, client: httpx.Client) -> None:
    tok = emu.issue_token()
    r = _refresh(client, emu, tok["refresh_token"])
    assert r.status_code == 200
    new = r.json()
    assert new["refresh_token"] != tok["refresh_token"] and new["access_token"] != tok["access_token"]
    assert set(new) == {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
    reuse = _refresh(client, emu, tok["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["error"] == "invalid_grant" and reuse.json()["error_description"]
    assert _refresh(client, emu, new["refresh_token"]).status_code == 200
    assert emu.counts["refresh"] == 3 and emu.counts["refresh_rejected"] == 1


def test_unknown_refresh_token_rejected(emu: Emulator, client: httpx.Client) -> None:
    r = _refresh(client, emu, "made-up")
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"
    assert emu.counts["refresh_rejected"] == 1


def test_unsupported_grant(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.oauth_host}/api/oauth/token", data={"client_id": CLIENT_ID, "grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_access_token_expires_with_fake_clock(client: httpx.Client) -> None:
    with use_clock(FakeClock()) as clk, Emulator(access_token_ttl=900) as emu:
        tok = emu.issue_token()
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        assert client.get(f"{emu.base_url}/models", headers=headers).status_code == 200
        clk.advance(901)
        r = client.get(f"{emu.base_url}/models", headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": {
            "message": "The API Key appears to be invalid or may have expired. Please verify your credentials and try again.",
            "type": "invalid_authentication_error"}}
        assert emu.counts["unauthorized"] == 1


def test_issue_token_custom_ttl(client: httpx.Client) -> None:
    with use_clock(FakeClock()) as clk, Emulator() as emu:
        tok = emu.issue_token(ttl=10)
        assert tok["expires_in"] == 10
        clk.advance(11)
        assert not emu.is_access_valid(tok["access_token"])


def test_static_api_key_always_valid(client: httpx.Client) -> None:
    with use_clock(FakeClock()) as clk, Emulator(api_keys=["sk-kimi-test"]) as emu:
        clk.advance(10**7)
        r = client.get(f"{emu.base_url}/usages", headers={"Authorization": "Bearer sk-kimi-test"})
        assert r.status_code == 200
        assert client.get(f"{emu.base_url}/usages", headers={"Authorization": "Bearer sk-kimi-other"}).status_code == 401


def test_expire_and_revoke_helpers(emu: Emulator, client: httpx.Client) -> None:
    tok = emu.issue_token()
    emu.expire_access_tokens()
    assert client.get(f"{emu.base_url}/models", headers={"Authorization": f"Bearer {tok['access_token']}"}).status_code == 401
    emu.revoke_refresh_tokens()
    assert _refresh(client, emu, tok["refresh_token"]).status_code == 401


def test_refresh_fault_injection(emu: Emulator, client: httpx.Client) -> None:
    tok = emu.issue_token()
    emu.inject("refresh", status=503)
    r = _refresh(client, emu, tok["refresh_token"])
    assert r.status_code == 503 and r.json()["error"] == "server_error"
    # the fault is used up and the token was not consumed by the failed attempt
    assert _refresh(client, emu, tok["refresh_token"]).status_code == 200


def test_refresh_delay_is_real(emu: Emulator, client: httpx.Client) -> None:
    import time

    tok = emu.issue_token()
    emu.inject("refresh", delay=0.3)
    t0 = time.monotonic()
    assert _refresh(client, emu, tok["refresh_token"]).status_code == 200
    assert time.monotonic() - t0 >= 0.28


def test_reset_counts(emu: Emulator, client: httpx.Client) -> None:
    _device(client, emu)
    emu.reset_counts()
    assert emu.counts["device_authorization"] == 0 and emu.requests == []


def test_issue_token_with_chosen_values(emu: Emulator, client: httpx.Client) -> None:
    tok = emu.issue_token(ttl=60, access_token="canary-at-123", refresh_token="canary-rt-456")
    assert (tok["access_token"], tok["refresh_token"], tok["expires_in"]) == ("canary-at-123", "canary-rt-456", 60)
    assert client.get(f"{emu.base_url}/models", headers={"Authorization": "Bearer canary-at-123"}).status_code == 200
    assert _refresh(client, emu, "canary-rt-456").status_code == 200
    assert _refresh(client, emu, "canary-rt-456").status_code == 401


def test_concurrent_refresh_with_same_token_only_one_wins(emu: Emulator, client: httpx.Client) -> None:
    import threading

    tok = emu.issue_token()
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait(5)
        code = _refresh(client, emu, tok["refresh_token"]).status_code
        with lock:
            statuses.append(code)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(statuses) == [200] + [401] * 7
    assert emu.counts["refresh"] == 8 and emu.counts["refresh_rejected"] == 7
