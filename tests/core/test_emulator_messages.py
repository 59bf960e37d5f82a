"""The emulator's /messages route, with the official anthropic SDK as an independent oracle,
and its strict 400s (Anthropic's documented ones plus Kimi's rules)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.transport import Transport

anthropic = pytest.importorskip("anthropic")

KEY = "sk-kimi-emulator-messages-key"
TOOLS = [{"name": "get_weather", "description": "Weather for a city.",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ASK = [{"role": "user", "content": "call get_weather for Paris"}]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with Emulator(api_keys=[KEY], ua_gate="real") as e:
        yield e


def _sdk(emu: Emulator) -> Any:
    # Mirrors Kimi Code: x-api-key, anthropic-version 2023-06-01, an honest User-Agent.
    return anthropic.Anthropic(
        base_url=emu.base_url.removesuffix("/v1"), api_key="unused", max_retries=0,
        default_headers={"x-api-key": KEY, "anthropic-version": "2023-06-01",
                         "User-Agent": "kimi-coder-test/1.0", "Authorization": ""},
    )


def _post(emu: Emulator, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(emu.base_url + "/messages", json=body, headers={"x-api-key": KEY})


def test_sdk_streams_signed_thinking_and_tool_use_then_replays_it(emu: Emulator) -> None:
    client = _sdk(emu)
    session = {"user_id": "kc-session-1"}  # the cache key's place on this route
    with client.messages.stream(model="kimi-for-coding", max_tokens=2000, messages=ASK, tools=TOOLS,
                                metadata=session) as s:
        first = s.get_final_message()
    kinds = [b.type for b in first.content]
    assert kinds == ["thinking", "tool_use"] and first.stop_reason == "tool_use"
    assert first.content[0].signature and first.content[1].input == {"city": "Paris"}
    history = [*ASK, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[1].id,
                                             "content": "sunny"}]}]
    second = client.messages.create(model="kimi-for-coding", max_tokens=2000, messages=history, tools=TOOLS,
                                    metadata=session)
    assert second.stop_reason == "end_turn" and "sunny" in second.content[-1].text
    assert second.usage.cache_read_input_tokens > 0
    # the gate only guards the OpenAI route: this route admitted a non-whitelisted UA
    assert emu.counts["messages"] == 2 and emu.counts["ua_rejected"] == 0


def test_our_transport_and_the_sdk_agree(emu: Emulator) -> None:
    from kimi_coder_auth.codecs.anthropic_response import MessagesAccumulator, parse_message
    from kimi_coder_auth.sources import StaticCredential

    t = Transport(credential=StaticCredential(KEY), base_url=emu.base_url)
    body = {"model": "kimi-for-coding", "max_tokens": 2000, "messages": ASK, "tools": TOOLS}
    ours = parse_message(t.messages(body).data)
    acc = MessagesAccumulator()
    for event in t.stream_messages(body):
        acc.feed(event)
    streamed = acc.result()
    sdk = _sdk(emu).messages.create(**body)
    assert emu.requests[-2].headers["x-api-key"] == KEY and "authorization" not in emu.requests[-2].headers
    assert emu.requests[-2].headers["anthropic-version"] == "2023-06-01"
    for done in (ours, streamed):
        assert [(c.name, c.arguments) for c in done.tool_calls] == [
            (b.name, '{"city": "Paris"}') for b in sdk.content if b.type == "tool_use"]
        assert done.thinking_blocks[0]["thinking"] == sdk.content[0].thinking
        assert done.finish_reason == "tool_calls"


def _tool_history(thinking_block: dict[str, Any] | None) -> list[dict[str, Any]]:
    content = [thinking_block] if thinking_block else []
    content.append({"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}})
    return [*ASK, {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]


@pytest.mark.parametrize(("body", "wording"), [
    ({"messages": ASK}, "max_tokens: Field required"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
     "text content blocks must be non-empty"),
    ({"max_tokens": 10, "messages": [*ASK, {"role": "assistant", "content": "ok"},
                                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                                                   "content": "r"}]}]},
     "unexpected `tool_use_id`"),
    ({"max_tokens": 10, "tools": TOOLS, "tool_choice": {"type": "any"}, "messages": ASK},
     "tool_choice forces tool use"),
    ({"max_tokens": 10, "tools": TOOLS, "messages": _tool_history(None)},
     "reasoning_content is missing in assistant tool call message at index 1"),
    ({"max_tokens": 10, "tools": TOOLS, "messages": _tool_history(
        {"type": "thinking", "thinking": "altered", "signature": "bm90IG91cnM="})},
     "Invalid `signature` in `thinking` block"),
])
def test_strict_400s_use_the_anthropic_envelope(emu: Emulator, body: dict[str, Any], wording: str) -> None:
    r = _post(emu, {"model": "kimi-for-coding", **body})
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert wording in payload["error"]["message"]


def test_unsigned_thinking_is_accepted_and_thinking_off_needs_none(emu: Emulator) -> None:
    ok = _post(emu, {"model": "kimi-for-coding", "max_tokens": 100, "tools": TOOLS,
                     "messages": _tool_history({"type": "thinking", "thinking": "from the other route"})})
    assert ok.status_code == 200, ok.text
    off = _post(emu, {"model": "toggle-thinking", "max_tokens": 100, "tools": TOOLS,
                      "thinking": {"type": "disabled"}, "messages": _tool_history(None)})
    assert off.status_code == 200 and off.json()["content"][0]["type"] != "thinking"


def test_gate_mode_rejects_our_ua_on_the_openai_route_only(emu: Emulator) -> None:
    r = httpx.post(emu.base_url + "/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "kimi-for-coding", "messages": ASK})
    assert r.status_code == 403 and "only available for Coding Agents" in r.json()["error"]["message"]
    r = httpx.post(emu.base_url + "/chat/completions", json={"model": "kimi-for-coding", "messages": ASK},
                   headers={"Authorization": f"Bearer {KEY}", "User-Agent": "KimiCLI/1.52.0"})
    assert r.status_code == 200


def test_errors_and_faults_on_this_route(emu: Emulator) -> None:
    bad = httpx.post(emu.base_url + "/messages", json={"model": "kimi-for-coding", "max_tokens": 5, "messages": ASK},
                     headers={"x-api-key": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    emu.inject("messages", status=429)
    with pytest.raises(anthropic.RateLimitError) as info:
        _sdk(emu).messages.create(model="kimi-for-coding", max_tokens=5, messages=ASK)
    assert info.value.body["error"]["type"] == "rate_limit_error"
