"""Strict validation of ``/messages`` requests (Anthropic's documented 400s + Kimi's rules), and
the translation of a valid Messages body to the OpenAI-shaped body the responders read.

Rules enforced: ``max_tokens`` required; no empty text blocks; every ``tool_result`` answers a
``tool_use`` of the previous assistant turn (and every ``tool_use`` before the last turn is
answered); thinking blocks first in an assistant turn, and a *signed* thinking block must carry
the signature the emulator issued for exactly that text (an altered block is rejected; an
unsigned one is accepted, as Kimi does); while thinking is on, an assistant turn with
``tool_use`` must carry a thinking block (Kimi's "reasoning_content is missing" 400); a forced
``tool_choice`` (``any`` / ``tool``) while thinking is on; ``tool_reference`` blocks; unknown
models (404) and efforts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from .validation import RequestRejected, _check_schema

__all__ = ["MessagesRejected", "sign_thinking", "to_openai_body", "validate_messages"]

_MEDIA = ("image/png", "image/jpeg", "image/gif", "image/webp")
_JSON_SCHEMA_HINT = re.compile(r"matches this JSON schema: (\{.*\})\s*$", re.S)
_JSON_OBJECT_HINT = "Answer with one JSON object only"


class MessagesRejected(RequestRejected):
    """A ``/messages`` request the service would refuse, with the Anthropic error envelope."""

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.err_type, "message": self.message}}


def _bad(message: str) -> MessagesRejected:
    return MessagesRejected(400, message)


def sign_thinking(key: bytes, text: str) -> str:
    """The signature the emulator issues for a thinking block's text."""
    mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def _blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        if not content:
            raise _bad(f"messages.{i}: text content blocks must be non-empty")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise _bad(f"messages.{i}: content must be a non-empty string or list of blocks")
    for j, b in enumerate(content):
        if not isinstance(b, dict):
            raise _bad(f"messages.{i}.content.{j}: each block must be an object")
        kind = b.get("type")
        if kind == "text" and not b.get("text"):
            raise _bad("messages: text content blocks must be non-empty")
        if kind == "tool_reference":
            raise _bad("Invalid request Error")
        if kind == "image":
            src = b.get("source") or {}
            if src.get("type") != "base64" or src.get("media_type") not in _MEDIA or not src.get("data"):
                raise _bad(f"messages.{i}.content.{j}.image.source: base64 png/jpeg/gif/webp expected")
    return content


