"""``with_structured_output``: pick the method the model can honour, bind it, parse the answer."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from kimi_coder_auth.structured import choose_structured_method, json_schema_format

from ._user_warnings import user_stacklevel

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from pydantic import BaseModel

    from .chat_models import ChatKimiCoder

__all__ = ["structured_output"]


def structured_output(
    chat_model: ChatKimiCoder,
    schema: dict[str, Any] | type | None,
    *,
    method: Literal["function_calling", "json_mode", "json_schema"] | None,
    include_raw: bool,
    kwargs: dict[str, Any],
) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
    """The runnable behind ``ChatKimiCoder.with_structured_output`` (documented there)."""
    from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
    from langchain_core.output_parsers.openai_tools import (
        JsonOutputKeyToolsParser,
        PydanticToolsParser,
    )

    if kwargs:
        raise ValueError(f"with_structured_output got unsupported arguments {sorted(kwargs)}.")
    choice = choose_structured_method(
        chat_model._kimi_client().known_model_info(chat_model.model),
        thinking=chat_model.thinking,
        requested=method,
        forced_tool_policy=chat_model.forced_tool_choice,
    )
    if choice.warning:
        warnings.warn(choice.warning, UserWarning, stacklevel=user_stacklevel())
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
        llm = chat_model.bind_tools(
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
        llm = chat_model.bind(
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
        llm = chat_model.bind(response_format=response_format, ls_structured_output_format=ls_format)
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
