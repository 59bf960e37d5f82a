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
import os
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
    try:
        try:
            return _run(argv)
        finally:  # also after argparse's SystemExit (--help): a closed pipe shows here
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help / --version print here
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


def _reader_gone() -> int:
    """The output's reader closed the pipe (e.g. `kimi-coder demo | head -3`): stop quietly, as
    Unix tools do. stdout is pointed at /dev/null so the interpreter's final flush cannot fail
    again; the exit status is the shell's for a SIGPIPE death (128 + 13)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141
