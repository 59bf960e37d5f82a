"""LlamaIndex `ChatMessage` <-> Kimi *wire messages* (OpenAI-style dicts), and back.

Only the framework side lives here: which block becomes which key. The Kimi rules (placeholder
reasoning, omitted empty content on tool-call turns, flattening) are applied by
`kimi_coder_auth.wire.build_request`, shared with the LangChain adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    CachePoint,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)

from kimi_coder_auth.wire import to_data_url, tool_call_dict, tool_calls_to_dicts, usage_counts

if TYPE_CHECKING:
    from kimi_coder_auth.wire import Completion, ToolCall

#: Kept for callers of the earlier adapter-local names; the mapping lives in the core.
usage_to_dict = usage_counts

__all__ = [
    "completion_to_message",
    "message_to_wire",
    "messages_to_wire",
    "reasoning_of",
    "thinking_blocks_of",
    "tool_calls_to_dicts",
    "usage_to_dict",
]

_ROLE_MAP = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}


def _role(message: ChatMessage) -> str:
    role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    try:
        return _ROLE_MAP[role]
    except KeyError:
        raise ValueError(
            f"KimiCoderLLM cannot send a message with role {role!r}; use one of "
            "system, user, assistant or tool."
        ) from None


def _image_url(block: ImageBlock) -> str:
    """An `ImageBlock` as a base64 data URL (Kimi rejects http(s) image URLs).

    Bytes and files are encoded here; an http(s) URL is passed on and inlined by
    `wire.build_request` (`abuild_request` fetches it off the event loop).
    """
    if block.image is not None:
        raw = block.resolve_image(as_base64=False).read()
        return to_data_url(raw, block.image_mimetype)
    if block.path is not None:
        return to_data_url(block.path, block.image_mimetype)
    if block.url is not None:
        url = str(block.url)
        if url.startswith(("http://", "https://", "data:")):
            return url
        return to_data_url(url, block.image_mimetype)
    raise ValueError("An ImageBlock has no image, path or url; give it one of them.")


def _parts(message: ChatMessage, role: str) -> str | list[dict[str, Any]]:
    """The content of a message: a str when it is text only, else a list of parts."""
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    has_image = False
    for block in message.blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            has_image = True
            part: dict[str, Any] = {"type": "image_url", "image_url": {"url": _image_url(block)}}
            parts.append(part)
        elif isinstance(block, (ThinkingBlock, ToolCallBlock, CachePoint)):
            continue  # reasoning and tool calls travel in their own keys; cache points unused
        elif isinstance(block, (AudioBlock, VideoBlock, DocumentBlock)):
            raise ValueError(
                f"KimiCoderLLM cannot send a {type(block).__name__} in a {role} message; "
                "the Kimi Coding API accepts text and images. Extract the text first "
                "(e.g. with a reader) and send it as a TextBlock."
            )
        else:
            text = getattr(block, "text", None)
            if isinstance(text, str):
                texts.append(text)
                parts.append({"type": "text", "text": text})
            else:
                raise ValueError(
                    f"KimiCoderLLM cannot send a {type(block).__name__} block; "
                    "use TextBlock or ImageBlock."
                )
    if not has_image:
        return "\n".join(texts)
    return parts


def _tool_call_from_kwargs(raw: Any, index: int) -> dict[str, Any]:
    """One `additional_kwargs["tool_calls"]` entry (dict or OpenAI SDK object) as a wire dict."""
    if isinstance(raw, Mapping):
        fn = raw.get("function") or {}
        call_id = raw.get("id")
        name = fn.get("name") if isinstance(fn, Mapping) else getattr(fn, "name", None)
        args = fn.get("arguments") if isinstance(fn, Mapping) else getattr(fn, "arguments", None)
    else:
        fn = getattr(raw, "function", None)
        call_id = getattr(raw, "id", None)
        name = getattr(fn, "name", None)
        args = getattr(fn, "arguments", None)
    if not name:
        raise ValueError(
            f"additional_kwargs['tool_calls'][{index}] has no function name; "
            "give each tool call {'id', 'function': {'name', 'arguments'}}."
        )
    return tool_call_dict(call_id or f"{name}:{index}", name, args)


def _assistant_tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    if blocks:
        return [
            tool_call_dict(b.tool_call_id or f"{b.tool_name}:{i}", b.tool_name, b.tool_kwargs)
            for i, b in enumerate(blocks)
        ]
    raw = message.additional_kwargs.get("tool_calls")
    if not raw:
        return []
    return [_tool_call_from_kwargs(tc, i) for i, tc in enumerate(raw)]


def reasoning_of(message: ChatMessage) -> str | None:
    """The reasoning to replay for an assistant message: ThinkingBlocks first, then the
    `reasoning_content` key of `additional_kwargs`; None when the message carries none."""
    found = False
    pieces: list[str] = []
    for block in message.blocks:
        if isinstance(block, ThinkingBlock):
            found = True
            if block.content:
                pieces.append(block.content)
    if found:
        return "".join(pieces)
    value = message.additional_kwargs.get("reasoning_content")
    return value if isinstance(value, str) else None


def thinking_blocks_of(message: ChatMessage) -> list[dict[str, Any]] | None:
    """Anthropic-route thinking blocks to replay byte for byte: the message's `ThinkingBlock`s
    when one of them carries `additional_information["signature"]` (or a redacted block);
    None otherwise (the reasoning text is then replayed unsigned)."""
    thinking = [b for b in message.blocks if isinstance(b, ThinkingBlock)]
    infos = [b.additional_information or {} for b in thinking]
    if not any("signature" in i or "redacted_thinking" in i for i in infos):
        return None
    out: list[dict[str, Any]] = []
    for block, info in zip(thinking, infos, strict=True):
        if "redacted_thinking" in info:
            out.append({"type": "redacted_thinking", "data": info["redacted_thinking"]})
            continue
        item: dict[str, Any] = {"type": "thinking", "thinking": block.content or ""}
        if info.get("signature") is not None:
            item["signature"] = info["signature"]
        out.append(item)
    return out


def message_to_wire(message: ChatMessage) -> dict[str, Any]:
    """One LlamaIndex message as a wire message dict."""
    role = _role(message)
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": _parts(message, role)}
        tool_calls = _assistant_tool_calls(message)
        if tool_calls:
            out["tool_calls"] = tool_calls
        reasoning = reasoning_of(message)
        if reasoning is not None:
            out["reasoning_content"] = reasoning
        details = message.additional_kwargs.get("reasoning_details")
        if isinstance(details, list) and details:
            out["reasoning_details"] = details  # K3; the core drops the streaming index
        thinking = thinking_blocks_of(message)
        if thinking:
            out["thinking_blocks"] = thinking
        return out
    if role == "tool":
        call_id = message.additional_kwargs.get("tool_call_id")
        if not call_id:
            raise ValueError(
                "A tool message needs additional_kwargs['tool_call_id'] (the id of the "
                "assistant tool call it answers); set it when you build the message."
            )
        out = {"role": "tool", "tool_call_id": str(call_id), "content": _parts(message, role)}
        name = message.additional_kwargs.get("name")
        if isinstance(name, str) and name:
            out["name"] = name
        return out
    out = {"role": role, "content": _parts(message, role)}
    name = message.additional_kwargs.get("name")
    if role == "user" and isinstance(name, str) and name:
        out["name"] = name
    return out


def messages_to_wire(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex messages as wire messages, in order."""
    return [message_to_wire(m) for m in messages]


