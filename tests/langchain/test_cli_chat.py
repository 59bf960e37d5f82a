"""`kimi-coder chat`: one-shot and interactive streaming against the emulator, and error paths."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth.cli import main
from kimi_coder_auth.emulator import Emulator, ScriptedResponder, Turn
from langchain_kimi_coder.chat_cli import DIM, RESET, StreamPrinter, use_color

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-kimi-test-chat"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


def _chat(emu: Emulator, *args: str) -> list[str]:
    return ["chat", "--base-url", emu.base_url, "--api-key", KEY, *args]


@pytest.mark.timeout(60)
def test_chat_subprocess_streams_reasoning_answer_and_usage(emu: Emulator) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kimi_coder_auth", *_chat(emu, "How do I reverse a list?")],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("thinking: ") and len(lines[0]) > len("thinking: ")
    assert lines[1] == "answer: You said: How do I reverse a list?"
    assert lines[2].startswith("usage: ") and "input" in lines[2] and "output" in lines[2]
    assert "\x1b[" not in proc.stdout  # not a TTY: no ANSI styling
    body = emu.requests[-1].body
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "How do I reverse a list?"}]


def test_chat_options_reach_the_request(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(_chat(emu, "--no-thinking", "--max-tokens", "64", "--model", "toggle-thinking",
                    "--user-agent", "kimi-coder-test/1.0", "hi", "there"))
    out = capsys.readouterr().out
    assert rc == 0
    assert "thinking: " not in out
    assert "answer: You said: hi there" in out
    req = emu.requests[-1]
    assert req.body["model"] == "toggle-thinking"
    assert req.body["thinking"] == {"type": "disabled"}
    assert req.body.get("max_completion_tokens", req.body.get("max_tokens")) == 64
    assert req.headers["user-agent"] == "kimi-coder-test/1.0"
    assert req.headers["authorization"] == f"Bearer {KEY}"


def test_chat_preserve_thinking_flag(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    from kimi_coder_auth.cli import main

    assert main(_chat(emu, "--preserve-thinking", "hello")) == 0
    assert emu.requests_to("/chat/completions")[-1].body["thinking"] == {"type": "enabled", "keep": "all"}
    assert main(_chat(emu, "hello")) == 0
    assert "thinking" not in emu.requests_to("/chat/completions")[-1].body


def test_chat_prints_tool_calls(capsys: pytest.CaptureFixture[str]) -> None:
    turn = Turn(reasoning="I should look it up.", content="",
                tool_calls=[("get_weather", '{"city": "Paris"}'), ("get_time", '{"tz": "CET"}')])
    with Emulator(api_keys=[KEY], responder=ScriptedResponder([turn])) as emu:
        rc = main(_chat(emu, "weather in Paris?"))
    out = capsys.readouterr().out
    assert rc == 0
    assert 'tool call: get_weather({"city": "Paris"})' in out
    assert 'tool call: get_time({"tz": "CET"})' in out
    assert "thinking: I should look it up." in out


def test_interactive_mode_keeps_history_and_exits(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("first question\n\nsecond question\n/exit\nnever sent\n"))
    rc = main(_chat(emu))
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("you> ") == 4
    assert "answer: You said: first question" in out
    assert "answer: You said: second question" in out
    chats = [r.body for r in emu.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2  # the blank line sent nothing; /exit stopped before "never sent"
    history = chats[1]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["content"] == "You said: first question"
    assert history[1]["reasoning_content"]  # the reasoning of the earlier turn is replayed
    assert history[2]["content"] == "second question"


def test_interactive_error_keeps_the_conversation_going(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.inject("chat", status=400, body={"error": {"message": "Invalid request: bad thing",
                                                   "type": "invalid_request_error"}})
    monkeypatch.setattr(sys, "stdin", io.StringIO("broken\nworks\n"))
    rc = main(_chat(emu))
    captured = capsys.readouterr()
    assert rc == 0
    assert "error: [400 invalid_request_error] Invalid request: bad thing" in captured.err
    assert "answer: You said: works" in captured.out
    last = [r.body for r in emu.requests if r.path.endswith("/chat/completions")][-1]
    assert [m["content"] for m in last["messages"]] == ["works"]  # the failed turn was dropped


def test_user_agent_gate_403_is_explained_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(api_keys=[KEY], ua_gate=r"^KimiCLI/") as emu:
        rc = main(_chat(emu, "--protocol", "openai", "hello"))  # pinned: never switches
    captured = capsys.readouterr()
    assert rc == 1
    assert "403" in captured.err
    assert "User-Agent" in captured.err
    assert "code@moonshot.ai" in captured.err  # says what to do next
    assert "answer:" not in captured.out


def test_gate_on_the_default_protocol_gets_through_on_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Emulator(api_keys=[KEY], ua_gate="real") as emu:
        rc = main(_chat(emu, "hello"))
        assert emu.counts["ua_rejected"] == 1 and emu.counts["messages"] == 1
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "hello" in captured.out


def test_missing_credentials_says_how_to_log_in(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["chat", "--base-url", emu.base_url, "hello"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "kimi-coder login" in captured.err
    assert emu.counts["chat"] == 0


def test_interrupted_stream_reports_error_after_partial_output(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.inject("chat", drop_after_chunks=2)
    rc = main(_chat(emu, "--max-tokens", "100", "tell me a long story"))
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.err.startswith("error: ")
    assert "retry" in captured.err.lower()
    assert captured.out == "" or captured.out.endswith("\n")  # the partial block is closed first


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_printer_dims_reasoning_only_on_a_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    assert use_color(tty) and not use_color(tty, plain=True) and not use_color(io.StringIO())
    p = StreamPrinter(tty, color=use_color(tty))
    p.reasoning("hmm ")
    p.reasoning("ok")
    p.answer("Hello")
    p.answer(" world")
    p.end_block()
    out = tty.getvalue()
    assert f"{DIM}hmm {RESET}" in out and f"{DIM}ok{RESET}" in out
    assert out.endswith("answer: Hello world\n")
    assert DIM not in out.split("\n", 1)[1]  # the answer line is not dimmed
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(tty)


def test_printer_truncates_tool_results_and_sums_usage() -> None:
    buf = io.StringIO()
    p = StreamPrinter(buf, result_limit=10)
    p.tool_result("read_file", "line one\nline two\nline three")
    p.usage({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
             "input_token_details": {"cache_read": 4}, "output_token_details": {"reasoning": 2}},
            None,
            {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("tool result (read_file): line one ") and "more chars)" in lines[0]
    assert lines[1] == "usage: 11 input (4 cached, 36%), 6 output (2 reasoning), 17 total tokens over 2 model calls"
