"""Transport against the emulator on 127.0.0.1: chat, streams, retries, error mapping, pools."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth import http_pool, request_building
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import (
    AccessTerminatedError,
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ContextTooLongError,
    KimiCoderError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterruptedError,
    UserAgentRejectedError,
)
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import (
    DEFAULT_BASE_URL,
    ChatResult,
    Transport,
    error_from_response,
    parse_retry_after,
)

KEY = "sk-kimi-transport-test"
BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    with use_clock(FakeClock()) as c:
        yield c  # type: ignore[misc]


def make(emu: Emulator, **kw: Any) -> Transport:
    return Transport(credential=StaticCredential(KEY), base_url=emu.base_url, **kw)


def _done(chunks: list[dict[str, Any]]) -> bool:
    return bool(chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"


# --------------------------------------------------------------------------- happy paths


def test_chat_returns_data_trace_id_and_headers(emu: Emulator) -> None:
    result = make(emu).chat(BODY)
    assert isinstance(result, ChatResult)
    assert result.data["choices"][0]["message"]["content"] == "You said: hi"
    assert result.trace_id and result.headers["x-trace-id"] == result.trace_id
    assert emu.requests[-1].body.get("stream") in (None, False)


def test_chat_with_a_streaming_body_still_answers_json(emu: Emulator) -> None:
    result = make(emu).chat({**BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert result.data["object"] == "chat.completion"
    assert emu.requests[-1].body["stream"] is False and "stream_options" not in emu.requests[-1].body


def test_stream_chat_is_lazy_and_yields_chunks_to_done(emu: Emulator) -> None:
    stream = make(emu).stream_chat({**BODY, "stream_options": {"include_usage": True}})
    assert emu.counts["chat"] == 0  # nothing sent yet
    assert stream.trace_id is None
    chunks = list(stream)
    assert emu.counts["chat"] == 1
    assert stream.trace_id and len(stream.trace_id) >= 8
    assert _done(chunks) or any(c["choices"] and c["choices"][0].get("finish_reason") for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "You said: hi"
    assert emu.requests[-1].body["stream"] is True
    assert emu.requests[-1].headers["accept"] == "text/event-stream"


def test_stream_open_explicitly_and_context_manager(emu: Emulator) -> None:
    with make(emu).stream_chat(BODY) as stream:
        stream.open()
        assert emu.counts["chat"] == 1 and stream.trace_id
        first = next(stream)
        assert first["object"] == "chat.completion.chunk"
    assert list(stream) == []  # closed: iteration stops


async def test_async_chat_and_stream(emu: Emulator) -> None:
    t = make(emu)
    result = await t.achat(BODY)
    assert result.data["choices"][0]["message"]["content"] == "You said: hi"
    stream = t.astream_chat(BODY)
    chunks = [c async for c in stream]
    assert stream.trace_id
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "You said: hi"
    async with t.astream_chat(BODY) as s2:
        await s2.aopen()
        assert s2.trace_id
        assert (await s2.__anext__())["object"] == "chat.completion.chunk"


def test_models_usages_and_model_info(emu: Emulator) -> None:
    t = make(emu)
    ids = [m["id"] for m in t.list_models()]
    assert "kimi-for-coding" in ids and "k3" in ids
    assert t.model_info("k3")["context_length"] == 1048576  # type: ignore[index]
    assert t.model_info("no-such-model") is None
    usages = t.get_usages()
    assert usages["limits"][0]["window"]["timeUnit"] == "TIME_UNIT_MINUTE"


def test_models_are_cached_per_credential_for_ten_minutes(emu: Emulator, fake_clock: FakeClock) -> None:
    t = make(emu)
    first = t.list_models()
    first.clear()  # callers cannot corrupt the cache
    assert t.list_models() and make(emu).list_models()  # same credential object? no: new one
    assert emu.counts["models"] == 2  # two distinct credentials
    assert t.list_models() and emu.counts["models"] == 2
    fake_clock.advance(601)
    t.list_models()
    assert emu.counts["models"] == 3


async def test_async_models_share_the_cache(emu: Emulator) -> None:
    t = make(emu)
    await t.alist_models()
    t.list_models()
    assert (await t.amodel_info("k3")) is not None
    assert emu.counts["models"] == 1
    assert (await t.aget_usages())["usage"]["limit"] == "1000"


# --------------------------------------------------------------------------- settings


def test_base_url_is_read_at_call_time(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    t = Transport(credential=StaticCredential(KEY))
    assert t.base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("KIMI_CODE_BASE_URL", emu.base_url + "/")
    assert t.base_url == emu.base_url
    assert t.chat(BODY).data["choices"]
    assert Transport(credential=StaticCredential(KEY), base_url="https://x.test/v1/").base_url == "https://x.test/v1"


def test_user_agent_default_env_and_argument(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    make(emu).chat(BODY)
    ua = emu.requests[-1].headers["user-agent"]
    assert ua.startswith("kimi-coder/") and "python" in ua and "KimiCLI" not in ua
    monkeypatch.setenv("KIMI_CODER_USER_AGENT", "my-agent/1.0")
    make(emu).chat(BODY)
    assert emu.requests[-1].headers["user-agent"] == "my-agent/1.0"
    make(emu, user_agent="arg-agent/2.0").chat(BODY)
    assert emu.requests[-1].headers["user-agent"] == "arg-agent/2.0"


def test_default_headers_are_sent_but_cannot_replace_auth(emu: Emulator) -> None:
    make(emu, default_headers={"X-Extra": "1", "Authorization": "Bearer other"}).chat(BODY)
    headers = emu.requests[-1].headers
    assert headers["x-extra"] == "1" and headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("settings", [{}, {"default_headers": {"X-Extra": "1", "Accept": "x/y"}},
                                      {"user_agent": "arg-agent/2.0", "timeout": 7.5},
                                      {"default_headers": {"Host": "proxy.example"}}])
async def test_requests_are_what_httpx_build_request_makes(stream: bool, settings: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-call header merge is cached; the request must stay identical to httpx's own, and
    the cached path must really be the one taken (a caller-set Host header is the exception)."""
    t = Transport(credential=StaticCredential(KEY), base_url="http://127.0.0.1:9/v1", **settings)
    url = t._url("/chat/completions")
    sync_client = http_pool._get_sync_client()
    async_client = await http_pool._get_async_client()
    for client in (sync_client, async_client):
        reference = client.build_request
        for method, content in (("POST", b'{"a":1}'), ("POST", b""), ("POST", None), ("GET", None)):
            headers = t._request_headers(stream=stream, has_body=content is not None)
            fast = "default_headers" not in settings or "Host" not in settings["default_headers"]
            fast = fast and (bool(content) or (content is None and method == "GET"))
            if fast:
                def refuse(*args: Any, **kwargs: Any) -> httpx.Request:
                    raise AssertionError("the cached path should have built this request")
                monkeypatch.setattr(client, "build_request", refuse)
            for _ in range(2):  # the second call comes from the cache
                ours = t._build_request(client, method, url, content, headers)
                ref = reference(method, url, content=content, headers=headers, timeout=t._timeout)
                assert (ours.method, ours.url, ours.headers.raw, ours.extensions) == (
                    ref.method, ref.url, ref.headers.raw, ref.extensions)
                assert ours.content == ref.content  # read, so the auth flow can replay it
                assert b"".join(ours.stream) == b"".join(ref.stream)  # type: ignore[arg-type]
            monkeypatch.undo()
            ours.headers["Authorization"] = "Bearer x"  # what the auth flow does
            assert "authorization" not in t._build_request(client, method, url, content, headers).headers


