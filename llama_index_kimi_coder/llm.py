"""`KimiCoderLLM`: a LlamaIndex `FunctionCallingLLM` for the Kimi Coding Plan.

Thin by design: framework messages become wire messages (`messages.py`), Kimi's request rules
are applied by `kimi_coder_auth.wire`, and HTTP, credentials, retries and errors belong to
`kimi_coder_auth.transport.Transport`. This module holds the fields, the client and the chat /
complete entry points; arguments are resolved in `_settings.py`, answers mapped back in
`responses.py` and `streaming.py`, and `structured.py` / `tool_calls.py` add those APIs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
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
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM

from kimi_coder_auth.catalogue import DEFAULT_MODEL, ModelInfo, get_model_info
from kimi_coder_auth.client import KimiClient
from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT
from kimi_coder_auth.routing import ChatCall
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.tokens import count_message_tokens, count_tokens
from kimi_coder_auth.wire import needs_live_model_info

from ._settings import constructor_kwargs, request_args
from .messages import messages_to_wire
from .responses import chat_response, chat_to_completion
from .streaming import achat_stream, chat_stream
from .structured import StructuredOutputMixin
from .tool_calls import ToolCallingMixin

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

    from kimi_coder_auth.transport import Transport
    from kimi_coder_auth.usage import PlanUsage

# `kimi_coder_auth.wire` imports httpx only when an image URL is fetched, so
# `from llama_index_kimi_coder import KimiCoderLLM` costs little more than llama-index-core.

__all__ = ["KimiCoderLLM"]


class KimiCoderLLM(StructuredOutputMixin, ToolCallingMixin, FunctionCallingLLM):
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
        api_key = constructor_kwargs(data, set(type(self).model_fields))
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

    def _build(
        self, messages: Sequence[ChatMessage], stream: bool, kwargs: dict[str, Any]
    ) -> ChatCall:
        wire, args = request_args(self, messages, stream, kwargs)
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
        wire, args = request_args(self, messages, stream, kwargs)
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

    # ------------------------------------------------------------------ private calls

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = self._build(messages, False, kwargs)
        completion = call.complete()
        return chat_response(completion, call)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = await self._abuild(messages, False, kwargs)
        completion = await call.acomplete()
        return chat_response(completion, call)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return chat_stream(self._build(messages, True, kwargs))

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return achat_stream(await self._abuild(messages, True, kwargs))

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
        return chat_to_completion(self._chat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        chunks = self._stream_chat(prompt_to_messages(prompt), **kwargs)

        def gen() -> CompletionResponseGen:
            for response in chunks:
                yield chat_to_completion(response)

        return gen()

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return chat_to_completion(await self._achat(prompt_to_messages(prompt), **kwargs))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        chunks = await self._astream_chat(prompt_to_messages(prompt), **kwargs)

        async def gen() -> CompletionResponseAsyncGen:
            async for response in chunks:
                yield chat_to_completion(response)

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
