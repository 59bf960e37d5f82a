"""KimiCoderLLM gets the core's shared request rules: json_schema response formats in Kimi's
dialect, and live `/models` data for thinking decisions (as ChatKimiCoder does)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import FunctionTool

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.emulator.models import default_models
from llama_index_kimi_coder import KimiCoderLLM

pytestmark = pytest.mark.timeout(30)

API_KEY = "sk-kimi-test-key-do-not-leak"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def _chat_bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith("/chat/completions") and r.body]


def test_json_schema_response_format_is_normalised(make_llm: Any, chat_bodies: Any) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "My Answer",
        "type": "object",
        "properties": {"answer": {}, "n": {"type": "integer"}},
    }
    rf = {"type": "json_schema", "json_schema": {"schema": schema}}
    make_llm().chat(user("reply in JSON"), response_format=rf)
    sent = chat_bodies()[-1]["response_format"]["json_schema"]
    assert sent["name"] == "My_Answer"
    assert "$schema" not in sent["schema"]
    assert "type" in sent["schema"]["properties"]["answer"]
    assert "$schema" in schema  # the caller's schema is not mutated


def test_forced_tool_choice_follows_the_live_catalogue() -> None:
    """/models says kimi-for-coding always thinks: relax to auto, never send thinking=disabled
    (the built-in catalogue says it can be disabled, which this server would reject)."""
    models = default_models()
    models[0]["supports_thinking_type"] = "only"
    with Emulator(api_keys=[API_KEY], models=models) as emu:
        llm = KimiCoderLLM(api_key=API_KEY, base_url=emu.base_url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            llm.chat_with_tools(
                [FunctionTool.from_defaults(fn=add)], user_msg="numbers 2 and 3", tool_required=True
            )
        body = _chat_bodies(emu)[-1]
        assert body["tool_choice"] == "auto" and "thinking" not in body
        assert any("relaxed" in str(w.message) for w in caught)
        assert emu.counts["models"] == 1
        assert llm.metadata.context_window > 0
        llm.chat(user("plain turn"))  # no thinking/effort/forced choice: no further lookups
        assert emu.counts["models"] == 1


def test_plain_requests_do_not_fetch_models(make_llm: Any, emulator: Emulator) -> None:
    make_llm().chat(user("hi"))
    assert emulator.counts["models"] == 0
