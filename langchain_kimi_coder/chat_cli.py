"""`kimi-coder chat`: stream an answer through ChatKimiCoder, reasoning dimmed and separate.

Also home of `StreamPrinter`, the terminal renderer shared with `kimi-coder demo`: reasoning
(ANSI dim on a TTY, plain text otherwise), answer text, tool calls with their arguments, tool
results (truncated) and a usage line, each in its own labelled block so they never run together.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse

    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

__all__ = [
    "StreamPrinter",
    "build_chat_model",
    "chunk_reasoning",
    "chunk_text",
    "run_chat",
    "stream_turn",
    "sum_usage",
    "use_color",
]

DIM = "\x1b[2m"
RESET = "\x1b[0m"
_EXIT_COMMANDS = ("/exit", "/quit")
_REPL_HELP = (
    "Commands: /exit (or Ctrl-D) quits, /reset forgets the conversation, /help shows this. "
    "Start a message with // to send one that begins with /."
)


def use_color(out: TextIO, *, plain: bool = False) -> bool:
    """ANSI styling only for a real terminal, never with --plain or NO_COLOR set."""
    if plain or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):
        return False


def chunk_text(message: BaseMessage) -> str:
    """Answer text of a message or chunk (string content, or the text blocks of list content)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text") or ""))
    return "".join(parts)


def chunk_reasoning(message: BaseMessage) -> str:
    """Reasoning text of a message or chunk: `additional_kwargs["reasoning_content"]`, else the
    standard `reasoning` content blocks (v1 output)."""
    value = message.additional_kwargs.get("reasoning_content")
    if isinstance(value, str):
        return value
    content = message.content
    if isinstance(content, list):
        return "".join(
            str(b.get("reasoning") or "")
            for b in content
            if isinstance(b, dict) and b.get("type") == "reasoning"
        )
    return ""


def sum_usage(usages: Iterable[Mapping[str, Any] | None]) -> dict[str, int] | None:
    """Add LangChain `usage_metadata` dicts (flattened to the numbers the usage line shows)."""
    total: dict[str, int] = {}
    seen = False
    for usage in usages:
        if not usage:
            continue
        seen = True
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            total[key] = total.get(key, 0) + int(usage.get(key) or 0)
        cached = (usage.get("input_token_details") or {}).get("cache_read")
        if cached is not None:
            total["cache_read"] = total.get("cache_read", 0) + int(cached)
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        if reasoning is not None:
            total["reasoning"] = total.get("reasoning", 0) + int(reasoning)
    return total if seen else None


class StreamPrinter:
    """Writes streamed reasoning, answer text, tool calls, tool results and usage as separate
    labelled blocks; reasoning is dimmed when `color` is on."""

    def __init__(self, out: TextIO | None = None, *, color: bool = False, result_limit: int = 240) -> None:
        self.out = out if out is not None else sys.stdout
        self.color = color
        self.result_limit = result_limit
        self._mode: str | None = None  # "reasoning" | "answer" | None (at the start of a line)

    # -- blocks ---------------------------------------------------------------------------

    def _write(self, text: str, *, dim: bool = False) -> None:
        if dim and self.color and text:
            text = f"{DIM}{text}{RESET}"
        self.out.write(text)
        self.out.flush()

    def end_block(self) -> None:
        """Finish the current streamed block with a newline."""
        if self._mode is not None:
            self._write("\n")
            self._mode = None

    def reasoning(self, text: str) -> None:
        """Stream a piece of reasoning (dimmed, under a `thinking:` label)."""
        if not text:
            return
        if self._mode != "reasoning":
            self.end_block()
            self._write("thinking: ", dim=True)
            self._mode = "reasoning"
        self._write(text, dim=True)

    def answer(self, text: str) -> None:
        """Stream a piece of the answer (under an `answer:` label)."""
        if not text:
            return
        if self._mode != "answer":
            self.end_block()
            self._write("answer: ")
            self._mode = "answer"
        self._write(text)

    def message_chunk(self, chunk: BaseMessage) -> None:
        """Print the reasoning and text an AIMessageChunk carries."""
        self.reasoning(chunk_reasoning(chunk))
        self.answer(chunk_text(chunk))

    def tool_call(self, name: str, args: Any) -> None:
        """One line per tool call with its arguments as JSON."""
        self.end_block()
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        self._write(f"tool call: {name}({args})\n")

    def tool_result(self, name: str | None, content: Any) -> None:
        """One line per tool result, newlines escaped and truncated to `result_limit` chars."""
        self.end_block()
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
        text = text.strip().replace("\r", "").replace("\n", " | ")
        if len(text) > self.result_limit:
            text = text[: self.result_limit] + f"... ({len(text) - self.result_limit} more chars)"
        label = f"tool result ({name}): " if name else "tool result: "
        self._write(f"{label}{text}\n")

    def token_limit(self, max_tokens: int | None) -> None:
        """Say that the answer was cut at the output budget (``finish_reason="length"``), which
        otherwise looks like an answer that silently ends or never starts."""
        self.end_block()
        limit = f" (--max-tokens {max_tokens})" if max_tokens else ""
        self._write(
            f"stopped: the answer reached the output token limit{limit} before it finished; "
            "reasoning counts against it. Raise --max-tokens (or, where the model allows, "
            "reason less with a lower --effort or --no-thinking).\n"
        )

    def usage(self, *usages: Mapping[str, Any] | None) -> None:
        """The usage line (LangChain `usage_metadata` dicts, summed over model calls): input
        (cached), output (reasoning) and total tokens."""
        self.end_block()
        flat = sum_usage(usages)
        if not flat:
            self._write("usage: not reported by the server\n")
            return
        calls = sum(1 for u in usages if u)
        inp = f"{flat.get('input_tokens', 0)} input"
        if flat.get("cache_read"):
            total_in = flat.get("input_tokens") or 0
            share = f", {100 * flat['cache_read'] // total_in}%" if total_in else ""
            inp += f" ({flat['cache_read']} cached{share})"
        outp = f"{flat.get('output_tokens', 0)} output"
        if flat.get("reasoning"):
            outp += f" ({flat['reasoning']} reasoning)"
        over = f" over {calls} model calls" if calls > 1 else ""
        self._write(f"usage: {inp}, {outp}, {flat.get('total_tokens', 0)} total tokens{over}\n")


