"""The benchmark script runs (tiny sizes) and measures our adapters; no ratio assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bench_quick_runs_and_measures_every_stream_row(tmp_path: Path) -> None:
    out_json = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--no-imports", "--json", str(out_json)],
        capture_output=True, text=True, timeout=170, cwd=ROOT, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    assert "| measurement | ours | raw / baseline |" in proc.stdout
    rows = {r["name"]: r for r in json.loads(out_json.read_text())}
    for name in ("ChatKimiCoder.stream: 40-chunk stream", "ChatKimiCoder.stream: time to first token (warm)",
                 "ChatKimiCoder.astream: 3 concurrent x 10 chunks", "KimiCoderLLM.stream_chat: 40-chunk stream",
                 "KimiCoderLLM.astream_chat: 3 concurrent x 10 chunks",
                 "Messages route: ChatKimiCoder.stream: 40-chunk stream",
                 "Messages route: ChatKimiCoder.astream: 3 concurrent x 10 chunks",
                 "Messages route: KimiCoderLLM.stream_chat: 40-chunk stream",
                 "Messages route: KimiCoderLLM.astream_chat: 3 concurrent x 10 chunks"):
        assert rows[name]["ours"] and rows[name]["ours"] > 0, name
        assert rows[name]["raw"] and rows[name]["raw"] > 0, name
    assert any(n.startswith("ChatKimiCoder.stream + chunk merge: tool call of 20 vs 80") for n in rows)
    not_measured = proc.stdout.split("Not measured:")[1] if "Not measured:" in proc.stdout else ""
    assert "ChatKimiCoder" not in not_measured and "KimiCoderLLM" not in not_measured, not_measured


def test_bench_server_streams_exactly_n_chunks_and_n_fragments() -> None:
    raw_ok = bench.Raw
    with bench.loopback_server() as url:
        raw = raw_ok(url)
        assert raw.stream(bench.prompt("content", 17)) == 17
        call = raw.tool(bench.prompt("tool", 50))
        assert call["name"] == "write_code" and call["args"] == {"code": "abcdefgh" * 48}
        assert raw.ttft(bench.prompt("content", 3)) > 0


def test_import_probe_reports_time_and_memory() -> None:
    res = bench.compare_imports("import json", "import os", runs=1)
    assert res["ours_t"] >= 0 and res["base_t"] >= 0
    assert res["ours_rss"] > 1 << 20 and res["base_rss"] > 1 << 20
