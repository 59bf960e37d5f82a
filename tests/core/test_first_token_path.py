"""The shortcuts on the path to the first token keep the behaviour they replace."""

from __future__ import annotations

import asyncio

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


# --------------------------------------------------------------------------- tokens arrive at once

_OPENAI_FIRST = [b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
                 b'"delta":{"role":"assistant","content":"first"}}]}\n\n']
_OPENAI_REST = [b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
                b'"delta":{},"finish_reason":"stop"}]}\n\n', b"data: [DONE]\n\n"]
_MESSAGES_FIRST = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","model":"k3",'
    b'"usage":{"input_tokens":3,"output_tokens":0}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"thinking_delta","thinking":"first"}}\n\n',
]
_MESSAGES_REST = [
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":1}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_the_first_token_is_given_out_before_the_server_writes_again(protocol: str, mode: str) -> None:
    """Over a real socket, each event is one chunked write; the server sends nothing more until
    the caller has the first token. A decoder that waits for the next read would stall here."""
    import threading

    from _hostile import HostileServer, head

    from kimi_coder_auth.routing import ChatCall

    first, rest = (_OPENAI_FIRST, _OPENAI_REST) if protocol == "openai" else (_MESSAGES_FIRST, _MESSAGES_REST)
    got_first = threading.Event()
    waited: list[bool] = []

    def frame(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    def handler(conn, request) -> None:  # type: ignore[no-untyped-def]
        conn.sendall(head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked",
                                "Connection": "close"}))
        for data in first:
            conn.sendall(frame(data))
        waited.append(got_first.wait(5.0))  # False: the caller never saw the token we sent
        for data in rest:
            conn.sendall(frame(data))
        conn.sendall(b"0\r\n\r\n")

    with HostileServer(handler) as srv:
        t = Transport(credential=StaticCredential(TOKEN), base_url=srv.base_url, timeout=10.0)
        call = ChatCall.prepare(t, "k3", [{"role": "user", "content": "hi"}], protocol=protocol, stream=True)
        texts = []

        def seen(delta) -> None:  # type: ignore[no-untyped-def]
            text = delta.content or delta.reasoning
            if text:
                texts.append(text)
                got_first.set()

        if mode == "sync":
            for delta in call.stream():
                seen(delta)
        else:
            async def consume() -> None:
                async for delta in call.astream():
                    seen(delta)

            asyncio.run(consume())
    assert waited == [True] and texts == ["first"]
