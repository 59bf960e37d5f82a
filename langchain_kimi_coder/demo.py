"""`kimi-coder demo`: a LangGraph coding agent on ChatKimiCoder, offline, in a few seconds.

It starts the embedded emulator on 127.0.0.1 (with a scripted "model" that really chains the
tools: list a folder, read the file it found, compute with the numbers it read), creates a temp
project folder, and streams the agent's reasoning, tool calls, tool results, answer and usage.
No account and no network are needed; the same code works against the real API.
"""

from __future__ import annotations

import ast
import json
import operator
import re
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from kimi_coder_auth.emulator import Emulator, Responder, Turn

from .chat_cli import StreamPrinter, chunk_text, use_color

__all__ = [
    "DEMO_API_KEY",
    "DEMO_TASK",
    "DemoResponder",
    "build_agent",
    "make_tools",
    "make_workspace",
    "run_demo",
    "safe_calculate",
]

DEMO_API_KEY = "sk-kimi-demo-local"
DEMO_TASK = (
    "In my project folder, find the invoice, read it, and work out the total amount due. "
    "Use list_folder to look around, read_file to read it and calculate for the arithmetic."
)
_FILES = {
    "README.md": "# Stationery shop\n\nOrders are kept in invoice.txt; prices are in EUR.\n",
    "invoice.txt": (
        "Invoice 2024-117 (EUR)\n"
        "3 x notebook @ 4.50\n"
        "2 x fountain pen @ 12.25\n"
        "1 x backpack @ 29.99\n"
        "shipping: 5.00\n"
    ),
    "src/shop.py": "def total(lines):\n    return sum(q * p for q, p in lines)\n",
}


# ------------------------------------------------------------------------ safe calculator

_BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def safe_calculate(expression: str) -> float | int:
    """Evaluate arithmetic (numbers, + - * / // % **, parentheses) without `eval`.

    Anything else (names, calls, attributes) raises ValueError; exponents and lengths are
    bounded so a tool call cannot hang the process."""
    if len(expression) > 500:
        raise ValueError("expression too long (max 500 characters)")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc

    def ev(node: ast.AST) -> float | int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value  # type: ignore[no-any-return]
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large (max 100)")
            try:
                return _BIN_OPS[type(node.op)](left, right)  # type: ignore[no-any-return]
            except ZeroDivisionError as exc:
                raise ValueError("division by zero") from exc
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](ev(node.operand))  # type: ignore[no-any-return]
        raise ValueError(f"only numbers and + - * / // % ** ( ) are allowed, not {type(node).__name__}")

    result = ev(tree)
    if isinstance(result, float):
        result = round(result, 10)
        if result.is_integer() and abs(result) < 2**53:
            return float(result)
    return result


# ------------------------------------------------------------------------ workspace + tools


def make_workspace(root: Path) -> Path:
    """Write the demo project (a README, an invoice, a source file) under `root`."""
    for rel, text in _FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _inside(root: Path, path: str) -> Path:
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{path!r} is outside the project folder; use a path relative to it")
    return target


def make_tools(root: Path) -> list[Any]:
    """The agent's real tools, confined to `root`: read_file, list_folder, calculate."""
    from langchain_core.tools import tool

    root = root.resolve()

    @tool
    def list_folder(path: str = ".") -> str:
        """List the files and sub-folders of a folder in the project (path relative to the project)."""
        try:
            folder = _inside(root, path)
            entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
        except (OSError, ValueError) as exc:
            return f"error: {exc}"
        lines = [f"{p.name}/" if p.is_dir() else f"{p.name} ({p.stat().st_size} bytes)" for p in entries]
        return "\n".join(lines) or "(empty folder)"

    @tool
    def read_file(path: str) -> str:
        """Read a text file of the project (path relative to the project)."""
        try:
            text = _inside(root, path).read_text(encoding="utf-8")
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            return f"error: {exc}"
        return text if len(text) <= 20_000 else text[:20_000] + "\n... (truncated)"

    @tool
    def calculate(expression: str) -> str:
        """Evaluate an arithmetic expression such as '3 * 4.5 + 2' (numbers and + - * / // % ** only)."""
        try:
            value = safe_calculate(expression)
        except ValueError as exc:
            return f"error: {exc}"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    return [read_file, list_folder, calculate]


