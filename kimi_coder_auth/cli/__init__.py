"""The `kimi-coder` command: one sub-module per command group, registered here.

| command | module |
|---|---|
| login, logout, status | `cli/auth_cmds.py` |
| models, usage | `cli/api_cmds.py` |
| emulator | `cli/emulator_cmd.py` |
| chat, demo | `cli/chat_cmds.py` (needs the `langchain` extra at run time) |
| doctor | `cli/doctor_cmd.py` |
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import KimiCoderError

__all__ = ["build_parser", "main"]

_GROUPS = ("auth_cmds", "api_cmds", "emulator_cmd", "chat_cmds", "doctor_cmd")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every command group registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="kimi-coder",
        description="Kimi Coding Plan for LangChain, LangGraph and LlamaIndex: login, status and demos.",
    )
    parser.add_argument("--version", action="version", version=f"kimi-coder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _GROUPS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except KimiCoderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