# --------------------------------------------------------------------------- responses


def build_message(
    content: str,
    reasoning: str | None,
    tool_calls: Sequence[ToolCall],
    thinking_blocks: Sequence[Mapping[str, Any]] | None = None,
) -> ChatMessage:
    """An assistant message: ThinkingBlock(s) first, then text, then ToolCallBlocks; the tool
    calls also in `additional_kwargs["tool_calls"]` for core code that reads only that form.
    ``thinking_blocks`` (Anthropic route) become one ThinkingBlock each, the signature in
    `additional_information["signature"]`."""
    blocks: list[Any] = []
    if thinking_blocks:
        for b in thinking_blocks:
            if b.get("type") == "redacted_thinking":
                blocks.append(ThinkingBlock(content="", additional_information={
                    "redacted_thinking": b.get("data")}))
            else:
                info = {"signature": b["signature"]} if b.get("signature") is not None else {}
                blocks.append(ThinkingBlock(content=b.get("thinking") or "", additional_information=info))
    elif reasoning is not None:
        blocks.append(ThinkingBlock(content=reasoning))
    blocks.append(TextBlock(text=content))
    kwargs: dict[str, Any] = {}
    if tool_calls:
        for tc in tool_calls:
            blocks.append(
                ToolCallBlock(tool_call_id=tc.id, tool_name=tc.name, tool_kwargs=tc.arguments)
            )
        kwargs["tool_calls"] = tool_calls_to_dicts(tool_calls)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=kwargs)


def completion_to_message(completion: Completion) -> ChatMessage:
    """A non-streamed completion as an assistant `ChatMessage` (K3's ``reasoning_details`` in
    ``additional_kwargs`` beside the ThinkingBlock)."""
    message = build_message(
        completion.content or "", completion.reasoning_content, completion.tool_calls,
        completion.thinking_blocks,
    )
    if completion.reasoning_details:
        message.additional_kwargs["reasoning_details"] = completion.reasoning_details
    return message
