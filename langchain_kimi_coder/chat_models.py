"""``ChatKimiCoder``: LangChain chat model for Moonshot's Kimi Coding Plan.

A thin adapter: LangChain messages become wire messages (``messages.py``), and the shared core
(``kimi_coder_auth.wire`` / ``transport`` / ``sources``) builds the request, talks HTTP and folds
the stream. This module holds the class (fields, LangChain plumbing, the invoke/stream entry
points); its seams live beside it: ``_settings.py`` (constructor arguments), ``request.py`` (one
call -> ``ChatCall``), ``prompt_cache.py`` (``thread_id`` -> cache key), ``streaming.py`` (deltas
-> chunks) and ``structured_output.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from kimi_coder_auth.client import KimiClient
from kimi_coder_auth.quota_pacing import DEFAULT_MAX_QUOTA_WAIT
from kimi_coder_auth.routing import ChatCall
from kimi_coder_auth.tokens import count_message_tokens, count_tokens
from kimi_coder_auth.wire import SAMPLING_PARAMS, map_tool_choice

from ._errors import translate_error
from ._settings import collect_extra
from .messages import completion_to_message, convert_messages
from .prompt_cache import thread_kwarg
from .request import abuild_call, build_call
from .streaming import _StreamState
from .structured_output import structured_output

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from kimi_coder_auth.neutral import Completion
    from kimi_coder_auth.transport import Transport
    from kimi_coder_auth.usage import PlanUsage

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
        return collect_extra(cls, values)

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
    # points, so each hands it on for ``prompt_cache_key="auto"`` (see ``prompt_cache.py``).

    def invoke(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return super().invoke(input, config, stop=stop, **thread_kwarg(config, kwargs))

    async def ainvoke(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        return await super().ainvoke(input, config, stop=stop, **thread_kwarg(config, kwargs))

    def stream(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        return super().stream(input, config, stop=stop, **thread_kwarg(config, kwargs))

    def astream(  # type: ignore[override]
        self, input: LanguageModelInput, config: Any = None, *, stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        return super().astream(input, config, stop=stop, **thread_kwarg(config, kwargs))

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
        client = KimiClient.for_config(current, self, api_key=self.api_key)
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

    # ------------------------------------------------------------------ generate

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = build_call(self, messages, stop, kwargs, stream=False, run_manager=run_manager)
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
        call = await abuild_call(self, messages, stop, kwargs, stream=False, run_manager=run_manager)
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
        call = build_call(self, messages, stop, kwargs, stream=True, run_manager=run_manager)
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
        call = await abuild_call(self, messages, stop, kwargs, stream=True, run_manager=run_manager)
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
        del strict  # documented as ignored
        return structured_output(self, schema, method=method, include_raw=include_raw, kwargs=kwargs)


# ---------------------------------------------------------------------- helpers


_BASE_DICT = BaseChatModel.dict
_BASE_ASDICT = BaseChatModel.asdict
