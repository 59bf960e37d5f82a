"""LangChain messages <-> Kimi wire messages (OpenAI chat dicts plus ``reasoning_content``).

Only the framework-specific half lives here: which LangChain block shapes mean text, images,
reasoning and tool calls. Kimi's request rules (flattening, empty-content rules, the reasoning
placeholder, fetching remote images) are applied afterwards by ``kimi_coder_auth.wire``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call

if TYPE_CHECKING:
    from kimi_coder_auth.wire import Completion, Usage
    from kimi_coder_auth.wire import ToolCall as WireToolCall

__all__ = [
    "MODEL_PROVIDER",
    "completion_to_message",
    "convert_messages",
    "message_to_wire",
    "parse_tool_calls",
    "reasoning_of",
    "thinking_blocks_of",
    "usage_to_metadata",
]

#: ``response_metadata["model_provider"]`` on every message this package produces.
MODEL_PROVIDER = "kimi-coder"

_AI_SKIPPED_BLOCKS = frozenset(
    {
        "reasoning",
        "thinking",
        "redacted_thinking",
        "tool_call",
        "tool_call_chunk",
        "tool_use",
        "function_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "invalid_tool_call",
        "non_standard",
        "citation",
    }
)
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "developer": "system"}


# --------------------------------------------------------------------------- images


def _image_data_url(data: str | bytes, mime: str | None) -> str:
    """A data URL for base64 image data; the mime type is sniffed when not given."""
    from kimi_coder_auth.wire import to_data_url

    if isinstance(data, str) and data.startswith("data:"):
        return data
    if mime and isinstance(data, str):
        return f"data:{mime};base64,{data}"
    try:
        raw = data if isinstance(data, bytes) else base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "An image block's base64 data is not valid base64; pass the raw base64 string of "
            "a png, jpeg, gif or webp file."
        ) from None
    return to_data_url(raw, mime)


def _image_part(url: str) -> dict[str, Any]:
    # http(s) and file URLs are fetched and inlined by wire.prepare_messages (Kimi rejects them).
    return {"type": "image_url", "image_url": {"url": url}}


def _convert_image_block(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Any LangChain image block form -> an OpenAI ``image_url`` part."""
    kind = block.get("type")
    if kind == "image_url":
        spec = block.get("image_url")
        url = spec.get("url") if isinstance(spec, Mapping) else spec
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: an image_url block has no url; set image_url.url.")
        return _image_part(url)
    mime = block.get("mime_type")
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic-style {"type":"image","source":{...}}
        stype = source.get("type")
        if stype == "base64":
            return _image_part(_image_data_url(source.get("data") or "", source.get("media_type")))
        if stype == "url" and isinstance(source.get("url"), str):
            return _image_part(source["url"])
        raise ValueError(
            f"{where}: image source type {stype!r} is not supported; use base64 or url."
        )
    source_type = block.get("source_type")  # v0 data blocks
    if source_type == "base64" or (source_type is None and block.get("base64")):
        data = block.get("data") if source_type == "base64" else block.get("base64")
        if not data:
            raise ValueError(f"{where}: an image block has no base64 data.")
        return _image_part(_image_data_url(data, mime))
    url = block.get("url")
    if source_type == "url" or (source_type is None and isinstance(url, str)):
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: an image block has no url.")
        return _image_part(url)
    if block.get("file_id") or source_type == "id":
        raise ValueError(
            f"{where}: image blocks that reference a provider file id cannot be sent to Kimi; "
            "pass the image as base64 data or a URL instead."
        )
    raise ValueError(
        f"{where}: the image block has no data; give 'base64' (with 'mime_type') or 'url'."
    )


def _is_image_block(block: Mapping[str, Any]) -> bool:
    kind = block.get("type")
    if kind in ("image_url", "image"):
        return True
    return kind == "file" and str(block.get("mime_type") or "").startswith("image/")


