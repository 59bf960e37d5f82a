"""KimiCoderLLM for a newcomer from OpenAILike: aliases, unknown arguments into
`additional_kwargs`, native json_schema structured output with thinking on, and `finish_reason`
on every path, against the emulator."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import ParameterError
from llama_index_kimi_coder import KimiCoderLLM


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def test_openai_style_aliases(emulator: Emulator, api_key: str, chat_bodies: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm = KimiCoderLLM(
            model_name="k3", api_base=emulator.base_url, openai_api_key=api_key,
            max_completion_tokens=60, reasoning_effort="low", context_window=4096,
        )
    assert llm.model == llm.model_name == "k3"
    assert llm.metadata.context_window == 4096 and llm.metadata.num_output == 60
    llm.complete("hi")
    body = chat_bodies()[-1]
    assert body["max_completion_tokens"] == 60
    assert body["thinking"] == {"type": "enabled", "effort": "low"}
    assert api_key not in repr(llm) and api_key not in llm.model_dump_json()


def test_unknown_argument_goes_to_additional_kwargs_with_a_warning(
    make_llm: Callable[..., KimiCoderLLM], chat_bodies: Any
) -> None:
    with pytest.warns(UserWarning, match="'logit_bias' is not a KimiCoderLLM parameter"):
        llm = make_llm(logit_bias={"1": 2})
    assert llm.additional_kwargs == {"logit_bias": {"1": 2}}
    llm.complete("hi")
    assert chat_bodies()[-1]["logit_bias"] == {"1": 2}


def test_call_time_alias_and_a_setting_that_cannot_apply(
    make_llm: Callable[..., KimiCoderLLM], chat_bodies: Any
) -> None:
    llm = make_llm(model="k3")
    llm.complete("hi", reasoning_effort="high")
    assert chat_bodies()[-1]["thinking"] == {"type": "enabled", "effort": "high"}
    with pytest.raises(ParameterError, match="api_base= does not apply to a KimiCoderLLM call"):
        llm.complete("hi", api_base="http://elsewhere")
    with pytest.raises(ParameterError, match="openai_organization= does not apply"):
        make_llm(openai_organization="org")


async def test_structured_on_an_always_thinking_model_keeps_thinking(
    make_llm: Callable[..., KimiCoderLLM], chat_bodies: Any
) -> None:
    llm = make_llm(model="k3")
    prompt = PromptTemplate("Extract the person: {text}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert llm.structured_predict(Person, prompt, text="'Alan' is 41") == Person(
            name="Alan", age=41
        )
        assert await llm.astructured_predict(Person, prompt, text="'Edsger' is 72") == Person(
            name="Edsger", age=72
        )
        parts = list(llm.stream_structured_predict(Person, prompt, text="'Ken' is 55"))
        assert parts[-1] == Person(name="Ken", age=55)
        resp = llm.as_structured_llm(Person).chat([ChatMessage(role="user", content="'Bo' is 8")])
        assert resp.raw == Person(name="Bo", age=8)
    for body in chat_bodies():
        assert body["response_format"]["type"] == "json_schema"
        assert "tool_choice" not in body and body.get("thinking") != {"type": "disabled"}


async def test_finish_reason_on_every_path(make_llm: Callable[..., KimiCoderLLM]) -> None:
    llm = make_llm(max_tokens=1)
    msgs = [ChatMessage(role="user", content="Explain recursion in detail please")]
    prompt = "Explain recursion in detail please"
    assert llm.chat(msgs).additional_kwargs["finish_reason"] == "length"
    assert (await llm.achat(msgs)).additional_kwargs["finish_reason"] == "length"
    assert list(llm.stream_chat(msgs))[-1].additional_kwargs["finish_reason"] == "length"
    last = [r async for r in await llm.astream_chat(msgs)][-1]
    assert last.additional_kwargs["finish_reason"] == "length"
    assert llm.complete(prompt).additional_kwargs["finish_reason"] == "length"
    assert (await llm.acomplete(prompt)).additional_kwargs["finish_reason"] == "length"
    assert list(llm.stream_complete(prompt))[-1].additional_kwargs["finish_reason"] == "length"
    last_c = [r async for r in await llm.astream_complete(prompt)][-1]
    assert last_c.additional_kwargs["finish_reason"] == "length"
    assert make_llm().chat(msgs).additional_kwargs["finish_reason"] == "stop"
