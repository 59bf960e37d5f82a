"""Issue 12 items 5 and 7: exact-secret scrubbing of quoted server text (SSE error events,
non-JSON previews, x-api-key) and HTTP oddities (3xx, HTML streams, Retry-After, loopback,
upper-case schemes, POST bodies that break mid-read)."""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _hostile import HostileServer, Request, head, sse_answer

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.error_mapping import error_from_response, parse_retry_after
from kimi_coder_auth.errors import (
    APIConnectionError,
    APIError,
    InsecureTransportError,
    StreamError,
    StreamInterruptedError,
)
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}
#: tokens of shapes no pattern recognises: only the exact sent value can be scrubbed
OPAQUE = ["Zq8mT~Ppa0/+wX4Lr9Vd2Ke7", "0123456789abcdef0123456789abcdef", "tok.en_with-dots.and-dashes"]


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


def make(url: str, key: str = "sk-kimi-http-test", **kw: Any) -> Transport:
    return Transport(credential=StaticCredential(key), base_url=url, **kw)


def _texts(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    parts.append(repr(pickle.loads(pickle.dumps(exc)).__dict__))
    return "\n".join(parts)


# --------------------------------------------------------------------------- item 5: scrubbing


@pytest.mark.parametrize("token", OPAQUE)
def test_an_sse_error_event_echoing_an_opaque_token_is_scrubbed(token: str) -> None:
    with Emulator(api_keys=[token]) as emu:
        emu.inject("chat", sse_error={"error": {"message": f"bad key {token} (seen)", "type": f"t{token}"}})
        with pytest.raises(StreamError) as info:
            list(make(emu.base_url, token).stream_chat(BODY))
    text = _texts(info.value)
    assert token not in text and token[:12] not in text and "[REDACTED]" in text


@pytest.mark.parametrize("token", OPAQUE)
def test_a_named_error_event_and_a_non_json_preview_are_scrubbed_before_truncation(token: str) -> None:
    # the token straddles the preview's 200-character cut: half of it must not survive either
    events = [CHUNK, b"data: " + b"x" * (190) + token.encode() + b" trailing\n\n"]
    named = [b"event: error\ndata: {\"message\": \"" + b"y" * 280 + token.encode() + b"\"}\n\n"]
    for evts in (events, named):
        server = HostileServer(lambda conn, req, e=evts: conn.sendall(sse_answer(e)))
        with server as srv, pytest.raises(StreamError) as info:
            list(make(srv.base_url, token).stream_chat(BODY))
        text = _texts(info.value)
        assert token not in text and token[:12] not in text and token[-12:] not in text, text


def test_a_non_json_error_body_is_scrubbed_before_its_preview_is_cut() -> None:
    token = OPAQUE[0]
    body = b"z" * 280 + b" " + token.encode()  # the old 300-character cut kept 19 of its characters

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(400, {"Content-Type": "text/plain", "Content-Length": str(len(body))}) + body)

    with HostileServer(handler) as srv, pytest.raises(APIError) as info:
        make(srv.base_url, token).chat(BODY)
    assert token[:12] not in _texts(info.value)


def test_an_x_api_key_echoed_in_an_error_body_is_scrubbed() -> None:
    key = OPAQUE[1]
    request = httpx.Request("POST", "https://api.example/v1/messages", headers={"x-api-key": key})
    response = httpx.Response(401, json={"error": {"message": f"invalid x-api-key {key}"}}, request=request)
    err = error_from_response(response)
    assert key not in str(err) and "[REDACTED]" in str(err)


# --------------------------------------------------------------------------- item 7: HTTP oddities


@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_is_an_error_that_names_the_fix(stream: bool) -> None:
    with Emulator(api_keys=["sk-kimi-http-test"]) as emu:
        emu.inject("chat", status=302, headers={"Location": "https://elsewhere.example/v1"}, times=None)
        with pytest.raises(APIError) as info:
            t = make(emu.base_url)
            list(t.stream_chat(BODY)) if stream else t.chat(BODY)
        assert emu.counts["chat"] == 1
    assert "redirect" in str(info.value) and "base_url" in str(info.value)
    assert info.value.status == 302


def _html(conn: socket.socket, request: Request) -> None:
    page = b"<html><body>Please log in to the Wi-Fi</body></html>"
    conn.sendall(head(200, {"Content-Type": "text/html", "Content-Length": str(len(page))}) + page)


def test_an_html_page_answering_a_stream_is_reported_once_as_such() -> None:
    with HostileServer(_html) as srv, pytest.raises(StreamError) as info:
        list(make(srv.base_url, max_retries=3).stream_chat(BODY))
    assert not isinstance(info.value, StreamInterruptedError)
    assert "web page" in str(info.value) and "[DONE]" not in str(info.value)
    assert len(srv.requests) == 1


