"""KimiAuth: bearer header, one refresh + one retry on 401, https-only, no token leaks.

The credential here is a small counting double implementing the `Credential` protocol: these
tests are about what the auth flow does with a credential, not about how credentials refresh.
The server is the real emulator on 127.0.0.1.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator

import httpx
import pytest

from kimi_coder_auth.auth import KimiAuth, check_secure_url, is_loopback_host
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import AuthenticationError, InsecureTransportError
from kimi_coder_auth.refresh import CredentialStatus
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

BODY = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}


class CountingCredential:
    """Credential double: hands out ``token``; on a 401 for the current token, ``renew()``."""

    source = "test-double"

    def __init__(self, token: str, renew: Callable[[], str | None] | None = None) -> None:
        self.token = Secret(token)
        self.renew = renew
        self.get_calls = 0
        self.rejected: list[Secret] = []

    def get_token(self) -> Secret:
        self.get_calls += 1
        return self.token

    async def aget_token(self) -> Secret:
        return self.get_token()

    def on_unauthorized(self, rejected: Secret) -> Secret | None:
        self.rejected.append(rejected)
        if self.renew is None:
            return None
        if rejected == self.token:
            new = self.renew()
            if new is None:
                return None
            self.token = Secret(new)
        return self.token

    async def aon_unauthorized(self, rejected: Secret) -> Secret | None:
        return self.on_unauthorized(rejected)

    def describe(self) -> CredentialStatus:
        return CredentialStatus(self.source, None, None, self.renew is not None, "double")


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=["sk-static"]) as e:
        yield e


def _expired_token(emu: Emulator) -> str:
    token = emu.issue_token()["access_token"]
    emu.expire_access_tokens()
    return token


def _auth_headers(emu: Emulator) -> list[str]:
    return [r.headers.get("authorization", "") for r in emu.requests if r.path.endswith("/chat/completions")]


def test_bearer_header_is_attached(emu: Emulator) -> None:
    cred = CountingCredential("sk-static")
    Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert _auth_headers(emu) == ["Bearer sk-static"]


def test_401_refreshes_exactly_once_and_retries_once(emu: Emulator) -> None:
    old = _expired_token(emu)
    cred = CountingCredential(old, renew=lambda: emu.issue_token()["access_token"])
    result = Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert result.data["choices"][0]["message"]["content"]
    assert cred.rejected == [Secret(old)]
    assert emu.counts["chat"] == 2 and emu.counts["unauthorized"] == 1
    assert _auth_headers(emu) == [f"Bearer {old}", f"Bearer {cred.token.reveal()}"]


async def test_401_refresh_and_retry_async_stream(emu: Emulator) -> None:
    old = _expired_token(emu)
    cred = CountingCredential(old, renew=lambda: emu.issue_token()["access_token"])
    stream = Transport(credential=cred, base_url=emu.base_url).astream_chat(BODY)
    chunks = [c async for c in stream]
    assert chunks and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(cred.rejected) == 1 and emu.counts["chat"] == 2


def test_second_401_surfaces_authentication_error(emu: Emulator) -> None:
    cred = CountingCredential(_expired_token(emu), renew=lambda: "emu-at-still-not-valid")
    with pytest.raises(AuthenticationError) as info:
        Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert len(cred.rejected) == 1  # asked once, not in a loop
    assert emu.counts["chat"] == 2
    exc = info.value
    assert exc.status == 401 and exc.error_type == "invalid_authentication_error"
    assert exc.trace_id
    assert "kimi-coder login" in str(exc)


async def test_second_401_surfaces_authentication_error_async(emu: Emulator) -> None:
    cred = CountingCredential(_expired_token(emu), renew=lambda: "emu-at-still-not-valid")
    with pytest.raises(AuthenticationError):
        await Transport(credential=cred, base_url=emu.base_url).achat(BODY)
    assert len(cred.rejected) == 1 and emu.counts["chat"] == 2


def test_no_better_token_means_no_retry(emu: Emulator) -> None:
    cred = CountingCredential("sk-wrong")  # static: on_unauthorized -> None
    with pytest.raises(AuthenticationError):
        Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert emu.counts["chat"] == 1 and len(cred.rejected) == 1


def test_same_token_back_means_no_retry(emu: Emulator) -> None:
    cred = CountingCredential("sk-wrong", renew=lambda: None)
    cred.renew = None
    cred.on_unauthorized = lambda rejected: rejected  # type: ignore[method-assign]
    with pytest.raises(AuthenticationError):
        Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert emu.counts["chat"] == 1


def test_static_credential_401(emu: Emulator) -> None:
    with pytest.raises(AuthenticationError, match="api_key argument"):
        Transport(credential=StaticCredential("sk-nope"), base_url=emu.base_url).list_models()
    assert emu.counts["models"] == 1


def test_token_rotated_elsewhere_is_adopted_without_refresh(emu: Emulator) -> None:
    """If the credential already holds a different token, the retry uses it (no new refresh)."""
    old = _expired_token(emu)
    fresh = emu.issue_token()["access_token"]
    cred = CountingCredential(old)
    calls: list[Secret] = []

    def on_unauthorized(rejected: Secret) -> Secret | None:
        calls.append(rejected)
        return Secret(fresh)

    cred.on_unauthorized = on_unauthorized  # type: ignore[method-assign]
    Transport(credential=cred, base_url=emu.base_url).chat(BODY)
    assert calls == [Secret(old)]
    assert _auth_headers(emu)[-1] == f"Bearer {fresh}"


# --------------------------------------------------------------------------- https only


@pytest.mark.parametrize(
    "host, ok",
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("api.localhost", False),  # issue 12: only literal loopback and localhost itself
        ("evil.localhost.", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("api.kimi.com", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_hosts(host: str, ok: bool) -> None:
    assert is_loopback_host(host) is ok


def test_secure_url_rules() -> None:
    check_secure_url(httpx.URL("https://api.kimi.com/coding/v1"))
    check_secure_url(httpx.URL("http://127.0.0.1:8080/x"))
    check_secure_url(httpx.URL("http://[::1]:8080/x"))
    with pytest.raises(InsecureTransportError, match="https"):
        check_secure_url(httpx.URL("http://api.kimi.com/coding/v1"))


def test_http_to_non_loopback_is_refused_before_anything_is_sent() -> None:
    sent: list[httpx.Request] = []
    cred = CountingCredential("sk-secret-canary")
    mock = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    with httpx.Client(transport=mock) as c, pytest.raises(InsecureTransportError) as info:
        c.get("http://api.example.com/coding/v1/models", auth=KimiAuth(cred))
    assert sent == [] and cred.get_calls == 0
    assert "sk-secret-canary" not in str(info.value)
    assert "Nothing was sent" in str(info.value)


def test_transport_refuses_plain_http_to_a_remote_host() -> None:
    cred = CountingCredential("sk-x")
    t = Transport(credential=cred, base_url="http://api.example.com/coding/v1")
    with pytest.raises(InsecureTransportError):
        t.chat(BODY)
    assert cred.get_calls == 0


def test_non_replayable_body_returns_the_401() -> None:
    """A streamed (unread) request body cannot be sent twice: the 401 goes back as is."""
    cred = CountingCredential("old", renew=lambda: "new")
    request = httpx.Request(
        "POST", "https://api.kimi.com/coding/v1/chat/completions", content=iter([b"{}"])
    )
    flow = KimiAuth(cred).sync_auth_flow(request)
    first = next(flow)
    assert first.headers["authorization"] == "Bearer old"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, request=request))


def test_replayable_body_is_retried_with_the_new_token() -> None:
    cred = CountingCredential("old", renew=lambda: "new")
    request = httpx.Request("POST", "https://api.kimi.com/coding/v1/chat/completions", content=b"{}")
    flow = KimiAuth(cred).sync_auth_flow(request)
    next(flow)
    retried = flow.send(httpx.Response(401, request=request))
    assert retried.headers["authorization"] == "Bearer new"
    with pytest.raises(StopIteration):  # a second 401 is returned to the caller
        flow.send(httpx.Response(401, request=request))
    assert len(cred.rejected) == 1


def test_auth_requires_the_request_body() -> None:
    assert KimiAuth.requires_request_body is True


# --------------------------------------------------------------------------- no leaks


def test_tokens_never_leak_into_logs_reprs_or_errors(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    canary_old = _expired_token(emu)
    canary_bad = "emu-at-CANARY-never-valid"
    cred = CountingCredential(canary_old, renew=lambda: canary_bad)
    t = Transport(credential=cred, base_url=emu.base_url)
    with pytest.raises(AuthenticationError) as info:
        t.chat(BODY)
    text = "".join(traceback.format_exception(info.value))
    for canary in (canary_old, canary_bad):
        assert canary not in caplog.text
        assert canary not in str(info.value) and canary not in repr(info.value)
        assert canary not in text
        assert canary not in repr(t) and canary not in repr(KimiAuth(cred))
    assert "chat/completions" in caplog.text  # DEBUG logging did happen


async def test_async_transport_refuses_plain_http_to_a_remote_host() -> None:
    cred = CountingCredential("sk-x")
    with pytest.raises(InsecureTransportError):
        await Transport(credential=cred, base_url="http://10.1.2.3/coding/v1").achat(BODY)
    assert cred.get_calls == 0


def test_credential_errors_pass_through_untouched_and_nothing_is_sent(emu: Emulator) -> None:
    from kimi_coder_auth.errors import CredentialsUnavailable, SourceAttempt

    class NoCredential(CountingCredential):
        def get_token(self) -> Secret:
            raise CredentialsUnavailable([SourceAttempt("env", "not set", "KIMI_CODER_API_KEY")])

    with pytest.raises(CredentialsUnavailable, match="KIMI_CODER_API_KEY"):
        Transport(credential=NoCredential("x"), base_url=emu.base_url).chat(BODY)
    with pytest.raises(CredentialsUnavailable):
        list(Transport(credential=NoCredential("x"), base_url=emu.base_url).stream_chat(BODY))
    assert emu.counts["chat"] == 0


# --------------------------------------------------------------------------- the real credential


def _write_kimi_cli_login(emu: Emulator, home: object) -> dict:
    import json
    import os
    from pathlib import Path

    from kimi_coder_auth import clock
    from kimi_coder_auth.paths import kimi_code_token_name

    # A login from the emulator's host lives in Kimi Code's per-host slot (kimi-cli's single
    # file belongs to the default host only).
    tok = emu.issue_token()
    creds = Path(os.environ["KIMI_CODE_HOME"]) / "credentials"
    creds.mkdir(parents=True, exist_ok=True)
    record = {
        "access_token": tok["access_token"],
        "refresh_token": tok["refresh_token"],
        "expires_at": clock.now() + tok["expires_in"],  # fresh by the file: no proactive refresh
        "scope": tok.get("scope", "kimi-code"),
        "token_type": "Bearer",
        "expires_in": float(tok["expires_in"]),
    }
    (creds / f"{kimi_code_token_name()}.json").write_text(json.dumps(record))
    return record


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_server_side_expiry_refreshes_the_real_login_once(
    emu: Emulator, isolated_home: object, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A token the server no longer accepts: one refresh POST, one retry, the file rotated."""
    import asyncio
    import json
    import os
    from pathlib import Path

    from kimi_coder_auth.sources import clear_credential_cache, resolve_credential

    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", emu.oauth_host)
    clear_credential_cache()
    record = _write_kimi_cli_login(emu, isolated_home)
    emu.expire_access_tokens()
    t = Transport(credential=resolve_credential(credentials="kimi-code"), base_url=emu.base_url)
    if mode == "sync":
        assert t.chat(BODY).data["choices"]
    elif mode == "async":
        assert asyncio.run(t.achat(BODY)).data["choices"]
    else:
        assert list(t.stream_chat(BODY))
    assert emu.counts["refresh"] == 1 and emu.counts["chat"] == 2
    from kimi_coder_auth.paths import kimi_code_token_name

    creds = Path(os.environ["KIMI_CODE_HOME"]) / "credentials"
    saved = json.loads((creds / f"{kimi_code_token_name()}.json").read_text())
    assert not (Path(os.environ["KIMI_SHARE_DIR"]) / "credentials" / "kimi-code.json").exists()
    assert saved["refresh_token"] != record["refresh_token"]
    assert _auth_headers(emu)[-1] == f"Bearer {saved['access_token']}"
    clear_credential_cache()


