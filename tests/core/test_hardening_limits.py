"""Issue 12 items 3 and 4: size caps (gzip bombs, endless SSE lines) and call/stream deadlines,
against hostile raw servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _hostile import HostileServer, Request, gzip_bomb, head, trickle

from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import APITimeoutError, RateLimitError, ResponseTooLargeError
from kimi_coder_auth.limits import DEFAULT_MAX_EVENT_BYTES, Deadlines, Limits
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.sse import SSEDecoder
from kimi_coder_auth.transport import Transport

KEY = "sk-kimi-hardening-test"
BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}
MiB = 1024 * 1024


def make(url: str, **kw: Any) -> Transport:
    return Transport(credential=StaticCredential(KEY), base_url=url, **kw)


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


# --------------------------------------------------------------------------- size caps


def _bomb_handler(stream: bool, size: int) -> Any:
    bomb = gzip_bomb(size)

    def handler(conn: socket.socket, request: Request) -> None:
        ctype = "text/event-stream" if stream else "application/json"
        conn.sendall(head(200, {"Content-Type": ctype, "Content-Encoding": "gzip",
                                "Content-Length": str(len(bomb)), "Connection": "close"}) + bomb)

    return handler


def test_a_gzip_bomb_answering_a_chat_is_cut_at_the_body_cap() -> None:
    with HostileServer(_bomb_handler(False, 64 * MiB)) as srv, pytest.raises(ResponseTooLargeError) as info:
        make(srv.base_url, max_response_bytes=1 * MiB).chat(BODY)
    assert "1,048,576 bytes" in str(info.value) and "max_response_bytes" in str(info.value)
    assert len(srv.requests) == 1  # not retried


async def test_async_chat_and_get_requests_have_the_body_cap_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_CODER_MAX_RESPONSE_BYTES", str(MiB))  # the documented variable
    with HostileServer(_bomb_handler(False, 64 * MiB)) as srv:
        with pytest.raises(ResponseTooLargeError):
            await make(srv.base_url).achat(BODY)
        with pytest.raises(ResponseTooLargeError):
            make(srv.base_url).list_models()


def test_a_gzip_bomb_stream_is_cut_at_the_stream_cap_and_not_retried() -> None:
    server = HostileServer(_bomb_handler(True, 64 * MiB))
    with server as srv, pytest.raises(ResponseTooLargeError) as info:
        list(make(srv.base_url, max_stream_bytes=2 * MiB, max_retries=3).stream_chat(BODY))
    assert "max_stream_bytes" in str(info.value)
    assert len(srv.requests) == 1


def _endless_line(conn: socket.socket, request: Request) -> None:
    conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
    conn.sendall(b"data: " + b"x" * (3 * MiB))  # no end of line, ever
    conn.sendall(b"\n\ndata: [DONE]\n\n")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_sse_line_longer_than_the_event_cap_is_a_typed_error_not_retried(mode: str) -> None:
    with HostileServer(_endless_line) as srv:
        t = make(srv.base_url, max_event_bytes=1 * MiB, max_retries=3)
        with pytest.raises(ResponseTooLargeError) as info:
            if mode == "sync":
                list(t.stream_chat(BODY))
            else:
                async def run() -> None:
                    async for _ in t.astream_chat(BODY):
                        pass
                asyncio.run(run())
    assert "max_event_bytes" in str(info.value)
    assert len(srv.requests) == 1


def test_the_event_cap_holds_for_an_event_arriving_in_one_piece() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"data: " + b"y" * 2000 + b"\n\n")
    ok = SSEDecoder(max_event_bytes=1000)
    assert ok.feed(b"data: " + b"y" * 900 + b"\n\n")[0].data == b"y" * 900


def test_a_long_event_in_many_pieces_is_kept_as_pieces_and_joined_once() -> None:
    """The buffer is linear: pieces of an unfinished event are stored, not re-copied per read
    (the old buffer re-joined everything on each read: 50 MB took 26 s)."""
    decoder = SSEDecoder(max_event_bytes=64 * MiB)
    piece = b"z" * 16384
    decoder.feed(b"data: ")
    n = 2000  # ~32 MB
    for _ in range(n):
        assert decoder.feed(piece) == []
    assert len(decoder._parts) == n and decoder._size == 6 + n * len(piece)
    (event,) = decoder.feed(b"\r\n\r\n")
    assert len(event.data) == n * len(piece)


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7])
def test_the_linear_buffer_still_finds_terminators_across_any_split(split: int) -> None:
    raw = b"data: a\r\n\r\ndata: bb\n\n: c\n\ndata: d\rdata: e\r\r" + b"data: [DONE]\n\n"
    decoder = SSEDecoder()
    got = []
    for i in range(0, len(raw), split):
        got += [e.data for e in decoder.feed(raw[i : i + split])]
    assert got == [b"a", b"bb", b"d\ne", b"[DONE]"]


def test_caps_defaults_env_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits.resolve()
    assert (limits.response, limits.stream, limits.event) == (64 * MiB, 512 * MiB, DEFAULT_MAX_EVENT_BYTES)
    monkeypatch.setenv("KIMI_CODER_MAX_STREAM_BYTES", "12345")
    assert Limits.resolve().stream == 12345
    assert Limits.resolve(max_stream_bytes=7).stream == 7
    monkeypatch.setenv("KIMI_CODER_MAX_EVENT_BYTES", "lots")
    with pytest.raises(ValueError, match="KIMI_CODER_MAX_EVENT_BYTES"):
        Limits.resolve()
    with pytest.raises(ValueError, match="max_response_bytes"):
        make("http://127.0.0.1:9/v1", max_response_bytes=0)


# --------------------------------------------------------------------------- deadlines

TRICKLE_SECONDS = 30.0  # how long the trickling servers would keep a call alive


def _trickle_json(conn: socket.socket, request: Request) -> None:
    body = json.dumps({"choices": [{"message": {"content": "a" * 300}}]}).encode()
    conn.sendall(head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}))
    trickle(conn, body, every=TRICKLE_SECONDS / len(body))


def _trickle_sse(conn: socket.socket, request: Request) -> None:
    conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
    trickle(conn, b"data: " + json.dumps(CHUNK).encode() + b"\n\n" * 100, every=0.1)


def _keepalives(conn: socket.socket, request: Request) -> None:
    conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
    conn.sendall(b"data: " + json.dumps(CHUNK).encode() + b"\n\n")
    for _ in range(int(TRICKLE_SECONDS / 0.1)):
        conn.sendall(b": keep-alive\n\n")
        time.sleep(0.1)


def _events_forever(conn: socket.socket, request: Request) -> None:
    conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
    for _ in range(int(TRICKLE_SECONDS / 0.05)):
        conn.sendall(b"data: " + json.dumps(CHUNK).encode() + b"\n\n")
        time.sleep(0.05)


def _run(handler: Any, call: Any) -> tuple[BaseException, HostileServer, float]:
    with HostileServer(handler) as srv:
        start = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            call(srv.base_url)
        elapsed = time.monotonic() - start
    return info.value, srv, elapsed


def test_timeout_bounds_a_whole_non_stream_call_against_a_trickle() -> None:
    exc, srv, elapsed = _run(_trickle_json, lambda url: make(url, timeout=1.0).chat(BODY))
    assert "deadline" in str(exc) or "timed out" in str(exc)
    assert elapsed < TRICKLE_SECONDS / 2  # it did not wait for the trickle to end
    assert len(srv.requests) == 1


async def test_async_deadline_bounds_a_non_stream_call() -> None:
    with HostileServer(_trickle_json) as srv:
        start = time.monotonic()
        with pytest.raises(APITimeoutError):
            await make(srv.base_url, timeout=60.0, deadline=1.0).achat(BODY)
        assert time.monotonic() - start < TRICKLE_SECONDS / 2


def test_first_event_deadline_against_a_byte_trickle() -> None:
    exc, _, elapsed = _run(_trickle_sse, lambda url: list(make(url, timeout=1.0).stream_chat(BODY)))
    assert "first event" in str(exc)
    assert elapsed < TRICKLE_SECONDS / 2


def test_between_events_deadline_against_keepalives_only() -> None:
    exc, _, elapsed = _run(
        _keepalives, lambda url: list(make(url, timeout=60.0, event_timeout=1.0).stream_chat(BODY))
    )
    assert "next event" in str(exc)
    assert elapsed < TRICKLE_SECONDS / 2


def test_a_stream_total_deadline_when_asked_for() -> None:
    async def run(url: str) -> None:
        async for _ in make(url, deadline=1.0).astream_chat(BODY):
            pass

    exc, _, elapsed = _run(_events_forever, lambda url: asyncio.run(run(url)))
    assert "The stream did not finish" in str(exc)
    assert elapsed < TRICKLE_SECONDS / 2


def test_deadline_defaults_follow_the_read_timeout() -> None:
    assert Deadlines.resolve(300.0) == Deadlines(300.0, 300.0, 300.0, None)
    d = make("http://127.0.0.1:9/v1", timeout=5).deadlines
    assert (d.total, d.first_event, d.between_events, d.stream_total) == (5.0, 5.0, 5.0, None)
    d = make("http://127.0.0.1:9/v1", deadline=20, first_event_timeout=3, event_timeout=4).deadlines
    assert (d.total, d.first_event, d.between_events, d.stream_total) == (20.0, 3.0, 4.0, 20.0)
    with pytest.raises(ValueError, match="event_timeout"):
        make("http://127.0.0.1:9/v1", event_timeout=float("nan"))


def test_retries_stop_when_the_backoff_would_end_past_the_deadline(fake_clock: FakeClock) -> None:
    with Emulator(api_keys=[KEY]) as emu:
        emu.inject("chat", status=429, headers={"Retry-After": "3"}, times=None)
        with pytest.raises(RateLimitError):
            make(emu.base_url, deadline=5.0, max_retries=5).chat(BODY)
        assert emu.counts["chat"] == 2  # t=0, t=3; a third try at t=6 would be past t=5


def test_a_healthy_slow_stream_is_not_cut_by_the_defaults() -> None:
    done = threading.Event()

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(200, {"Content-Type": "text/event-stream", "Connection": "close"}))
        for _ in range(6):
            conn.sendall(b"data: " + json.dumps(CHUNK).encode() + b"\n\n")
            time.sleep(0.2)
        conn.sendall(b"data: [DONE]\n\n")
        done.set()

    with HostileServer(handler) as srv:
        chunks = list(make(srv.base_url, timeout=1.0).stream_chat(BODY))  # 1.2 s in all: fine
    assert len(chunks) == 6 and done.is_set()


def test_both_adapters_take_the_deadlines_as_parameters() -> None:
    from langchain_core.exceptions import ModelTimeoutError
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_kimi_coder import ChatKimiCoder
    from llama_index_kimi_coder import KimiCoderLLM

    with HostileServer(_trickle_json) as srv:
        model = ChatKimiCoder(api_key=KEY, base_url=srv.base_url, timeout=60, deadline=1.0)
        start = time.monotonic()
        with pytest.raises(ModelTimeoutError):
            model.invoke("hi")
        assert time.monotonic() - start < TRICKLE_SECONDS / 2
    with HostileServer(_keepalives) as srv:
        llm = KimiCoderLLM(api_key=KEY, base_url=srv.base_url, timeout=60, event_timeout=1.0)
        with pytest.raises(APITimeoutError, match="next event"):
            list(llm.stream_chat([ChatMessage(role="user", content="hi")]))
        model = ChatKimiCoder(api_key=KEY, base_url=srv.base_url, first_event_timeout=30, event_timeout=1.0)
        with pytest.raises(APITimeoutError, match="next event"):
            list(model.stream("hi"))