def test_the_header_cache_does_not_keep_clients_alive() -> None:
    """Per-event-loop clients come and go; the cache must not hold closed ones."""
    import gc
    import weakref

    t = Transport(credential=StaticCredential(KEY), base_url="http://127.0.0.1:9/v1")
    client = http_pool._new_sync_client(http_pool._ssl_context())
    headers = t._request_headers(stream=True, has_body=True)
    t._build_request(client, "POST", t._url("/chat/completions"), b"{}", headers)
    assert len(t._base_headers) == 1
    gone = weakref.ref(client)
    client.close()
    del client
    gc.collect()
    assert gone() is None and len(t._base_headers) == 0


def test_cookies_set_by_the_server_are_sent_back(emu: Emulator, fake_clock: FakeClock) -> None:
    """A sticky load-balancer cookie on a 429 must come back on the retry and on the transport's
    later requests, as httpx's own jar would do (the pooled client keeps none: it is shared)."""
    emu.inject("chat", status=429, headers={"Retry-After": "0", "Set-Cookie": "lb=node-7; Path=/"})
    t = make(emu)
    assert t.chat(BODY).data["choices"]
    first, second = emu.requests_to("/chat/completions")[-2:]
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "lb=node-7"
    t.chat(BODY)
    assert emu.requests_to("/chat/completions")[-1].headers["cookie"] == "lb=node-7"
    assert not http_pool._get_sync_client().cookies


