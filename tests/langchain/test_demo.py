"""`kimi-coder demo`: the offline LangGraph agent end to end, its tools and its calculator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_kimi_coder.demo import DemoResponder, make_tools, make_workspace, safe_calculate

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kimi_coder_auth", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **(env or {})},
    )


@pytest.mark.timeout(60)
def test_demo_runs_end_to_end_with_reasoning_three_tools_and_answer() -> None:
    proc = _run("demo", "--plain")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lines = out.splitlines()
    calls = [ln for ln in lines if ln.startswith("tool call: ")]
    assert [c.split("(")[0] for c in calls] == [
        "tool call: list_folder", "tool call: read_file", "tool call: calculate",
    ]
    assert 'read_file({"path": "invoice.txt"})' in out
    # real tool results from the temp project: the listing, the file, the computed total
    assert any(ln.startswith("tool result (list_folder): ") and "invoice.txt" in ln for ln in lines)
    assert any(ln.startswith("tool result (read_file): ") and "3 x notebook @ 4.50" in ln for ln in lines)
    assert "tool result (calculate): 72.99" in lines
    # reasoning streamed (separately labelled), before the tool call it motivates
    thinking = [i for i, ln in enumerate(lines) if ln.startswith("thinking: ")]
    assert len(thinking) >= 4
    assert thinking[0] < lines.index(calls[0])
    answer = [ln for ln in lines if ln.startswith("answer: ")]
    assert len(answer) == 1 and "72.99 EUR" in answer[0]
    usage = [ln for ln in lines if ln.startswith("usage: ")]
    assert len(usage) == 1 and "over 4 model calls" in usage[0]
    # the agent's thread id gives a cache key: calls 2-4 read the cache, and the share is shown
    share = re.search(r"\((\d+) cached, (\d+)%\)", usage[0])
    assert share is not None and int(share.group(1)) > 0 and 0 < int(share.group(2)) < 100
    assert "\x1b[" not in out  # --plain: no ANSI styling
    # the gate is on, like the real service: the honest client got through on /messages
    assert "gate: on" in out
    route = [ln for ln in lines if ln.startswith("route: ")]
    assert len(route) == 1 and "Anthropic Messages" in route[0] and "1 time(s)" in route[0]
    assert "'kimi-coder/" in route[0]


@pytest.mark.timeout(60)
def test_demo_without_thinking_shows_no_reasoning() -> None:
    proc = _run("demo", "--plain", "--no-thinking")
    assert proc.returncode == 0, proc.stderr
    assert "thinking: " not in proc.stdout
    assert proc.stdout.count("tool call: ") == 3
    assert "The total amount due is 72.99 EUR." in proc.stdout


def test_missing_langchain_extra_says_how_to_install(tmp_path: Path) -> None:
    # simulate an install without the `langchain` extra: langchain_core cannot be imported
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['langchain_core'] = None\n")
    proc = _run("demo", env={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])})
    assert proc.returncode == 1
    assert "pip install kimi-coder[langchain]" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("3 * 4.50 + 2 * 12.25 + 1 * 29.99 + 5.00", 72.99), ("(1 + 2) ** 3 // 4", 6), ("-7 % 3", 2),
     ("10 / 4", 2.5)],
)
def test_safe_calculate_does_arithmetic(expression: str, expected: float) -> None:
    assert safe_calculate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "open('x')", "a + 1", "(1).real", "2 ** 100000", "1 / 0", "[1, 2]",
     "1 +", "x" * 501],
)
def test_safe_calculate_refuses_anything_but_arithmetic(expression: str) -> None:
    with pytest.raises(ValueError):
        safe_calculate(expression)


def test_tools_work_on_the_project_and_stay_inside_it(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "proj")
    (tmp_path / "secret.txt").write_text("outside")
    tools = {t.name: t for t in make_tools(root)}
    assert set(tools) == {"read_file", "list_folder", "calculate"}
    listing = tools["list_folder"].invoke({"path": "."})
    assert "invoice.txt" in listing and "src/" in listing
    assert "def total" in tools["read_file"].invoke({"path": "src/shop.py"})
    assert tools["read_file"].invoke({"path": "../secret.txt"}).startswith("error:")
    assert tools["list_folder"].invoke({"path": "/"}).startswith("error:")
    assert tools["read_file"].invoke({"path": "missing.txt"}).startswith("error:")
    assert tools["calculate"].invoke({"expression": "2 * 21"}) == "42"
    assert tools["calculate"].invoke({"expression": "import os"}).startswith("error:")


def test_demo_responder_chains_on_the_real_tool_results() -> None:
    r = DemoResponder()
    user = {"role": "user", "content": "find the invoice"}
    first = r.respond({"messages": [user]})
    assert first.tool_calls == [("list_folder", '{"path": "."}')] and first.reasoning

    def after(prev: list[dict], name: str, args: str, result: str) -> list[dict]:
        cid = f"functions.{name}:{len(prev)}"
        return [*prev,
                {"role": "assistant", "content": "", "reasoning_content": "r",
                 "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]},
                {"role": "tool", "tool_call_id": cid, "content": result}]

    msgs = after([user], "list_folder", '{"path": "."}', "bills.csv (10 bytes)\ninvoice-7.txt (9 bytes)")
    assert r.respond({"messages": msgs}).tool_calls == [("read_file", '{"path": "invoice-7.txt"}')]
    msgs = after(msgs, "read_file", '{"path": "invoice-7.txt"}', "2 x cable @ 3.00\nfee: 1.5\n")
    assert r.respond({"messages": msgs}).tool_calls == [("calculate", '{"expression": "2 * 3.00 + 1.5"}')]
    msgs = after(msgs, "calculate", '{"expression": "2 * 3.00 + 1.5"}', "7.50")
    final = r.respond({"messages": msgs})
    assert not final.tool_calls and "7.50" in str(final.content)
