"""`KimiCoderLLM`: a LlamaIndex `FunctionCallingLLM` for the Kimi Coding Plan.

Thin by design: framework messages become wire messages (`messages.py`), Kimi's request rules
are applied by `kimi_coder_auth.wire`, and HTTP, credentials, retries and errors belong to
`kimi_coder_auth.transport.Transport`. This module only maps the results back to LlamaIndex.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any, Literal

from llama_index.core.base.llms.generic_utils import prompt_to_messages
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.types import Model, PydanticProgramMode

from kimi_coder_auth.catalogue import DEFAULT_MODEL, ModelInfo, get_model_info
from kimi_coder_auth.client import KimiClient
from kimi_coder_auth.errors import MalformedResponseError
from kimi_coder_auth.params import apply_aliases
from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT
from kimi_coder_auth.request_policy import resolve_prompt_cache_key
from kimi_coder_auth.routing import ChatCall
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.structured import choose_structured_method, json_schema_format
from kimi_coder_auth.tokens import count_message_tokens, count_tokens
from kimi_coder_auth.wire import (
    SAMPLING_PARAMS,
    needs_live_model_info,
    tool_calls_to_dicts,
    usage_counts,
)

from .messages import completion_to_message, messages_to_wire

if TYPE_CHECKING:
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.prompts.base import PromptTemplate
    from llama_index.core.tools.types import BaseTool

    from kimi_coder_auth.neutral import Completion, StreamDelta
    from kimi_coder_auth.routing import AsyncDeltaStream, DeltaStream
    from kimi_coder_auth.transport import Transport
    from kimi_coder_auth.usage import PlanUsage

# `kimi_coder_auth.wire` imports httpx only when an image URL is fetched, so
# `from llama_index_kimi_coder import KimiCoderLLM` costs little more than llama-index-core.

__all__ = ["KimiCoderLLM"]
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

_ASSISTANT = MessageRole.ASSISTANT
_new = object.__new__
_set = object.__setattr__


# Per-chunk objects are assembled directly (what pydantic's `model_construct` does, without its
# pure-Python field loop): ~4x cheaper than validating constructors, and the result is identical
# to them — same `__dict__` (fields in declaration order, defaults filled in), same
# `__pydantic_fields_set__` (only the fields a validating call would have been given). Safe
# because these models have no validators that would change values we pass (ChatMessage's only
# validator converts `additional_kwargs["images"]`, never set here), and every value is of the
# field's type by construction. `tests/llama_index` compares them with the validated forms.
def _text_block(text: str) -> TextBlock:
    """``TextBlock(text=text)``."""
    obj = _new(TextBlock)
    _set(obj, "__dict__", {"block_type": "text", "text": text})
    _set(obj, "__pydantic_fields_set__", {"text"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _thinking_block(content: str, info: dict[str, Any] | None = None) -> ThinkingBlock:
    """``ThinkingBlock(content=content)`` (``additional_information=info`` when given)."""
    obj = _new(ThinkingBlock)
    _set(
        obj,
        "__dict__",
        {
            "block_type": "thinking",
            "content": content,
            "num_tokens": None,
            "additional_information": info if info is not None else {},
        },
    )
    _set(obj, "__pydantic_fields_set__", {"content", "additional_information"} if info else {"content"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _message(*, role: Any, blocks: list[Any], additional_kwargs: dict[str, Any]) -> ChatMessage:
    """``ChatMessage.model_construct(role=..., blocks=..., additional_kwargs=...)``."""
    obj = _new(ChatMessage)
    _set(obj, "__dict__", {"role": role, "additional_kwargs": additional_kwargs, "blocks": blocks})
    _set(obj, "__pydantic_fields_set__", {"role", "additional_kwargs", "blocks"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _chat_response(
    message: ChatMessage, delta: str, raw: Any, extra: dict[str, Any]
) -> ChatResponse:
    """``ChatResponse(message=..., delta=..., raw=..., additional_kwargs=...)``."""
    obj = _new(ChatResponse)
    _set(
        obj,
        "__dict__",
        {"message": message, "raw": raw, "delta": delta, "logprobs": None, "additional_kwargs": extra},
    )
    _set(obj, "__pydantic_fields_set__", {"message", "delta", "raw", "additional_kwargs"})
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class _StreamBuilder:
    """Turns the core's neutral deltas into cumulative `ChatResponse`s (one per meaningful delta).

    The core accumulator (either route's) merges reasoning, text and tool calls; this class only
    keeps the cumulative strings the LlamaIndex blocks need. On the Anthropic route the final
    response's `ThinkingBlock`s carry their signatures in `additional_information`.
    """

    __slots__ = (
        "blocks",
        "content",
        "finish_reason",
        "reasoning",
        "stream",
        "tool_calls",
        "tool_dicts",
        "usage",
        "usage_raw",
        "yielded",
    )

    def __init__(self, stream: DeltaStream | AsyncDeltaStream) -> None:
        self.stream = stream
        self.content = ""
        self.finish_reason: str | None = None
        self.reasoning: str | None = None
        self.tool_calls: list[Any] = []
        self.tool_dicts: list[dict[str, Any]] = []
        # [thinking block or None, text block, *tool-call blocks]; a block is rebuilt only
        # when its part changed, so unchanged parts cost nothing per chunk.
        self.blocks: list[Any] = [None, TextBlock(text="")]
        self.usage: dict[str, Any] | None = None
        self.usage_raw: dict[str, Any] | None = None
        self.yielded = False

    def _reasoning_details(self) -> list[dict[str, Any]] | None:
        """K3's merged ``reasoning_details`` so far (OpenAI route only)."""
        getter = getattr(self.stream.accumulator, "reasoning_details", None)
        return getter() if getter is not None else None

    def step(self, d: StreamDelta) -> ChatResponse | None:
        changed = False
        blocks = self.blocks
        if d.reasoning is not None:
            self.reasoning = d.reasoning if self.reasoning is None else self.reasoning + d.reasoning
            blocks[0] = _thinking_block(self.reasoning)
            changed = True
        if d.content:
            self.content += d.content
            blocks[1] = _text_block(self.content)
            changed = True
        if d.tool_calls:
            self.tool_calls = calls = self.stream.accumulator.tool_calls()
            del blocks[2:]
            blocks.extend(
                ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
                for c in calls
            )
            self.tool_dicts = tool_calls_to_dicts(calls)
            changed = True
        if d.signature is not None and self.stream.protocol == "anthropic":
            signed = _thinking_blocks(self.stream.accumulator.thinking_blocks())  # type: ignore[union-attr]
            if signed:
                blocks[0] = signed[0] if len(signed) == 1 else signed
                changed = True
        if d.usage is not None:
            self.usage = usage_counts(d.usage)
            self.usage_raw = {**d.usage.raw, **self.usage}
            changed = True
        if d.reasoning_details is not None:
            changed = True
        if d.finish_reason is not None:
            self.finish_reason = d.finish_reason
            changed = True
        if not changed:
            return None
        return self._response(d, d.content or "", d.reasoning)

    def _response(
        self, d: StreamDelta | None, delta: str, thinking_delta: str | None
    ) -> ChatResponse:
        extra: dict[str, Any] = {}
        if thinking_delta:
            extra["thinking_delta"] = thinking_delta
        stream = self.stream
        raw: Any = stream.last_event if d is not None else None
        if self.usage is not None:
            extra.update(self.usage)
            raw = {**(raw or {}), "usage": self.usage_raw, "protocol": stream.protocol, **_ids(stream)}
        elif d is not None and d.finish_reason is not None:
            raw = {**(raw or {}), "protocol": stream.protocol, **_ids(stream)}
        if self.finish_reason is not None:  # "length": the output budget ran out
            extra["finish_reason"] = self.finish_reason
        self.yielded = True
        blocks = self.blocks
        first = blocks[0]
        if first is None:
            message_blocks = blocks[1:]
        elif isinstance(first, list):
            message_blocks = [*first, *blocks[1:]]
        else:
            message_blocks = list(blocks)
        kwargs: dict[str, Any] = {"tool_calls": list(self.tool_dicts)} if self.tool_dicts else {}
        details = self._reasoning_details()
        if details:
            kwargs["reasoning_details"] = details
        message = _message(
            role=_ASSISTANT,
            blocks=message_blocks,
            additional_kwargs=kwargs,
        )
        return _chat_response(message, delta, raw, extra)

    def final(self) -> ChatResponse | None:
        """A closing response when the stream produced nothing, so callers always get one."""
        return None if self.yielded else self._response(None, "", None)


def _ids(source: Any) -> dict[str, str]:
    """``x_trace_id`` / ``x_request_id`` of an answer, for ``raw`` (only the ones it has)."""
    ids = {"x_trace_id": getattr(source, "trace_id", None), "x_request_id": getattr(source, "request_id", None)}
    return {k: v for k, v in ids.items() if v}


def _session_of(messages: Sequence[ChatMessage]) -> str | None:
    """The conversation's session id where LlamaIndex marks it on a message (memory blocks set
    ``additional_kwargs["session_id"]`` on messages pushed with one); None when absent."""
    for message in messages:
        sid = message.additional_kwargs.get("session_id")
        if isinstance(sid, str) and sid:
            return sid
    return None


def _thinking_blocks(blocks: list[dict[str, Any]]) -> list[ThinkingBlock]:
    """The Anthropic route's thinking blocks as `ThinkingBlock`s (signature, if any, in
    `additional_information["signature"]`, replayed byte for byte)."""
    out = []
    for b in blocks:
        if b.get("type") == "thinking":
            info = {"signature": b["signature"]} if b.get("signature") is not None else None
            out.append(_thinking_block(b.get("thinking") or "", info))
        elif b.get("type") == "redacted_thinking":
            out.append(_thinking_block("", {"redacted_thinking": b.get("data")}))
    return out


def _chat_to_completion(response: ChatResponse) -> CompletionResponse:
    """A ChatResponse as a CompletionResponse, keeping usage, tool calls and reasoning."""
    extra = {**response.message.additional_kwargs, **response.additional_kwargs}
    for block in response.message.blocks:
        if isinstance(block, ThinkingBlock):
            extra.setdefault("reasoning_content", block.content or "")
            break
    return CompletionResponse(
        text=response.message.content or "",
        additional_kwargs=extra,
        raw=response.raw,
        delta=response.delta,
    )


class KimiCoderLLM(FunctionCallingLLM):
    """Kimi Coding Plan (`kimi-for-coding`) as a LlamaIndex function-calling chat LLM.

    Credentials: `api_key=` if given (never shown in repr or serialisation), else the same
    login the Kimi CLIs use, discovered lazily on the first request (`credentials=` pins one
    source). Reasoning comes back as a `ThinkingBlock` (streaming: `thinking_delta`) and is
    replayed on later turns, so tool loops work with thinking on. No I/O in the constructor.

    Example:
        ```python
        from llama_index_kimi_coder import KimiCoderLLM

        llm = KimiCoderLLM()                       # discovered login, thinking per server default
        print(llm.complete("Say hi").text)
        ```
    """

    model: str = Field(default=DEFAULT_MODEL, description="Kimi model id.")
    base_url: str | None = Field(
        default=None,
        description="API base URL; None = KIMI_CODE_BASE_URL or https://api.kimi.com/coding/v1.",
    )
    credentials: Literal["env", "kimi-cli", "kimi-code"] | None = Field(
        default=None, description="Pin one credential source instead of the discovery chain."
    )
    region: str | None = Field(
        default=None,
        description='"mainland-cn" or "global" (kimi.ai); None = KIMI_CODER_REGION, else Kimi '
        "Code's own setting, else mainland-cn.",
    )
    thinking: bool | None = Field(
        default=None, description="True/False to switch reasoning on/off; None = server default."
    )
    effort: str | None = Field(
        default=None, description="Reasoning effort, for models with levels."
    )
    max_tokens: int = Field(
        default=32768, gt=0, description="Output budget per call (reasoning counts against it)."
    )
    context_window: int | None = Field(
        default=None, gt=0, description="Override the context window; None = model catalogue."
    )
    timeout: float | None = Field(
        default=None,
        description="Timeout of each network step in seconds; None = connect 10 s, read 300 s.",
    )
    deadline: float | None = Field(
        default=None,
        description="Whole-call deadline in seconds, retries included; None = the read timeout "
        "for chat/complete, no total bound for streams.",
    )
    first_event_timeout: float | None = Field(
        default=None, description="Streams: seconds to the first event; None = the read timeout."
    )
    event_timeout: float | None = Field(
        default=None, description="Streams: longest gap between events; None = the read timeout."
    )
    max_retries: int = Field(default=2, ge=0, description="Retries on 429/5xx/connection errors.")
    on_quota: Literal["raise", "wait"] = Field(
        default="raise",
        description='A used-up quota window: raise QuotaExceededError, or "wait" until it resets.',
    )
    max_quota_wait: float | None = Field(
        default=DEFAULT_MAX_QUOTA_WAIT,
        description='Longest total wait per request with on_quota="wait" (seconds; None = no limit).',
    )
    user_agent: str | None = Field(
        default=None,
        description="User-Agent; None = KIMI_CODER_USER_AGENT or kimi-coder's own honest default.",
    )
    default_headers: dict[str, str] | None = Field(
        default=None, description="Extra headers sent with every request."
    )
    forced_tool_choice: Literal["disable_thinking", "auto", "error"] = Field(
        default="disable_thinking",
        description=(
            "What to do when a tool call is forced (tool_required, named tool_choice, structured "
            "output) while thinking is on, which Kimi rejects: disable thinking for that call, "
            "relax to 'auto', or raise."
        ),
    )
    temperature: float | None = Field(default=None, description="Sent only when set.")
    top_p: float | None = Field(default=None, description="Sent only when set.")
    presence_penalty: float | None = Field(default=None, description="Sent only when set.")
    frequency_penalty: float | None = Field(default=None, description="Sent only when set.")
    seed: int | None = Field(default=None, description="Sent only when set.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra request-body fields, merged last."
    )
    prompt_cache_key: str | None = Field(
        default="auto",
        description=(
            "Kimi's prompt-cache key. 'auto': hashed from the conversation's session id when "
            "a message carries one (additional_kwargs['session_id']), otherwise none; a string "
            "is sent verbatim; None sends no key."
        ),
    )
    preserve_thinking: bool = Field(
        default=False,
        description=(
            "Kimi Code's preserved thinking (thinking.keep='all'): while thinking is on, every "
            "assistant turn is replayed with its reasoning ('' when it had none)."
        ),
    )
    protocol: Literal["auto", "openai", "anthropic"] | None = Field(
        default=None,
        description=(
            "Wire route: 'openai' (/chat/completions), 'anthropic' (/messages), or 'auto' (the "
            "model's /models protocol when known, else OpenAI, moving to Anthropic after the "
            "User-Agent gate's 403). None = KIMI_CODER_PROTOCOL or 'auto'."
        ),
    )
    reasoning_placeholder: str | None = Field(
        default=None,
        description=(
            "reasoning_content sent on assistant tool-call turns that carry none while thinking "
            "is on (history from memory or another model); None = the core's default."
        ),
    )

    _api_key: Secret | None = PrivateAttr(default=None)
    _client: KimiClient | None = PrivateAttr(default=None)
    _live_models: list[dict[str, Any]] | None = PrivateAttr(default=None)

    def __init__(self, *, api_key: str | Secret | None = None, **data: Any) -> None:
        if api_key is not None:
            data["api_key"] = api_key
        apply_aliases(data, owner="KimiCoderLLM")
        api_key = data.pop("api_key", None)
        known = set(type(self).model_fields)
        extra = dict(data.get("additional_kwargs") or {})
        for name in [n for n in data if n not in known]:
            warnings.warn(
                f"{name!r} is not a KimiCoderLLM parameter; it was moved to additional_kwargs "
                "and is sent in every request body. Check its spelling if that is not intended.",
                UserWarning,
                stacklevel=2,
            )
            extra[name] = data.pop(name)
        if extra:
            data["additional_kwargs"] = extra
        super().__init__(**data)
        if api_key is not None:
            if not isinstance(api_key, (str, Secret)):
                raise TypeError("api_key must be a str (a Kimi Code API key) or a Secret.")
            self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)

    @classmethod
    def class_name(cls) -> str:
        return "KimiCoderLLM"

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> KimiCoderLLM:
        """Deep copies share the key and the client (transport, pools) with the original."""
        memo = {} if memo is None else memo
        for shared in (self._api_key, self._client):
            if shared is not None:
                memo[id(shared)] = shared
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the transport (rebuilt lazily). An explicit api_key refuses to pickle
        rather than be written out or silently dropped (which would switch credentials)."""
        if self._api_key is not None:
            raise TypeError(
                "A KimiCoderLLM built with api_key= cannot be pickled (the key would be written "
                "out). Build it where it is used, or set KIMI_CODER_API_KEY there instead."
            )
        client = self._client
        self._client = None
        try:
            return super().__getstate__()
        finally:
            self._client = client

    # ------------------------------------------------------------------ configuration

    @property
    def model_info(self) -> ModelInfo:
        """Capabilities of `model`: the live `/models` entry once loaded, else the built-in one."""
        return get_model_info(self.model, live=self._live_models)

    @property
    def model_name(self) -> str:
        """The model id (the OpenAI classes' attribute name for ``model``)."""
        return self.model

    @property
    def metadata(self) -> LLMMetadata:
        info = self.model_info
        return LLMMetadata(
            context_window=self.context_window or info.context_length,
            num_output=self.max_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=self.model,
            system_role=MessageRole.SYSTEM,
        )

    def get_usage(self) -> PlanUsage:
        """The plan's quota windows (``GET /usages``) for this LLM's credentials."""
        return self._kimi_client().get_usage()

    async def aget_usage(self) -> PlanUsage:
        """Async :meth:`get_usage`."""
        return await self._kimi_client().aget_usage()

    def _kimi_client(self) -> KimiClient:
        """The core client for the current settings: created on first use, rebuilt only when a
        connection setting changes; credentials are shared process-wide."""
        # Private attributes are read through ``__pydantic_private__`` directly (pydantic's
        # ``__getattr__`` fallback costs ~5 us per read); ``for_config`` keeps the reuse check cheap.
        private = self.__pydantic_private__ or {}
        current = private.get("_client")
        client = KimiClient.for_config(current, self, api_key=private.get("_api_key"))
        if client is not current:
            self._client = client
        return client

    def _get_transport(self) -> Transport:
        return self._kimi_client().transport

    def load_model_info(self) -> ModelInfo:
        """Fetch `GET /models` (cached by the transport) so `metadata` reflects the server."""
        self._live_models = self._kimi_client().list_models()
        return self.model_info

    async def aload_model_info(self) -> ModelInfo:
        """Async `load_model_info`."""
        self._live_models = await self._kimi_client().alist_models()
        return self.model_info

    def _request_model_info(self, wire: list[dict[str, Any]], args: dict[str, Any]) -> bool:
        """True when this request needs the live `/models` entry and it is not loaded yet."""
        return self._live_models is None and needs_live_model_info(
            wire, thinking=args["thinking"], effort=args["effort"], tool_choice=args["tool_choice"]
        )

    # ------------------------------------------------------------------ request building

    def _request_args(
        self, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        kw = dict(kwargs)
        apply_aliases(kw, owner="a KimiCoderLLM call", not_applicable=_CALL_NOT_APPLICABLE)
        sampling = {name: kw.pop(name, getattr(self, name, None)) for name in SAMPLING_PARAMS}
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
            "thinking": kw.pop("thinking", self.thinking),
            "effort": kw.pop("effort", self.effort),
            "max_tokens": max_tokens or self.max_tokens,
            "stream": stream,
            "stop": kw.pop("stop", self.stop),
            "parallel_tool_calls": parallel if parallel is not None else allow_parallel,
            "response_format": kw.pop("response_format", None),
            "forced_tool_policy": kw.pop("forced_tool_choice", self.forced_tool_choice),
            "protocol": kw.pop("protocol", self.protocol),
        }
        if self.reasoning_placeholder is not None:
            args["reasoning_placeholder"] = self.reasoning_placeholder
        args["preserve_thinking"] = bool(kw.pop("preserve_thinking", self.preserve_thinking))
        cache_setting = kw.pop("prompt_cache_key", self.prompt_cache_key)
        args["prompt_cache_key"] = resolve_prompt_cache_key(
            cache_setting, _session_of(messages) if cache_setting == "auto" else None
        )
        for name in _DROP:
            kw.pop(name, None)
        extra = {**self.additional_kwargs, **kw}
        if extra:
            args["extra"] = extra
        args.update(sampling)
        return messages_to_wire(messages), args

    def _build(
        self, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
    ) -> ChatCall:
        wire, args = self._request_args(messages, stream, kwargs)
        if self._request_model_info(wire, args):
            self._live_models = self._kimi_client().live_models()
        protocol = args.pop("protocol")
        call = ChatCall.prepare(
            self._get_transport(), self.model, wire, protocol=protocol,
            model_info=self.model_info, **args,
        )
        return self._surface(call)

    async def _abuild(
        self, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
    ) -> ChatCall:
        wire, args = self._request_args(messages, stream, kwargs)
        if self._request_model_info(wire, args):
            self._live_models = await self._kimi_client().alive_models()
        protocol = args.pop("protocol")
        call = await ChatCall.aprepare(
            self._get_transport(), self.model, wire, protocol=protocol,
            model_info=self.model_info, **args,
        )
        return self._surface(call)

    @staticmethod
    def _surface(call: ChatCall) -> ChatCall:
        for message in call.built.warnings:
            warnings.warn(message, UserWarning, stacklevel=4)
        return call

    @staticmethod
    def _chat_response(completion: Completion, call: ChatCall) -> ChatResponse:
        extra: dict[str, Any] = {}
        trace_id, data = call.trace_id, call.raw
        raw: dict[str, Any] = {**(data or {}), "protocol": completion.protocol, **_ids(call)}
        if completion.usage is not None:
            counts = usage_counts(completion.usage)
            extra.update(counts)
            raw["usage"] = {**completion.usage.raw, **counts}
        if trace_id:
            extra["trace_id"] = trace_id
        if call.request_id:
            extra["request_id"] = call.request_id
        if completion.finish_reason is not None:  # "length": the output budget ran out
            extra["finish_reason"] = completion.finish_reason
        return ChatResponse(
            message=completion_to_message(completion), raw=raw, additional_kwargs=extra
        )

    # ------------------------------------------------------------------ private calls

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = self._build(messages, False, kwargs)
        completion = call.complete()
        return self._chat_response(completion, call)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = await self._abuild(messages, False, kwargs)
        completion = await call.acomplete()
        return self._chat_response(completion, call)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        call = self._build(messages, True, kwargs)

        def gen() -> ChatResponseGen:
            stream = call.stream()
            builder = _StreamBuilder(stream)
            try:
                for delta in stream:
                    response = builder.step(delta)
                    if response is not None:
                        yield response
            finally:
                stream.close()
            last = builder.final()
            if last is not None:
                yield last

        return gen()

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        call = await self._abuild(messages, True, kwargs)

        async def gen() -> ChatResponseAsyncGen:
            stream = call.astream()
            builder = _StreamBuilder(stream)
            try:
                async for delta in stream:
                    response = builder.step(delta)
                    if response is not None:
                        yield response
            finally:
                await stream.aclose()
            last = builder.final()
            if last is not None:
                yield last

        return gen()

    # ------------------------------------------------------------------ public API

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self._astream_chat(messages, **kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _chat_to_completion(self._chat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        chunks = self._stream_chat(prompt_to_messages(prompt), **kwargs)

        def gen() -> CompletionResponseGen:
            for response in chunks:
                yield _chat_to_completion(response)

        return gen()

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return _chat_to_completion(await self._achat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        chunks = await self._astream_chat(prompt_to_messages(prompt), **kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            async for response in chunks:
                yield _chat_to_completion(response)

        return gen()

    # ------------------------------------------------------------------ token counting

    def get_num_tokens(self, text: str) -> int:
        """Estimated tokens of ``text``, with no tokenizer download (``kimi_coder_auth.tokens``:
        within about ±20 % on prose, code and Chinese). The exact count of a sent prompt is
        ``additional_kwargs["prompt_tokens"]`` of the response."""
        return count_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: Sequence[ChatMessage], tools: Sequence[BaseTool] | None = None
    ) -> int:
        """Estimated input tokens of ``messages`` (and ``tools``), as :meth:`get_num_tokens`."""
        specs = [t.metadata.to_openai_tool(skip_length_check=True) for t in tools or ()]
        return count_message_tokens(messages_to_wire(messages), specs)

    # ------------------------------------------------------------------ structured output

    def _structured_route(
        self, output_cls: type[BaseModel], llm_kwargs: dict[str, Any] | None
    ) -> tuple[KimiCoderLLM, dict[str, Any] | None]:
        """The LLM and kwargs for a structured call. With ``pydantic_program_mode`` DEFAULT the
        core picks the method the model honours (``kimi_coder_auth.structured``): while the
        model thinks, a native ``response_format`` json_schema that keeps thinking on (a text
        program on a copy of this LLM), else LlamaIndex's forced tool. FUNCTION is an explicit
        function-calling choice, kept (with a warning where it cannot be honoured)."""
        mode = self.pydantic_program_mode
        if mode not in (PydanticProgramMode.DEFAULT, PydanticProgramMode.FUNCTION):
            return self, llm_kwargs
        kw = dict(llm_kwargs or {})
        choice = choose_structured_method(
            self.model_info,
            thinking=kw.get("thinking", self.thinking),
            requested="function_calling" if mode == PydanticProgramMode.FUNCTION else None,
            forced_tool_policy=kw.get("forced_tool_choice", self.forced_tool_choice),
        )
        if choice.warning:
            warnings.warn(choice.warning, UserWarning, stacklevel=3)
        if choice.method != "json_schema":
            return self, llm_kwargs
        kw["response_format"] = json_schema_format(
            output_cls.model_json_schema(), output_cls.__name__
        )
        text_program = self.model_copy(update={"pydantic_program_mode": PydanticProgramMode.LLM})
        return text_program, kw

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Structured output with the method the model honours (see ``_structured_route``)."""
        llm, kw = self._structured_route(output_cls, llm_kwargs)
        return super(KimiCoderLLM, llm).structured_predict(
            output_cls, prompt, llm_kwargs=kw, **prompt_args
        )

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async :meth:`structured_predict`."""
        llm, kw = self._structured_route(output_cls, llm_kwargs)
        return await super(KimiCoderLLM, llm).astructured_predict(
            output_cls, prompt, llm_kwargs=kw, **prompt_args
        )

    def stream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Model | FlexibleModel, None, None]:
        """Streaming :meth:`structured_predict` (partial objects)."""
        llm, kw = self._structured_route(output_cls, llm_kwargs)
        return super(KimiCoderLLM, llm).stream_structured_predict(
            output_cls, prompt, llm_kwargs=kw, **prompt_args
        )

    async def astream_structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Model | FlexibleModel, None]:
        """Async streaming :meth:`structured_predict`."""
        llm, kw = self._structured_route(output_cls, llm_kwargs)
        return await super(KimiCoderLLM, llm).astream_structured_predict(
            output_cls, prompt, llm_kwargs=kw, **prompt_args
        )

    # ------------------------------------------------------------------ tools

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
