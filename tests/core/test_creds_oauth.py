"""OAuth plumbing: host resolution, identity, transport safety, refresh outcome mapping."""

from __future__ import annotations

import re
import socket
import traceback
from collections.abc import Iterator

import pytest

from kimi_coder_auth._identity import default_user_agent
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import InsecureTransportError, OAuthError, ReauthRequired
from kimi_coder_auth.oauth import (
    KIMI_CODE_CLIENT_ID,
    TOKEN_PATH,
    RefreshRejected,
    apost_form,
    oauth_host,
    post_form,
    refresh_access_token,
)
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.token import OAuthToken


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


def test_oauth_host_env_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert oauth_host() == "https://auth.kimi.com"
    monkeypatch.setenv("KIMI_OAUTH_HOST", "https://b.example/")
    assert oauth_host() == "https://b.example"
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", "https://a.example//")
    assert oauth_host() == "https://a.example"  # read at call time, trailing / stripped


def test_user_agent_is_honest() -> None:
    ua = default_user_agent()
    assert re.fullmatch(r"kimi-coder/\S+ \(python \d+\.\d+; [a-z0-9_]+\)", ua), ua
    assert "KimiCLI" not in ua and "kimi-code-cli" not in ua


def test_client_id() -> None:
    assert KIMI_CODE_CLIENT_ID == "17e5f671-d194-4dfb-9706-5516cb48c098"


def test_refresh_success_rotates_and_sends_our_headers(emu: Emulator) -> None:
    issued = emu.issue_token()
    tok = refresh_access_token(Secret(issued["refresh_token"]), host=emu.oauth_host)
    assert isinstance(tok, OAuthToken) and tok.refresh_token != Secret(issued["refresh_token"])
    req = emu.requests[-1]
    assert req.body == {
        "client_id": KIMI_CODE_CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": issued["refresh_token"],
    }
    assert req.headers["user-agent"] == default_user_agent()
    assert "x-msh-platform" not in req.headers  # we never pose as kimi-cli


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_grant"}),
        (403, {"error": "access_denied"}),
        (400, {"error": "invalid_grant", "error_description": "used"}),
    ],
)
def test_rejections_are_reauth(emu: Emulator, status: int, body: dict) -> None:
    emu.inject("refresh", status=status, body=body)
    with pytest.raises(RefreshRejected) as info:
        refresh_access_token(Secret("RT-CANARY-rej"), host=emu.oauth_host)
    assert isinstance(info.value, ReauthRequired) and info.value.status == status
    assert "CANARY" not in str(info.value)


@pytest.mark.parametrize("status", [400, 429, 500, 502])
def test_other_errors_are_oauth_errors(emu: Emulator, status: int) -> None:
    emu.inject(
        "refresh", status=status, body={"error": "server_error", "error_description": "try later"}
    )
    with pytest.raises(OAuthError) as info:
        refresh_access_token(Secret("RT-x"), host=emu.oauth_host)
    assert not isinstance(info.value, ReauthRequired)
    assert info.value.status == status and "try later" in str(info.value)


def test_redirect_is_not_followed(emu: Emulator) -> None:
    emu.inject("refresh", status=307, headers={"Location": "http://127.0.0.1:9/steal"}, body={})
    with pytest.raises(OAuthError, match="redirect") as info:
        refresh_access_token(Secret("RT-CANARY-redir"), host=emu.oauth_host)
    assert info.value.status == 307 and "CANARY" not in str(info.value)
    assert emu.counts["refresh"] == 1


def test_malformed_200_names_fields_not_values(emu: Emulator) -> None:
    emu.inject("refresh", status=200, body={"refresh_token": "RT-CANARY-leak", "expires_in": 900})
    with pytest.raises(OAuthError) as info:
        refresh_access_token(Secret("RT-x"), host=emu.oauth_host)
    text = str(info.value) + "".join(traceback.format_exception(info.value))
    assert "access_token" in str(info.value) and "CANARY" not in text


def test_non_json_200(emu: Emulator) -> None:
    emu.inject("refresh", status=200, body="<html>AT-CANARY</html>")
    with pytest.raises(OAuthError, match="without a JSON object") as info:
        refresh_access_token(Secret("RT-x"), host=emu.oauth_host)
    assert "CANARY" not in str(info.value)


def test_plain_http_to_non_loopback_is_refused() -> None:
    with pytest.raises(InsecureTransportError):
        post_form(TOKEN_PATH, {"refresh_token": "RT-x"}, host="http://auth.example.com")


def test_connection_refused_is_an_oauth_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OAuthError) as info:
        post_form(
            TOKEN_PATH,
            {"refresh_token": "RT-CANARY-conn"},
            host=f"http://127.0.0.1:{port}",
            timeout=2,
        )
    assert "CANARY" not in str(info.value) and info.value.status is None


async def test_apost_form(emu: Emulator) -> None:
    status, data = await apost_form(
        "/api/oauth/device_authorization", {"client_id": KIMI_CODE_CLIENT_ID}, host=emu.oauth_host
    )
    assert status == 200 and "device_code" in data
    with pytest.raises(InsecureTransportError):
        await apost_form(TOKEN_PATH, {}, host="http://10.0.0.1")