def _convert_parts(content: Any, where: str, *, assistant: bool = False) -> str | list[Any]:
    """LangChain content -> wire content (a str, or a list of text/image_url parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return str(content)
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            if block:
                parts.append({"type": "text", "text": block})
            continue
        if not isinstance(block, Mapping):
            raise ValueError(f"{where}: content item {block!r} is not a string or dict.")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if text:
                parts.append({"type": "text", "text": text})
        elif _is_image_block(block):
            if assistant:
                continue  # Kimi takes images from users and tools only
            parts.append(_convert_image_block(block, where))
        elif kind == "video_url":
            parts.append({"type": "video_url", "video_url": dict(block.get("video_url") or {})})
        elif assistant and (kind in _AI_SKIPPED_BLOCKS or kind is None):
            continue  # reasoning and tool calls travel in their own keys
        elif kind in ("file", "audio", "video", "input_audio", "document", "pdf"):
            raise ValueError(
                f"{where}: Kimi Coding accepts text and images; a {kind!r} block cannot be "
                "sent. Extract its text (or render pages as images) first."
            )
        else:
            raise ValueError(
                f"{where}: content block type {kind!r} is not supported; use text or image blocks."
            )
    if all(p.get("type") == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


# --------------------------------------------------------------------------- reasoning


def reasoning_of(message: AIMessage) -> str | None:
    """The reasoning to replay for an assistant message, or None when it has none we may send.

    Taken from ``additional_kwargs["reasoning_content"]`` or else v1 ``reasoning`` blocks, ``""``
    kept. Messages from another provider (``response_metadata.model_provider``) are skipped: their
    reasoning is not Kimi's and may be opaque.
    """
    provider = message.response_metadata.get("model_provider") if message.response_metadata else None
    if provider and provider != MODEL_PROVIDER:
        return None
    value = message.additional_kwargs.get("reasoning_content")
    if isinstance(value, str):
        return value
    if isinstance(message.content, list):
        pieces = [
            block.get("reasoning")
            for block in message.content
            if isinstance(block, Mapping) and block.get("type") == "reasoning"
        ]
        texts = [p for p in pieces if isinstance(p, str)]
        if texts:
            return "".join(texts)
    return None


def thinking_blocks_of(message: AIMessage) -> list[dict[str, Any]] | None:
    """The Anthropic-route thinking blocks to replay byte for byte (signatures included), from
    ``additional_kwargs["thinking_blocks"]`` or else v1 ``reasoning`` blocks that carry
    ``extras.signature``; None when there are none (``reasoning_of`` then supplies the text).
    Another provider's blocks are never replayed (their signatures are not Kimi's)."""
    provider = message.response_metadata.get("model_provider") if message.response_metadata else None
    if provider and provider != MODEL_PROVIDER:
        return None
    blocks = message.additional_kwargs.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        return [dict(b) for b in blocks if isinstance(b, Mapping)]
    if isinstance(message.content, list):
        out: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, Mapping) and block.get("type") == "reasoning":
                extras = block.get("extras") or {}
                sig = extras.get("signature") if isinstance(extras, Mapping) else None
                if isinstance(sig, str):
                    out.append({"type": "thinking", "thinking": block.get("reasoning") or "",
                                "signature": sig})
        return out or None
    return None


def _signed(message: Any, blocks: list[Any]) -> list[Any]:
    """Standard content blocks with the reasoning blocks carrying the thinking signatures
    (``extras.signature``, as langchain-anthropic puts them)."""
    thinking = message.additional_kwargs.get("thinking_blocks")
    if not isinstance(thinking, list) or not thinking:
        return blocks
    signed = [
        {"type": "reasoning", "reasoning": b.get("thinking", ""),
         **({"extras": {"signature": b["signature"]}} if b.get("signature") is not None else {})}
        for b in thinking
        if isinstance(b, Mapping) and b.get("type") == "thinking"
    ]
    rest = [b for b in blocks if not (isinstance(b, Mapping) and b.get("type") == "reasoning")]
    return [*signed, *rest]


def _translate(message: AIMessage) -> list[Any]:
    if not message.additional_kwargs.get("thinking_blocks"):
        raise NotImplementedError  # LangChain's best-effort parsing is right then
    plain = message.model_copy(update={"response_metadata": {}})
    return _signed(message, plain.content_blocks)


def _register_translator() -> None:
    """Let ``content_blocks`` (and v1 output) show Kimi's thinking signatures."""
    try:
        from langchain_core.messages.block_translators import register_translator
    except ImportError:  # pragma: no cover - older langchain-core
        return
    register_translator(MODEL_PROVIDER, _translate, _translate)  # type: ignore[arg-type]


_register_translator()


# --------------------------------------------------------------------------- LangChain -> wire


def _tool_call_to_wire(tc: ToolCall | InvalidToolCall) -> dict[str, Any]:
    from kimi_coder_auth.wire import tool_call_dict

    return tool_call_dict(tc.get("id"), tc.get("name"), tc.get("args"))


