"""Secrets stay out of errors, their chains and the locals of kimi-coder's raising frames.

A traceback rendered with frame locals (Sentry's default, ``pytest -l``, rich) shows every local
of every frame it passes; an error's ``__context__`` is walked by error trackers too. These tests
plant unique canaries and scan what such tools would render (see ``tests/_canary``).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
import traceback
from collections.abc import Iterator

import httpx
import pytest
from _canary import Leaks, make_canary

from kimi_coder_auth import refresh as refresh_mod
from kimi_coder_auth._redact import REDACTED, redact
from kimi_coder_auth.device import DeviceAuthorization, DeviceFlow
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.error_mapping import error_from_response
from kimi_coder_auth.errors import (
    CredentialFileCorrupt,
    CredentialStoreUnwritable,
    DeviceLoginError,
    OAuthConnectionError,
    OAuthError,
    ReauthRequired,
)
from kimi_coder_auth.oauth import (
    KIMI_CODE_CLIENT_ID,
    TOKEN_PATH,
    RefreshRejected,
    apost_form,
    post_form,
    refresh_access_token,
)
from kimi_coder_auth.refresh import OAuthCredential
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.streams import _json_instead_of_stream
from kimi_coder_auth.token import OAuthToken

OURS = ("kimi_coder_auth",)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as e:
        yield e


def dead_host() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_no_chain(exc: BaseException) -> None:
    """Not even a suppressed context: the chain would be walked by error trackers."""
    assert exc.__cause__ is None and exc.__context__ is None, repr(exc.__context__)


# --------------------------------------------------------------------------- credential files


def _login_text(at: str, rt: str, flaw: str) -> str:
    if flaw == "truncated":
        return f'{{"access_token": "{at}", "refresh_token": "{rt}", "expires_at": 17'
    if flaw == "not-an-object":
        return f'["{at}", "{rt}"]'
    return f'{{"access_token": "{at}", "refresh_token": "{rt}", "expires_at": "soon"}}'


@pytest.mark.parametrize("store_cls", [KimiCliStore, KimiCodeStore])
@pytest.mark.parametrize("flaw", ["truncated", "not-an-object", "bad-field"])
def test_corrupt_file_error_keeps_the_content_out_of_locals_and_chain(
    store_cls: type, flaw: str
) -> None:
    at, rt = make_canary("AT"), make_canary("RT")
    store = store_cls()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(_login_text(at, rt, flaw))
    with pytest.raises(CredentialFileCorrupt) as info:
        store.read()
    assert str(store.path) in str(info.value) and info.value.problem
    assert_no_chain(info.value)
    Leaks(at, rt).check_exc(f"{flaw} read()", info.value, locals_of=OURS)


def test_parse_error_keeps_the_content_out_of_its_frame() -> None:
    at, rt = make_canary("AT"), make_canary("RT")
    raw = _login_text(at, rt, "truncated").encode()
    with pytest.raises(CredentialFileCorrupt, match="not valid JSON") as info:
        KimiCliStore().parse(raw)
    assert_no_chain(info.value)
    Leaks(at, rt).check_exc("parse()", info.value, locals_of=OURS)


def test_valid_file_still_parses() -> None:
    store = KimiCliStore()
    store.write(OAuthToken(Secret("AT-ok"), Secret("RT-ok"), 123.0, 900.0, "kimi-code", "Bearer"))
    token = store.read()
    assert token is not None and token.access_token == Secret("AT-ok")


def test_failed_write_keeps_the_tokens_out_of_the_traceback() -> None:
    at, rt = make_canary("AT"), make_canary("RT")
    store = KimiCliStore()
    store.path.mkdir(parents=True)  # the file's place is taken by a directory: rename fails
    with pytest.raises(CredentialStoreUnwritable) as info:
        store.write(OAuthToken(Secret(at), Secret(rt), 123.0, 900.0, "kimi-code", "Bearer"))
    assert info.value.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)
    assert info.value.path == str(store.path)
    assert_no_chain(info.value)
    Leaks(at, rt).check_exc("write()", info.value, locals_of=None)


# --------------------------------------------------------------------------- OAuth form posts


def test_post_form_reveals_secret_values_only_on_the_wire(emu: Emulator) -> None:
    issued = emu.issue_token()
    status, data = post_form(
        TOKEN_PATH,
        {
            "client_id": KIMI_CODE_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": Secret(issued["refresh_token"]),
        },
        host=emu.oauth_host,
    )
    assert status == 200 and data["access_token"]
    assert emu.requests[-1].body["refresh_token"] == issued["refresh_token"]


def test_unreachable_oauth_host_error_has_no_chain_and_clean_locals() -> None:
    rt = make_canary("RT")
    with pytest.raises(OAuthConnectionError) as info:
        post_form(TOKEN_PATH, {"refresh_token": Secret(rt)}, host=dead_host(), timeout=2)
    assert_no_chain(info.value)
    Leaks(rt).check_exc("post_form", info.value, locals_of=None)


async def test_unreachable_oauth_host_async_error_has_no_chain_and_clean_locals() -> None:
    rt = make_canary("RT")
    with pytest.raises(OAuthConnectionError) as info:
        await apost_form(TOKEN_PATH, {"refresh_token": Secret(rt)}, host=dead_host(), timeout=2)
    assert_no_chain(info.value)
    Leaks(rt).check_exc("apost_form", info.value, locals_of=None)


def test_refresh_against_unreachable_host_keeps_the_refresh_token_out_of_locals() -> None:
    rt = make_canary("RT")
    with pytest.raises(OAuthConnectionError) as info:
        refresh_access_token(Secret(rt), host=dead_host(), timeout=2)
    Leaks(rt).check_exc("refresh_access_token", info.value, locals_of=None)


@pytest.mark.parametrize(
    "status,error,expected",
    [(400, "invalid_request", OAuthError), (401, "invalid_grant", RefreshRejected),
     (500, None, OAuthError)],
)
def test_token_endpoint_echoing_the_refresh_token_is_redacted(
    emu: Emulator, status: int, error: str | None, expected: type
) -> None:
    rt = make_canary("RT")
    body: dict[str, str] = {"error_description": f"refresh_token={rt} is not valid"}
    if error:
        body["error"] = error
    emu.inject("refresh", status=status, body=body)
    with pytest.raises(expected) as info:
        refresh_access_token(Secret(rt), host=emu.oauth_host)
    assert f"refresh_token={REDACTED} is not valid" in str(info.value)  # the rest is kept
    Leaks(rt).check_exc("refresh error", info.value, locals_of=OURS)


def test_token_endpoint_echo_in_the_error_code_is_redacted(emu: Emulator) -> None:
    rt = make_canary("RT")
    emu.inject("refresh", status=400, body={"error": f"bad_token_{rt}"})
    with pytest.raises(OAuthError) as info:
        refresh_access_token(Secret(rt), host=emu.oauth_host)
    assert info.value.error == f"bad_token_{REDACTED}"
    Leaks(rt).check_exc("refresh error code", info.value, locals_of=OURS)


def test_malformed_200_keeps_the_answers_tokens_out_of_locals(emu: Emulator) -> None:
    new_rt = make_canary("RT")
    emu.inject("refresh", status=200, body={"refresh_token": new_rt, "expires_in": 900})
    with pytest.raises(OAuthError, match="access_token") as info:
        refresh_access_token(Secret("RT-old"), host=emu.oauth_host)
    assert info.value.status == 200
    assert_no_chain(info.value)
    Leaks(new_rt).check_exc("malformed 200", info.value, locals_of=None)


# --------------------------------------------------------------------------- device login


def _flow(dc: str) -> DeviceFlow:
    authorization = DeviceAuthorization.parse({
        "device_code": dc,
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://auth.example/verify",
        "expires_in": 600,
        "interval": 5,
    })
    return DeviceFlow(authorization, now=0.0, monotonic=0.0)


def test_device_poll_form_for_the_wire_keeps_the_device_code_secret() -> None:
    dc = make_canary("DC")
    form = _flow(dc).secret_poll_form("client-1")
    assert form["device_code"] == Secret(dc) and dc not in repr(form)


def test_device_poll_error_echoing_the_device_code_is_redacted() -> None:
    dc = make_canary("DC")
    with pytest.raises(DeviceLoginError) as info:
        _flow(dc).on_response(400, {"error": f"weird_{dc}", "error_description": f"code {dc} bad"},
                              monotonic=0.0)
    assert f"code {REDACTED} bad" in str(info.value)
    Leaks(dc).check_exc("device poll 400", info.value, locals_of=())
    with pytest.raises(OAuthError) as info5:
        _flow(dc).on_response(503, {"error": f"down_{dc}"}, monotonic=0.0)
    Leaks(dc).check_exc("device poll 503", info5.value, locals_of=())


def test_device_login_sends_the_device_code_and_saves(emu: Emulator) -> None:
    from kimi_coder_auth.device import login

    token = login(prompt=lambda p: None, open_browser=False, oauth_host=emu.oauth_host, timeout=5)
    polls = [r for r in emu.requests if r.body and "device_code" in r.body]
    assert polls and isinstance(polls[-1].body["device_code"], str) and polls[-1].body["device_code"]
    from kimi_coder_auth.region import kimi_code_slot

    slot = kimi_code_slot(emu.oauth_host, "https://api.kimi.com/coding/v1")
    saved = KimiCodeStore(token_name=slot).read()  # the emulator host's own slot
    assert saved is not None and saved.access_token == token.access_token
    assert KimiCliStore().read() is None  # kimi-cli's file is the default host's only


# --------------------------------------------------------------------------- refresh logging


def test_advisory_refresh_warning_shows_error_class_and_status_not_server_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    marker = make_canary("SERVER-TEXT")

    def failing(*args: object, **kwargs: object) -> OAuthToken:
        raise OAuthError(f"Refreshing the access token failed: 400 ({marker}).", status=400)

    monkeypatch.setattr(refresh_mod, "refresh_access_token", failing)
    store = KimiCliStore()
    store.write(OAuthToken(Secret("AT-still-good"), Secret("RT-x"), time.time() + 400, 900.0,
                           "kimi-code", "Bearer"))
    caplog.set_level(logging.DEBUG, logger="kimi_coder_auth")
    assert OAuthCredential(store).get_token() == Secret("AT-still-good")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "OAuthError" in warnings[0] and "400" in warnings[0]
    Leaks(marker).check("logs", caplog.text)


def test_rejected_refresh_reauth_chain_is_clean(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = make_canary("RT")
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", emu.oauth_host)
    emu.inject("refresh", status=401, body={"error": "invalid_grant", "error_description": rt})
    KimiCliStore().write(OAuthToken(Secret("AT-x"), Secret(rt), time.time() - 60, 900.0,
                                    "kimi-code", "Bearer"))
    with pytest.raises(ReauthRequired) as info:
        OAuthCredential(KimiCliStore()).get_token()
    Leaks(rt).check_exc("reauth", info.value, locals_of=OURS)


# --------------------------------------------------------------------------- API errors


def _response(status: int, body: object, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = httpx.Request("POST", "https://api.kimi.com/coding/v1/chat/completions", headers=headers)
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 418])
def test_api_error_echoing_the_sent_token_is_redacted(status: int) -> None:
    token = make_canary("AT")  # an OAuth access token: no recognisable shape
    body = {"error": {"message": f"token {token} is not allowed", "type": f"invalid_{token}"}}
    exc = error_from_response(_response(status, body, token))
    assert f"token {REDACTED} is not allowed" in str(exc)
    Leaks(token).check_exc(f"{status}", exc, locals_of=())


def test_api_error_redacts_credential_shaped_text_even_without_a_request() -> None:
    key = make_canary("sk-kimi")
    other = make_canary("AT")
    exc = error_from_response(httpx.Response(401, json={"error": {
        "message": f"got Authorization: Bearer {other}; key {key}", "type": "invalid_api_key"}}))
    assert "Bearer [REDACTED]" in str(exc) and exc.error_type == "invalid_api_key"
    Leaks(key, other).check_exc("401", exc, locals_of=())


def test_json_answer_to_a_stream_is_redacted() -> None:
    token = make_canary("AT")
    exc = _json_instead_of_stream(_response(200, {"error": {"message": f"echo {token}"}}, token))
    Leaks(token).check_exc("stream json", exc, locals_of=())


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "The engine is currently overloaded; retry in 7 s (model kimi-for-coding)."
    assert redact(text, "RT-abc", None, Secret("")) == text
    assert redact("bearer xyz123 and sk-kimi-AbC_9", None) == f"bearer {REDACTED} and {REDACTED}"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert redact(f"token {jwt} rejected") == f"token {REDACTED} rejected"


def test_traceback_text_of_a_redacted_error_is_clean() -> None:
    token = make_canary("AT")
    exc = error_from_response(_response(401, {"error": {"message": token}}, token))
    try:
        raise exc
    except Exception as raised:
        rendered = "".join(traceback.format_exception(raised))
    Leaks(token).check("traceback", rendered)