@pytest.mark.parametrize("value", ["-5", "nan", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "NaN"])
def test_useless_retry_after_values_mean_normal_backoff(value: str, fake_clock: FakeClock) -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": value})) is None
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "-100"})) is None
    with Emulator(api_keys=["sk-kimi-http-test"]) as emu:
        emu.inject("chat", status=429, headers={"Retry-After": value}, times=1)
        make(emu.base_url).chat(BODY)
        assert emu.counts["chat"] == 2
    assert fake_clock.sleeps and fake_clock.sleeps[0] >= 0.3  # a real backoff, not zero


def test_upper_case_scheme_works_and_a_remote_http_url_gets_the_right_error() -> None:
    with Emulator(api_keys=["sk-kimi-http-test"]) as emu:
        upper = emu.base_url.replace("http://", "HTTP://")
        assert make(upper).chat(BODY).data["choices"]
    with pytest.raises(InsecureTransportError):
        make("HTTP://api.example.com/coding/v1").chat(BODY)
    with pytest.raises(InsecureTransportError):
        make("http://api.localhost:9/coding/v1").chat(BODY)


def _broken_body(conn: socket.socket, request: Request) -> None:
    body = json.dumps({"choices": [{"message": {"content": "hello"}}]}).encode()
    conn.sendall(head(200, {"Content-Type": "application/json", "Content-Length": str(len(body) + 50)}))
    conn.sendall(body)  # and then the connection closes, 50 bytes short


def test_a_post_whose_answer_broke_mid_read_is_not_sent_again() -> None:
    with HostileServer(_broken_body) as srv, pytest.raises(APIConnectionError) as info:
        make(srv.base_url, max_retries=3).chat(BODY)
    assert len(srv.requests) == 1
    assert "may already have processed" in str(info.value)


async def test_async_post_broken_mid_read_is_not_sent_again_but_a_get_is() -> None:
    with HostileServer(_broken_body) as srv:
        with pytest.raises(APIConnectionError):
            await make(srv.base_url, max_retries=3).achat(BODY)
        assert len(srv.requests) == 1
        with use_clock(FakeClock()), pytest.raises(APIConnectionError):
            await make(srv.base_url, max_retries=2).alist_models()
        assert len(srv.requests) == 1 + 3  # a GET changes nothing: retried


@pytest.mark.parametrize("token", OPAQUE[:1])
def test_the_messages_route_scrubs_the_sent_x_api_key_and_caps_events(token: str) -> None:
    from kimi_coder_auth.errors import ResponseTooLargeError

    error = (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"'
             + b"m" * 250 + token.encode() + b'"}}\n\n')
    with HostileServer(lambda conn, req: conn.sendall(sse_answer([error], done=False))) as srv:
        with pytest.raises(StreamError) as info:
            list(make(srv.base_url, token).stream_messages({"model": "k", "messages": [], "max_tokens": 5}))
        assert srv.requests[0].headers.get("x-api-key") == token
    text = _texts(info.value)
    assert token[:12] not in text and token[-12:] not in text
    endless = b"event: content_block_delta\ndata: " + b"x" * 300_000
    server = HostileServer(lambda conn, req: conn.sendall(sse_answer([endless], done=False)))
    with server as srv, pytest.raises(ResponseTooLargeError):
        list(make(srv.base_url, max_event_bytes=100_000).stream_messages({"model": "k", "messages": []}))


def test_a_cookie_set_for_one_login_never_rides_on_another_request() -> None:
    """The pooled clients serve every credential in the process, so they keep no cookies: a
    ``Set-Cookie`` in an answer to one login comes back only on that login's requests, sync or
    async."""
    import asyncio

    def handler(conn: socket.socket, request: Request) -> None:
        body = json.dumps({"id": "c1", "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()
        conn.sendall(head(200, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                                "Set-Cookie": f"session={request.headers['authorization'][-4:]}; Path=/",
                                "Connection": "close"}) + body)

    with HostileServer(handler) as srv:
        alice = Transport(credential=StaticCredential("sk-kimi-alice-0001"), base_url=srv.base_url)
        bob = Transport(credential=StaticCredential("sk-kimi-bob-0002"), base_url=srv.base_url)
        alice.chat(BODY)
        bob.chat(BODY)
        alice.chat(BODY)

        async def both() -> None:
            await alice.achat(BODY)
            await bob.achat(BODY)

        asyncio.run(both())
    assert len(srv.requests) == 5
    assert [(r.headers["authorization"][-4:], r.headers.get("cookie")) for r in srv.requests] == [
        ("0001", None), ("0002", None), ("0001", "session=0001"), ("0001", "session=0001"),
        ("0002", "session=0002")]
