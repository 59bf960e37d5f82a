"""KimiCoderLLM on the Anthropic Messages route: FunctionAgent tool loop with thinking, streamed
reasoning and tool calls, ThinkingBlock signatures replayed, structured_predict, raw's route."""

from __future__ import annotations

from typing import Any

from llama_index.core.agent.workflow import AgentOutput, AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, ThinkingBlock, ToolCallBlock
from pydantic import BaseModel
from test_llama_index_frameworks import TOOLS

from kimi_coder_auth.emulator import Emulator


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def _bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests if r.path.endswith("/messages")]


async def test_function_agent_three_rounds_replays_signed_thinking(make_llm: Any, emulator: Emulator) -> None:
    llm = make_llm(thinking=True, protocol="anthropic")
    handler = FunctionAgent(tools=TOOLS, llm=llm).run(
        "First use add on 2 and 3, then multiply 4 and 5, then subtract 9 and 1."
    )
    thinking: list[str] = []
    results: list[ToolCallResult] = []
    async for ev in handler.stream_events():
        if isinstance(ev, AgentStream) and ev.thinking_delta:
            thinking.append(ev.thinking_delta)
        elif isinstance(ev, ToolCallResult):
            results.append(ev)
    result = await handler
    assert isinstance(result, AgentOutput) and thinking
    assert [r.tool_output.raw_output for r in results] == [5, 20, 8]
    bodies = _bodies(emulator)
    assert len(bodies) == 4 and emulator.counts["chat"] == 0
    turns = [m for m in bodies[-1]["messages"] if m["role"] == "assistant"]
    assert len(turns) == 3
    for turn in turns:
        first = turn["content"][0]
        assert first["type"] == "thinking" and first["signature"] and first["thinking"].strip()


def test_chat_and_stream_keep_signatures_and_say_which_route(make_llm: Any) -> None:
    llm = make_llm(thinking=True, protocol="anthropic")
    reply = llm.chat([ChatMessage(role="user", content="call add on 2 and 3")], tools=[t.metadata.to_openai_tool() for t in TOOLS])
    assert reply.raw["protocol"] == "anthropic"
    think = [b for b in reply.message.blocks if isinstance(b, ThinkingBlock)]
    assert think and think[0].additional_information["signature"]
    assert [b.tool_name for b in reply.message.blocks if isinstance(b, ToolCallBlock)] == ["add"]
    last = None
    deltas = []
    for last in llm.stream_chat([ChatMessage(role="user", content="hello")]):
        deltas.append(last.delta)
    assert last is not None and "".join(deltas) == last.message.content
    assert last.raw["protocol"] == "anthropic" and last.additional_kwargs["total_tokens"] > 0
    streamed = [b for b in last.message.blocks if isinstance(b, ThinkingBlock)]
    assert streamed and streamed[0].additional_information.get("signature")


def test_structured_predict_on_the_messages_route(make_llm: Any) -> None:
    from llama_index.core.prompts import PromptTemplate

    llm = make_llm(thinking=True, protocol="anthropic")
    person = llm.structured_predict(Person, PromptTemplate("Tell me about {who}, age 36."), who="Ada")
    assert isinstance(person, Person) and person.name
