"""`kimi-coder chat` and `kimi-coder demo`: the LangChain-powered commands.

The handlers import `langchain_kimi_coder` lazily, so the rest of the CLI starts fast and works
without the `langchain` extra; when it is missing they say how to install it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from ._options import add_credentials_option, add_region_option

__all__ = ["register"]

_EXTRA_MODULES = frozenset({"langchain_core", "langgraph", "langchain"})
_MISSING_EXTRA = (
    "error: `kimi-coder {command}` needs LangChain, which is not installed ({missing}).\n"
    "Run: pip install kimi-coder[langchain]\n"
)


def _load(module: str, command: str) -> ModuleType | None:
    """Import `module`, or explain how to install the `langchain` extra and return None."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in _EXTRA_MODULES:
            raise
        sys.stderr.write(_MISSING_EXTRA.format(command=command, missing=root))
        return None


def _chat(args: argparse.Namespace) -> int:
    mod = _load("langchain_kimi_coder.chat_cli", "chat")
    if mod is None:
        return 1
    return int(mod.run_chat(args))


def _demo(args: argparse.Namespace) -> int:
    mod = _load("langchain_kimi_coder.demo", "demo")
    if mod is None:
        return 1
    return int(mod.run_demo(thinking=not args.no_thinking, plain=args.plain))


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter name -> this command's flag (``max_tokens`` -> ``--max-tokens``), so typed
    errors (``ParameterError.render``) speak in the flags the user typed."""
    return {
        action.dest: next(o for o in action.option_strings if o.startswith("--"))
        for action in parser._actions
        if any(o.startswith("--") for o in action.option_strings)
    }


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `chat` and `demo`."""
    chat = sub.add_parser(
        "chat",
        help="stream an answer from Kimi (interactive without a prompt)",
        description=(
            "Stream an answer through ChatKimiCoder: reasoning dimmed and separate from the answer, "
            "tool calls if any, and a usage line. Without PROMPT, starts a conversation that keeps "
            "its history across turns (/exit quits). Uses your `kimi-coder login` (or kimi-cli / "
            "Kimi Code login) unless --api-key is given."
        ),
    )
    chat.add_argument("prompt", nargs="*", help="the message to send (omit for interactive mode)")
    chat.add_argument("--model", help="model id (default: kimi-for-coding)")
    chat.add_argument("--base-url", help="API base URL (default: KIMI_CODE_BASE_URL or https://api.kimi.com/coding/v1)")
    chat.add_argument("--api-key", help="a Kimi Code API key (default: your login; prefer the "
                      "KIMI_CODER_API_KEY env var, since arguments are visible to other local users)")
    add_credentials_option(chat)
    add_region_option(chat)
    chat.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                      help="turn the model's reasoning on or off (default: the model's default)")
    chat.add_argument("--effort", help="reasoning effort, for models that list efforts (e.g. low, high)")
    chat.add_argument("--preserve-thinking", action="store_true", default=None,
                      help="replay every earlier answer's reasoning, as Kimi Code does "
                      "(thinking.keep = all)")
    chat.add_argument("--max-tokens", type=int, help="output token limit for each answer")
    chat.add_argument("--timeout", type=float, help="request timeout in seconds")
    chat.add_argument("--user-agent", help="User-Agent to send (default: kimi-coder's own)")
    chat.add_argument("--protocol", choices=("auto", "openai", "anthropic"),
                      help="wire route: auto (default: OpenAI, moving to Anthropic Messages if the "
                           "User-Agent gate refuses), openai or anthropic (KIMI_CODER_PROTOCOL)")
    chat.add_argument("--plain", action="store_true", help="no ANSI styling even on a terminal")
    chat.set_defaults(handler=_chat, flags=flag_names(chat))

    demo = sub.add_parser(
        "demo",
        help="offline demo: a LangGraph coding agent on a local emulator (no account needed)",
        description=(
            "Start the embedded Kimi emulator on 127.0.0.1, point ChatKimiCoder at it and run a "
            "small LangGraph coding agent with real local tools (list a folder, read a file, "
            "calculate) on a temp project, streaming reasoning, tool calls and the answer."
        ),
    )
    demo.add_argument("--no-thinking", action="store_true", help="run with the model's reasoning off")
    demo.add_argument("--plain", action="store_true", help="no ANSI styling even on a terminal")
    demo.set_defaults(handler=_demo)
