"""ChatKimiCoder for a newcomer from ChatOpenAI: aliases, unknown arguments, structured output
with the model's defaults and `finish_reason` on every path, against the emulator."""

from __future__ import annotations

import json
import warnings

import pytest
from kimi_lc_support import API_KEY
from pydantic import BaseModel

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.emulator.models import model_entry
from kimi_coder_auth.errors import ParameterError
from langchain_kimi_coder import ChatKimiCoder


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def _last_chat(emu: Emulator) -> dict:
    return emu.requests_to("/chat/completions")[-1].body


# --------------------------------------------------------------------------- arguments


def test_openai_style_aliases_reach_the_request(emulator: Emulator) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # aliases are understood: no "moved" warning
        llm = ChatKimiCoder(
            model_name="k3", max_completion_tokens=50, reasoning_effort="high",
            openai_api_key=API_KEY, openai_api_base=emulator.base_url,
        )
    assert llm.model_name == "k3" and llm.model == "k3"
    assert llm.max_tokens == 50 and llm.effort == "high" and llm.base_url == emulator.base_url
    assert llm.invoke("hi").text == "You said: hi"
    body = _last_chat(emulator)
    req = emulator.requests_to("/chat/completions")[-1]
    assert body["max_completion_tokens"] == 50
    assert body["thinking"] == {"type": "enabled", "effort": "high"}
    assert req.headers["authorization"] == f"Bearer {API_KEY}"


def test_openai_api_key_is_a_secret_like_api_key() -> None:
    llm = ChatKimiCoder(openai_api_key="sk-kimi-secret-alias-123")
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "sk-kimi-secret-alias-123"
    from langchain_core.load import dumpd

    assert dumpd(llm)["kwargs"]["api_key"] == {
        "lc": 1, "type": "secret", "id": ["KIMI_CODER_API_KEY"]}
    for text in (repr(llm), str(llm), llm.model_dump_json(), str(dumpd(llm))):
        assert "sk-kimi-secret-alias-123" not in text
    with pytest.raises(ValueError) as info:
        ChatKimiCoder(openai_api_key="sk-kimi-secret-alias-123", context_window=1000)
    assert "sk-kimi-secret-alias-123" not in str(info.value) + repr(info.value)


def test_unknown_argument_warns_and_is_sent_via_model_kwargs(model_kwargs: dict, emulator: Emulator) -> None:
    with pytest.warns(UserWarning, match="'logit_bias' is not a ChatKimiCoder parameter"):
        llm = ChatKimiCoder(**model_kwargs, logit_bias={"1": 2})
    assert llm.model_kwargs == {"logit_bias": {"1": 2}}
    llm.invoke("hi")
    assert _last_chat(emulator)["logit_bias"] == {"1": 2}


def test_call_time_aliases_and_connection_settings(model_kwargs: dict, emulator: Emulator) -> None:
    llm = ChatKimiCoder(**model_kwargs, model="k3")
    llm.invoke("hi", reasoning_effort="low", max_completion_tokens=77)
    body = _last_chat(emulator)
    assert body["thinking"] == {"type": "enabled", "effort": "low"}
    assert body["max_completion_tokens"] == 77 and "reasoning_effort" not in body
    with pytest.raises(ParameterError, match="base_url= does not apply to a ChatKimiCoder call"):
        llm.invoke("hi", base_url="http://elsewhere")


def test_parameters_that_cannot_apply_name_themselves() -> None:
    with pytest.raises(ValueError, match="context_window= does not apply to ChatKimiCoder"):
        ChatKimiCoder(context_window=1000)
    with pytest.raises(ValueError, match="openai_organization= does not apply"):
        ChatKimiCoder(openai_organization="org-1")
    with pytest.raises(ValueError, match="max_completion_tokens= and max_tokens= are both given"):
        ChatKimiCoder(max_tokens=10, max_completion_tokens=20)


# --------------------------------------------------------------------------- structured output


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_structured_output_on_an_always_thinking_model_just_works(
    model_kwargs: dict, emulator: Emulator, protocol: str
) -> None:
    llm = ChatKimiCoder(**model_kwargs, model="k3", protocol=protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        person = llm.with_structured_output(Person).invoke("'Ada' is 36")
    assert person == Person(name="Ada", age=36)
    req = emulator.requests[-1]
    assert "tool_choice" not in req.body and req.body.get("thinking") != {"type": "disabled"}
    if protocol == "openai":
        assert req.path.endswith("/chat/completions")
        assert req.body["response_format"]["type"] == "json_schema"
    else:  # the Messages route carries the schema as an instruction
        assert req.path.endswith("/messages")
        assert "JSON schema" in json.dumps(req.body["system"])


def test_structured_output_with_thinking_off_uses_a_forced_tool(
    model_kwargs: dict, emulator: Emulator
) -> None:
    llm = ChatKimiCoder(**model_kwargs, model="toggle-thinking", thinking=False)  # toggleable model
    assert llm.with_structured_output(Person).invoke("'Bob' is 7") == Person(name="Bob", age=7)
    body = _last_chat(emulator)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_explicit_method_is_kept_and_warned_when_it_cannot_be_honoured(model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, model="k3")
    with pytest.warns(UserWarning, match="method='json_schema' keeps thinking on"):
        llm.with_structured_output(Person, method="function_calling")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # honoured: no warning
        llm.with_structured_output(Person, method="json_schema")
        ChatKimiCoder(**model_kwargs, model="toggle-thinking").with_structured_output(
            Person, method="function_calling")  # toggleable: thinking off for the forced tool


def test_the_choice_follows_the_live_model_list() -> None:
    """When /models marks kimi-for-coding always-thinking, explicit function_calling warns."""
    models = [model_entry("kimi-for-coding", 262144, "only")]
    with Emulator(api_keys=[API_KEY], models=models) as emu:
        llm = ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, thinking=True)
        llm.invoke("hi")  # thinking= makes the request consult /models
        assert emu.counts["models"] == 1
        with pytest.warns(UserWarning, match="always thinks"):
            llm.with_structured_output(Person, method="function_calling")


# --------------------------------------------------------------------------- finish_reason


async def test_finish_reason_length_on_every_path(model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, max_tokens=1)
    prompt = "Explain recursion in detail please"
    assert llm.invoke(prompt).response_metadata["finish_reason"] == "length"
    assert (await llm.ainvoke(prompt)).response_metadata["finish_reason"] == "length"
    full = None
    for chunk in llm.stream(prompt):
        full = chunk if full is None else full + chunk
    assert full is not None and full.response_metadata["finish_reason"] == "length"
    full = None
    async for chunk in llm.astream(prompt):
        full = chunk if full is None else full + chunk
    assert full is not None and full.response_metadata["finish_reason"] == "length"
    assert ChatKimiCoder(**model_kwargs).invoke("hi").response_metadata["finish_reason"] == "stop"


def test_unknown_argument_warning_points_at_the_callers_line() -> None:
    """The warning names the user's own line, not pydantic's or LangChain's internals."""
    import warnings

    from langchain_kimi_coder import ChatKimiCoder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ChatKimiCoder(frobnicate=1)
    (warning,) = [w for w in caught if "frobnicate" in str(w.message)]
    assert warning.filename == __file__
    assert model.model_kwargs == {"frobnicate": 1}
