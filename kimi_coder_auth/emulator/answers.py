"""The emulator's answers: one responder `Turn` as a Kimi chat completion, or its stream chunks.

Shared by both routes: the OpenAI route (`server.py`) encodes it as ``chat.completion`` JSON and
chunks, the Messages route (`messages_route.py`) as Messages JSON and events.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from json.encoder import encode_basestring as quote  # C-accelerated JSON string quoting
from typing import Any

from .. import clock
from .k3_details import completion_details, sends_reasoning_details, stream_details
from .prompt_cache import PromptCache
from .responders import Turn

__all__ = ["_Answer", "_pieces", "_split_args", "_tokens"]


def _pieces(text: str | list[str], size: int = 12) -> list[str]:
    """Split text into stream deltas: word-ish pieces of about `size` characters (long words are
    cut); a list is taken as the exact pieces."""
    if isinstance(text, list):
        return list(text)
    if not text:
        return []
    out: list[str] = []
    buf = ""
    for word in re.findall(r"\S+\s*|\s+", text):
        while len(word) > size:
            if buf:
                out.append(buf)
                buf = ""
            out.append(word[:size])
            word = word[size:]
        buf += word
        if len(buf) >= size:
            out.append(buf)
            buf = ""
    if buf:
        out.append(buf)
    return out


def _tokens(n_chars: int) -> int:
    return max(1, (n_chars + 3) // 4)


@dataclass
class _Answer:
    id: str
    created: int
    model: str
    reasoning: str | list[str] | None
    content: str | list[str]
    tool_calls: list[tuple[str, str, str]]  # (id, name, arguments)
    finish_reason: str
    usage: dict[str, int]
    details: bool = False  # K3: reasoning_details beside reasoning_content

    @staticmethod
    def build(turn: Turn, body: dict[str, Any], model: dict[str, Any], think: bool, *, raw_len: int, call_seq: int,
              cache: PromptCache | None = None) -> _Answer:
        reasoning: str | list[str] | None = turn.reasoning
        if not think:
            reasoning = None
        elif reasoning is None:
            reasoning = "Thinking about the request."
        content: str | list[str] = turn.content or ""
        calls = [(f"functions.{name}:{call_seq + i}", name, args) for i, (name, args) in enumerate(turn.tool_calls)]
        finish = "tool_calls" if calls else "stop"

        stops = body.get("stop")
        if isinstance(stops, str):
            stops = [stops]
        if stops:
            text = "".join(content) if isinstance(content, list) else content
            cut = min((text.find(s) for s in stops if s and s in text), default=-1)
            if cut >= 0:
                content = text[:cut]
                calls = []
                finish = "stop"

        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(budget, int) and budget > 0:
            limit = budget * 4
            r_text = "".join(reasoning) if isinstance(reasoning, list) else (reasoning or "")
            c_text = "".join(content) if isinstance(content, list) else content
            a_len = sum(len(a) for _, _, a in calls)
            if len(r_text) + len(c_text) + a_len > limit:
                if reasoning is not None and len(r_text) > limit:
                    reasoning = r_text[:limit]
                left = max(0, limit - len(r_text))
                content = c_text[:left]
                calls = []
                finish = "length"
        if turn.finish_reason:
            finish = turn.finish_reason

        r_len = len("".join(reasoning)) if reasoning is not None else 0
        c_len = len("".join(content)) + sum(len(a) + len(n) for _, n, a in calls)
        prompt = _tokens(raw_len)
        cached = cache.lookup_and_store(body, prompt) if cache is not None else 0
        completion = _tokens(r_len + c_len) if (r_len + c_len) else 0
        usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion, "cached_tokens": cached}
        return _Answer(
            id="chatcmpl-" + secrets.token_hex(12), created=int(clock.now()), model=body["model"],
            reasoning=reasoning, content=content, tool_calls=calls, finish_reason=finish, usage=usage,
            details=reasoning is not None and sends_reasoning_details(model),
        )

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.reasoning is not None:
            message["reasoning_content"] = "".join(self.reasoning)
            if self.details:
                message["reasoning_details"] = completion_details(message["reasoning_content"], self.id)
        if self.tool_calls:
            message["tool_calls"] = [
                {"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                for i, (cid, name, args) in enumerate(self.tool_calls)
            ]
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }

    def events(self, include_usage: bool, chunk_chars: int = 12) -> list[bytes]:
        """Pre-serialised `data: ...\\n\\n` events (without the final [DONE])."""
        head = (
            '{"id":' + json.dumps(self.id) + ',"object":"chat.completion.chunk","created":' + str(self.created)
            + ',"model":' + json.dumps(self.model) + ',"choices":[{"index":0,"delta":'
        ).encode()
        mid = b',"finish_reason":null}]}'
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        pre = b"data: " + head
        deltas: list[bytes] = []
        if self.reasoning is not None:
            parts = _pieces(self.reasoning, chunk_chars) or [""]
            if self.details:
                deltas += stream_details(parts, self.id)
            else:
                deltas += [b'{"reasoning_content":' + quote(p).encode() + b"}" for p in parts]
        deltas += [b'{"content":' + quote(p).encode() + b"}" for p in _pieces(self.content, chunk_chars)]
        deltas += [dumps(d).encode() for d in self._tool_deltas()]
        if not deltas:
            deltas = [b'{"content":""}']
        deltas[0] = b'{"role":"assistant",' + deltas[0][1:]
        tail = mid + b"\n\n"
        out = [pre + d + tail for d in deltas]
        final: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": self.finish_reason}
        if include_usage:
            final["usage"] = self.usage
        last = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [final], "system_fingerprint": "fpv0_emulator"}
        out.append(b"data: " + dumps(last).encode() + b"\n\n")
        return out

    def _tool_deltas(self) -> list[dict[str, Any]]:
        """Tool-call deltas by index: header (id + name) first, then argument fragments; the last
        fragment of one call shares a chunk with the next call's header."""
        deltas: list[dict[str, Any]] = []
        carry: list[dict[str, Any]] = []
        for i, (cid, name, args) in enumerate(self.tool_calls):
            header = {"index": i, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
            frags = _split_args(args)
            entries = [*carry, header]
            carry = []
            deltas.append({"tool_calls": entries})
            for j, frag in enumerate(frags):
                entry = {"index": i, "function": {"arguments": frag}}
                if j == len(frags) - 1 and i + 1 < len(self.tool_calls):
                    carry = [entry]
                else:
                    deltas.append({"tool_calls": [entry]})
        if carry:
            deltas.append({"tool_calls": carry})
        return deltas


def _split_args(args: str) -> list[str]:
    if len(args) <= 4:
        return [args] if args else []
    third = max(1, len(args) // 3)
    return [args[:third], args[third : 2 * third], args[2 * third :]]