def message_to_wire(message: BaseMessage, index: int = 0) -> dict[str, Any]:
    """Convert one LangChain message to a wire message dict."""
    where = f"message {index} ({message.type})"
    out: dict[str, Any]
    if isinstance(message, AIMessage):
        out = {"role": "assistant", "content": _convert_parts(message.content, where, assistant=True)}
        calls = [_tool_call_to_wire(tc) for tc in message.tool_calls]
        calls += [_tool_call_to_wire(tc) for tc in message.invalid_tool_calls]
        if calls:
            out["tool_calls"] = calls
        reasoning = reasoning_of(message)
        if reasoning is not None:
            out["reasoning_content"] = reasoning
        details = message.additional_kwargs.get("reasoning_details")
        provider = (message.response_metadata or {}).get("model_provider")
        if isinstance(details, list) and details and provider in (None, MODEL_PROVIDER):
            out["reasoning_details"] = details  # K3; the core drops the streaming index
        thinking = thinking_blocks_of(message)
        if thinking:
            out["thinking_blocks"] = thinking
            if reasoning is None:  # the OpenAI route replays the same reasoning as text
                out["reasoning_content"] = "".join(
                    b.get("thinking") or "" for b in thinking if b.get("type") == "thinking"
                )
        if message.additional_kwargs.get("partial"):
            out["partial"] = True
    elif isinstance(message, HumanMessage):
        out = {"role": "user", "content": _convert_parts(message.content, where)}
    elif isinstance(message, SystemMessage):
        out = {"role": "system", "content": _convert_parts(message.content, where)}
    elif isinstance(message, ToolMessage):
        content = message.content
        if isinstance(content, list):
            wire_content: Any = _convert_parts(content, where)
        elif isinstance(content, str):
            wire_content = content
        else:
            wire_content = json.dumps(content, ensure_ascii=False, default=str)
        out = {"role": "tool", "tool_call_id": message.tool_call_id, "content": wire_content}
        return out
    elif isinstance(message, ChatMessage):
        role = _ROLE_ALIASES.get(message.role, message.role)
        out = {"role": role, "content": _convert_parts(message.content, where, assistant=role == "assistant")}
    elif isinstance(message, FunctionMessage):
        raise ValueError(
            f"{where}: FunctionMessage (legacy OpenAI functions) is not supported; use "
            "ToolMessage with the tool call's id."
        )
    else:
        raise ValueError(f"{where}: unsupported message type {type(message).__name__}.")
    if message.name:
        out["name"] = message.name
    return out


def convert_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert a LangChain conversation to wire messages (Kimi's rules are applied later)."""
    return [message_to_wire(m, i) for i, m in enumerate(messages)]


# --------------------------------------------------------------------------- wire -> LangChain


def usage_to_metadata(usage: Usage) -> UsageMetadata:
    """The core's ``Usage`` as LangChain ``UsageMetadata`` (cache reads and reasoning included)."""
    meta = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cache_read is not None or usage.cache_creation is not None:
        details: dict[str, int] = {}
        if usage.cache_read is not None:
            details["cache_read"] = usage.cache_read
        if usage.cache_creation is not None:
            details["cache_creation"] = usage.cache_creation
        meta["input_token_details"] = details  # type: ignore[typeddict-item]
    if usage.reasoning_tokens is not None:
        meta["output_token_details"] = {"reasoning": usage.reasoning_tokens}
    return meta


def parse_tool_calls(
    calls: Sequence[WireToolCall],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Finished wire tool calls -> LangChain tool calls; unparsable arguments become invalid."""
    good: list[ToolCall] = []
    bad: list[InvalidToolCall] = []
    for call in calls:
        raw = call.arguments
        error = getattr(call, "error", None)
        if error:  # e.g. fragments for a call the stream never named: not a tool named ""
            bad.append(invalid_tool_call(name=call.name or None, args=raw, id=call.id, error=error))
            continue
        try:
            args = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            bad.append(invalid_tool_call(name=call.name, args=raw, id=call.id, error=str(exc)))
            continue
        if not isinstance(args, dict):
            bad.append(
                invalid_tool_call(
                    name=call.name, args=raw, id=call.id,
                    error="tool arguments are not a JSON object",
                )
            )
            continue
        good.append(tool_call(name=call.name, args=args, id=call.id))
    return good, bad


def completion_to_message(
    completion: Completion,
    *,
    model: str,
    trace_id: str | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
) -> AIMessage:
    """A non-streaming completion as an ``AIMessage`` (v0 shape; core converts to v1)."""
    additional: dict[str, Any] = {}
    if completion.reasoning_content is not None:
        additional["reasoning_content"] = completion.reasoning_content
    if completion.reasoning_details:
        additional["reasoning_details"] = completion.reasoning_details
    if completion.thinking_blocks:
        additional["thinking_blocks"] = completion.thinking_blocks
    tool_calls, invalid = parse_tool_calls(completion.tool_calls)
    metadata: dict[str, Any] = {
        "model_name": completion.model or model,
        "model_provider": MODEL_PROVIDER,
        "finish_reason": completion.finish_reason,
        "protocol": completion.protocol,
    }
    if completion.id:
        metadata["id"] = completion.id
    if trace_id:
        metadata["x_trace_id"] = trace_id
    if extra_metadata:
        metadata.update(extra_metadata)
    return AIMessage(
        content=completion.content,
        additional_kwargs=additional,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_to_metadata(completion.usage) if completion.usage else None,
        response_metadata=metadata,
        id=completion.id,
    )


