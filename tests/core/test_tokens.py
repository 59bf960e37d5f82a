"""The shared token estimate: no extra dependency, and close to a real BPE tokenizer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from kimi_coder_auth.tokens import MESSAGE_OVERHEAD, count_message_tokens, count_tokens

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "token_accuracy.py"
_spec = importlib.util.spec_from_file_location("token_accuracy", _BENCH)
assert _spec is not None and _spec.loader is not None
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)

# o200k_base counts of bench/token_accuracy.py's samples, measured with bpe-openai 0.1.4.
O200K = {
    "English prose": 78, "Python code": 123, "Chinese prose": 96, "JSON": 92,
    "Chinese + code": 51, "JavaScript": 59, "English (docs)": 64, "Python (tests)": 87,
    "Chinese (news)": 65, "Chinese question about code": 42, "Rust": 81, "Log lines": 95,
}


@pytest.mark.parametrize("name", sorted(O200K))
def test_estimate_is_within_20_percent_of_o200k(name: str) -> None:
    text = {**samples.FITTED, **samples.HELD_OUT}[name]
    assert abs(count_tokens(text) - O200K[name]) / O200K[name] <= 0.20


def test_basics() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hi") == 1
    assert count_tokens("你好世界你好世界你好") == 7  # 0.7 per CJK character
    assert count_tokens("1234567") == 3  # digits in groups of three


def test_messages_count_text_reasoning_tool_calls_and_tools() -> None:
    user = {"role": "user", "content": "hello"}
    assert count_message_tokens([user]) == MESSAGE_OVERHEAD + 1
    call = {"role": "assistant", "reasoning_content": "think", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]}
    with_call = count_message_tokens([user, call])
    assert with_call > count_message_tokens([user]) + MESSAGE_OVERHEAD + 2
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    assert count_message_tokens([user], [tool]) > count_message_tokens([user])


def test_adapters_count_without_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # importing it now fails
    from langchain_core.messages import HumanMessage
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_kimi_coder import ChatKimiCoder
    from llama_index_kimi_coder import KimiCoderLLM

    text = samples.FITTED["Chinese + code"]
    lc, li = ChatKimiCoder(), KimiCoderLLM()
    assert lc.get_num_tokens(text) == li.get_num_tokens(text) == count_tokens(text)
    assert lc.get_num_tokens_from_messages([HumanMessage(text)]) == (
        li.get_num_tokens_from_messages([ChatMessage(role="user", content=text)])
    ) == count_tokens(text) + MESSAGE_OVERHEAD
    with pytest.raises(NotImplementedError, match="get_num_tokens"):
        lc.get_token_ids(text)
    custom = ChatKimiCoder(custom_get_token_ids=lambda t: list(range(len(t))))
    assert custom.get_num_tokens("abc") == 3
