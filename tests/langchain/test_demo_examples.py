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
    "structured_output.py": ["function_calling: title=", "json_schema:      title=", "parsing_error: None"],
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
