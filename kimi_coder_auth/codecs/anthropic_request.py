"""Anthropic-route encoding: wire messages and options to a ``/messages`` (Messages API) body.

The same neutral input as the OpenAI codec (OpenAI-style wire messages plus
``reasoning_content`` and, from this route, ``thinking_blocks``) and the same shared policy
(:mod:`..request_policy`: thinking vs forced tool choice, effort validation). Rules applied:

* leading system messages become ``system`` text blocks; a system message later in the history
  becomes user text ``<system>...</system>`` (what Kimi Code sends);
* consecutive user turns are merged; ``tool`` messages become ``tool_result`` blocks in the next
  user turn, before any text; no empty text block is ever sent;
* assistant turns: thinking first (``thinking_blocks`` replayed byte for byte, signature
  included; else ``reasoning_content`` as one unsigned ``{"type": "thinking"}`` block; else, on
  a tool-call turn while thinking is on, an unsigned placeholder block), then text, then
  ``tool_use`` blocks with ``input`` as a JSON object; empty assistant turns are dropped;
* images become base64 ``image`` sources (http(s) URLs are fetched and inlined);
* ``max_tokens`` is always sent; thinking is ``{"type": "enabled"}`` (+ ``output_config.effort``)
  or ``{"type": "disabled"}``, never ``budget_tokens``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..catalogue import DEFAULT_MAX_OUTPUT_TOKENS, ModelInfo, get_model_info
from ..errors import ParameterError
from ..images import to_data_url
from ..neutral import BuiltRequest
from ..request_policy import (
    FORCED_TOOL_POLICIES,
    has_remote_images,
    normalize_response_format,
    resolve_tools_and_thinking,
)
from ..schema import normalize_tools
from .openai_request import DEFAULT_REASONING_PLACEHOLDER

__all__ = [
    "ANTHROPIC_VERSION",
    "MESSAGES_PATH",
    "abuild_messages_request",
    "build_messages_request",
    "convert_messages",
]

#: Pinned like Kimi Code and the JS SDKs (the Python SDK's newer default is unverified on Kimi).
ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/messages"

#: Options of the OpenAI route that the Messages API has no field for; sent nowhere, with a warning.
_UNSUPPORTED = ("presence_penalty", "frequency_penalty", "n", "seed")


def _image_block(part: Mapping[str, Any], where: str, images: bool) -> dict[str, Any]:
    if not images:
        raise ValueError(
            f"{where}: this model does not accept images; remove the image or pick a model with "
            "image input."
        )
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, Mapping) else spec
    if not isinstance(url, (str, bytes, bytearray)) or not url:
        raise ValueError(f"{where}: an image_url part has no url; give image_url.url.")
    data_url = url if isinstance(url, str) and url.startswith("data:") else to_data_url(url)
    head, _, data = data_url.partition(",")
    mime = head[5:].split(";", 1)[0] or "image/png"
    if ";base64" not in head:
        raise ValueError(f"{where}: an image data URL must be base64-encoded.")
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def _blocks(content: Any, where: str, images: bool) -> list[dict[str, Any]]:
    """Wire content (str or OpenAI parts) -> Messages content blocks; empty text dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        text = json.dumps(content, ensure_ascii=False) if isinstance(content, Mapping) else str(content)
        return [{"type": "text", "text": text}] if text else []
    out: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, str):
            if p:
                out.append({"type": "text", "text": p})
            continue
        if not isinstance(p, Mapping):
            raise ValueError(f"{where}: content part {p!r} is not a dict or string.")
        kind = p.get("type")
        if kind == "text":
            if p.get("text"):
                out.append({"type": "text", "text": p["text"]})
        elif kind == "image_url":
            out.append(_image_block(p, where, images))
        else:
            raise ValueError(
                f"{where}: content part type {kind!r} cannot be sent on the Anthropic route; "
                "use text and image parts."
            )
    return out


