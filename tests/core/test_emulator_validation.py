"""The emulator rejects what the real Coding API rejects, with the documented wording."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.emulator import Emulator

KEY = "sk-kimi-test"
TOOL = {"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALL = {"id": "functions.get_weather:0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def post(client: httpx.Client, emu: Emulator, **kw: Any) -> httpx.Response:
    b = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}], **kw}
    return client.post(f"{emu.base_url}/chat/completions", json=b)


def err(r: httpx.Response, status: int = 400) -> str:
    assert r.status_code == status, r.text
    e = r.json()["error"]
    if status == 400:
        assert e["type"] == "invalid_request_error"
    return e["message"]


def tool_turn(**assistant_extra: Any) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_calls": [CALL], **assistant_extra},
        {"role": "tool", "tool_call_id": CALL["id"], "content": "sunny"},
    ]


def test_missing_reasoning_content_on_tool_call_turn(emu: Emulator, client: httpx.Client) -> None:
    msg = err(post(client, emu, messages=tool_turn(), tools=[TOOL]))
    assert msg == "thinking is enabled but reasoning_content is missing in assistant tool call message at index 1"


def test_reasoning_content_empty_string_is_enough(emu: Emulator, client: httpx.Client) -> None:
    assert post(client, emu, messages=tool_turn(reasoning_content=""), tools=[TOOL]).status_code == 200


def test_missing_reasoning_ok_when_thinking_disabled(emu: Emulator, client: httpx.Client) -> None:
    r = post(client, emu, model="toggle-thinking", messages=tool_turn(), tools=[TOOL],
             thinking={"type": "disabled"})
    assert r.status_code == 200


def test_missing_reasoning_rejected_on_only_model_even_without_thinking_field(emu: Emulator, client: httpx.Client) -> None:
    msg = err(post(client, emu, model="kimi-k2-thinking", messages=tool_turn(), tools=[TOOL]))
    assert "reasoning_content is missing" in msg


@pytest.mark.parametrize("content", ["", [{"type": "text", "text": ""}], []])
def test_empty_text_content(emu: Emulator, client: httpx.Client, content: Any) -> None:
    assert "text content is empty" in err(post(client, emu, messages=[{"role": "user", "content": content}]))


def test_empty_content_on_assistant_tool_call_turn(emu: Emulator, client: httpx.Client) -> None:
    msgs = tool_turn(reasoning_content="r", content=[{"type": "text", "text": ""}])
    assert "text content is empty" in err(post(client, emu, messages=msgs, tools=[TOOL]))


def test_tool_call_turn_may_omit_or_null_content(emu: Emulator, client: httpx.Client) -> None:
    assert post(client, emu, messages=tool_turn(reasoning_content="r"), tools=[TOOL]).status_code == 200
    assert post(client, emu, messages=tool_turn(reasoning_content="r", content=None), tools=[TOOL]).status_code == 200


def test_untyped_nested_property(emu: Emulator, client: httpx.Client) -> None:
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "opts": {"type": "object", "properties": {"mode": {"enum": ["a", "b"]}}}}}}}
    assert "not a valid moonshot flavored json schema" in err(post(client, emu, tools=[bad]))
    top = {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {"x": {}}}}}
    assert "not a valid moonshot flavored json schema" in err(post(client, emu, tools=[top]))
    items = {"type": "function", "function": {"name": "h", "parameters": {"type": "object", "properties": {
        "xs": {"type": "array", "items": {"description": "no type"}}}}}}
    assert "not a valid moonshot flavored json schema" in err(post(client, emu, tools=[items]))


def test_typed_anyof_property_accepted(emu: Emulator, client: httpx.Client) -> None:
    ok = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}}
    assert post(client, emu, tools=[ok]).status_code == 200


def test_forced_tool_choice_with_thinking(emu: Emulator, client: httpx.Client) -> None:
    assert err(post(client, emu, tools=[TOOL], tool_choice="required")) == \
        "tool_choice 'required' is incompatible with thinking enabled"
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert err(post(client, emu, tools=[TOOL], tool_choice=named)) == \
        "tool_choice specified is incompatible with thinking enabled"
    off = {"type": "disabled"}
    toggle = "toggle-thinking"
    assert post(client, emu, model=toggle, tools=[TOOL], tool_choice="required",
                thinking=off).status_code == 200
    assert post(client, emu, model=toggle, tools=[TOOL], tool_choice=named,
                thinking=off).status_code == 200
    assert post(client, emu, tools=[TOOL], tool_choice="auto").status_code == 200


def test_disabled_thinking_on_only_model(emu: Emulator, client: httpx.Client) -> None:
    assert err(post(client, emu, model="k3", thinking={"type": "disabled"})) == \
        "invalid thinking: only type=enabled is allowed for this model"


def test_invalid_effort(emu: Emulator, client: httpx.Client) -> None:
    assert post(client, emu, model="k3", thinking={"type": "enabled", "effort": "high"}).status_code == 200
    assert "effort" in err(post(client, emu, model="k3", thinking={"type": "enabled", "effort": "ultra"}))


def test_http_image_url_rejected_data_url_accepted(emu: Emulator, client: httpx.Client) -> None:
    def img(url: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                             {"type": "image_url", "image_url": {"url": url}}]}]

    assert "unsupported image url" in err(post(client, emu, messages=img("https://example.com/a.png")))
    assert post(client, emu, messages=img("data:image/png;base64,iVBORw0KGgo=")).status_code == 200


def test_developer_role_rejected(emu: Emulator, client: httpx.Client) -> None:
    msgs = [{"role": "developer", "content": "be nice"}, {"role": "user", "content": "hi"}]
    assert "developer" in err(post(client, emu, messages=msgs))


def test_orphan_tool_message(emu: Emulator, client: httpx.Client) -> None:
    msgs = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "functions.x:0", "content": "r"}]
    assert "tool_call_id" in err(post(client, emu, messages=msgs))


def test_unknown_model_404(emu: Emulator, client: httpx.Client) -> None:
    r = post(client, emu, model="gpt-4o")
    assert r.status_code == 404 and "gpt-4o" in r.json()["error"]["message"]


def test_context_length(client: httpx.Client) -> None:
    from kimi_coder_auth.emulator import model_entry

    with Emulator(api_keys=[KEY], models=[model_entry("tiny", 100, "both")]) as emu:
        r = client.post(f"{emu.base_url}/chat/completions",
                        json={"model": "tiny", "messages": [{"role": "user", "content": "x" * 401}]})
        assert "context length" in err(r)
        r = client.post(f"{emu.base_url}/chat/completions",
                        json={"model": "tiny", "messages": [{"role": "user", "content": "x" * 300}]})
        assert r.status_code == 200


def test_response_formats_accepted(emu: Emulator, client: httpx.Client) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
    assert post(client, emu, response_format=schema).status_code == 200
    assert post(client, emu, response_format={"type": "json_object"}).status_code == 200
    assert "response_format" in err(post(client, emu, response_format={"type": "xml"}))


def test_bad_json_body(emu: Emulator, client: httpx.Client) -> None:
    r = client.post(f"{emu.base_url}/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_bad_max_tokens(emu: Emulator, client: httpx.Client) -> None:
    assert "max_tokens" in err(post(client, emu, max_tokens=0))