# --------------------------------------------------------------------------- Messages route

MESSAGES_BODY = {"model": "kimi-for-coding", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def test_messages_route_sends_x_api_key_and_refreshes_once_on_401(emu: Emulator) -> None:
    old = _expired_token(emu)
    cred = CountingCredential(old, renew=lambda: emu.issue_token()["access_token"])
    transport = Transport(credential=cred, base_url=emu.base_url)
    result = transport.messages(MESSAGES_BODY)
    assert result.data["type"] == "message" and cred.rejected == [Secret(old)]
    sent = [r.headers for r in emu.requests if r.path.endswith("/messages")]
    assert [h.get("x-api-key") for h in sent] == [old, cred.token.reveal()]
    assert all("authorization" not in h and h["anthropic-version"] == "2023-06-01" for h in sent)
    events = list(transport.stream_messages(MESSAGES_BODY))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_delta"


def test_messages_route_errors_use_the_anthropic_envelope(emu: Emulator) -> None:
    from kimi_coder_auth import errors as k

    transport = Transport(credential=CountingCredential("sk-static"), base_url=emu.base_url, max_retries=1)
    emu.inject("messages", status=429, times=1)
    assert transport.messages(MESSAGES_BODY).data["type"] == "message"  # 429 rate_limit_error retried
    assert emu.counts["messages"] == 2
    emu.inject("messages", status=403, times=1)
    with pytest.raises(k.PermissionDeniedError) as info:
        transport.messages(MESSAGES_BODY)
    assert info.value.error_type == "permission_error" and "Access terminated" in str(info.value)
    emu.inject("messages", status=529, times=2)
    with pytest.raises(k.ServerError) as err:
        transport.messages(MESSAGES_BODY)
    assert err.value.error_type == "overloaded_error" and emu.counts["messages"] == 5
    with pytest.raises(k.BadRequestError) as bad:
        transport.messages({**MESSAGES_BODY, "max_tokens": None})
    assert bad.value.error_type == "invalid_request_error" and "max_tokens" in str(bad.value)
