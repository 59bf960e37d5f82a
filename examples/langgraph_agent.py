"""A LangGraph tool-calling agent on ChatKimiCoder with thinking on, streamed as it works.

Needs the `langchain` extra: `python -m pip install ".[langchain]"` (from a clone) or
`pip install "kimi-coder[langchain]"`.

Kimi requires the reasoning of every assistant tool-call turn to be sent back with thinking on;
ChatKimiCoder does that, so multi-round tool loops just work (ChatOpenAI gets a 400 here).

    python examples/langgraph_agent.py                          # offline emulator
    python examples/langgraph_agent.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.tools import tool

from langchain_kimi_coder import ChatKimiCoder


@tool
def get_population(city: str) -> int:
    """Population of a city, in thousands."""
    return {"paris": 2103, "lyon": 522, "marseille": 873}.get(city.strip().lower(), 100)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def build_agent(model: ChatKimiCoder) -> Any:
    """LangChain's current agent API (a LangGraph graph underneath)."""
    return create_agent(model, [get_population, add, multiply])


@contextlib.contextmanager
def make_model(base_url: str | None, api_key: str | None) -> Iterator[ChatKimiCoder]:
    """The real API when a base URL is given, else a throwaway local emulator."""
    if base_url:
        yield ChatKimiCoder(base_url=base_url, api_key=api_key, thinking=True)
        return
    from kimi_coder_auth.emulator import Emulator

    with Emulator(api_keys=["demo-key"]) as emu:
        print(f"(offline: using the embedded emulator at {emu.base_url})\n")
        yield ChatKimiCoder(base_url=emu.base_url, api_key="demo-key", thinking=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="use this API instead of the offline emulator")
    parser.add_argument("--api-key", help="Kimi Code API key (default: your login)")
    parser.add_argument(
        "question", nargs="?",
        default="Use get_population for 'Lyon', then add 15 and 27 with add, then multiply 6 and 7 with multiply.",
    )
    args = parser.parse_args()

    with make_model(args.base_url, args.api_key) as model:
        agent = build_agent(model)
        section = None  # "thinking" | "answer": print a label when the stream switches

        def show(kind: str, text: str) -> None:
            nonlocal section
            if kind != section:
                print(f"\n[{kind}] " if section else f"[{kind}] ", end="")
                section = kind
            print(text, end="", flush=True)

        for mode, payload in agent.stream({"messages": [("user", args.question)]},
                                          stream_mode=["messages", "updates"]):
            if mode == "messages":  # token stream: (message chunk, metadata)
                chunk = payload[0]
                if isinstance(chunk, AIMessageChunk):
                    if reasoning := chunk.additional_kwargs.get("reasoning_content"):
                        show("thinking", reasoning)
                    if isinstance(chunk.content, str) and chunk.content:
                        show("answer", chunk.content)
                continue
            for update in payload.values():  # node updates: whole messages
                for msg in (update or {}).get("messages", []):
                    if isinstance(msg, AIMessage):
                        for call in msg.tool_calls:
                            print(f"\n-> {call['name']}({call['args']})", end="")
                    elif isinstance(msg, ToolMessage):
                        print(f"\n<- {msg.name}: {msg.content}", end="")
                    section = "tool"
        print()


if __name__ == "__main__":
    main()