def test_constructor_is_cheap_and_does_no_io() -> None:
    cred = StaticCredential("sk-x")
    Transport(credential=cred)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            Transport(credential=cred, base_url="https://api.kimi.com/coding/v1", timeout=30)
        best = min(best, (time.perf_counter() - start) / 200)
    assert best < 50e-6


def test_bad_arguments_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        Transport(credential=StaticCredential("k"), max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        Transport(credential=StaticCredential("k"), timeout=0)
    with pytest.raises(KimiCoderError, match="not an http"):
        Transport(credential=StaticCredential("k"), base_url="api.kimi.com/coding/v1").chat(BODY)


# --------------------------------------------------------------------------- connection pools


def _count_connections(emu: Emulator) -> list[int]:
    opened = [0]
    original = emu._track

    def track(conn: Any, *, add: bool) -> None:
        if add:
            opened[0] += 1
        original(conn, add=add)

    emu._track = track  # type: ignore[method-assign]
    return opened


def test_sequential_requests_reuse_one_connection(emu: Emulator) -> None:
    http_pool.close_clients()
    opened = _count_connections(emu)
    t = make(emu)
    t.chat(BODY)
    assert _done(list(t.stream_chat(BODY)))
    t.get_usages()
    make(emu).chat(BODY)  # another Transport shares the pool
    assert list(t.stream_chat(BODY))
    assert emu.counts["chat"] == 4
    assert opened[0] == 1


def test_asyncio_run_twice_in_a_row(emu: Emulator) -> None:
    t = make(emu)

    async def main() -> str:
        chunks = [c async for c in t.astream_chat(BODY)]
        result = await t.achat(BODY)
        assert _done(chunks)
        return result.data["choices"][0]["message"]["content"]

    assert asyncio.run(main()) == "You said: hi"
    assert asyncio.run(main()) == "You said: hi"
    # the finished loops' clients were closed and dropped
    assert not [lp for lp in http_pool._async_clients if lp.is_closed()]


async def test_async_connections_are_reused(emu: Emulator) -> None:
    opened = _count_connections(emu)
    t = make(emu)
    for _ in range(3):
        await t.achat(BODY)
        assert [c async for c in t.astream_chat(BODY)]
    assert opened[0] == 1


async def test_fifty_concurrent_async_streams() -> None:
    with Emulator(api_keys=[KEY], chunk_delay=0.002) as emu:
        t = make(emu)

        async def one(i: int) -> str:
            body = {**BODY, "messages": [{"role": "user", "content": f"n{i}"}]}
            chunks = [c async for c in t.astream_chat(body)]
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])

        texts = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 30)
        assert texts == [f"You said: n{i}" for i in range(50)]
        assert emu.counts["chat"] == 50


def test_threads_share_the_sync_pool(emu: Emulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    t = make(emu)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: t.chat(BODY).data["choices"][0]["message"]["content"], range(16)))
    assert results == ["You said: hi"] * 16


# --------------------------------------------------------------------------- retries


def test_429_with_retry_after_is_retried_after_that_long(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=429, headers={"Retry-After": "1"}, times=1)
    assert make(emu).chat(BODY).data["choices"]
    assert emu.counts["chat"] == 2
    assert fake_clock.sleeps == [1.0]


