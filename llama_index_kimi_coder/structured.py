"""Structured output: `structured_predict` and friends routed to the method the model honours."""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from llama_index.core.types import Model, PydanticProgramMode

from kimi_coder_auth.structured import choose_structured_method, json_schema_format

if TYPE_CHECKING:
    from llama_index.core.bridge.pydantic import BaseModel
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.prompts.base import PromptTemplate

    from .llm import KimiCoderLLM

__all__ = ["StructuredOutputMixin"]


class StructuredOutputMixin:
    """`KimiCoderLLM`'s structured-output methods; the choice of method is the core's."""

    __slots__ = ()

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
        return super(StructuredOutputMixin, llm).structured_predict(
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
        return await super(StructuredOutputMixin, llm).astructured_predict(
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
        return super(StructuredOutputMixin, llm).stream_structured_predict(
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
        return await super(StructuredOutputMixin, llm).astream_structured_predict(
            output_cls, prompt, llm_kwargs=kw, **prompt_args
        )

