"""``ChatKimiCoder``: LangChain chat model for Moonshot's Kimi Coding Plan.

A thin adapter: LangChain messages become wire messages (``messages.py``), and the shared core
(``kimi_coder_auth.wire`` / ``transport`` / ``sources``) builds the request, talks HTTP and folds
the stream. This module only maps results back to LangChain objects.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from kimi_coder_auth.catalogue import get_model_info
from kimi_coder_auth.client import KimiClient
from kimi_coder_auth.errors import MalformedResponseError
from kimi_coder_auth.params import apply_aliases
from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT
from kimi_coder_auth.request_policy import resolve_prompt_cache_key
from kimi_coder_auth.routing import ChatCall
from kimi_coder_auth.structured import choose_structured_method, json_schema_format
from kimi_coder_auth.tokens import count_message_tokens, count_tokens
from kimi_coder_auth.wire import (
    FORCED_TOOL_POLICIES,
    SAMPLING_PARAMS,
    map_tool_choice,
    needs_live_model_info,
)

from ._errors import translate_error
from .messages import (
    MODEL_PROVIDER,
    completion_to_message,
    convert_messages,
    usage_to_metadata,
)

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from kimi_coder_auth.neutral import Completion
    from kimi_coder_auth.routing import AsyncDeltaStream, DeltaStream
    from kimi_coder_auth.transport import Transport
    from kimi_coder_auth.usage import PlanUsage
    from kimi_coder_auth.wire import StreamDelta

    from ._rate_limiter import KimiQuotaRateLimiter

__all__ = ["ChatKimiCoder"]


class ChatKimiCoder(BaseChatModel):
    """Kimi Coding Plan chat model (``https://api.kimi.com/coding/v1``) for LangChain/LangGraph.

    With no ``api_key`` it uses the login the official Kimi CLIs store (``kimi-coder login``,
    kimi-cli, Kimi Code) or ``KIMI_CODER_API_KEY``, discovered on the first request; many
    instances share one credential and one connection pool. Construction does no I/O.

    Setup:
        ``pip install "kimi-coder[langchain]"`` then ``kimi-coder login`` (or set
        ``KIMI_CODER_API_KEY``).

    Key init args:
        model: model id (``kimi-for-coding``; ``kimi-coder models`` lists the rest).
        thinking: ``True``/``False`` to switch reasoning on/off, ``None`` = server default.
        effort: reasoning effort for models that list effort levels (e.g. ``k3``).
        forced_tool_choice: what to do when a tool call is forced while thinking is on,
            which Kimi rejects: ``"disable_thinking"`` (default) turns thinking off for that
            one request where the model allows it, otherwise relaxes to ``"auto"`` with a
            warning; ``"auto"`` always relaxes with a warning; ``"error"`` raises ``ValueError``
            at request time. Binding never raises.

    Reasoning comes back as ``additional_kwargs["reasoning_content"]`` and as standard
    ``reasoning`` content blocks, and is replayed on later turns (a placeholder is sent for
    tool-call turns that have none while thinking is on).

    Example:
        .. code-block:: python

            from langchain_kimi_coder import ChatKimiCoder

            llm = ChatKimiCoder(thinking=True)
            for chunk in llm.stream("Explain Python's GIL in two sentences"):
                print(chunk.additional_kwargs.get("reasoning_content", ""), chunk.text, end="")
    """

    model_config = ConfigDict(
        populate_by_name=True, protected_namespaces=(), hide_input_in_errors=True
    )

    model: str = Field(default="kimi-for-coding", alias="model_name")
    """Model id."""
    api_key: SecretStr | None = Field(default=None, alias="kimi_api_key")
    """A Kimi Code API key. When None, credentials are discovered on the first request
    (env ``KIMI_CODER_API_KEY``, then the kimi-cli and Kimi Code login files)."""
    base_url: str | None = None
    """API base URL; default ``KIMI_CODE_BASE_URL`` or ``https://api.kimi.com/coding/v1``."""
    credentials: str | None = None
    """Pin one credential source: ``"env"``, ``"kimi-cli"`` or ``"kimi-code"``."""
    region: str | None = None
    """``"mainland-cn"`` (auth/api.kimi.com) or ``"global"`` (kimi.ai); None = ``KIMI_CODER_REGION``,
    else Kimi Code's own setting, else mainland-cn."""
    thinking: bool | None = None
    """Reasoning on (True), off (False), or the server default (None)."""
    effort: str | None = None
    """Reasoning effort level, only for models that list efforts."""
    max_tokens: int | None = 32768
    """Output budget (sent as ``max_completion_tokens``; shared with reasoning)."""
    timeout: float | None = None
    """Timeout of each network step in seconds (None = connect 10 s, read 300 s)."""
    deadline: float | None = None
    """Whole-call deadline in seconds, retries included (None = ``timeout``'s read value for
    ``invoke``; no total bound for ``stream``). A trickling server cannot outlast it."""
    first_event_timeout: float | None = None
    """Streams: seconds from sending to the first event (None = ``timeout``'s read value)."""
    event_timeout: float | None = None
    """Streams: longest gap between two events in seconds (None = ``timeout``'s read value)."""
    max_retries: int = 2
    """Retries for 429 (not quota), 5xx and connection errors, before the first chunk."""
    on_quota: Literal["raise", "wait"] = "raise"
    """A used-up quota window: raise ``QuotaExceededError`` (also LangChain's rate-limit error),
    or ``"wait"``: sleep until the window resets (logged at WARNING), then continue."""
    max_quota_wait: float | None = DEFAULT_MAX_QUOTA_WAIT
    """Longest total wait per request with ``on_quota="wait"`` (seconds; None = no limit)."""
    user_agent: str | None = None
    """User-Agent override; the default is kimi-coder's own honest identity."""
    default_headers: dict[str, str] | None = None
    """Extra headers sent with every request."""
    forced_tool_choice: Literal["disable_thinking", "auto", "error"] = "disable_thinking"
    """Policy for a forced tool choice while thinking is on (see the class docstring)."""
    stream_usage: bool = True
    """Ask for token usage on streams (``stream_options.include_usage``)."""
    streaming: bool = False
    """Route ``invoke`` through the streaming endpoint."""
    reasoning_placeholder: str | None = None
    """``reasoning_content`` sent for assistant tool-call turns that have none while thinking
    is on (None = the core's default)."""
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    """Sent when set; only the first choice is returned."""
    seed: int | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields merged into every request."""
    prompt_cache_key: str | None = "auto"
    """Kimi's prompt-cache key. ``"auto"`` (default): inside a LangGraph run with a
    ``thread_id`` (``configurable.thread_id``) send a key hashed from it, otherwise none; a
    string is sent verbatim; None sends no key."""
    preserve_thinking: bool = False
    """Kimi Code's preserved thinking (``thinking.keep = "all"``): while thinking is on, every
    assistant turn in the history is replayed with its reasoning (``""`` when it had none)."""
    protocol: Literal["auto", "openai", "anthropic"] | None = None
    """Wire route: ``"openai"`` (``/chat/completions``), ``"anthropic"`` (``/messages``) or
    ``"auto"``: the model's ``/models`` protocol when known, else OpenAI, moving to Anthropic for
    the process after the User-Agent gate's 403. None = ``KIMI_CODER_PROTOCOL`` or ``"auto"``."""

    _client: KimiClient | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def build_extra(cls, values: Any) -> Any:
        """Map OpenAI-style aliases, and move unknown arguments to ``model_kwargs`` with a
        warning (as ``ChatOpenAI`` does), so nothing passed is silently dropped."""
        if not isinstance(values, dict):
            return values
        values = apply_aliases(dict(values), owner="ChatKimiCoder", not_applicable=_LC_NOT_APPLICABLE)
        known = _field_names(cls)
        extra = dict(values.get("model_kwargs") or {})
        for name in list(values):
            if name in known:
                continue
            if name in extra:
                raise ValueError(f"{name!r} is given both directly and in model_kwargs; pass it once.")
            warnings.warn(
                f"{name!r} is not a ChatKimiCoder parameter; it was moved to model_kwargs and "
                "is sent in every request body. Check its spelling if that is not intended.",
                UserWarning,
                stacklevel=_user_stacklevel(),
            )
            extra[name] = values.pop(name)
        clashing = sorted(known.intersection(extra))
        if clashing:
            hint = ""
            if isinstance(extra.get("thinking"), dict):
                hint = (
                    " For the thinking object use thinking=True/False, effort=... and "
                    "preserve_thinking=True (thinking.keep='all')."
                )
            raise ValueError(
                f"model_kwargs holds {', '.join(clashing)}, which ChatKimiCoder takes as "
                f"parameters; pass them directly instead.{hint}"
            )
        if extra or "model_kwargs" in values:
            values["model_kwargs"] = extra
        return values

    @property
    def model_name(self) -> str:
        """The model id (``ChatOpenAI``'s attribute name for ``model``)."""
        return self.model

    # ------------------------------------------------------------------ LangChain plumbing

    @property
    def _llm_type(self) -> str:
        return "kimi-coder-chat"

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "KIMI_CODER_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_kimi_coder", "chat_models"]

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "thinking": self.thinking,
            "max_tokens": self.max_tokens,
        }
        if self.effort is not None:
            params["effort"] = self.effort
        if self.base_url is not None:
            params["base_url"] = self.base_url
        for key in SAMPLING_PARAMS:
            value = getattr(self, key)
            if value is not None:
                params[key] = value
        return params

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """LangChain's invocation params (``asdict()`` + ``stop`` + kwargs), without the
        deprecation-warning guard it wraps around ``dict()`` (~10 us per call) unless a subclass
        overrides ``dict``/``asdict``."""
        cls = type(self)
        if cls.dict is not _BASE_DICT or cls.asdict is not _BASE_ASDICT:
            return super()._get_invocation_params(stop=stop, **kwargs)
        params = dict(self._identifying_params)
        params["_type"] = self._llm_type
        params["stop"] = stop
        return {**params, **kwargs}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="kimi-coder",
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = stop or kwargs.get("stop") or self.stop
        if stop:
            params["ls_stop"] = stop
        return params

    # The run config's ``configurable.thread_id`` reaches ``_generate`` only through these entry
    # points (LangChain passes callbacks and metadata down, not ``configurable``), so each hands
    # it on as a private call kwarg for ``prompt_cache_key="auto"``.

    def invoke(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return super().invoke(input, config, stop=stop, **_thread_kwarg(config, kwargs))

    async def ainvoke(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop, **_thread_kwarg(config, kwargs))

    def stream(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        return super().stream(input, config, stop=stop, **_thread_kwarg(config, kwargs))

    def astream(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        return super().astream(input, config, stop=stop, **_thread_kwarg(config, kwargs))

    def _convert_input(self, model_input: LanguageModelInput) -> PromptValue:
        """LangChain's input conversion, without re-validating a plain list that already holds
        only messages (the common case; ~6 us on the path to the first token). Anything else,
        including a list with dicts, tuples or strings, goes through LangChain's conversion."""
        if type(model_input) is list and all(isinstance(m, BaseMessage) for m in model_input):
            return ChatPromptValue.model_construct(messages=list(model_input))
        return super()._convert_input(model_input)

    def _resolve_model_profile(self) -> dict[str, Any] | None:  # type: ignore[override]
        from ._profiles import profile_for

        return profile_for(self.model)

    # ------------------------------------------------------------------ token counting

    def get_num_tokens(self, text: str) -> int:
        """Estimated tokens of ``text``, with no tokenizer download (``kimi_coder_auth.tokens``:
        within about ±20 % on prose, code and Chinese). The exact count of a sent prompt is in
        the response's ``usage_metadata["input_tokens"]``."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return count_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Estimated input tokens of ``messages`` (and ``tools``), as :meth:`get_num_tokens`."""
        specs = [convert_to_openai_tool(t) for t in tools] if tools else None
        return count_message_tokens(convert_messages(messages), specs)

    def get_token_ids(self, text: str) -> list[int]:
        """Kimi's tokenizer cannot be loaded offline, so there are no token ids; counts are
        estimated by :meth:`get_num_tokens` (or pass ``custom_get_token_ids``)."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            "ChatKimiCoder has no offline tokenizer for Kimi, so it cannot return token ids; use "
            "get_num_tokens() / get_num_tokens_from_messages() (an estimate), or pass "
            "custom_get_token_ids=."
        )

    # ------------------------------------------------------------------ core objects

    def _kimi_client(self) -> KimiClient:
        """The instance's core client, created on first use and rebuilt only if the connection
        settings change (e.g. after ``model_copy``); credentials are shared process-wide."""
        # Private attributes are read through ``__pydantic_private__`` directly: pydantic's
        # ``__getattr__`` fallback costs ~5 us per read on this class, and this runs per call.
        current = self.__pydantic_private__.get("_client")
        client = KimiClient.for_config(
            current,
            self,
            api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
        )
        if client is not current:
            self._client = client
        return client

    def get_usage(self) -> PlanUsage:
        """The plan's quota windows (``GET /usages``) for this model's credentials."""
        try:
            return self._kimi_client().get_usage()
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__

    async def aget_usage(self) -> PlanUsage:
        """Async :meth:`get_usage`."""
        try:
            return await self._kimi_client().aget_usage()
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__

    def quota_rate_limiter(self) -> KimiQuotaRateLimiter:
        """A ``rate_limiter=`` that holds requests while this account's quota window is used up."""
        from ._rate_limiter import KimiQuotaRateLimiter

        return KimiQuotaRateLimiter(pacer=self._kimi_client().quota_pacer())

    def _get_transport(self) -> Transport:
        """The instance's transport (see ``_kimi_client``)."""
        return self._kimi_client().transport

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the core client (rebuilt lazily). An explicit api_key refuses to pickle
        rather than be written out in the clear or silently dropped (which would switch credentials)."""
        if self.api_key is not None:
            raise TypeError(
                "A ChatKimiCoder built with api_key= cannot be pickled (the key would be written "
                "out). Serialize it with langchain_core.load.dumpd (the key becomes a secret "
                "reference), or set KIMI_CODER_API_KEY where it is unpickled and omit api_key."
            )
        client = self._client
        self._client = None
        try:
            return super().__getstate__()
        finally:
            self._client = client

    # ------------------------------------------------------------------ request building

    def _params(
        self, stop: list[str] | None, kwargs: dict[str, Any], *, stream: bool,
        run_manager: Any = None,
    ) -> dict[str, Any]:
        """Merge instance settings with call-time kwargs into ``build_request`` arguments."""
        kw = dict(kwargs)
        for key in ("ls_structured_output_format", "structured_output_format", "stream"):
            kw.pop(key, None)
        apply_aliases(kw, owner="a ChatKimiCoder call", not_applicable=_CALL_NOT_APPLICABLE)
        policy = kw.pop("forced_tool_choice", self.forced_tool_choice)
        if policy not in FORCED_TOOL_POLICIES:
            raise ValueError(
                f"forced_tool_choice={policy!r}; use one of {', '.join(FORCED_TOOL_POLICIES)}."
            )
        params: dict[str, Any] = {
            "model": kw.pop("model", None) or self.model,
            "tools": kw.pop("tools", None),
            "tool_choice": kw.pop("tool_choice", None),
            "parallel_tool_calls": kw.pop("parallel_tool_calls", None),
            "response_format": kw.pop("response_format", None),
            "thinking": kw.pop("thinking", self.thinking),
            "effort": kw.pop("effort", self.effort),
            "max_tokens": kw.pop("max_tokens", kw.pop("max_completion_tokens", self.max_tokens)),
            "stream": stream,
            "include_usage": bool(kw.pop("stream_usage", self.stream_usage)),
            "forced_tool_policy": policy,
            "protocol": kw.pop("protocol", self.protocol),
        }
        stop_seq = stop if stop is not None else kw.pop("stop", None)
        kw.pop("stop", None)
        params["stop"] = stop_seq if stop_seq is not None else self.stop
        placeholder = kw.pop("reasoning_placeholder", self.reasoning_placeholder)
        if placeholder is not None:
            params["reasoning_placeholder"] = placeholder
        for key in SAMPLING_PARAMS:
            params[key] = kw.pop(key, getattr(self, key))
        params["preserve_thinking"] = bool(kw.pop("preserve_thinking", self.preserve_thinking))
        cache_setting = kw.pop("prompt_cache_key", self.prompt_cache_key)
        thread = kw.pop(_THREAD_KWARG, None)
        if cache_setting == "auto" and thread is None:
            thread = _thread_id(run_manager)
        params["prompt_cache_key"] = resolve_prompt_cache_key(
            cache_setting, thread if cache_setting == "auto" else None
        )
        extra: dict[str, Any] = dict(self.model_kwargs)
        extra.update(kw)  # unknown call-time kwargs go to the body, as with model_kwargs
        params["extra"] = extra or None
        return params

    def _build(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], *,
        stream: bool, run_manager: Any = None,
    ) -> ChatCall:
        params = self._params(stop, kwargs, stream=stream, run_manager=run_manager)
        protocol = params.pop("protocol")
        wire = convert_messages(messages)
        model = params.pop("model")
        client = self._kimi_client()
        # the catalogue answers plain requests; only these may fetch /models
        if _needs_live(params, wire):
            info = client.model_info(model, live=True)
        else:
            info = get_model_info(model)
        call = ChatCall.prepare(
            self._get_transport(), model, wire, protocol=protocol, model_info=info, **params
        )
        _emit_warnings(call.built.warnings)
        return call

    async def _abuild(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], *,
        stream: bool, run_manager: Any = None,
    ) -> ChatCall:
        params = self._params(stop, kwargs, stream=stream, run_manager=run_manager)
        protocol = params.pop("protocol")
        wire = convert_messages(messages)
        model = params.pop("model")
        client = self._kimi_client()
        if _needs_live(params, wire):
            info = await client.amodel_info(model, live=True)
        else:
            info = get_model_info(model)
        call = await ChatCall.aprepare(
            self._get_transport(), model, wire, protocol=protocol, model_info=info, **params
        )
        _emit_warnings(call.built.warnings)
        return call

    # ------------------------------------------------------------------ generate

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._build(messages, stop, kwargs, stream=False, run_manager=run_manager)
        try:
            completion = call.complete()
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__
        return self._chat_result(call, completion)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = await self._abuild(messages, stop, kwargs, stream=False, run_manager=run_manager)
        try:
            completion = await call.acomplete()
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__
        return self._chat_result(call, completion)

    def _chat_result(self, call: ChatCall, completion: Completion) -> ChatResult:
        extra = {"tool_choice_relaxed": True} if call.built.tool_choice_relaxed else None
        if call.request_id:
            extra = {**(extra or {}), "x_request_id": call.request_id}
        message = completion_to_message(
            completion, model=call.model, trace_id=call.trace_id, extra_metadata=extra
        )
        llm_output: dict[str, Any] = {"model_name": message.response_metadata["model_name"]}
        if completion.usage is not None:
            llm_output["token_usage"] = dict(completion.usage.raw)
        generation_info = {"finish_reason": completion.finish_reason}
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info=generation_info)],
            llm_output=llm_output,
        )

    # ------------------------------------------------------------------ stream

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._build(messages, stop, kwargs, stream=True, run_manager=run_manager)
        stream = call.stream()
        state = _StreamState(call, stream, v1=self.output_version == "v1")
        try:
            chunks = state.chunks
            try:
                for delta in stream:
                    yield from chunks(delta)
                state.check_tool_calls()
            except Exception as exc:
                raise translate_error(exc) from exc.__cause__
            fixup = state.id_fixup()
            if fixup is not None:
                yield fixup
            yield state.final()
        finally:
            stream.close()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = await self._abuild(messages, stop, kwargs, stream=True, run_manager=run_manager)
        stream = call.astream()
        state = _StreamState(call, stream, v1=self.output_version == "v1")
        try:
            chunks = state.chunks
            try:
                async for delta in stream:
                    for chunk in chunks(delta):
                        yield chunk
                state.check_tool_calls()
            except Exception as exc:
                raise translate_error(exc) from exc.__cause__
            fixup = state.id_fixup()
            if fixup is not None:
                yield fixup
            yield state.final()
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form ``convert_to_openai_tool`` accepts) to this model.

        ``tool_choice``: a tool name, ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True``
        (must call some tool) or an OpenAI-style dict. A forced choice never raises here; while
        thinking is on it is resolved per request by ``forced_tool_choice``.
        ``parallel_tool_calls``: allow or forbid several calls in one turn.
        ``strict`` is accepted for compatibility and ignored: Kimi has no strict tool mode, and
        schemas are normalised to Kimi's dialect instead.
        """
        del strict  # documented as ignored
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = map_tool_choice(tool_choice)
        elif tool_choice is False:
            kwargs["tool_choice"] = "none"
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Return a runnable that answers with data matching ``schema``.

        ``method`` left unset picks what the model can honour (from its thinking mode in the
        catalogue, or the live ``/models`` entry once fetched): ``"json_schema"`` while the model
        thinks (always-thinking models such as ``k3``, or ``thinking`` not False), so thinking
        stays on and nothing is forced; ``"function_calling"`` when thinking is off. An explicit
        ``method`` is always kept, with a warning if it cannot be honoured:

            - ``"function_calling"``: the schema becomes a tool and the call is forced.
              While thinking is on, ``forced_tool_choice`` decides: by default thinking is turned
              off for the request; on always-thinking models the choice is relaxed to auto (with
              the warning), and if no tool call comes back an ``OutputParserException`` is raised.
            - ``"json_mode"``: ``response_format={"type": "json_object"}``; describe the wanted
              JSON in the prompt.
            - ``"json_schema"``: ``response_format={"type": "json_schema", ...}`` sent natively
              (Moonshot's API lists ``text``/``json_object``/``json_schema``; the schema is
              normalised to Kimi's dialect). Thinking stays on: nothing is forced.

        ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}``. ``strict`` is
        accepted and ignored (Kimi has no strict mode).
        """
        from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
        from langchain_core.output_parsers.openai_tools import (
            JsonOutputKeyToolsParser,
            PydanticToolsParser,
        )

        del strict
        if kwargs:
            raise ValueError(f"with_structured_output got unsupported arguments {sorted(kwargs)}.")
        choice = choose_structured_method(
            self._kimi_client().known_model_info(self.model),
            thinking=self.thinking,
            requested=method,
            forced_tool_policy=self.forced_tool_choice,
        )
        if choice.warning:
            warnings.warn(choice.warning, UserWarning, stacklevel=_user_stacklevel())
        method = choice.method
        if method == "json_schema" and schema is None:
            raise ValueError("with_structured_output needs a schema (or method='json_mode').")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        ls_format = {"kwargs": {"method": method}, "schema": schema}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            if schema is None:
                raise ValueError("method='function_calling' needs a schema.")
            tool = convert_to_openai_tool(schema)
            tool_name = tool["function"]["name"]
            llm = self.bind_tools(
                [tool],
                tool_choice=tool_name,
                parallel_tool_calls=False,
                ls_structured_output_format=ls_format,
            )
            tools_parser: Runnable[Any, Any] = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
            parser = RunnableLambda(_require_tool_call(tool_name), name="require_tool_call") | tools_parser
        elif method == "json_mode":
            llm = self.bind(
                response_format={"type": "json_object"}, ls_structured_output_format=ls_format
            )
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            if schema is None:
                raise ValueError("method='json_schema' needs a schema.")
            # The core (wire.build_request) puts the schema in Kimi's dialect: name sanitised,
            # refs inlined, every property typed, "$schema" dropped.
            response_format = json_schema_format(convert_to_json_schema(schema))
            llm = self.bind(response_format=response_format, ls_structured_output_format=ls_format)
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        if include_raw:
            parser_assign = RunnablePassthrough.assign(
                parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
            )
            parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
            with_fallback = parser_assign.with_fallbacks(
                [parser_none], exception_key="parsing_error"
            )
            return RunnableMap(raw=llm) | with_fallback
        return llm | parser


# ---------------------------------------------------------------------- helpers


_THREAD_KWARG = "_kimi_thread_id"


def _thread_kwarg(config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus the config's ``configurable.thread_id`` under a private key (if any)."""
    if isinstance(config, dict):
        tid = (config.get("configurable") or {}).get("thread_id")
        if tid is not None and _THREAD_KWARG not in kwargs:
            return {**kwargs, _THREAD_KWARG: tid}
    return kwargs


def _thread_id(run_manager: Any) -> Any:
    """The LangGraph ``thread_id`` of the current run: ``configurable.thread_id`` of the run
    config in context, else the run's metadata (LangGraph copies it there); None outside one."""
    from langchain_core.runnables.config import var_child_runnable_config

    config = var_child_runnable_config.get()
    if config:
        tid = (config.get("configurable") or {}).get("thread_id")
        if tid is not None:
            return tid
    metadata = getattr(run_manager, "metadata", None)
    if isinstance(metadata, dict):
        return metadata.get("thread_id")
    return None


def _needs_live(params: dict[str, Any], wire: list[dict[str, Any]]) -> bool:
    """Live ``/models`` data is consulted only when the request depends on it."""
    return needs_live_model_info(
        wire,
        thinking=params["thinking"],
        effort=params["effort"],
        tool_choice=params["tool_choice"],
    )


_CONNECTION = (
    "is a connection setting, fixed per model object; set it when creating ChatKimiCoder "
    "(or use .model_copy(update={...}))."
)
_CALL_NOT_APPLICABLE = {
    name: _CONNECTION
    for name in ("api_key", "base_url", "credentials", "timeout", "max_retries", "user_agent",
                 "default_headers", "on_quota", "max_quota_wait")
}
_LC_NOT_APPLICABLE = {
    "context_window": "the context window is the model's (see .profile['max_input_tokens']); "
    "limit the output with max_tokens=.",
}


def _field_names(cls: type[BaseModel]) -> set[str]:
    """Field names and their aliases."""
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return names


_BASE_DICT = BaseChatModel.dict
_BASE_ASDICT = BaseChatModel.asdict

_FRAMEWORK_PACKAGES = ("langchain_kimi_coder", "langchain_core", "langchain", "langgraph")


def _user_stacklevel() -> int:
    """Stack level of the first frame outside LangChain/LangGraph, so a warning points at the
    caller's own line rather than at framework internals."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] not in _FRAMEWORK_PACKAGES:
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return 2


def _emit_warnings(messages: Sequence[str]) -> None:
    """Surface the core's request warnings (e.g. a forced tool choice relaxed to auto)."""
    if messages:
        level = _user_stacklevel()
        for text in messages:
            warnings.warn(text, UserWarning, stacklevel=level)


def _require_tool_call(tool_name: str) -> Callable[[BaseMessage], BaseMessage]:
    """A step that fails clearly when a structured-output turn came back without the tool call."""

    def check(message: BaseMessage) -> BaseMessage:
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            return message
        relaxed = bool(message.response_metadata.get("tool_choice_relaxed"))
        why = (
            " The forced tool choice was relaxed to 'auto' because the model was thinking "
            "(Kimi rejects a forced tool_choice with thinking on), and the model answered in "
            "text instead."
            if relaxed
            else ""
        )
        raise OutputParserException(
            f"The model did not call the structured-output tool {tool_name!r}.{why} Use "
            "thinking=False or a model that can turn thinking off, or "
            "with_structured_output(method='json_schema').",
            llm_output=message.text if isinstance(message.content, (str, list)) else None,
        )

    return check


class _StreamState:
    """Turns the core's ``StreamDelta``s into LangChain chunks for one stream.

    v1 output gets explicit, never-colliding block indexes (reasoning, text and each tool call
    take the next free index when first seen), so aggregation never merges a tool call into a
    reasoning or text block. v0 output emits one kind per chunk (reasoning, text, tool calls).
    """

    __slots__ = (
        "call",
        "message_id",
        "model",
        "next_index",
        "reasoning_index",
        "stream",
        "text_index",
        "tool_index",
        "v1",
    )

    def __init__(self, call: ChatCall, stream: DeltaStream | AsyncDeltaStream, *, v1: bool) -> None:
        self.call = call
        self.stream = stream
        self.v1 = v1
        self.model = call.model
        self.message_id: str | None = None
        self.next_index = 0
        self.reasoning_index: int | None = None
        self.text_index: int | None = None
        self.tool_index: dict[int, int] = {}

    def _new_index(self) -> int:
        idx = self.next_index
        self.next_index += 1
        return idx

    def _meta(self) -> dict[str, Any]:
        if self.v1:
            return {"model_provider": MODEL_PROVIDER, "output_version": "v1"}
        return {"model_provider": MODEL_PROVIDER}

    def chunks(self, delta: StreamDelta) -> list[ChatGenerationChunk]:
        """The LangChain chunks for one delta (usually one; empty for metadata-only deltas)."""
        if self.message_id is None and delta.id:
            self.message_id = delta.id
        out: list[ChatGenerationChunk] = []
        v1 = self.v1
        if delta.reasoning is not None:
            content: Any = ""
            if v1:
                if self.reasoning_index is None:
                    self.reasoning_index = self._new_index()
                content = [
                    {"type": "reasoning", "reasoning": delta.reasoning, "index": self.reasoning_index}
                ]
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=content,
                        additional_kwargs={"reasoning_content": delta.reasoning},
                        response_metadata=self._meta(),
                        id=self.message_id,
                    )
                )
            )
        if delta.content:
            if v1:
                if self.text_index is None:
                    self.text_index = self._new_index()
                content = [{"type": "text", "text": delta.content, "index": self.text_index}]
            else:
                content = delta.content
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=content, response_metadata=self._meta(), id=self.message_id
                    )
                )
            )
        if delta.tool_calls:
            tool_chunks = []
            blocks: list[dict[str, Any]] = []
            for tc in delta.tool_calls:
                tool_chunks.append(
                    tool_call_chunk(name=tc.name, args=tc.arguments, id=tc.id, index=tc.index)
                )
                if v1:
                    idx = self.tool_index.get(tc.index)
                    if idx is None:
                        idx = self.tool_index[tc.index] = self._new_index()
                    blocks.append(
                        {
                            "type": "tool_call_chunk",
                            "id": tc.id,
                            "name": tc.name,
                            "args": tc.arguments,
                            "index": idx,
                        }
                    )
            out.append(
                ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=blocks if v1 else "",  # type: ignore[arg-type]
                        tool_call_chunks=tool_chunks,
                        response_metadata=self._meta(),
                        id=self.message_id,
                    )
                )
            )
        return out

    def check_tool_calls(self) -> None:
        """Raise for a streamed tool call the server never named.

        ``invoke`` reports it in ``invalid_tool_calls``; a stream cannot, because LangChain
        re-derives tool calls from the merged chunks and would call it a tool named ``''``.
        """
        for tc in self.stream.accumulator.tool_calls():
            error = getattr(tc, "error", None)
            if error:
                raise MalformedResponseError(
                    f"The streamed answer is malformed: {error}.",
                    trace_id=self.stream.trace_id,
                    hint="Use invoke() to get it as an invalid tool call, or retry the request.",
                )

    def id_fixup(self) -> ChatGenerationChunk | None:
        """A chunk giving calls whose id the stream never sent the core's id (the one
        ``invoke`` gives them), merged by index into the streamed call; None when all had ids."""
        missing = self.stream.accumulator.synthesized_ids()
        if not missing:
            return None
        tool_chunks = [
            tool_call_chunk(name=None, args=None, id=call_id, index=idx)
            for idx, call_id in missing.items()
        ]
        content: Any = ""
        if self.v1:
            content = [
                {"type": "tool_call_chunk", "id": call_id, "index": self.tool_index[idx]}
                for idx, call_id in missing.items()
                if idx in self.tool_index
            ]
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                tool_call_chunks=tool_chunks,
                response_metadata=self._meta(),
                id=self.message_id,
            )
        )

    def final(self) -> ChatGenerationChunk:
        """The closing chunk: usage, finish reason, model name, ids, the route that answered,
        and the Anthropic route's thinking blocks (signatures included); ``chunk_position="last"``."""
        stream = self.stream
        acc = stream.accumulator
        call = self.call
        meta = self._meta()
        meta["model_name"] = acc.model or self.model
        meta["finish_reason"] = acc.finish_reason
        meta["protocol"] = stream.protocol
        if acc.id:
            meta["id"] = acc.id
        trace_id = stream.trace_id
        if trace_id:
            meta["x_trace_id"] = trace_id
        request_id = getattr(stream, "request_id", None)
        if request_id:
            meta["x_request_id"] = request_id
        if call.built.tool_choice_relaxed:
            meta["tool_choice_relaxed"] = True
        usage = usage_to_metadata(acc.usage) if (acc.usage and call.include_usage) else None
        additional: dict[str, Any] = {}
        content: Any = [] if self.v1 else ""
        details = acc.reasoning_details() if stream.protocol != "anthropic" else None  # type: ignore[union-attr]
        if details:
            additional["reasoning_details"] = details
        if stream.protocol == "anthropic":
            blocks = acc.thinking_blocks()  # type: ignore[union-attr]
            if blocks:
                additional["thinking_blocks"] = blocks
                if self.v1 and self.reasoning_index is not None:
                    sigs = [b["signature"] for b in blocks if b.get("signature") is not None]
                    if sigs:
                        content = [{"type": "reasoning", "reasoning": "", "index": self.reasoning_index,
                                    "extras": {"signature": sigs[0]}}]
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                additional_kwargs=additional,
                response_metadata=meta,
                usage_metadata=usage,
                chunk_position="last",
                id=self.message_id or acc.id,
            ),
            generation_info={"finish_reason": acc.finish_reason},
        )
