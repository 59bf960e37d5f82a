"""KimiCoderLLM inside LlamaIndex's own machinery: agents, chat and query engines, structured
output and token counting, all against the strict emulator with thinking on."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentStream,
    AgentWorkflow,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field

from kimi_coder_auth.emulator import Emulator
from llama_index_kimi_coder import KimiCoderLLM

pytestmark = pytest.mark.timeout(30)


#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def subtract(a: int, b: int) -> int:
    """Subtract b from a."""
    return a - b


TOOLS = [FunctionTool.from_defaults(fn=f) for f in (add, multiply, subtract)]


class Person(BaseModel):
    """A person."""

    name: str = Field(description="The person's name")
    age: int = Field(description="Age in years")


@pytest.fixture(autouse=True)
def _no_default_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may fall back to OpenAI: a mock embedding and no default LLM."""
    monkeypatch.setattr(Settings, "_embed_model", MockEmbedding(embed_dim=8))
    monkeypatch.setattr(Settings, "_llm", None)


# --------------------------------------------------------------------------- agents


async def test_function_agent_three_tool_rounds_with_thinking(
    llm: KimiCoderLLM, emulator: Emulator, chat_bodies: Any
) -> None:
    agent = FunctionAgent(tools=TOOLS, llm=llm)  # streaming is the default
    handler = agent.run("First use add on 2 and 3, then multiply 4 and 5, then subtract 9 and 1.")
    thinking: list[str] = []
    tool_results: list[ToolCallResult] = []
    async for ev in handler.stream_events():
        if isinstance(ev, AgentStream) and ev.thinking_delta:
            thinking.append(ev.thinking_delta)
        elif isinstance(ev, ToolCallResult):
            tool_results.append(ev)
    result = await handler
    assert isinstance(result, AgentOutput)

    assert [r.tool_name for r in tool_results] == ["add", "multiply", "subtract"]
    assert [r.tool_output.raw_output for r in tool_results] == [5, 20, 8]
    assert thinking, "AgentStream.thinking_delta never carried reasoning"
    assert "5" in str(result.response.content) and "20" in str(result.response.content)

    bodies = chat_bodies()
    assert len(bodies) == 4 and emulator.counts["chat"] == 4
    # every later round replays the reasoning captured from the streamed tool-call turns
    last = bodies[-1]["messages"]
    assistant_turns = [m for m in last if m["role"] == "assistant"]
    assert len(assistant_turns) == 3
    for turn in assistant_turns:
        assert turn["reasoning_content"].strip()
        assert "content" not in turn  # tool-call turns with no text omit content
    assert all(b["thinking"] == {"type": "enabled"} for b in bodies)


async def test_function_agent_initial_tool_choice_with_thinking(
    toggle_llm: KimiCoderLLM, chat_bodies: Any
) -> None:
    """A forced first call turns thinking off for that request only; the next request (thinking
    on again) replays the reasoning-less tool turn with the core's placeholder, which the strict
    emulator accepts."""
    llm = toggle_llm
    agent = FunctionAgent(tools=TOOLS, llm=llm, initial_tool_choice="add")
    result = await agent.run("Please add 40 and 2.")
    assert "42" in str(result.response.content)
    first, second = chat_bodies()[:2]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert first["thinking"] == {"type": "disabled"}
    assert second["thinking"] == {"type": "enabled"}
    tool_turn = next(m for m in second["messages"] if m["role"] == "assistant")
    assert isinstance(tool_turn["reasoning_content"], str)


async def test_function_agent_non_streaming_and_output_cls(llm: KimiCoderLLM) -> None:
    agent = FunctionAgent(tools=TOOLS, llm=llm, streaming=False, output_cls=Person)
    result = await agent.run("Use add on 30 and 12. The person is 'Ada', aged 36.")
    assert "42" in str(result.response.content)
    assert result.structured_response is not None
    person = Person.model_validate(result.structured_response)
    assert isinstance(person.age, int) and person.name


async def test_agent_workflow_from_tools_picks_function_agent(llm: KimiCoderLLM) -> None:
    workflow = AgentWorkflow.from_tools_or_functions([add, multiply], llm=llm)
    assert isinstance(workflow.agents[next(iter(workflow.agents))], FunctionAgent)
    handler = workflow.run(user_msg="Use multiply on 3 and 14.")
    thinking = [
        ev.thinking_delta
        async for ev in handler.stream_events()
        if isinstance(ev, AgentStream) and ev.thinking_delta
    ]
    result = await handler
    assert "42" in str(result.response.content)
    assert thinking


async def test_react_agent_run(llm: KimiCoderLLM, chat_bodies: Any) -> None:
    agent = ReActAgent(tools=TOOLS, llm=llm)
    handler = agent.run("Please multiply 6 and 7.")
    thinking = [
        ev.thinking_delta
        async for ev in handler.stream_events()
        if isinstance(ev, AgentStream) and ev.thinking_delta
    ]
    result = await handler
    assert "42" in str(result.response.content)
    assert thinking
    assert len(chat_bodies()) == 2


# --------------------------------------------------------------------------- engines


