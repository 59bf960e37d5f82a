"""What a new user trips over in the CLI: closed pipes, flag names in errors, the token limit,
mistyped REPL commands and consistent `--credentials` choices."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth.cli import build_parser, main
from kimi_coder_auth.cli._options import CREDENTIAL_CHOICES
from kimi_coder_auth.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-kimi-test-newcomer"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with stdout a pipe whose reader is already gone (`| head -0`)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "kimi_coder_auth", *args],
            stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            timeout=90, cwd=ROOT, env=dict(os.environ),
        )
    finally:
        os.close(w)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["demo", "chat", "models", "--help", "status"])
def test_a_closed_pipe_ends_every_command_quietly(command: str, emu: Emulator) -> None:
    args = {
        "demo": ["demo", "--plain"],
        "chat": ["chat", "--base-url", emu.base_url, "--api-key", KEY, "hello"],
        "models": ["models", "--base-url", emu.base_url, "--api-key", KEY],
        "--help": ["--help"],
        "status": ["status"],
    }[command]
    proc = _run_into_closed_pipe(*args)
    assert "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr and "report" not in proc.stderr.lower()
    if command in ("demo", "chat", "models"):  # they write to stdout: the SIGPIPE status
        assert proc.returncode == 141, proc.stderr


@pytest.mark.timeout(120)
def test_demo_piped_into_head_shows_three_lines_and_no_traceback() -> None:
    proc = subprocess.run(
        f"'{sys.executable}' -m kimi_coder_auth demo --plain | head -3",
        shell=True, capture_output=True, text=True, timeout=90, cwd=ROOT, env=dict(os.environ),
    )
    assert len(proc.stdout.splitlines()) == 3
    assert proc.stdout.startswith("kimi-coder demo:")
    assert "Traceback" not in proc.stderr and "report" not in proc.stderr.lower()


def test_errors_name_the_cli_flags_not_python_keywords(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["chat", "--base-url", emu.base_url, "--api-key", KEY]
    assert main([*base, "--no-thinking", "--effort", "high", "hi"]) == 1
    err = capsys.readouterr().err
    assert "--effort high needs thinking; drop --effort or --no-thinking." in err
    assert "effort=" not in err and "thinking=" not in err

    assert main([*base, "--model", "k3", "--no-thinking", "hi"]) == 1
    err = capsys.readouterr().err
    assert "k3 always thinks" in err and "drop --no-thinking" in err and "thinking=" not in err

    assert main([*base, "--max-tokens", "0", "hi"]) == 1
    err = capsys.readouterr().err
    assert "--max-tokens 0 is not a positive integer" in err
    assert emu.counts["chat"] == 0  # all refused before anything was sent


def test_the_same_errors_name_python_parameters_in_python(emu: Emulator) -> None:
    from kimi_coder_auth.errors import ParameterError
    from langchain_kimi_coder import ChatKimiCoder

    llm = ChatKimiCoder(base_url=emu.base_url, api_key=KEY, thinking=False, effort="high")
    with pytest.raises(ParameterError) as info:
        llm.invoke("hi")
    assert str(info.value) == "effort='high' needs thinking; drop effort= or thinking=False."
    assert info.value.params == ("effort", "thinking")
    assert isinstance(info.value, ValueError)


def test_an_answer_cut_at_the_token_limit_says_so(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["chat", "--base-url", emu.base_url, "--api-key", KEY, "--max-tokens", "1",
               "Explain recursion in detail please"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "stopped: the answer reached the output token limit (--max-tokens 1)" in out
    assert "Raise --max-tokens" in out


def test_a_full_answer_has_no_token_limit_note(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "--base-url", emu.base_url, "--api-key", KEY, "hi"]) == 0
    assert "stopped:" not in capsys.readouterr().out


def test_unknown_repl_command_lists_the_commands_and_is_not_sent(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("/rest\n//etc holds config\n/exit\n"))
    rc = main(["chat", "--base-url", emu.base_url, "--api-key", KEY])
    out = capsys.readouterr().out
    assert rc == 0
    assert "unknown command '/rest'. Commands: /exit" in out
    chats = emu.requests_to("/chat/completions")
    assert len(chats) == 1  # only the escaped message went out
    assert chats[0].body["messages"] == [{"role": "user", "content": "/etc holds config"}]


def _credentials_action(parser: argparse.ArgumentParser, command: str) -> argparse.Action:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[command]._actions if a.dest == "credentials")


def test_credentials_option_is_the_same_on_every_command() -> None:
    parser = build_parser()
    actions = [_credentials_action(parser, c) for c in ("chat", "models", "usage", "status")]
    assert all(tuple(a.choices) == CREDENTIAL_CHOICES for a in actions)
    assert len({a.help for a in actions}) == 1 and len({a.metavar for a in actions}) == 1


def test_chat_accepts_credentials_auto(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
    assert main(["chat", "--base-url", emu.base_url, "--credentials", "auto", "hi"]) == 0
    assert "answer: You said: hi" in capsys.readouterr().out