# ------------------------------------------------------------------------ the scripted model

_ITEM_RE = re.compile(r"^\s*(\d+)\s*x\s*(.+?)\s*@\s*(\d+(?:\.\d+)?)\s*$", re.M)
_FEE_RE = re.compile(r"^\s*([A-Za-z ]+):\s*(\d+(?:\.\d+)?)\s*$", re.M)


class DemoResponder(Responder):
    """The emulated model for the demo: list the folder, read the file it finds there, compute
    the total from the numbers it read, then answer. Each step reasons first; every decision is
    taken from the real tool results in the request, so the chain is genuine."""

    def respond(self, request_body: dict[str, Any]) -> Turn:
        messages = list(request_body.get("messages") or [])
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        names: dict[str, str] = {}
        results: dict[str, str] = {}
        for m in messages[last_user + 1 :]:
            if m.get("role") == "assistant":
                for tc in m.get("tool_calls") or []:
                    names[tc.get("id", "")] = (tc.get("function") or {}).get("name", "")
            elif m.get("role") == "tool":
                content = m.get("content")
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
                results[names.get(m.get("tool_call_id", ""), "")] = str(content or "")

        if "list_folder" not in results:
            return _call(
                "The user wants an invoice total. I don't know the project layout yet, so I'll "
                "list the project folder first.",
                "list_folder", {"path": "."},
            )
        if "read_file" not in results:
            listing = results["list_folder"]
            found = re.findall(r"^([\w.\-]+\.(?:txt|csv|md))\b", listing, flags=re.M)
            target = next((f for f in found if "invoice" in f.lower()), found[0] if found else "invoice.txt")
            return _call(
                f"The listing shows {target}; that looks like the invoice. I'll read it.",
                "read_file", {"path": target},
            )
        if "calculate" not in results:
            text = results["read_file"]
            terms = [f"{q} * {p}" for q, _, p in _ITEM_RE.findall(text)]
            terms += [fee for _, fee in _FEE_RE.findall(text)]
            expression = " + ".join(terms) or "0"
            return _call(
                f"The invoice has {len(_ITEM_RE.findall(text))} line items plus fees. Rather than "
                "adding in my head, I'll let the calculator do the arithmetic: " + expression + ".",
                "calculate", {"expression": expression},
            )
        items = _ITEM_RE.findall(results["read_file"])
        listed = ", ".join(f"{q} x {name.strip()} at {p}" for q, name, p in items)
        total = results["calculate"].strip()
        return Turn(
            reasoning="The calculator returned the total; I can answer with the breakdown now.",
            content=(
                f"The invoice (invoice.txt) lists {listed}, plus shipping. "
                f"The total amount due is {total} EUR."
            ),
        )


def _call(reasoning: str, name: str, args: dict[str, Any]) -> Turn:
    return Turn(reasoning=reasoning, content="", tool_calls=[(name, json.dumps(args))])


# ------------------------------------------------------------------------ agent + runner


def build_agent(model: Any, tools: list[Any]) -> Any:
    """A LangGraph tool-calling agent: `langchain.agents.create_agent` when langchain is
    installed, else `langgraph.prebuilt.create_react_agent`."""
    system = "You are a careful coding assistant. Use the tools; never guess file contents."
    try:
        from langchain.agents import create_agent
    except ImportError:
        from langgraph.prebuilt import create_react_agent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return create_react_agent(model, tools, prompt=system)
    return create_agent(model, tools, system_prompt=system)


