"""A LlamaIndex FunctionAgent on Kimi with thinking on: tools, streamed reasoning, final answer.

Needs the `llama-index` extra: `python -m pip install ".[llama-index]"` (from a clone) or
`pip install "kimi-coder[llama-index]"`.

Runs offline against the embedded Kimi Coding API emulator by default:

    python examples/llama_index_agent.py

Against the real API (uses your `kimi login` / `kimi-coder login`, or KIMI_CODER_API_KEY):

    python examples/llama_index_agent.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator

from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool

from llama_index_kimi_coder import KimiCoderLLM


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def subtract(a: int, b: int) -> int:
    """Subtract b from a."""
    return a - b


@contextlib.contextmanager
def make_llm(base_url: str | None) -> Iterator[KimiCoderLLM]:
    """The real API when a base URL is given, else a throwaway local emulator."""
    if base_url:
        yield KimiCoderLLM(base_url=base_url, thinking=True)
        return
    from kimi_coder_auth.emulator import Emulator

    with Emulator(api_keys=["demo-key"]) as emu:
        print(f"(offline: using the embedded emulator at {emu.base_url})\n")
        yield KimiCoderLLM(api_key="demo-key", base_url=emu.base_url, thinking=True)


async def run(llm: KimiCoderLLM, question: str) -> None:
    tools = [FunctionTool.from_defaults(fn=f) for f in (add, multiply, subtract)]
    agent = FunctionAgent(tools=tools, llm=llm, system_prompt="Use the tools for arithmetic.")
    handler = agent.run(question)
    thinking = False
    async for ev in handler.stream_events():
        if isinstance(ev, AgentStream):
            if ev.thinking_delta:
                if not thinking:
                    print("\n[thinking] ", end="")
                    thinking = True
                print(ev.thinking_delta, end="", flush=True)
            if ev.delta:
                if thinking:
                    print("\n[answer] ", end="")
                    thinking = False
                print(ev.delta, end="", flush=True)
        elif isinstance(ev, ToolCallResult):
            thinking = False
            print(f"\n[tool] {ev.tool_name}({ev.tool_kwargs}) -> {ev.tool_output.content}")
    result = await handler
    print(f"\n\nFinal answer: {result.response.content}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="use this API base URL instead of the local emulator")
    parser.add_argument(
        "--question",
        default="First use add on 2 and 3, then multiply 4 and 5, then subtract 9 and 1.",
    )
    args = parser.parse_args()
    with make_llm(args.base_url) as llm:
        asyncio.run(run(llm, args.question))


if __name__ == "__main__":
    main()
