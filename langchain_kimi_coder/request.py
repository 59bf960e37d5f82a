"""One LangChain call -> a prepared core ``ChatCall`` (call kwargs merged with the settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kimi_coder_auth.catalogue import get_model_info
from kimi_coder_auth.params import apply_aliases
from kimi_coder_auth.routing import ChatCall
from kimi_coder_auth.wire import FORCED_TOOL_POLICIES, SAMPLING_PARAMS, needs_live_model_info

from ._user_warnings import emit_warnings
from .messages import convert_messages
from .prompt_cache import pop_prompt_cache_key

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from .chat_models import ChatKimiCoder

__all__ = ["abuild_call", "build_call", "call_params"]

_CONNECTION = (
    "is a connection setting, fixed per model object; set it when creating ChatKimiCoder "
    "(or use .model_copy(update={...}))."
)
_CALL_NOT_APPLICABLE = {
    name: _CONNECTION
    for name in ("api_key", "base_url", "credentials", "timeout", "max_retries", "user_agent",
                 "default_headers", "on_quota", "max_quota_wait")
}


def call_params(
    llm: ChatKimiCoder, stop: list[str] | None, kwargs: dict[str, Any], *, stream: bool,
    run_manager: Any = None,
) -> dict[str, Any]:
    """Merge instance settings with call-time kwargs into ``build_request`` arguments."""
    kw = dict(kwargs)
    for key in ("ls_structured_output_format", "structured_output_format", "stream"):
        kw.pop(key, None)
    if kw:
        apply_aliases(kw, owner="a ChatKimiCoder call", not_applicable=_CALL_NOT_APPLICABLE)
    policy = kw.pop("forced_tool_choice", llm.forced_tool_choice)
    if policy not in FORCED_TOOL_POLICIES:
        raise ValueError(
            f"forced_tool_choice={policy!r}; use one of {', '.join(FORCED_TOOL_POLICIES)}."
        )
    params: dict[str, Any] = {
        "model": kw.pop("model", None) or llm.model,
        "tools": kw.pop("tools", None),
        "tool_choice": kw.pop("tool_choice", None),
        "parallel_tool_calls": kw.pop("parallel_tool_calls", None),
        "response_format": kw.pop("response_format", None),
        "thinking": kw.pop("thinking", llm.thinking),
        "effort": kw.pop("effort", llm.effort),
        "max_tokens": kw.pop("max_tokens", kw.pop("max_completion_tokens", llm.max_tokens)),
        "stream": stream,
        "include_usage": bool(kw.pop("stream_usage", llm.stream_usage)),
        "forced_tool_policy": policy,
        "protocol": kw.pop("protocol", llm.protocol),
    }
    stop_seq = stop if stop is not None else kw.pop("stop", None)
    kw.pop("stop", None)
    params["stop"] = stop_seq if stop_seq is not None else llm.stop
    placeholder = kw.pop("reasoning_placeholder", llm.reasoning_placeholder)
    if placeholder is not None:
        params["reasoning_placeholder"] = placeholder
    for key in SAMPLING_PARAMS:
        params[key] = kw.pop(key, getattr(llm, key))
    params["preserve_thinking"] = bool(kw.pop("preserve_thinking", llm.preserve_thinking))
    params["prompt_cache_key"] = pop_prompt_cache_key(kw, llm.prompt_cache_key, run_manager)
    extra: dict[str, Any] = dict(llm.model_kwargs)
    extra.update(kw)  # unknown call-time kwargs go to the body, as with model_kwargs
    params["extra"] = extra or None
    return params


def _needs_live(params: dict[str, Any], wire: list[dict[str, Any]]) -> bool:
    """Live ``/models`` data is consulted only when the request depends on it."""
    return needs_live_model_info(
        wire,
        thinking=params["thinking"],
        effort=params["effort"],
        tool_choice=params["tool_choice"],
    )


def build_call(
    llm: ChatKimiCoder, messages: list[BaseMessage], stop: list[str] | None,
    kwargs: dict[str, Any], *, stream: bool, run_manager: Any = None,
) -> ChatCall:
    """Prepare the core call for one request (blocking)."""
    params = call_params(llm, stop, kwargs, stream=stream, run_manager=run_manager)
    protocol = params.pop("protocol")
    wire = convert_messages(messages)
    model = params.pop("model")
    # the catalogue answers plain requests; only these may fetch /models
    if _needs_live(params, wire):
        info = llm._kimi_client().model_info(model, live=True)
    else:
        info = get_model_info(model)
    call = ChatCall.prepare(
        llm._get_transport(), model, wire, protocol=protocol, model_info=info, options=params
    )
    if call.built.warnings:
        emit_warnings(call.built.warnings)
    return call


async def abuild_call(
    llm: ChatKimiCoder, messages: list[BaseMessage], stop: list[str] | None,
    kwargs: dict[str, Any], *, stream: bool, run_manager: Any = None,
) -> ChatCall:
    """Prepare the core call for one request (async: a ``/models`` fetch never blocks)."""
    params = call_params(llm, stop, kwargs, stream=stream, run_manager=run_manager)
    protocol = params.pop("protocol")
    wire = convert_messages(messages)
    model = params.pop("model")
    if _needs_live(params, wire):
        info = await llm._kimi_client().amodel_info(model, live=True)
    else:
        info = get_model_info(model)
    call = await ChatCall.aprepare(
        llm._get_transport(), model, wire, protocol=protocol, model_info=info, options=params
    )
    if call.built.warnings:
        emit_warnings(call.built.warnings)
    return call
