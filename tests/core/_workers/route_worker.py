"""Run a default-configured adapter through a thinking tool loop in a fresh process.

Usage: route_worker.py langchain|llama_index   (env: KIMI_CODER_API_KEY, KIMI_CODE_BASE_URL)
Prints one JSON line: the answer, the route(s) that answered, and the reasoning replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def run_langchain() -> dict:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from langchain_kimi_coder import ChatKimiCoder

    tools = {t.name: t for t in (tool(add), tool(multiply))}
    llm = ChatKimiCoder().bind_tools(list(tools.values()))  # no settings at all
    messages: list = [HumanMessage("First use add on 2 and 3, then multiply 4 and 5.")]
    routes = []
    for _ in range(4):
        ai = llm.invoke(messages)
        routes.append(ai.response_metadata["protocol"])
        messages.append(ai)
        if not ai.tool_calls:
            break
        for call in ai.tool_calls:
            messages.append(ToolMessage(str(tools[call["name"]].invoke(call["args"])), tool_call_id=call["id"]))
    signed = [bool(m.additional_kwargs.get("thinking_blocks", [{}])[0].get("signature"))
              for m in messages if getattr(m, "tool_calls", None)]
    return {"answer": messages[-1].text, "routes": routes, "signed": signed}


def run_llama_index() -> dict:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    from llama_index_kimi_coder import KimiCoderLLM

    llm = KimiCoderLLM()  # no settings at all
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)], llm=llm)

    async def go() -> str:
        return str(await agent.run("First use add on 2 and 3, then multiply 4 and 5."))

    answer = asyncio.run(go())
    from llama_index.core.base.llms.types import ChatMessage, ThinkingBlock

    reply = llm.chat([ChatMessage(role="user", content="hello")])
    signed = [bool(b.additional_information.get("signature"))
              for b in reply.message.blocks if isinstance(b, ThinkingBlock)]
    return {"answer": answer, "routes": [reply.raw["protocol"]], "signed": signed}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run_langchain() if sys.argv[1] == "langchain" else run_llama_index()
    print(json.dumps(result))
