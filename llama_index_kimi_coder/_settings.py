"""Parameters: constructor and per-call arguments (aliases, unknown names) -> the core's request args."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage

from kimi_coder_auth.params import apply_aliases
from kimi_coder_auth.request_policy import resolve_prompt_cache_key
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.wire import SAMPLING_PARAMS

from .messages import messages_to_wire

if TYPE_CHECKING:
    from .llm import KimiCoderLLM

# LlamaIndex-internal kwargs that must never reach the request body.
_DROP = frozenset(
    {
        "strict",
        "use_chat_completions",
        "formatted",
        "verbose",
        "error_on_no_tool_call",
        "error_on_tool_error",
    }
)

_CONNECTION = (
    "is a connection setting, fixed per LLM object; set it when creating KimiCoderLLM."
)
_CALL_NOT_APPLICABLE = {
    name: _CONNECTION
    for name in ("api_key", "base_url", "credentials", "timeout", "max_retries", "user_agent",
                 "default_headers", "on_quota", "max_quota_wait")
}
_CALL_NOT_APPLICABLE["context_window"] = "it is the model's; set context_window= when creating KimiCoderLLM."


def constructor_kwargs(data: dict[str, Any], known: set[str]) -> str | Secret | None:
    """Canonicalise ``KimiCoderLLM(**data)`` in place: aliases renamed, unknown names moved to
    ``additional_kwargs`` with a warning; returns the popped ``api_key``."""
    apply_aliases(data, owner="KimiCoderLLM")
    api_key = data.pop("api_key", None)
    extra = dict(data.get("additional_kwargs") or {})
    for name in [n for n in data if n not in known]:
        warnings.warn(
            f"{name!r} is not a KimiCoderLLM parameter; it was moved to additional_kwargs "
            "and is sent in every request body. Check its spelling if that is not intended.",
            UserWarning,
            stacklevel=3,
        )
        extra[name] = data.pop(name)
    if extra:
        data["additional_kwargs"] = extra
    return api_key


def _session_of(messages: Sequence[ChatMessage]) -> str | None:
    """The conversation's session id where LlamaIndex marks it on a message (memory blocks set
    ``additional_kwargs["session_id"]`` on messages pushed with one); None when absent."""
    for message in messages:
        sid = message.additional_kwargs.get("session_id")
        if isinstance(sid, str) and sid:
            return sid
    return None


def request_args(
    llm: KimiCoderLLM, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The wire messages and `ChatCall.prepare` arguments of one call: call kwargs over fields."""
    kw = dict(kwargs)
    apply_aliases(kw, owner="a KimiCoderLLM call", not_applicable=_CALL_NOT_APPLICABLE)
    sampling = {name: kw.pop(name, getattr(llm, name, None)) for name in SAMPLING_PARAMS}
    max_tokens = kw.pop("max_tokens", None)
    max_completion_tokens = kw.pop("max_completion_tokens", None)
    max_tokens = max_tokens or max_completion_tokens
    tools = kw.pop("tools", None)
    tool_choice = kw.pop("tool_choice", None)
    if kw.pop("tool_required", False) and tools and tool_choice is None:
        tool_choice = "required"
    parallel = kw.pop("parallel_tool_calls", None)
    allow_parallel = kw.pop("allow_parallel_tool_calls", None)
    args: dict[str, Any] = {
        "tools": tools,
        "tool_choice": tool_choice,
        "thinking": kw.pop("thinking", llm.thinking),
        "effort": kw.pop("effort", llm.effort),
        "max_tokens": max_tokens or llm.max_tokens,
        "stream": stream,
        "stop": kw.pop("stop", llm.stop),
        "parallel_tool_calls": parallel if parallel is not None else allow_parallel,
        "response_format": kw.pop("response_format", None),
        "forced_tool_policy": kw.pop("forced_tool_choice", llm.forced_tool_choice),
        "protocol": kw.pop("protocol", llm.protocol),
    }
    if llm.reasoning_placeholder is not None:
        args["reasoning_placeholder"] = llm.reasoning_placeholder
    args["preserve_thinking"] = bool(kw.pop("preserve_thinking", llm.preserve_thinking))
    cache_setting = kw.pop("prompt_cache_key", llm.prompt_cache_key)
    args["prompt_cache_key"] = resolve_prompt_cache_key(
        cache_setting, _session_of(messages) if cache_setting == "auto" else None
    )
    for name in _DROP:
        kw.pop(name, None)
    extra = {**llm.additional_kwargs, **kw}
    if extra:
        args["extra"] = extra
    args.update(sampling)
    return messages_to_wire(messages), args
