"""Tool calling: LlamaIndex's tool-turn hooks and tool calls read back from a response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection

from kimi_coder_auth.errors import MalformedResponseError

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["ToolCallingMixin"]


class ToolCallingMixin:
    """`KimiCoderLLM`'s `FunctionCallingLLM` tool hooks; forced-choice rules are the core's."""

    __slots__ = ()

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Chat kwargs for a tool turn; a forced choice is reconciled with thinking by the core
        (`forced_tool_choice`). The caller's `chat_history` list is not modified."""
        specs = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        out: dict[str, Any] = {"messages": messages, **kwargs}
        if specs:
            out["tools"] = specs
            if tool_choice is None:
                tool_choice = "required" if tool_required else "auto"
            out["tool_choice"] = tool_choice
            out["parallel_tool_calls"] = allow_parallel_tool_calls
        return out

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call when parallel calls are not allowed (both forms)."""
        if not allow_parallel_tool_calls:
            message = response.message
            seen = False
            kept = []
            for block in message.blocks:
                if isinstance(block, ToolCallBlock):
                    if seen:
                        continue
                    seen = True
                kept.append(block)
            message.blocks = kept
            calls = message.additional_kwargs.get("tool_calls")
            if isinstance(calls, list) and len(calls) > 1:
                message.additional_kwargs["tool_calls"] = calls[:1]
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """Tool calls of a response (ToolCallBlocks, else `additional_kwargs["tool_calls"]`).

        Safe on every streamed chunk: partial argument JSON is parsed as far as it goes.
        """
        entries: list[tuple[str, str, Any]] = [
            (b.tool_call_id or "", b.tool_name, b.tool_kwargs)
            for b in response.message.blocks
            if isinstance(b, ToolCallBlock)
        ]
        if not entries:
            for raw in response.message.additional_kwargs.get("tool_calls") or []:
                if isinstance(raw, Mapping):
                    fn = raw.get("function") or {}
                    entries.append((raw.get("id") or "", fn.get("name") or "", fn.get("arguments")))
                else:
                    fn = getattr(raw, "function", None)
                    entries.append(
                        (
                            getattr(raw, "id", None) or "",
                            getattr(fn, "name", None) or "",
                            getattr(fn, "arguments", None),
                        )
                    )
        if not entries:
            if error_on_no_tool_call:
                raise ValueError(
                    "Expected at least one tool call, but the model answered without one. "
                    "Ask for the tool explicitly, or pass tool_required=True."
                )
            return []
        for call_id, name, _args in entries:
            if not name:  # fragments for a call the server never named: not a tool named ""
                raise MalformedResponseError(
                    f"The model's tool call {call_id!r} has no tool name (the server sent its "
                    "arguments but never its name); it cannot be run.",
                    hint="Retry the request; if it keeps happening, report the x-trace-id.",
                )
        return [
            ToolSelection(tool_id=call_id, tool_name=name, tool_kwargs=_parse_args(args))
            for call_id, name, args in entries
        ]


def _parse_args(args: Any) -> dict[str, Any]:
    """Tool arguments as a dict; partial JSON (mid-stream) is completed as far as possible."""
    if isinstance(args, dict):
        return args
    if not isinstance(args, str) or not args.strip():
        return {}
    from llama_index.core.llms.utils import parse_partial_json

    try:
        value = parse_partial_json(args)
    except (ValueError, TypeError, JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