def validate_messages(
    body: Any, models: dict[str, dict[str, Any]], key: bytes
) -> tuple[dict[str, Any], bool]:
    """Check a Messages request like the strict service; returns (model entry, thinking on)."""
    if not isinstance(body, dict):
        raise _bad("Invalid request: the request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise _bad("model: Field required")
    model = models.get(model_id)
    if model is None:
        raise MessagesRejected(404, f"model: {model_id}", "not_found_error")
    mt = body.get("max_tokens")
    if mt is None:
        raise _bad("max_tokens: Field required")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt <= 0:
        raise _bad("max_tokens: Input should be a positive integer")
    kind = model.get("supports_thinking_type") or ("both" if model.get("supports_reasoning") else "no")
    thinking = body.get("thinking")
    think = kind == "only" or (kind == "both")
    if thinking is not None:
        ttype = thinking.get("type") if isinstance(thinking, dict) else None
        if ttype not in ("enabled", "disabled", "adaptive"):
            raise _bad("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
        if ttype == "disabled":
            if kind == "only":
                raise _bad(f"thinking cannot be disabled for model {model_id}")
            think = False
    if kind == "no":
        think = False
    effort = (body.get("output_config") or {}).get("effort") if isinstance(body.get("output_config"), dict) else None
    if effort is not None:
        efforts = (model.get("think_efforts") or {}).get("valid_efforts") or []
        if effort not in efforts:
            raise _bad(f"output_config.effort {effort!r} is not supported by {model_id}; valid: {efforts}")

    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _blocks(system, -1)

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: at least one message is required")
    pending: set[str] = set()
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = _blocks(m.get("content"), i)
        if m["role"] == "user":
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            extra = answered - pending
            if extra:
                raise _bad(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{sorted(map(str, extra))[0]}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
            if pending - answered:
                raise _bad(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {sorted(pending - answered)[0]}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
            pending = set()
            continue
        if pending:
            raise _bad(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after")
        seen_other = False
        has_thinking = False
        uses: set[str] = set()
        for b in blocks:
            t = b.get("type")
            if t in ("thinking", "redacted_thinking"):
                if seen_other:
                    raise _bad(f"messages.{i}: thinking blocks must come before text and tool_use blocks")
                has_thinking = True
                if t == "thinking":
                    if not isinstance(b.get("thinking"), str):
                        raise _bad(f"messages.{i}: thinking.thinking: Field required")
                    sig = b.get("signature")
                    if sig is not None and not hmac.compare_digest(str(sig), sign_thinking(key, b["thinking"])):
                        raise _bad(f"messages.{i}: Invalid `signature` in `thinking` block")
                continue
            seen_other = True
            if t == "tool_use":
                if not b.get("id") or not b.get("name"):
                    raise _bad(f"messages.{i}: tool_use blocks need id and name")
                if not isinstance(b.get("input"), dict):
                    raise _bad(f"messages.{i}: tool_use.input: Input should be a valid dictionary")
                uses.add(str(b["id"]))
            elif t == "tool_result":
                raise _bad(f"messages.{i}: tool_result blocks belong in user messages")
        if uses and think and not has_thinking:
            raise _bad(
                "thinking is enabled but reasoning_content is missing in assistant tool call message "
                f"at index {i}"
            )
        pending = uses
    names: set[str] = set()
    for t in body.get("tools") or []:
        if not isinstance(t, dict) or not t.get("name") or not isinstance(t.get("input_schema"), dict):
            raise _bad("tools: each tool needs name and input_schema")
        names.add(t["name"])
        _check_schema(t["input_schema"], t["name"], "")
    tc = body.get("tool_choice")
    if tc is not None:
        ctype = tc.get("type") if isinstance(tc, dict) else None
        if ctype not in ("auto", "any", "tool", "none"):
            raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if ctype in ("any", "tool") and think:
            raise _bad("Thinking may not be enabled when tool_choice forces tool use.")
        if ctype == "tool" and tc.get("name") not in names:
            raise _bad(f"tool_choice.name: tool {tc.get('name')!r} is not in tools")
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise _bad("stop_sequences: Input should be a list of strings")
    return model, think


def _text(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    return "".join(b.get("text") or "" for b in blocks or [] if isinstance(b, dict) and b.get("type") == "text")


def _user_parts(blocks: list[dict[str, Any]]) -> Any:
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if b.get("type") == "text":
            parts.append({"type": "text", "text": b["text"]})
        elif b.get("type") == "image":
            src = b["source"]
            parts.append({"type": "image_url", "image_url": {"url": f"data:{src['media_type']};base64,{src['data']}"}})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def to_openai_body(body: dict[str, Any]) -> dict[str, Any]:
    """The same request in the OpenAI shape, for the shared responders."""
    messages: list[dict[str, Any]] = []
    system = _text(body.get("system"))
    out: dict[str, Any] = {"model": body["model"], "max_tokens": body["max_tokens"]}
    match = _JSON_SCHEMA_HINT.search(system)
    if match:
        try:
            out["response_format"] = {"type": "json_schema", "json_schema": {"schema": json.loads(match.group(1))}}
        except ValueError:
            pass
    elif _JSON_OBJECT_HINT in system:
        out["response_format"] = {"type": "json_object"}
    if system:
        messages.append({"role": "system", "content": system})
    for m in body["messages"]:
        blocks = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        if m["role"] == "user":
            for b in blocks:
                if b.get("type") == "tool_result":
                    content = b.get("content")
                    messages.append({"role": "tool", "tool_call_id": b["tool_use_id"],
                                     "content": _text(content) if not isinstance(content, str) else content})
            rest = [b for b in blocks if b.get("type") in ("text", "image")]
            if rest:
                messages.append({"role": "user", "content": _user_parts(rest)})
            continue
        msg: dict[str, Any] = {"role": "assistant", "content": _text(blocks)}
        thinking = [b.get("thinking") or "" for b in blocks if b.get("type") == "thinking"]
        if thinking:
            msg["reasoning_content"] = "".join(thinking)
        calls = [
            {"id": b["id"], "type": "function",
             "function": {"name": b["name"], "arguments": json.dumps(b["input"], ensure_ascii=False)}}
            for b in blocks if b.get("type") == "tool_use"
        ]
        if calls:
            msg["tool_calls"] = calls
        messages.append(msg)
    out["messages"] = messages
    if body.get("tools"):
        out["tools"] = [
            {"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                              "parameters": t["input_schema"]}}
            for t in body["tools"]
        ]
    tc = body.get("tool_choice")
    if isinstance(tc, dict):
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}.get(
            tc.get("type"), {"type": "function", "function": {"name": tc.get("name")}})
        if tc.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    return out
