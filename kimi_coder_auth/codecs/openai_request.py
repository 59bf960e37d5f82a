"""OpenAI-route encoding: wire messages and options to a ``/chat/completions`` body.

Kimi's rules live here once: flattened text content, no empty text, reasoning replayed on
tool-call turns, thinking vs forced ``tool_choice``, images inlined as data URLs, typed tool
schemas.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..catalogue import ModelInfo, get_model_info
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
from .openai_response import replay_reasoning_details

__all__ = ["DEFAULT_REASONING_PLACEHOLDER", "abuild_request", "build_request", "prepare_messages"]

#: Sent as ``reasoning_content`` on an assistant tool-call turn that has none while thinking is
#: on. A single space, not ``""``: Kimi's check is "reasoning_content is missing", and a space
#: passes both a key-presence check and a non-empty check, while carrying no meaning. A
#: ``reasoning_content`` that *was* captured (``""`` included) is always replayed verbatim.
DEFAULT_REASONING_PLACEHOLDER = " "


_TEXT = "text"
_IMAGE = "image_url"


def _image_part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, Mapping) else spec
    if not isinstance(url, (str, bytes, bytearray)) or not url:
        raise ValueError(f"{where}: an image_url part has no url; give image_url.url.")
    keep = isinstance(url, str) and url.startswith(("data:", "ms://"))
    final = url if keep else to_data_url(url)
    out: dict[str, Any] = {"url": final}
    if isinstance(spec, Mapping) and spec.get("id") is not None:
        out["id"] = spec["id"]
    return {"type": _IMAGE, "image_url": out}


def _content_parts(content: Any, where: str, *, images: bool) -> tuple[str, list[dict[str, Any]]]:
    """Return (joined text, []) for text-only content, or ("", parts) when media is present
    (the full part list in order, empty text parts dropped, images as data URLs)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        if isinstance(content, (Mapping, int, float, bool)):
            return json.dumps(content, ensure_ascii=False), []
        return str(content), []
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    media = False
    for p in content:
        if isinstance(p, str):
            if p:
                texts.append(p)
                parts.append({"type": _TEXT, "text": p})
            continue
        if not isinstance(p, Mapping):
            raise ValueError(f"{where}: content part {p!r} is not a dict or string.")
        kind = p.get("type")
        if kind == _TEXT:
            t = p.get("text")
            if t:
                texts.append(t)
                parts.append({"type": _TEXT, "text": t})
        elif kind == _IMAGE:
            if not images:
                raise ValueError(
                    f"{where}: this model does not accept images; remove the image or pick a "
                    "model with image input."
                )
            media = True
            parts.append(_image_part(p, where))
        elif kind == "video_url":
            media = True
            parts.append({"type": "video_url", "video_url": dict(p.get("video_url") or {})})
        else:
            raise ValueError(
                f"{where}: unsupported content part type {kind!r}; wire messages take 'text', "
                "'image_url' and 'video_url' parts (adapters convert the rest)."
            )
    if media:
        return "", parts
    return "".join(texts), []


def _tool_call(tc: Mapping[str, Any], where: str) -> dict[str, Any]:
    fn = tc.get("function")
    if isinstance(fn, Mapping):
        name, args = fn.get("name"), fn.get("arguments")
    else:  # tolerate the flat {"id","name","args"} shape frameworks use
        name, args = tc.get("name"), tc.get("arguments", tc.get("args"))
    tid = tc.get("id")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a tool call has no function name.")
    if not isinstance(tid, str) or not tid:
        raise ValueError(
            f"{where}: tool call {name!r} has no id; keep the id the server returned "
            "(it must match the tool message's tool_call_id)."
        )
    if args is None or args == "":
        args = "{}"
    elif not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    return {"type": "function", "id": tid, "function": {"name": name, "arguments": args}}


_PASSTHROUGH_KEYS = ("name", "partial")


def _prepare(
    messages: Sequence[Mapping[str, Any]],
    thinking_on: bool,
    placeholder: str,
    images: bool,
    warnings: list[str],
    keep_all: bool = False,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i} is {type(m).__name__}, not a dict with 'role'.")
        role = m.get("role")
        where = f"message {i} ({role})"
        if role == "developer":
            role = "system"
        msg: dict[str, Any]
        if role in ("system", "user"):
            text, parts = _content_parts(m.get("content"), where, images=images)
            if parts:
                msg = {"role": role, "content": parts}
            elif text:
                msg = {"role": role, "content": text}
            elif role == "system":
                warnings.append(f"{where}: empty system message dropped (Kimi rejects empty text).")
                continue
            else:
                raise ValueError(
                    f"{where} has no content; Kimi rejects empty text. Remove the message or "
                    "give it text."
                )
        elif role == "assistant":
            text, parts = _content_parts(m.get("content"), where, images=images)
            raw_calls = m.get("tool_calls") or []
            calls = [_tool_call(tc, where) for tc in raw_calls]
            reasoning = m.get("reasoning_content")
            details = replay_reasoning_details(m.get("reasoning_details"))
            if reasoning is None and details:
                # K3: the details are replayed with reasoning_content beside them, as Kimi Code does
                reasoning = "".join(
                    d["summary"] for d in details if isinstance(d.get("summary"), str)
                )
            if not text and not parts and not calls:
                warnings.append(
                    f"{where}: assistant message without text or tool calls dropped "
                    "(Kimi rejects empty assistant messages)."
                )
                continue
            msg = {"role": "assistant"}
            if parts:
                msg["content"] = parts
            elif text:
                msg["content"] = text
            # tool-call turn without text: the content key is omitted ("text content is empty")
            if reasoning is not None:
                msg["reasoning_content"] = reasoning if isinstance(reasoning, str) else str(
                    reasoning
                )
            elif keep_all and thinking_on:
                msg["reasoning_content"] = ""  # Kimi Code's keep=all: every assistant turn
            elif calls and thinking_on:
                msg["reasoning_content"] = placeholder
            if details:
                msg["reasoning_details"] = details
            if calls:
                msg["tool_calls"] = calls
        elif role == "tool":
            tcid = m.get("tool_call_id")
            if not isinstance(tcid, str) or not tcid:
                raise ValueError(
                    f"{where} has no tool_call_id; set it to the id of the tool call it answers."
                )
            text, parts = _content_parts(m.get("content"), where, images=images)
            if parts:
                msg = {"role": "tool", "tool_call_id": tcid, "content": parts}
            else:
                # An empty tool result would be rejected as empty text; say so explicitly.
                msg = {"role": "tool", "tool_call_id": tcid, "content": text or "(no output)"}
        else:
            raise ValueError(
                f"message {i} has unsupported role {role!r}; use system, user, assistant or tool."
            )
        for key in _PASSTHROUGH_KEYS:
            if key in m and m[key] is not None and role != "tool":
                msg[key] = m[key]
        out.append(msg)
    return out


