"""Bodies built by build_request for Kimi's tricky cases are accepted by the strict emulator,
and the same cases built naively are rejected (so the acceptance is meaningful)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.catalogue import get_model_info
from kimi_coder_auth.wire import StreamAccumulator, build_request, parse_completion

emulator = pytest.importorskip("kimi_coder_auth.emulator")

CALL = {"id": "functions.lookup:0", "type": "function",
        "function": {"name": "lookup", "arguments": '{"mode":"smart"}'}}
TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look something up",
    "parameters": {"type": "object", "properties": {
        "mode": {"enum": ["smart", "full"]},
        "opts": {"type": "object", "properties": {"depth": {"const": 2}}},
    }}}}]
HISTORY: list[dict[str, Any]] = [
    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    {"role": "user", "content": [{"type": "text", "text": "Use lookup"}, {"type": "text", "text": ""}]},
    # replayed tool-call turn from another model: no reasoning, empty text part
    {"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": CALL["id"], "content": ""},
    {"role": "assistant", "content": "", "reasoning_content": "only thoughts"},
    {"role": "user", "content": "Now summarise."},
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    with emulator.Emulator(api_keys=["k"]) as e:
        yield e


@pytest.fixture(scope="module")
def client(emu: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k"}, timeout=10) as c:
        yield c


def _post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/chat/completions", json=body)


def _live_info(client: httpx.Client, model: str) -> Any:
    data = client.get("/models").json()["data"]
    return get_model_info(model, data)


@pytest.mark.parametrize("tool_choice", [None, "auto", "lookup", "required", "any"])
def test_tricky_history_accepted_non_stream(client: httpx.Client, tool_choice: Any) -> None:
    r = build_request("kimi-for-coding", HISTORY, tools=TOOLS, tool_choice=tool_choice,
                      model_info=_live_info(client, "kimi-for-coding"))
    resp = _post(client, r.body)
    assert resp.status_code == 200, resp.text
    res = parse_completion(resp.json())
    assert res.content or res.tool_calls


def test_forced_tool_on_always_thinking_model_accepted(client: httpx.Client) -> None:
    r = build_request("k3", HISTORY, tools=TOOLS, tool_choice="lookup",
                      model_info=_live_info(client, "k3"))
    assert r.tool_choice_relaxed and r.warnings
    resp = _post(client, r.body)
    assert resp.status_code == 200, resp.text


def test_stream_body_accepted_and_accumulated(client: httpx.Client) -> None:
    r = build_request("kimi-for-coding", HISTORY, tools=TOOLS, stream=True, thinking=True)
    acc = StreamAccumulator()
    import json

    with client.stream("POST", "/chat/completions", json=r.body) as resp:
        assert resp.status_code == 200, resp.read().decode()
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                acc.feed(json.loads(line[6:]))
    res = acc.result()
    assert res.finish_reason in ("stop", "tool_calls")
    assert res.usage is not None and res.usage.total_tokens > 0


@pytest.mark.parametrize(
    ("naive_edit", "fragment"),
    [
        (lambda b: b["messages"][2].pop("reasoning_content"), "reasoning_content is missing"),
        (lambda b: b["messages"][2].__setitem__("content", [{"type": "text", "text": ""}]),
         "text content is empty"),
        (lambda b: b["tools"][0]["function"]["parameters"]["properties"]["mode"].pop("type"),
         "type"),
        (lambda b: (b.pop("thinking", None), b.__setitem__("tool_choice", "required")),
         "incompatible with thinking"),
    ],
)
def test_naive_bodies_are_rejected(client: httpx.Client, naive_edit: Any, fragment: str) -> None:
    r = build_request("kimi-for-coding", HISTORY, tools=TOOLS)
    assert _post(client, r.body).status_code == 200
    naive_edit(r.body)
    resp = _post(client, r.body)
    assert resp.status_code == 400
    assert fragment in resp.json()["error"]["message"]


def test_inlined_image_accepted_remote_url_rejected(client: httpx.Client, tmp_path: Any) -> None:
    import base64

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    path = tmp_path / "dot.png"
    path.write_bytes(png)
    msgs = [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": str(path)}}]}]
    r = build_request("kimi-for-coding", msgs)
    assert _post(client, r.body).status_code == 200
    r.body["messages"][0]["content"][1]["image_url"]["url"] = "https://example.com/dot.png"
    resp = _post(client, r.body)
    assert resp.status_code == 400 and "image url" in resp.json()["error"]["message"]