def test_5xx_backoff_is_exponential_with_jitter(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=500, times=2)
    assert make(emu).chat(BODY).data["choices"]
    assert emu.counts["chat"] == 3
    first, second = fake_clock.sleeps
    assert 0.375 <= first <= 0.625 and 0.75 <= second <= 1.25


@pytest.mark.parametrize("status", [502, 503, 504])
def test_retries_are_bounded_by_max_retries(emu: Emulator, fake_clock: FakeClock, status: int) -> None:
    emu.inject("chat", status=status, times=None)
    with pytest.raises(ServerError) as info:
        make(emu, max_retries=2).chat(BODY)
    assert emu.counts["chat"] == 3 and len(fake_clock.sleeps) == 2
    assert info.value.status == status and info.value.trace_id


def test_max_retries_zero_means_one_attempt(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=429, times=None)
    with pytest.raises(RateLimitError):
        make(emu, max_retries=0).chat(BODY)
    assert emu.counts["chat"] == 1 and fake_clock.sleeps == []


def test_quota_exhaustion_is_never_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    body = {"error": {"message": "You exceeded your current token quota", "type": "exceeded_current_quota_error"}}
    emu.inject("chat", status=429, body=body, headers={"Retry-After": "30"}, times=None)
    with pytest.raises(QuotaExceededError) as info:
        make(emu, max_retries=5).chat(BODY)
    assert emu.counts["chat"] == 1 and fake_clock.sleeps == []
    assert info.value.retry_after == 30.0 and "kimi-coder usage" in str(info.value)


def test_retry_after_beyond_the_cap_is_not_waited_for(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=429, headers={"Retry-After": "3600"}, times=None)
    with pytest.raises(RateLimitError) as info:
        make(emu).chat(BODY)
    assert info.value.retry_after == 3600.0
    assert emu.counts["chat"] == 1 and fake_clock.sleeps == []


def test_400_is_not_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=400, times=None)
    with pytest.raises(BadRequestError):
        make(emu).chat(BODY)
    assert emu.counts["chat"] == 1 and fake_clock.sleeps == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_then_raised(fake_clock: FakeClock) -> None:
    port = _closed_port()
    t = Transport(credential=StaticCredential(KEY), base_url=f"http://127.0.0.1:{port}/coding/v1")
    with pytest.raises(APIConnectionError) as info:
        t.chat(BODY)
    assert len(fake_clock.sleeps) == 2
    assert f"127.0.0.1:{port}" in str(info.value) and "KIMI_CODE_BASE_URL" in str(info.value)


async def test_connection_refused_async(fake_clock: FakeClock) -> None:
    t = Transport(credential=StaticCredential(KEY), base_url=f"http://127.0.0.1:{_closed_port()}/coding/v1")
    with pytest.raises(APIConnectionError):
        await t.alist_models()
    assert len(fake_clock.sleeps) == 2


def test_read_timeout_on_chat_is_not_retried(emu: Emulator) -> None:
    emu.inject("chat", delay=1.0, times=1)
    with pytest.raises(APITimeoutError, match="timed out"):
        make(emu, timeout=0.25).chat(BODY)
    assert emu.counts["chat"] == 1


async def test_async_429_is_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=429, headers={"Retry-After": "2"}, times=1)
    assert (await make(emu).achat(BODY)).data["choices"]
    assert fake_clock.sleeps == [2.0]


# --------------------------------------------------------------------------- streams


def test_stream_429_before_first_chunk_is_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", status=503, times=1)
    assert _done(list(make(emu).stream_chat(BODY)))
    assert emu.counts["chat"] == 2 and len(fake_clock.sleeps) == 1


def test_stream_http_errors_surface_on_first_iteration(emu: Emulator) -> None:
    emu.inject("chat", status=404, body={"error": {"message": "Model not found", "type": "resource_not_found_error"}})
    stream = make(emu).stream_chat(BODY)
    with pytest.raises(NotFoundError, match="Model not found"):
        next(stream)