def _tool_input(tc: Mapping[str, Any], where: str) -> tuple[str, str, dict[str, Any]]:
    fn = tc.get("function")
    if isinstance(fn, Mapping):
        name, args = fn.get("name"), fn.get("arguments")
    else:
        name, args = tc.get("name"), tc.get("arguments", tc.get("args"))
    tid = tc.get("id")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a tool call has no function name.")
    if not isinstance(tid, str) or not tid:
        raise ValueError(
            f"{where}: tool call {name!r} has no id; keep the id the server returned "
            "(it must match the tool message's tool_call_id)."
        )
    if isinstance(args, Mapping):
        value: Any = dict(args)
    elif args is None or (isinstance(args, str) and not args.strip()):
        value = {}
    else:
        try:
            value = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            raise ValueError(
                f"{where}: the arguments of tool call {name!r} are not valid JSON; the Anthropic "
                "route needs a JSON object as tool input."
            ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: the arguments of tool call {name!r} must be a JSON object.")
    return tid, name, value


def _thinking(m: Mapping[str, Any], calls: bool, on: bool, placeholder: str) -> list[dict[str, Any]]:
    """The thinking blocks to replay before an assistant turn's text and tool_use blocks."""
    blocks = m.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        out = []
        for b in blocks:
            if isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking"):
                out.append(dict(b))  # verbatim: signature and text exactly as received
        if out:
            return out
    reasoning = m.get("reasoning_content")
    if isinstance(reasoning, str):
        return [{"type": "thinking", "thinking": reasoning}]
    if calls and on:
        return [{"type": "thinking", "thinking": placeholder}]
    return []


def convert_messages(
    messages: Sequence[Mapping[str, Any]],
    *,
    thinking_on: bool,
    reasoning_placeholder: str = DEFAULT_REASONING_PLACEHOLDER,
    images: bool = True,
    warnings: list[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Wire messages -> ``(system blocks, Messages turns)`` (see the module doc for the rules)."""
    warn = warnings if warnings is not None else []
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    seen_other = False

    def user_blocks() -> list[dict[str, Any]]:
        if turns and turns[-1]["role"] == "user":
            return turns[-1]["content"]  # type: ignore[no-any-return]
        turns.append({"role": "user", "content": []})
        return turns[-1]["content"]  # type: ignore[no-any-return]

    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i} is {type(m).__name__}, not a dict with 'role'.")
        role = m.get("role")
        where = f"message {i} ({role})"
        if role in ("system", "developer"):
            blocks = [b for b in _blocks(m.get("content"), where, False) if b["type"] == "text"]
            if not blocks:
                warn.append(f"{where}: empty system message dropped (Kimi rejects empty text).")
                continue
            if not seen_other:
                system.extend(blocks)
            else:
                text = "".join(b["text"] for b in blocks)
                user_blocks().append({"type": "text", "text": f"<system>{text}</system>"})
            continue
        seen_other = True
        if role == "user":
            blocks = _blocks(m.get("content"), where, images)
            if not blocks:
                raise ValueError(
                    f"{where} has no content; Kimi rejects empty text. Remove the message or "
                    "give it text."
                )
            user_blocks().extend(blocks)
        elif role == "assistant":
            calls = [_tool_input(tc, where) for tc in m.get("tool_calls") or []]
            content = [b for b in _blocks(m.get("content"), where, False) if b["type"] == "text"]
            if not content and not calls:
                warn.append(
                    f"{where}: assistant message without text or tool calls dropped "
                    "(Kimi rejects empty assistant messages)."
                )
                continue
            blocks = _thinking(m, bool(calls), thinking_on, reasoning_placeholder)
            blocks += content
            blocks += [{"type": "tool_use", "id": t, "name": n, "input": v} for t, n, v in calls]
            if turns and turns[-1]["role"] == "assistant":
                turns[-1]["content"].extend(blocks)
            else:
                turns.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            tcid = m.get("tool_call_id")
            if not isinstance(tcid, str) or not tcid:
                raise ValueError(
                    f"{where} has no tool_call_id; set it to the id of the tool call it answers."
                )
            result = _blocks(m.get("content"), where, images) or [
                {"type": "text", "text": "(no output)"}
            ]
            target = user_blocks()
            block = {"type": "tool_result", "tool_use_id": tcid, "content": result}
            # tool results answer the previous assistant turn: they go before any user text
            pos = next((j for j, b in enumerate(target) if b.get("type") != "tool_result"), len(target))
            target.insert(pos, block)
        else:
            raise ValueError(
                f"message {i} has unsupported role {role!r}; use system, user, assistant or tool."
            )
    return system, turns


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name")}
    elif isinstance(choice, Mapping) and choice.get("type") in ("auto", "any", "tool", "none"):
        out = dict(choice)
    else:
        raise ValueError(f"tool_choice {choice!r} has no Anthropic-route equivalent.")
    if parallel is False and out is not None and out.get("type") != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _format_instruction(response_format: Mapping[str, Any]) -> str | None:
    """Structured output on this route: the format as a system instruction (the Messages API's
    own format fields are unverified on Kimi, an instruction works either way)."""
    rf = normalize_response_format(response_format)
    kind = rf.get("type")
    if kind == "json_object":
        return "Answer with one JSON object only: no prose, no code fences."
    if kind == "json_schema":
        schema = json.dumps(rf["json_schema"]["schema"], ensure_ascii=False)
        return (
            "Answer with one JSON object only (no prose, no code fences) that matches this JSON "
            f"schema: {schema}"
        )
    return None


def build_messages_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    thinking: bool | None = None,
    effort: str | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    include_usage: bool = True,
    stop: str | Sequence[str] | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: Mapping[str, Any] | None = None,
    forced_tool_policy: str = "disable_thinking",
    model_info: ModelInfo | None = None,
    extra: Mapping[str, Any] | None = None,
    reasoning_placeholder: str = DEFAULT_REASONING_PLACEHOLDER,
    preserve_thinking: bool = False,
    prompt_cache_key: str | None = None,
    **sampling: Any,
) -> BuiltRequest:
    """Build a Kimi ``/messages`` body from the same arguments as the OpenAI ``build_request``.

    ``preserve_thinking`` (Kimi Code's ``thinking.keep = "all"``) becomes a ``context_management``
    ``clear_thinking_20251015`` edit keeping all thinking, sent only while thinking is on;
    ``prompt_cache_key`` becomes ``metadata.user_id``.

    ``include_usage`` is accepted for symmetry (this route always reports usage). Options the
    Messages API has no field for (``presence_penalty``, ``frequency_penalty``, ``n``, ``seed``)
    are not sent and produce a warning; ``extra`` is merged last (``prompt_cache_key`` becomes
    ``metadata.user_id``, Kimi Code's session-affinity field on this route).
    """
    del include_usage
    if forced_tool_policy not in FORCED_TOOL_POLICIES:
        raise ValueError(
            f"forced_tool_policy={forced_tool_policy!r}; use one of {', '.join(FORCED_TOOL_POLICIES)}."
        )
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty model id such as 'kimi-for-coding'.")
    info = model_info if model_info is not None else get_model_info(model)
    warnings: list[str] = []
    norm_tools = normalize_tools(list(tools)) if tools else []
    names = [t["function"]["name"] for t in norm_tools] if norm_tools else []
    choice, tparam, on, relaxed = resolve_tools_and_thinking(
        model, info, names, tool_choice, thinking, effort, forced_tool_policy, warnings
    )
    extra = dict(extra) if extra else {}
    override = extra.get("thinking")
    if isinstance(override, Mapping):
        if override.get("type") == "disabled":
            on = False
        elif override.get("type") in ("enabled", "adaptive"):
            on = True
    system, turns = convert_messages(
        messages,
        thinking_on=on,
        reasoning_placeholder=reasoning_placeholder,
        images=info.supports_image_in or not info.known,
        warnings=warnings,
    )
    if not turns:
        raise ValueError("There are no messages to send; pass at least one user message.")
    if max_tokens is None:
        max_tokens = info.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ParameterError(f"{{max_tokens={max_tokens!r}}} is not a positive integer.")
    if response_format is not None:
        instruction = _format_instruction(response_format)
        if instruction:
            system.append({"type": "text", "text": instruction})
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = system
    if norm_tools:
        body["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description") or "",
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in norm_tools
        ]
        tc = _tool_choice(choice, parallel_tool_calls)
        if tc is not None:
            body["tool_choice"] = tc
    if tparam is not None:
        body["thinking"] = {"type": tparam["type"]}
        if tparam.get("effort") is not None:
            body["output_config"] = {"effort": tparam["effort"]}
    if stream:
        body["stream"] = True
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for key, value in sampling.items():
        if value is None:
            continue
        if key in _UNSUPPORTED:
            warnings.append(f"{key}={value!r} has no equivalent on the Anthropic route; not sent.")
        else:
            body[key] = value
    keep = bool(preserve_thinking) and on
    if keep:
        body["context_management"] = {
            "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]
        }
    cache_key = extra.pop("prompt_cache_key", prompt_cache_key)
    if cache_key is not None:
        body["metadata"] = {"user_id": str(cache_key)}
    body.update(extra)
    return BuiltRequest(
        body, warnings, on, relaxed, keep, str(cache_key) if cache_key is not None else None
    )


async def abuild_messages_request(
    model: str, messages: Sequence[Mapping[str, Any]], **kwargs: Any
) -> BuiltRequest:
    """:func:`build_messages_request` for async code (remote images fetched in a thread)."""
    if has_remote_images(messages):
        return await asyncio.to_thread(build_messages_request, model, messages, **kwargs)
    return build_messages_request(model, messages, **kwargs)