# ------------------------------------------------------------------------------- chat


def build_chat_model(args: argparse.Namespace) -> Any:
    """A ChatKimiCoder from the command-line options (only options the user set are passed)."""
    from langchain_kimi_coder import ChatKimiCoder

    region = getattr(args, "region", None)
    if region is not None:
        from kimi_coder_auth.region import resolve_endpoint

        resolve_endpoint(region, via="--region")  # an unknown region names the flag, not region=
    kwargs: dict[str, Any] = {}
    for opt in ("model", "base_url", "api_key", "credentials", "thinking", "effort", "max_tokens",
                "user_agent", "timeout", "protocol", "preserve_thinking", "region"):
        value = getattr(args, opt, None)
        if opt == "credentials" and value == "auto":
            value = None
        if value is not None:
            kwargs[opt] = value
    return ChatKimiCoder(**kwargs)


def stream_turn(model: Any, messages: list[BaseMessage], printer: StreamPrinter) -> AIMessage:
    """Stream one assistant turn, printing as it arrives; returns the assembled AIMessage
    (reasoning kept in `additional_kwargs` so the next turn replays it)."""
    from langchain_core.messages import AIMessage

    chunks: list[AIMessageChunk] = []
    for chunk in model.stream(messages):
        chunks.append(chunk)
        printer.message_chunk(chunk)
    printer.end_block()
    if not chunks:
        printer.usage()
        return AIMessage(content="")
    full = chunks[0] + chunks[1:] if len(chunks) > 1 else chunks[0]
    for call in full.tool_calls:
        printer.tool_call(call["name"], call["args"])
    if full.response_metadata.get("finish_reason") == "length":
        printer.token_limit(getattr(model, "max_tokens", None))
    printer.usage(full.usage_metadata)
    return AIMessage(
        content=full.content,
        additional_kwargs=dict(full.additional_kwargs),
        response_metadata=dict(full.response_metadata),
        tool_calls=list(full.tool_calls),
        usage_metadata=full.usage_metadata,
        id=full.id,
    )


def _report_error(
    exc: BaseException, printer: StreamPrinter, err: TextIO, flags: Mapping[str, str] | None
) -> None:
    """Print a typed error; a `ParameterError` names the command's flags (`--effort`), not the
    Python keywords (`effort=`)."""
    printer.end_block()
    render = getattr(exc, "render", None)
    text = render(flags) if callable(render) and flags else str(exc)
    err.write(f"error: {text}\n")
    err.flush()


def _expected_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from kimi_coder_auth.errors import KimiCoderError

    return (KimiCoderError, ValidationError, ValueError)


def run_chat(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    inp: TextIO | None = None,
) -> int:
    """`kimi-coder chat [PROMPT]`: one streamed answer, or a REPL without a prompt.
    Returns 0, or 1 after printing the typed error (which says what to do next)."""
    from langchain_core.messages import HumanMessage

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    inp = inp if inp is not None else sys.stdin
    printer = StreamPrinter(out, color=use_color(out, plain=getattr(args, "plain", False)))
    expected = _expected_errors()
    flags = getattr(args, "flags", None)
    try:
        model = build_chat_model(args)
    except expected as exc:
        _report_error(exc, printer, err, flags)
        return 1

    prompt = " ".join(getattr(args, "prompt", None) or []).strip()
    if prompt:
        try:
            stream_turn(model, [HumanMessage(prompt)], printer)
        except expected as exc:
            _report_error(exc, printer, err, flags)
            return 1
        return 0

    # interactive mode: history kept across turns
    history: list[BaseMessage] = []
    interactive = bool(getattr(inp, "isatty", lambda: False)())
    if interactive:
        out.write(f"kimi-coder chat ({getattr(model, 'model', 'kimi')}). {_REPL_HELP}\n")
    failures = 0
    while True:
        out.write("you> ")
        out.flush()
        line = inp.readline()
        if not line:  # EOF
            out.write("\n")
            break
        text = line.strip()
        if not interactive:  # piped input is not echoed by a terminal: keep the transcript readable
            out.write(text + "\n")
        if not text:
            continue
        if text in _EXIT_COMMANDS:
            break
        if text == "/reset":
            history.clear()
            out.write("(conversation cleared)\n")
            continue
        if text == "/help":
            out.write(_REPL_HELP + "\n")
            continue
        if text.startswith("//"):
            text = text[1:]
        elif text.startswith("/"):  # a mistyped command is never sent to the model
            out.write(f"unknown command {text.split()[0]!r}. {_REPL_HELP}\n")
            continue
        history.append(HumanMessage(text))
        try:
            history.append(stream_turn(model, history, printer))
        except expected as exc:
            history.pop()  # the failed turn is not kept; the conversation so far is
            _report_error(exc, printer, err, flags)
            failures += 1
        except KeyboardInterrupt:  # Ctrl-C while answering cancels the turn, not the session
            history.pop()
            printer.end_block()
            out.write("(answer interrupted; the turn was dropped)\n")
    return 1 if failures and not history else 0
