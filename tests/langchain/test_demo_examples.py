"""The LangChain examples run offline (embedded emulator) and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "invoke.py": ["reasoning: ", "answer:    You said:", "usage:     {'input_tokens'"],
    "streaming_reasoning.py": ["thinking: ", "answer: You said: Why is the sky blue?", "usage: "],
    "langgraph_agent.py": ["-> get_population({'city': 'Lyon'})", "<- add: 42", "<- multiply: 42", "[answer] "],
    "structured_output.py": ["default (json_schema while thinking): title=", "parsing_error: None"],
    "images.py": ["v1 block:   I see the image", "image_url:  I see the image"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_offline(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "(offline: using the embedded emulator at http://127.0.0.1:" in proc.stdout
    for needle in EXPECTED[script]:
        assert needle in proc.stdout, (needle, proc.stdout)
    assert "Deprecat" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_every_example_says_which_extra_it_needs(script: str) -> None:
    text = (ROOT / "examples" / script).read_text(encoding="utf-8")
    extra = "llama-index" if script.startswith("llama_index") else "langchain"
    assert f'Needs the `{extra}` extra: `python -m pip install ".[{extra}]"`' in text
    assert f"[{extra}]" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_langchain_extra_has_the_current_agent_api() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {d.split(">")[0].split("<")[0].split("[")[0].strip()
             for d in project["optional-dependencies"]["langchain"]}
    assert {"langchain", "langchain-core", "langgraph"} <= names


def test_readme_streaming_snippet_keeps_reasoning_and_answer_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import re

    from kimi_coder_auth.emulator import Emulator

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = next(c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if "llm.stream(" in c)
    with Emulator(api_keys=["readme-key"]) as emu:
        code = code.replace(
            'ChatKimiCoder(model="kimi-for-coding")',
            f'ChatKimiCoder(model="kimi-for-coding", base_url="{emu.base_url}", api_key="readme-key")',
        )
        exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("thinking: ") and len(lines[0]) > len("thinking: ")
    assert lines[1] == "answer: You said: Explain Python's GIL in two sentences"