def test_simple_chat_engine_keeps_history(llm: KimiCoderLLM, chat_bodies: Any) -> None:
    engine = SimpleChatEngine.from_defaults(llm=llm)
    assert engine._memory.token_limit > 100_000  # sized from the 262144-token context window
    first = engine.chat("My name is Grace.")
    assert "Grace" in str(first)
    second = engine.stream_chat("What did I say?")
    text = "".join(second.response_gen)
    assert "What did I say" in text
    msgs = chat_bodies()[-1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["reasoning_content"]  # the reply's ThinkingBlock was replayed


async def test_async_chat_engine(llm: KimiCoderLLM) -> None:
    engine = SimpleChatEngine.from_defaults(llm=llm)
    resp = await engine.achat("Hello async")
    assert "Hello async" in str(resp)


def test_query_engine_over_summary_index(llm: KimiCoderLLM, chat_bodies: Any) -> None:
    docs = [
        Document(text="The lighthouse keeper's cat is called Biscuit."),
        Document(text="Biscuit likes sardines and naps on the lamp room floor."),
    ]
    index = SummaryIndex.from_documents(docs)
    engine = index.as_query_engine(llm=llm)
    response = engine.query("What is the cat called?")
    assert str(response).strip()
    assert len(response.source_nodes) == 2
    sent = "\n".join(
        m["content"] if isinstance(m["content"], str) else str(m["content"])
        for b in chat_bodies()
        for m in b["messages"]
    )
    assert "Biscuit" in sent and "What is the cat called?" in sent
    streamed = index.as_query_engine(llm=llm, streaming=True).query("Where does Biscuit nap?")
    assert "".join(streamed.response_gen).strip()


# --------------------------------------------------------------------------- structured output


def test_structured_predict_with_thinking_on(toggle_llm: KimiCoderLLM, chat_bodies: Any) -> None:
    llm = toggle_llm
    prompt = PromptTemplate("Extract the person: {text}")
    person = llm.structured_predict(Person, prompt, text="'Alan' is 41 years old")
    assert isinstance(person, Person) and person.age == 41 and person.name == "Alan"
    body = chat_bodies()[-1]
    # native json_schema keeps thinking on; nothing is forced
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Person"
    assert body["thinking"] == {"type": "enabled"}
    assert "tool_choice" not in body and "tools" not in body


def test_structured_predict_function_mode_is_kept(make_llm: Any, chat_bodies: Any) -> None:
    from llama_index.core.types import PydanticProgramMode

    llm = make_llm(model="toggle-thinking", thinking=True,  # a model whose thinking can switch off
                   pydantic_program_mode=PydanticProgramMode.FUNCTION)
    prompt = PromptTemplate("Extract the person: {text}")
    person = llm.structured_predict(Person, prompt, text="'Alan' is 41 years old")
    assert person == Person(name="Alan", age=41)
    body = chat_bodies()[-1]
    assert body["tool_choice"] in ("required", {"type": "function", "function": {"name": "Person"}})
    assert body["thinking"] == {"type": "disabled"}  # forced tool call with thinking: policy


async def test_astructured_predict_and_structured_llm(toggle_llm: KimiCoderLLM) -> None:
    llm = toggle_llm
    prompt = PromptTemplate("Extract the person: {text}")
    person = await llm.astructured_predict(Person, prompt, text="'Edsger' is 72")
    assert person.name == "Edsger" and person.age == 72
    sllm = llm.as_structured_llm(Person)
    resp = sllm.chat([ChatMessage(role="user", content="'Barbara' is 80")])
    assert isinstance(resp.raw, Person) and resp.raw.age == 80


def test_stream_structured_predict(llm: KimiCoderLLM) -> None:
    prompt = PromptTemplate("Extract the person: {text}")
    parts = list(llm.stream_structured_predict(Person, prompt, text="'Ken' is 55"))
    assert parts
    final = parts[-1]
    assert final.name == "Ken" and final.age == 55


# --------------------------------------------------------------------------- token counting


def test_token_counting_handler_counts_server_usage(make_llm: Any) -> None:
    counter = TokenCountingHandler()
    llm = make_llm(thinking=True, callback_manager=CallbackManager([counter]))
    resp = llm.chat([ChatMessage(role="user", content="count me")])
    assert counter.prompt_llm_token_count == resp.additional_kwargs["prompt_tokens"]
    assert counter.completion_llm_token_count == resp.additional_kwargs["completion_tokens"]
    counter.reset_counts()
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="count the stream")]))
    usage = chunks[-1].additional_kwargs
    assert counter.prompt_llm_token_count == usage["prompt_tokens"] > 0
    assert counter.completion_llm_token_count == usage["completion_tokens"] > 0
    counter.reset_counts()
    done = llm.complete("count completion")
    assert counter.total_llm_token_count == done.additional_kwargs["total_tokens"]
    assert len(counter.llm_token_counts) == 1  # complete() goes through chat once, counted once


async def test_astream_structured_predict(llm: KimiCoderLLM) -> None:
    prompt = PromptTemplate("Extract the person: {text}")
    parts = [
        p async for p in await llm.astream_structured_predict(Person, prompt, text="'Lin' is 33")
    ]
    assert parts and parts[-1].name == "Lin" and parts[-1].age == 33
