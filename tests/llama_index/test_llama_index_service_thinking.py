"""KimiCoderLLM: preserved thinking, K3 reasoning_details, prompt_cache_key semantics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llama_index.core.base.llms.types import ThinkingBlock
from llama_index.core.llms import ChatMessage

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.request_policy import derive_prompt_cache_key
from llama_index_kimi_coder import KimiCoderLLM


def _body(emulator: Emulator) -> dict[str, Any]:
    return emulator.requests_to("/chat/completions")[-1].body


HISTORY = [
    ChatMessage(role="user", content="hi"),
    ChatMessage(role="assistant", content="hello"),
    ChatMessage(role="user", content="again"),
]


def test_preserve_thinking(make_llm: Callable[..., KimiCoderLLM], emulator: Emulator) -> None:
    make_llm(preserve_thinking=True).chat(HISTORY)
    body = _body(emulator)
    assert body["thinking"] == {"type": "enabled", "keep": "all"}
    assert body["messages"][1]["reasoning_content"] == ""
    make_llm(additional_kwargs={"thinking": {"keep": "all"}}, model="k3", effort="high").chat(HISTORY)
    assert _body(emulator)["thinking"] == {"type": "enabled", "effort": "high", "keep": "all"}
    make_llm().chat(HISTORY)
    assert "reasoning_content" not in _body(emulator)["messages"][1]


def test_k3_reasoning_details_chat_and_stream(
    make_llm: Callable[..., KimiCoderLLM], emulator: Emulator
) -> None:
    llm = make_llm(model="k3")
    resp = llm.chat([ChatMessage(role="user", content="think")])
    details = resp.message.additional_kwargs["reasoning_details"]
    thinking = next(b for b in resp.message.blocks if isinstance(b, ThinkingBlock))
    assert details[0] == {"type": "summary", "summary": thinking.content}
    assert details[1]["type"] == "encrypted"
    responses = list(llm.stream_chat([ChatMessage(role="user", content="think")]))
    assert responses
    last = responses[-1]
    streamed = last.message.additional_kwargs["reasoning_details"]
    assert [d["type"] for d in streamed] == ["summary", "encrypted"]
    assert all("index" not in d for d in streamed)
    llm.chat([ChatMessage(role="user", content="think"), last.message,
              ChatMessage(role="user", content="more")])  # the strict emulator accepts it
    replay = _body(emulator)["messages"][1]
    assert replay["reasoning_details"] == streamed and replay["reasoning_content"]


def test_prompt_cache_key(make_llm: Callable[..., KimiCoderLLM], emulator: Emulator) -> None:
    make_llm().chat(HISTORY)
    assert "prompt_cache_key" not in _body(emulator)  # nothing identifies the conversation
    marked = [ChatMessage(role="user", content="hi", additional_kwargs={"session_id": "s-9"})]
    make_llm().chat(marked)
    assert _body(emulator)["prompt_cache_key"] == derive_prompt_cache_key("s-9")
    llm = make_llm(prompt_cache_key="chat-1")
    llm.chat(HISTORY)
    second = llm.chat(HISTORY)
    assert _body(emulator)["prompt_cache_key"] == "chat-1"
    assert second.additional_kwargs["cached_tokens"] > 0
    make_llm(prompt_cache_key=None).chat(marked)
    assert "prompt_cache_key" not in _body(emulator)
