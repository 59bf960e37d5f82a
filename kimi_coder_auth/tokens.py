"""Token counts without a tokenizer download: a fast estimate shared by both adapters.

Kimi's tokenizer is not published in a form a client can load offline, and the Coding API
documents no token-counting endpoint, so counts here are estimates. Text is split into CJK runs,
Latin words, digit groups, whitespace and punctuation, each with a per-piece cost fitted to a
BPE tokenizer of the same family (tiktoken ``o200k_base``). Measured accuracy (docs/TOKENS.md):
within about ±20 % on English, code, JSON and Chinese samples. The exact input count of a real
request is in the response's usage (``usage_metadata["input_tokens"]`` / ``prompt_tokens``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MESSAGE_OVERHEAD", "count_message_tokens", "count_tokens"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_PIECES = re.compile(
    rf"(?P<cjk>[{_CJK}]+)|(?P<word>[A-Za-z]+)|(?P<digits>[0-9]+)|(?P<space>\s+)"
    rf"|(?P<other>[^\sA-Za-z0-9{_CJK}]+)"
)
_CJK_PER_CHAR = 0.7  # Chinese/Japanese/Korean characters
_LONG_WORD = 8  # words up to this length are one token
_CHARS_PER_WORD_TOKEN = 6.0
_DIGITS_PER_TOKEN = 3  # BPE tokenizers of this family split numbers into groups of three
_PUNCT_PER_TOKEN = 3  # ASCII punctuation runs merge
#: Tokens each chat message costs beyond its text (role and separators).
MESSAGE_OVERHEAD = 4


def count_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (see the module docstring for the accuracy)."""
    if not text:
        return 0
    n = 0.0
    for m in _PIECES.finditer(text):
        kind = m.lastgroup
        s = m.group()
        if kind == "cjk":
            n += len(s) * _CJK_PER_CHAR
        elif kind == "word":
            n += len(s) / _CHARS_PER_WORD_TOKEN if len(s) > _LONG_WORD else 1.0
        elif kind == "digits":
            n += math.ceil(len(s) / _DIGITS_PER_TOKEN)
        elif kind == "space":
            if s != " ":  # a single space merges into the next word
                n += 1 + max(0, len(s.strip("\n")) - 1) // 8
        else:
            wide = sum(1 for c in s if ord(c) > 0x2000)  # full-width punctuation: one each
            n += wide + math.ceil((len(s) - wide) / _PUNCT_PER_TOKEN)
    return max(1, round(n))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") if isinstance(p, Mapping) else str(p) for p in content
        )
    return "" if content is None else str(content)


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Iterable[Mapping[str, Any]] | None = None
) -> int:
    """Estimated input tokens of wire messages (text, reasoning, tool calls; images are not
    counted) plus tool definitions, with :data:`MESSAGE_OVERHEAD` per message."""
    total = 0
    for m in messages:
        total += MESSAGE_OVERHEAD + count_tokens(_content_text(m.get("content")))
        reasoning = m.get("reasoning_content")
        if isinstance(reasoning, str):
            total += count_tokens(reasoning)
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {} if isinstance(call, Mapping) else {}
            total += count_tokens(str(fn.get("name") or "")) + count_tokens(
                str(fn.get("arguments") or "")
            )
    for tool in tools or ():
        total += count_tokens(json.dumps(tool, ensure_ascii=False, separators=(",", ":")))
    return total