def prepare_messages(
    messages: Sequence[Mapping[str, Any]],
    *,
    thinking_on: bool,
    reasoning_placeholder: str = DEFAULT_REASONING_PLACEHOLDER,
    images: bool = True,
) -> list[dict[str, Any]]:
    """Apply Kimi's request rules to wire messages (returns new dicts; input is not mutated).

    Text-only part lists become one string (empty parts dropped); tool-call turns without text
    omit ``content``; captured ``reasoning_content`` (``""`` included) is replayed verbatim and
    a tool-call turn without it gets ``reasoning_placeholder`` while thinking is on; ``developer``
    becomes ``system``; http(s)/path images become data URLs; empty system messages and
    assistant turns with neither text nor tool calls are dropped; an empty tool result is sent
    as ``"(no output)"``. ``images=False`` rejects image parts with a clear error.
    """
    return _prepare(messages, thinking_on, reasoning_placeholder, images, [])


def build_request(
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
    """Build a Kimi ``/chat/completions`` body (see module doc for the rules applied).

    ``forced_tool_policy`` decides what happens when the tool choice is forced (``"required"``
    or a named tool) while thinking would be on, which Kimi rejects: ``"disable_thinking"``
    (default) sends ``thinking: disabled`` for this request when the model allows it, else falls
    back to ``"auto"`` with a warning; ``"auto"`` always falls back with a warning; ``"error"``
    raises ``ValueError``. Sampling kwargs are sent only when not None; ``extra`` is merged last
    (a ``thinking`` dict in ``extra`` is merged key by key into the one built here, so
    ``{"thinking": {"keep": "all"}}`` keeps the type and effort).

    ``preserve_thinking``: Kimi Code's ``thinking.keep = "all"``, sent only while thinking is on;
    every assistant message then carries ``reasoning_content`` (``""`` when none was captured).
    ``prompt_cache_key``: sent as the body's ``prompt_cache_key`` (None = none).
    """
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

    extra_thinking = extra.get("thinking") if extra else None
    if isinstance(extra_thinking, Mapping):
        # An explicit override wins; the placeholder rule must follow what is actually sent.
        t = extra_thinking.get("type")
        if t == "disabled":
            on = False
            tparam = dict(extra_thinking)
        else:
            if t in ("enabled", "adaptive"):
                on = True
            tparam = {**(tparam or {}), **extra_thinking}
        if extra_thinking.get("keep") == "all":
            preserve_thinking = True
    keep = bool(preserve_thinking) and on
    if keep:
        tparam = {"type": "enabled", **(tparam or {})}
        tparam.setdefault("keep", "all")
    elif tparam is not None and "keep" in tparam and not on:
        tparam = {k: v for k, v in tparam.items() if k != "keep"}

    prepared = _prepare(
        messages, on, reasoning_placeholder, info.supports_image_in or not info.known, warnings,
        keep,
    )
    if not prepared:
        raise ValueError("There are no messages to send; pass at least one user message.")
    body: dict[str, Any] = {"model": model, "messages": prepared}
    if norm_tools:
        body["tools"] = norm_tools
    if choice is not None:
        body["tool_choice"] = choice
    if tparam is not None:
        body["thinking"] = tparam
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ParameterError(f"{{max_tokens={max_tokens!r}}} is not a positive integer.")
        body["max_completion_tokens"] = max_tokens
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    if stop:
        body["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if parallel_tool_calls is not None and norm_tools:
        body["parallel_tool_calls"] = parallel_tool_calls
    if response_format is not None:
        body["response_format"] = normalize_response_format(response_format)
    for key, value in sampling.items():
        if value is not None:
            body[key] = value
    if prompt_cache_key is not None:
        body["prompt_cache_key"] = prompt_cache_key
    if extra:
        body.update(extra)
        if tparam is not None:
            body["thinking"] = tparam
    cache_key = body.get("prompt_cache_key")
    return BuiltRequest(
        body, warnings, on, relaxed, keep, cache_key if isinstance(cache_key, str) else None
    )


async def abuild_request(model: str, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> (
    BuiltRequest
):
    """:func:`build_request` for async code: runs in a thread only when remote images must be
    fetched, so the event loop never blocks on the network."""
    if has_remote_images(messages):
        return await asyncio.to_thread(build_request, model, messages, **kwargs)
    return build_request(model, messages, **kwargs)