def stream_agent(agent: Any, task: str, printer: StreamPrinter) -> dict[str, Any]:
    """Run the agent on `task`, printing reasoning/answer tokens as they stream, each tool call
    with its arguments and each tool result; returns counts and the summed usage."""
    from langchain_core.messages import AIMessage, ToolMessage

    usages: list[Any] = []
    tool_calls = 0
    answer = ""
    # A thread id lets ChatKimiCoder's prompt_cache_key="auto" send a (hashed) cache key, so the
    # usage line shows the cached share from the second model call on.
    config = {"configurable": {"thread_id": "kimi-coder-demo"}}
    for mode, payload in agent.stream({"messages": [("user", task)]}, config,
                                      stream_mode=["messages", "updates"]):
        if mode == "messages":
            chunk = payload[0]
            if isinstance(chunk, AIMessage):  # chunks while streaming; whole message otherwise
                printer.message_chunk(chunk)
            continue
        for update in (payload or {}).values():
            for msg in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                if isinstance(msg, AIMessage):
                    usages.append(msg.usage_metadata)
                    for call in msg.tool_calls:
                        tool_calls += 1
                        printer.tool_call(call["name"], call["args"])
                    if not msg.tool_calls:
                        answer = chunk_text(msg)
                elif isinstance(msg, ToolMessage):
                    printer.tool_result(msg.name, msg.content)
    printer.usage(*usages)
    return {"tool_calls": tool_calls, "answer": answer, "usages": usages}


def run_demo(*, thinking: bool = True, plain: bool = False, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """`kimi-coder demo`: offline agent run against the embedded emulator; returns the exit code."""
    from langchain_kimi_coder import ChatKimiCoder

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    printer = StreamPrinter(out, color=use_color(out, plain=plain))
    # ua_gate="real": like the real service, the OpenAI route admits only known coding agents'
    # User-Agents and the Anthropic Messages route admits everyone. ChatKimiCoder keeps its own
    # honest User-Agent and, refused once, moves to the Messages route (protocol="auto").
    with tempfile.TemporaryDirectory(prefix="kimi-coder-demo-") as tmp, Emulator(
        api_keys=[DEMO_API_KEY], responder=DemoResponder(), record_requests=False, ua_gate="real"
    ) as emu:
        root = make_workspace(Path(tmp))
        model = ChatKimiCoder(
            model="kimi-for-coding" if thinking else "toggle-thinking", base_url=emu.base_url, api_key=DEMO_API_KEY,
            thinking=thinking, max_retries=0, timeout=30,
        )
        agent = build_agent(model, make_tools(root))
        out.write(f"kimi-coder demo: ChatKimiCoder + LangGraph agent against the local emulator at {emu.base_url}\n")
        out.write(f"project folder: {root}\n")
        out.write("gate: on (the OpenAI route admits only known coding agents, as the real service does)\n")
        out.write(f"task: {DEMO_TASK}\n\n")
        out.flush()
        try:
            summary = stream_agent(agent, DEMO_TASK, printer)
        except BrokenPipeError:  # the reader went away (`| head`): the CLI exits quietly
            raise
        except Exception as exc:  # the demo must explain any failure, then exit 1
            printer.end_block()
            err.write(f"error: the demo failed: {type(exc).__name__}: {exc}\n"
                      "Please report this at https://github.com/kimi-coder/kimi-coder/issues\n")
            return 1
        rejected, messages = emu.counts["ua_rejected"], emu.counts["messages"]
    ua = model._get_transport().user_agent
    route = "Anthropic Messages (/messages)" if messages else "OpenAI (/chat/completions)"
    out.write(f"\nroute: {route}; the gate refused User-Agent {ua!r} on /chat/completions "
              f"{rejected} time(s), then every call went through with that same honest identity.\n")
    out.write(f"done: {summary['tool_calls']} tool calls, thinking {'on' if thinking else 'off'}. "
              "Next: `kimi-coder login`, then `kimi-coder chat \"your question\"`.\n")
    return 0
