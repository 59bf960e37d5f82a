"""Tools, forced tool choice vs thinking, structured output and replay, against the strict emulator."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from kimi_lc_support import API_KEY
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from kimi_coder_auth.emulator import Emulator, ScriptedResponder, Turn
from langchain_kimi_coder import ChatKimiCoder


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"Sunny in {city}"


@tool
def anything(value: Any) -> str:
    """Echo any value (its schema has no type)."""
    return str(value)


class Person(BaseModel):
    """A person."""

    name: str = Field(description="The person's name")
    age: int


class PersonDict(TypedDict):
    """A person."""

    name: str
    age: int


#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

def _last_chat(emu: Emulator) -> dict[str, Any]:
    return [r.body for r in emu.requests if r.path.endswith("/chat/completions")][-1]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("auto", "auto"),
        ("none", "none"),
        ({"type": "function", "function": {"name": "get_weather"}},
         {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_forms(emulator: Emulator, model_kwargs: dict, choice: Any, wire: Any) -> None:
    llm = ChatKimiCoder(**model_kwargs, model=TOGGLE, thinking=False)
    msg = llm.bind_tools([get_weather], tool_choice=choice).invoke("Weather in 'Paris' please")
    body = _last_chat(emulator)
    assert body["tool_choice"] == wire
    if wire == "none":
        assert not msg.tool_calls
    else:
        assert msg.tool_calls[0]["name"] == "get_weather"
        assert msg.tool_calls[0]["args"] == {"city": "Paris"}


def test_parallel_tool_calls_and_schema_normalised(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs)
    llm.bind_tools([anything, get_weather], parallel_tool_calls=False, strict=True).invoke(
        "call anything with 'x'"
    )
    body = _last_chat(emulator)
    assert body["parallel_tool_calls"] is False
    props = body["tools"][0]["function"]["parameters"]["properties"]
    assert all("type" in p for p in props.values())  # the strict emulator would 400 otherwise
    assert "strict" not in body["tools"][0]["function"]


# --------------------------------------------------------------------------- forced choice


def test_forced_choice_with_thinking_disables_thinking_for_that_request(
    emulator: Emulator, model_kwargs: dict
) -> None:
    llm = ChatKimiCoder(**model_kwargs, model=TOGGLE, thinking=True).bind_tools([get_weather], tool_choice="any")
    with pytest.warns(UserWarning, match="thinking was disabled"):
        msg = llm.invoke("weather in 'Rome'")
    body = _last_chat(emulator)
    assert body["thinking"] == {"type": "disabled"} and body["tool_choice"] == "required"
    assert msg.tool_calls[0]["args"] == {"city": "Rome"}


def test_forced_choice_policy_auto_relaxes_with_warning(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, thinking=True, forced_tool_choice="auto")
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    with pytest.warns(UserWarning, match="relaxed to 'auto'"):
        msg = bound.invoke("get weather in 'Oslo'")
    body = _last_chat(emulator)
    assert body["tool_choice"] == "auto" and body["thinking"] == {"type": "enabled"}
    assert msg.tool_calls and msg.additional_kwargs["reasoning_content"]
    assert msg.response_metadata["tool_choice_relaxed"] is True


def test_forced_choice_policy_error_raises_at_request_not_bind(
    emulator: Emulator, model_kwargs: dict
) -> None:
    llm = ChatKimiCoder(**model_kwargs, thinking=True, forced_tool_choice="error")
    before = emulator.counts["chat"]
    bound = llm.bind_tools([get_weather], tool_choice="any")  # never raises at bind time
    with pytest.raises(ValueError, match="forced tool_choice"):
        bound.invoke("weather")
    assert emulator.counts["chat"] == before


def test_forced_choice_on_always_thinking_model_relaxes(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, model="kimi-k2-thinking")
    with pytest.warns(UserWarning, match="relaxed"):
        msg = llm.bind_tools([get_weather], tool_choice="any").invoke("weather in 'Lima'")
    body = _last_chat(emulator)
    assert body["tool_choice"] == "auto" and "thinking" not in body
    assert msg.tool_calls[0]["args"] == {"city": "Lima"}


def test_forced_choice_uses_live_models_catalogue(model_kwargs: dict) -> None:
    """/models says kimi-for-coding always thinks: never send thinking=disabled then."""
    from kimi_coder_auth.emulator.models import default_models

    models = default_models()
    models[0]["supports_thinking_type"] = "only"
    with Emulator(api_keys=[API_KEY], models=models) as emu:
        llm = ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY)
        with pytest.warns(UserWarning, match="relaxed"):
            llm.bind_tools([get_weather], tool_choice="any").invoke("weather in 'Kyiv'")
        assert emu.counts["models"] == 1
        assert _last_chat(emu)["tool_choice"] == "auto"


# --------------------------------------------------------------------------- structured output


@pytest.mark.parametrize("schema", [Person, PersonDict, Person.model_json_schema()])
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_methods(
    emulator: Emulator, model_kwargs: dict, schema: Any, method: str
) -> None:
    llm = ChatKimiCoder(**model_kwargs, model=TOGGLE, thinking=True)
    prompt = "Extract: 'Ada' is 36 years old. Reply in JSON with keys name and age."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # thinking disabled for function_calling
        out = llm.with_structured_output(schema, method=method).invoke(prompt)
    body = _last_chat(emulator)
    if method == "function_calling":
        assert body["tool_choice"]["function"]["name"] in ("Person", "PersonDict")
        assert body["parallel_tool_calls"] is False
    else:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"]["properties"]["age"]["type"] == "integer"
    data = out.model_dump() if isinstance(out, BaseModel) else out
    assert data == {"name": "Ada", "age": 36}


def test_structured_output_json_mode(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, thinking=True)
    out = llm.with_structured_output(None, method="json_mode").invoke(
        "Return JSON with the key 'colour'."
    )
    assert _last_chat(emulator)["response_format"] == {"type": "json_object"}
    assert _last_chat(emulator)["thinking"] == {"type": "enabled"}  # no forced tool: thinking stays
    assert isinstance(out, dict) and list(out) == ["colour"]


def test_structured_output_include_raw(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, model=TOGGLE, thinking=False)
    out = llm.with_structured_output(Person, include_raw=True).invoke("'Bob' is 7")
    assert isinstance(out["raw"], AIMessage)
    assert out["parsed"] == Person(name="Bob", age=7) and out["parsing_error"] is None


def test_structured_output_relaxed_without_tool_call_raises(model_kwargs: dict) -> None:
    responder = ScriptedResponder([Turn(reasoning="hmm", content="I'd rather chat.")])
    with Emulator(api_keys=[API_KEY], responder=responder) as emu:
        llm = ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, model="kimi-k2-thinking")
        with pytest.warns(UserWarning, match="method='json_schema' keeps thinking on"):
            structured = llm.with_structured_output(Person, method="function_calling")
        with pytest.warns(UserWarning, match="relaxed"), pytest.raises(
            OutputParserException, match="relaxed to 'auto'"
        ):
            structured.invoke("who?")
        with pytest.warns(UserWarning):
            out = llm.with_structured_output(
                Person, method="function_calling", include_raw=True
            ).invoke("who?")
        assert out["parsed"] is None and isinstance(out["parsing_error"], OutputParserException)


def test_structured_output_bad_method() -> None:
    with pytest.raises(ValueError, match="method"):
        ChatKimiCoder().with_structured_output(Person, method="xml")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- replay


def test_hand_built_history_without_reasoning_is_accepted(emulator: Emulator, model_kwargs: dict) -> None:
    """Thinking on + an assistant tool-call turn with no reasoning: the strict emulator 400s
    unless the placeholder is sent."""
    history = [
        SystemMessage("You are helpful."),
        HumanMessage("weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
        ToolMessage("Sunny in Paris", tool_call_id="call_1"),
        AIMessage("It is sunny."),
        HumanMessage("thanks, and in Rome?"),
    ]
    llm = ChatKimiCoder(**model_kwargs, thinking=True).bind_tools([get_weather])
    msg = llm.invoke(history)
    assert isinstance(msg, AIMessage)
    sent = _last_chat(emulator)["messages"]
    assert isinstance(sent[2]["reasoning_content"], str) and "content" not in sent[2]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny in Paris"}
    custom = ChatKimiCoder(**model_kwargs, thinking=True, reasoning_placeholder="(none)")
    custom.invoke(history)
    assert _last_chat(emulator)["messages"][2]["reasoning_content"] == "(none)"


def test_foreign_reasoning_is_not_replayed(emulator: Emulator, model_kwargs: dict) -> None:
    foreign = AIMessage(
        [{"type": "reasoning", "reasoning": "secret chain", "extras": {"signature": "sig"}}],
        tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_1"}],
        response_metadata={"model_provider": "anthropic"},
    )
    history = [HumanMessage("weather?"), foreign, ToolMessage("sunny", tool_call_id="toolu_1")]
    ChatKimiCoder(**model_kwargs, thinking=True).bind_tools([get_weather]).invoke(history)
    sent = _last_chat(emulator)["messages"][1]
    assert sent["reasoning_content"] != "secret chain"
    assert sent["tool_calls"][0]["id"] == "toolu_1"


class Team(BaseModel):
    """A team with nested members."""

    lead: Person
    members: list[Person]


def test_json_schema_is_normalised_for_kimi(emulator: Emulator, model_kwargs: dict) -> None:
    llm = ChatKimiCoder(**model_kwargs, thinking=True)
    schema = {**Team.model_json_schema(), "$schema": "http://json-schema.org/draft-07/schema#"}
    llm.with_structured_output(schema, method="json_schema").invoke("'Ada' 36 leads 'Bob' 7")
    sent = _last_chat(emulator)["response_format"]["json_schema"]
    assert sent["name"] == "Team"
    text = json.dumps(sent["schema"])
    assert "$ref" not in text and "$defs" not in text and "$schema" not in text
    assert sent["schema"]["properties"]["lead"]["properties"]["age"]["type"] == "integer"
    assert _last_chat(emulator)["thinking"] == {"type": "enabled"}
