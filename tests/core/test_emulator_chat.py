"""The emulator's chat endpoint: stream and non-stream shapes, faults, the UA gate."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.emulator import Emulator, ScriptedResponder, Turn

KEY = "sk-kimi-test"
H = {"Authorization": f"Bearer {KEY}", "User-Agent": "kimi-coder/0.1.0 (test)"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, headers=H) as c:
        yield c


def body(text: str = "Hello there", **kw: Any) -> dict[str, Any]:
    return {"model": "kimi-for-coding", "messages": [{"role": "user", "content": text}], **kw}


def stream_events(client: httpx.Client, emu: Emulator, b: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
    b = {**b, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", f"{emu.base_url}/chat/completions", json=b) as r:
        lines = [line for line in r.iter_lines() if line]
    return r, lines


def chunks(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_models_catalogue(emu: Emulator, client: httpx.Client) -> None:
    r = client.get(f"{emu.base_url}/models")
    assert r.status_code == 200 and r.headers["x-trace-id"]
    models = {m["id"]: m for m in r.json()["data"]}
    assert set(models) == {"kimi-for-coding", "kimi-for-coding-highspeed", "k3", "k3-256k", "toggle-thinking"}
    k3 = models["k3"]
    assert k3["context_length"] == 1048576 and k3["supports_thinking_type"] == "only"
    assert k3["think_efforts"] == {"support": True, "valid_efforts": ["low", "high", "max"], "default_effort": "high"}
    assert models["kimi-for-coding"]["supports_thinking_type"] == "only"
    assert models["k3-256k"]["supports_video_in"] is False
    assert models["k3-256k"]["think_efforts"]["default_effort"] == "high"
    for m in models.values():
        for key in ("display_name", "supports_reasoning", "supports_image_in", "supports_video_in", "supports_tool_use"):
            assert key in m
    assert emu.counts["models"] == 1


def test_usages_numbers_are_strings(emu: Emulator, client: httpx.Client) -> None:
    client.post(f"{emu.base_url}/chat/completions", json=body())
    data = client.get(f"{emu.base_url}/usages").json()
    assert data["usage"]["used"] == "1" and isinstance(data["usage"]["limit"], str)
    assert data["usage"]["resetTime"].endswith("Z")
    assert data["limits"][0]["window"] == {"duration": 300, "timeUnit": "TIME_UNIT_MINUTE"}
    assert isinstance(data["limits"][0]["detail"]["used"], str)


def test_non_stream_text(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.base_url}/chat/completions", json=body("Say hi please"))
    assert r.status_code == 200 and r.headers["x-trace-id"]
    data = r.json()
    msg = data["choices"][0]["message"]
    assert data["object"] == "chat.completion" and data["model"] == "kimi-for-coding"
    assert msg["role"] == "assistant" and "Say hi please" in msg["content"]
    assert msg["reasoning_content"]  # thinking is on by default
    assert data["choices"][0]["finish_reason"] == "stop"
    u = data["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and "cached_tokens" in u
    rec = emu.requests[-1]
    assert rec.body["messages"][0]["content"] == "Say hi please" and rec.headers["user-agent"].startswith("kimi-coder/")


def test_non_stream_thinking_disabled_has_no_reasoning(emu: Emulator, client: httpx.Client) -> None:
    msg = client.post(f"{emu.base_url}/chat/completions", json=body(model="toggle-thinking", thinking={"type": "disabled"})).json()
    assert "reasoning_content" not in msg["choices"][0]["message"]


def test_stream_order_usage_and_done(emu: Emulator, client: httpx.Client) -> None:
    r, lines = stream_events(client, emu, body("Tell me something"))
    assert r.headers["content-type"].startswith("text/event-stream") and r.headers["x-trace-id"]
    assert r.headers.get("transfer-encoding") == "chunked"
    assert lines[0] == ": keep-alive"
    assert lines[-1] == "data: [DONE]"
    cs = chunks(lines)
    deltas = [c["choices"][0]["delta"] for c in cs]
    assert deltas[0]["role"] == "assistant"
    kinds = [("r" if "reasoning_content" in d else "c" if "content" in d else "-") for d in deltas]
    assert kinds[0] == "r" and "c" in kinds
    assert kinds.index("c") > max(i for i, k in enumerate(kinds) if k == "r")  # reasoning strictly first
    final = cs[-1]["choices"][0]
    assert final["finish_reason"] == "stop"
    assert set(final["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"}
    assert "usage" not in cs[-1]  # Moonshot puts it inside choices[0]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == cs[0]["id"] for c in cs)
    text = "".join(d.get("content") or "" for d in deltas)
    assert "Tell me something" in text


def test_stream_without_include_usage(emu: Emulator, client: httpx.Client) -> None:
    b = body(stream=True)
    with client.stream("POST", f"{emu.base_url}/chat/completions", json=b) as r:
        cs = chunks([line for line in r.iter_lines() if line])
    assert "usage" not in cs[-1]["choices"][0]


def test_stream_parallel_tool_calls_split_by_index(emu: Emulator, client: httpx.Client) -> None:
    emu.responder = ScriptedResponder([Turn(tool_calls=[("get_weather", '{"city": "Paris"}'),
                                                        ("get_time", '{"zone": "Europe/Paris"}')])])
    _, lines = stream_events(client, emu, body("weather and time", tools=[WEATHER, TIME]))
    cs = chunks(lines)
    tcs = [c["choices"][0]["delta"].get("tool_calls") for c in cs if c["choices"][0]["delta"].get("tool_calls")]
    assert any(len(t) >= 2 for t in tcs), "a chunk should carry fragments of two calls"
    calls: dict[int, dict[str, str]] = {}
    for t in tcs:
        for frag in t:
            slot = calls.setdefault(frag["index"], {"id": "", "name": "", "args": ""})
            if "id" in frag:
                assert slot["id"] == "", "id only on the first fragment"
                slot["id"] = frag["id"]
                slot["name"] = frag["function"]["name"]
            else:
                assert "name" not in frag["function"]
            slot["args"] += frag["function"].get("arguments", "")
    assert calls[0] == {"id": "functions.get_weather:0", "name": "get_weather", "args": '{"city": "Paris"}'}
    assert calls[1] == {"id": "functions.get_time:1", "name": "get_time", "args": '{"zone": "Europe/Paris"}'}
    assert cs[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_ids_continue_across_conversation(emu: Emulator, client: httpx.Client) -> None:
    emu.responder = ScriptedResponder([Turn(tool_calls=[("get_time", '{"zone": "UTC"}')])])
    msgs = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "reasoning_content": "", "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
        {"role": "user", "content": "and the time?"},
    ]
    r = client.post(f"{emu.base_url}/chat/completions", json={"model": "kimi-for-coding", "messages": msgs, "tools": [WEATHER, TIME]})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["id"] == "functions.get_time:1"


def test_scripted_reasoning_empty_string_is_sent(emu: Emulator, client: httpx.Client) -> None:
    emu.responder = ScriptedResponder([Turn(content="ok", reasoning="")])
    _, lines = stream_events(client, emu, body())
    first = chunks(lines)[0]["choices"][0]["delta"]
    assert first == {"role": "assistant", "reasoning_content": ""}


def test_only_model_always_thinks_and_no_model_never(client: httpx.Client) -> None:
    from kimi_coder_auth.emulator import default_models, model_entry

    models = [*default_models(), model_entry("plain", 1000, "no")]
    with Emulator(api_keys=[KEY], models=models) as emu:
        msg = client.post(f"{emu.base_url}/chat/completions", json={**body(), "model": "k3"}).json()
        assert msg["choices"][0]["message"]["reasoning_content"]
        msg = client.post(f"{emu.base_url}/chat/completions",
                          json={**body(), "model": "plain", "thinking": {"type": "enabled"}}).json()
        assert "reasoning_content" not in msg["choices"][0]["message"]


def test_stop_sequence_truncates(emu: Emulator, client: httpx.Client) -> None:
    emu.responder = ScriptedResponder([Turn(content="hello world, bye")] * 2)
    msg = client.post(f"{emu.base_url}/chat/completions", json=body(stop=["world"])).json()
    assert msg["choices"][0]["message"]["content"] == "hello "
    _, lines = stream_events(client, emu, body(stop="bye"))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks(lines)) == "hello world, "


def test_max_tokens_gives_length(emu: Emulator, client: httpx.Client) -> None:
    emu.responder = ScriptedResponder([Turn(content="word " * 200, reasoning="r")])
    data = client.post(f"{emu.base_url}/chat/completions", json=body(max_tokens=5)).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert len(data["choices"][0]["message"]["content"]) <= 20


def test_ua_gate(client: httpx.Client) -> None:
    with Emulator(api_keys=[KEY], ua_gate=r"^kimi-coder/") as emu:
        assert client.post(f"{emu.base_url}/chat/completions", json=body()).status_code == 200
        r = client.post(f"{emu.base_url}/chat/completions", json=body(), headers={"User-Agent": "python-httpx/0.28"})
        assert r.status_code == 403
        assert r.json() == {"error": {
            "message": "Kimi For Coding is currently only available for Coding Agents such as Kimi CLI, "
                       "Claude Code, Roo Code, Kilo Code, etc.",
            "type": "access_terminated_error"}}
        # /models is not gated
        assert client.get(f"{emu.base_url}/models", headers={"User-Agent": "x"}).status_code == 200


def test_chat_requires_auth(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.base_url}/chat/completions", json=body(), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_authentication_error"
    r = httpx.post(f"{emu.base_url}/chat/completions", json=body())
    assert r.status_code == 401 and emu.counts["unauthorized"] == 2


def test_inject_429_with_retry_after_then_recovers(emu: Emulator, client: httpx.Client) -> None:
    emu.inject("chat", status=429, headers={"Retry-After": "2"}, times=2)
    for _ in range(2):
        r = client.post(f"{emu.base_url}/chat/completions", json=body())
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert r.json()["error"]["type"] == "rate_limit_reached_error"
    assert client.post(f"{emu.base_url}/chat/completions", json=body()).status_code == 200
    assert emu.counts["chat"] == 3


def test_inject_custom_body(emu: Emulator, client: httpx.Client) -> None:
    quota = {"error": {"message": "You exceeded your current token quota", "type": "exceeded_current_quota_error"}}
    emu.inject("chat", status=429, body=quota)
    r = client.post(f"{emu.base_url}/chat/completions", json=body())
    assert r.status_code == 429 and r.json() == quota
    emu.inject("models", status=500)
    assert client.get(f"{emu.base_url}/models").status_code == 500


def test_inject_drop_after_chunks(emu: Emulator, client: httpx.Client) -> None:
    emu.inject("chat", drop_after_chunks=2)
    b = {**body("a fairly long sentence to get many chunks out of the emulator"), "stream": True}
    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream("POST", f"{emu.base_url}/chat/completions", json=b) as r:
        for line in r.iter_lines():
            if line:
                got.append(line)
    assert "data: [DONE]" not in got
    assert len([g for g in got if g.startswith("data: {")]) <= 2
    # the next request on the same client works
    assert client.post(f"{emu.base_url}/chat/completions", json=body()).status_code == 200


def test_inject_drop_non_stream(emu: Emulator, client: httpx.Client) -> None:
    emu.inject("chat", drop_after_chunks=0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{emu.base_url}/chat/completions", json=body())


def test_inject_sse_error_midstream(emu: Emulator, client: httpx.Client) -> None:
    err = {"error": {"message": "The engine is currently overloaded", "type": "engine_overloaded_error"}}
    emu.inject("chat", sse_error=err, sse_error_after=2)
    _, lines = stream_events(client, emu, body("some words to stream here"))
    data = [line for line in lines if line.startswith("data:")]
    assert len(data) == 3 and json.loads(data[-1][6:]) == err
    assert "data: [DONE]" not in lines


def test_keep_alive_connection_reuse(emu: Emulator) -> None:
    ports: set[int] = set()
    with httpx.Client(headers=H, timeout=5) as c:
        for _ in range(5):
            with c.stream("POST", f"{emu.base_url}/chat/completions", json={**body(), "stream": True}) as r:
                r.read()
                stream = r.extensions["network_stream"]
                ports.add(stream.get_extra_info("socket").getsockname()[1])
    assert len(ports) == 1


def test_many_concurrent_streams(client: httpx.Client) -> None:
    resp = ScriptedResponder([Turn(content=["x"] * 500)])
    with Emulator(api_keys=[KEY], responder=resp) as emu:
        results: list[int] = []
        lock = threading.Lock()

        def run() -> None:
            _, lines = stream_events(client, emu, body(model="toggle-thinking", thinking={"type": "disabled"}))
            with lock:
                results.append(sum(1 for line in lines if line.startswith("data: {")))

        threads = [threading.Thread(target=run) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [501] * 20
        assert emu.counts["chat"] == 20


def test_chunk_delay_streams_incrementally(emu: Emulator, client: httpx.Client) -> None:
    import time

    emu.responder = ScriptedResponder([Turn(content=["a", "b", "c"])])
    emu.inject("chat", chunk_delay=0.05)
    t0 = time.monotonic()
    _, lines = stream_events(client, emu, body(model="toggle-thinking", thinking={"type": "disabled"}))
    assert time.monotonic() - t0 >= 0.15
    assert lines[-1] == "data: [DONE]"


def test_unknown_path_and_method(emu: Emulator, client: httpx.Client) -> None:
    assert client.get(f"{emu.base_url}/nope").status_code == 404
    assert client.get(f"{emu.base_url}/chat/completions").status_code == 405


def test_inject_rejects_unknown_endpoint(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="chat"):
        emu.inject("completions", status=500)


def test_broken_responder_gives_500_not_a_hang(client: httpx.Client) -> None:
    from kimi_coder_auth.emulator import Responder

    class Broken(Responder):
        def respond(self, request_body: dict[str, Any]) -> Turn:
            raise RuntimeError("boom")

    with Emulator(api_keys=[KEY], responder=Broken()) as emu:
        r = client.post(f"{emu.base_url}/chat/completions", json=body())
        assert r.status_code == 500 and "boom" in r.json()["error"]["message"]


def test_oauth_requires_form_encoding(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.oauth_host}/api/oauth/device_authorization",
                    json={"client_id": "17e5f671-d194-4dfb-9706-5516cb48c098"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_requests_to_and_chunk_chars(client: httpx.Client) -> None:
    resp = ScriptedResponder([Turn(content="abcdefghij")])
    with Emulator(api_keys=[KEY], responder=resp, chunk_chars=1) as emu:
        client.get(f"{emu.base_url}/models")
        _, lines = stream_events(client, emu, body(model="toggle-thinking", thinking={"type": "disabled"}))
        contents = [c["choices"][0]["delta"].get("content") for c in chunks(lines)][:-1]
        assert contents == list("abcdefghij")
        assert [r.path for r in emu.requests_to("/chat/completions")] == ["/coding/v1/chat/completions"]


def test_large_stream_is_fast(client: httpx.Client) -> None:
    import time

    resp = ScriptedResponder([Turn(content=["tok "] * 2000)])
    with Emulator(api_keys=[KEY], responder=resp) as emu:
        t0 = time.perf_counter()
        b = {**body(model="toggle-thinking", thinking={"type": "disabled"}), "stream": True}
        with client.stream("POST", f"{emu.base_url}/chat/completions", json=b) as r:
            data = r.read()
        elapsed = time.perf_counter() - t0
    assert data.count(b"data: {") == 2001 and data.rstrip().endswith(b"data: [DONE]")
    assert elapsed < 2.0


def test_inject_forever_until_cleared(emu: Emulator, client: httpx.Client) -> None:
    emu.inject("usages", status=502, times=None)
    assert [client.get(f"{emu.base_url}/usages").status_code for _ in range(3)] == [502] * 3
    emu.clear_faults()
    assert client.get(f"{emu.base_url}/usages").status_code == 200
    assert emu.counts["usages"] == 4


def test_inject_delay_on_chat_is_real_and_then_answers(emu: Emulator, client: httpx.Client) -> None:
    import time

    emu.inject("chat", delay=0.2)
    t0 = time.monotonic()
    r = client.post(f"{emu.base_url}/chat/completions", json=body())
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.19