def test_dropped_stream_raises_interrupted_after_the_chunks_received(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", drop_after_chunks=3)
    got = []
    stream = make(emu).stream_chat(BODY)
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 3
    assert emu.counts["chat"] == 1 and fake_clock.sleeps == []  # never retried mid-answer
    assert "incomplete" in str(info.value)


async def test_dropped_async_stream_raises_interrupted(emu: Emulator) -> None:
    emu.inject("chat", drop_after_chunks=2)
    got = []
    with pytest.raises(StreamInterruptedError):
        async for chunk in make(emu).astream_chat(BODY):
            got.append(chunk)
    assert len(got) == 2


def test_stream_dropped_before_any_chunk_is_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", drop_after_chunks=0)
    assert _done(list(make(emu).stream_chat(BODY)))
    assert emu.counts["chat"] == 2 and len(fake_clock.sleeps) == 1


async def test_async_stream_dropped_before_any_chunk_is_retried(emu: Emulator, fake_clock: FakeClock) -> None:
    emu.inject("chat", drop_after_chunks=0)
    assert _done([c async for c in make(emu).astream_chat(BODY)])
    assert emu.counts["chat"] == 2


def test_error_event_mid_stream_raises_stream_error(emu: Emulator) -> None:
    err = {"error": {"message": "The engine is currently overloaded", "type": "engine_overloaded_error"}}
    emu.inject("chat", sse_error=err, sse_error_after=2)
    got = []
    stream = make(emu).stream_chat(BODY)
    with pytest.raises(StreamError) as info:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 2
    assert info.value.error_type == "engine_overloaded_error"
    assert info.value.trace_id == stream.trace_id


async def test_error_event_mid_async_stream(emu: Emulator) -> None:
    emu.inject("chat", sse_error={"error": {"message": "boom", "type": "server_error"}}, sse_error_after=1)
    with pytest.raises(StreamError, match="boom"):
        async for _ in make(emu).astream_chat(BODY):
            pass


def test_closing_a_stream_early_releases_it(emu: Emulator) -> None:
    t = make(emu)
    stream = t.stream_chat(BODY)
    next(stream)
    stream.close()
    assert list(stream) == []
    assert t.chat(BODY).data["choices"]


# --------------------------------------------------------------------------- error mapping


def test_ua_gate_403_explains_the_gate_the_setting_and_the_risk() -> None:
    with Emulator(api_keys=[KEY], ua_gate=r"^SomeAgent/") as emu, pytest.raises(UserAgentRejectedError) as info:
        make(emu).chat(BODY)
    exc = info.value
    text = str(exc)
    assert exc.status == 403 and exc.trace_id
    assert "kimi-coder/" in exc.message  # the User-Agent that was sent
    assert "user_agent=" in text and "KIMI_CODER_USER_AGENT" in text
    assert "suspend" in text and "code@moonshot.ai" in text


def test_ua_gate_applies_to_streams_with_the_configured_agent() -> None:
    with Emulator(api_keys=[KEY], ua_gate=r"^SomeAgent/") as emu:
        with pytest.raises(UserAgentRejectedError, match="my-ua/1"):
            list(make(emu, user_agent="my-ua/1").stream_chat(BODY))
        assert _done(list(make(emu, user_agent="SomeAgent/1").stream_chat(BODY)))


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (400, {"error": {"message": "Invalid request: your request exceeded model token limit: context length 262144", "type": "invalid_request_error"}}, ContextTooLongError),
        (400, {"error": {"message": "text content is empty", "type": "invalid_request_error"}}, BadRequestError),
        (402, None, QuotaExceededError),
        (403, {"error": {"type": "permission_error", "message": "Access terminated. Review our Community Guidelines"}, "type": "error"}, AccessTerminatedError),
        (403, {"error": {"message": "Forbidden model", "type": "permission_denied_error"}}, PermissionDeniedError),
        (404, {"error": {"message": "Not found", "type": "resource_not_found_error"}}, NotFoundError),
        (429, {"error": {"message": "insufficient balance, please recharge", "type": "rate_limit_reached_error"}}, QuotaExceededError),
    ],
)
def test_error_types_over_the_wire(emu: Emulator, status: int, body: Any, expected: type) -> None:
    emu.inject("chat", status=status, body=body)
    with pytest.raises(expected) as info:
        make(emu).chat(BODY)
    exc = info.value
    assert type(exc) is expected
    assert exc.status == status and exc.trace_id and exc.request_id
    if body is not None:
        assert body["error"]["message"] in exc.message


def _resp(status: int, body: Any = None, headers: dict[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
    if content is None:
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, content=content, headers=headers)


def test_mapping_reads_type_message_and_ids() -> None:
    exc = error_from_response(
        _resp(401, {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}},
              {"x-trace-id": "tr-1", "x-request-id": "rq-1"}),
        source="kimi-cli",
    )
    assert (exc.status, exc.error_type, exc.trace_id, exc.request_id) == (401, "invalid_authentication_error", "tr-1", "rq-1")
    assert "kimi-cli" in exc.message and "Invalid Authentication" in exc.message
    assert "x-trace-id: tr-1" in str(exc)


def test_mapping_of_ua_gate_and_terminated_access() -> None:
    gate = {"error": {"message": "Kimi For Coding is currently only available for Coding Agents such as Kimi CLI", "type": "access_terminated_error"}}
    exc = error_from_response(_resp(403, gate), user_agent="kimi-coder/0.1")
    assert isinstance(exc, UserAgentRejectedError) and "kimi-coder/0.1" in exc.message
    exc = error_from_response(_resp(403, {"error": {"message": "bye", "type": "access_terminated_error"}}))
    assert isinstance(exc, AccessTerminatedError) and "retrying will not help" in str(exc)


def test_mapping_of_rate_limits_and_quota() -> None:
    exc = error_from_response(_resp(429, {"error": {"message": "The engine is currently overloaded", "type": "engine_overloaded_error"}}, {"retry-after": "7"}))
    assert isinstance(exc, RateLimitError) and exc.retry_after == 7.0
    exc = error_from_response(_resp(429, {"error": {"message": "x", "type": "exceeded_current_quota_error"}}))
    assert isinstance(exc, QuotaExceededError)


def test_mapping_of_non_json_and_5xx() -> None:
    exc = error_from_response(_resp(502, content=b"<html><body>Bad gateway</body></html>"))
    assert isinstance(exc, ServerError) and exc.message == "HTTP 502 Bad Gateway"
    exc = error_from_response(_resp(500, content=b"upstream exploded"))
    assert isinstance(exc, ServerError) and exc.message == "upstream exploded"
    exc = error_from_response(_resp(418, {"error": "teapot"}))
    assert type(exc).__name__ == "APIError" and exc.status == 418 and "teapot" in exc.message


def test_parse_retry_after_forms(fake_clock: FakeClock) -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert parse_retry_after(httpx.Headers({})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    from email.utils import formatdate

    date = formatdate(fake_clock.now() + 20, usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": date})) == pytest.approx(20, abs=1)


def test_request_encoding_without_orjson(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_building, "_orjson", None)
    body = {**BODY, "messages": [{"role": "user", "content": "héllo 🙂"}]}
    assert make(emu).chat(body).data["choices"][0]["message"]["content"] == "You said: héllo 🙂"
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        make(emu).chat({**BODY, "x": object()})


def test_json_answer_to_a_stream_request_is_reported(emu: Emulator) -> None:
    emu.inject("chat", status=200, body={"error": {"message": "upstream said no", "type": "server_error"}})
    stream = make(emu).stream_chat(BODY)
    with pytest.raises(StreamError, match="upstream said no") as info:
        next(stream)
    assert info.value.trace_id == stream.trace_id
    assert list(stream) == []  # a failed stream is finished, not re-sent
    assert emu.counts["chat"] == 1


async def test_json_answer_to_an_async_stream_request_is_reported(emu: Emulator) -> None:
    emu.inject("chat", status=200, body={"id": "x", "object": "chat.completion"})
    stream = make(emu).astream_chat(BODY)
    with pytest.raises(StreamError, match="instead of an event stream"):
        await stream.__anext__()
    assert [c async for c in stream] == []
    assert emu.counts["chat"] == 1


def test_failed_stream_open_is_not_resent(emu: Emulator) -> None:
    emu.inject("chat", status=400)
    stream = make(emu).stream_chat(BODY)
    with pytest.raises(BadRequestError):
        next(stream)
    assert list(stream) == [] and emu.counts["chat"] == 1
