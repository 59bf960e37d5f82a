"""`kimi-coder models` and `kimi-coder usage` against the emulator (in-process and as a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from kimi_coder_auth.cli import main
from kimi_coder_auth.cli.api_cmds import format_models, format_usage
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.usage import get_usage

KEY = "sk-kimi-cli-test"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


@pytest.fixture
def tz_plus9(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixed local time zone (UTC+9, no tzdata needed) so reset times are predictable."""
    monkeypatch.setenv("TZ", "KST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_table(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "models", "--base-url", emu.base_url, "--api-key", KEY)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["id", "context", "thinking", "efforts", "images", "video", "protocol"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {m["id"] for m in emu.models}
    assert rows["k3"].split()[1:3] == ["1M", "always"]
    assert "low, high, max (default high)" in rows["k3"]
    assert rows["kimi-for-coding"].split()[1:3] == ["256K", "always"]
    assert rows["toggle-thinking"].split()[1:3] == ["256K", "on/off"]
    assert rows["k3-256k"].split()[-2:] == ["no", "-"]  # no video; no protocol declared
    assert rows["k3"].split()[-2:] == ["yes", "-"]
    assert KEY not in out


def test_models_json_uses_env_credentials_and_base_url(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", KEY)
    monkeypatch.setenv("KIMI_CODE_BASE_URL", emu.base_url)
    code, out, _ = _run(capsys, "models", "--json")
    assert code == 0
    assert [m["id"] for m in json.loads(out)["data"]] == [m["id"] for m in emu.models]
    assert emu.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_usage_table_shows_windows_and_reset_times(
    emu: Emulator, capsys: pytest.CaptureFixture[str], tz_plus9: None
) -> None:
    with use_clock(FakeClock(start=1_800_000_000.0)):  # 2027-01-15 08:00:00 UTC
        code, out, err = _run(capsys, "usage", "--base-url", emu.base_url, "--api-key", KEY)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["quota", "used/limit", "remaining", "resets"]
    window, weekly = lines[2], lines[3]
    assert window.startswith("5-hour window") and "0/100 (0%)" in window
    assert "2027-01-15 22:00" in window and "(in 5 h 0 min)" in window  # 13:00 UTC in UTC+9
    # legacy `usage` is the rolling 7-day window, not a plan total (reference §2)
    assert weekly.startswith("weekly (7-day) window") and "0/1000 (0%)" in weekly and "(in 3 d 0 h)" in weekly
    assert "membership: standard" in out and "concurrent requests: up to 30" in out


def test_usage_json(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "usage", "--json", "--base-url", emu.base_url, "--api-key", KEY)
    data = json.loads(out)
    assert code == 0 and data["shape"] == "legacy" and data["membership_level"] == "LEVEL_STANDARD"
    assert data == get_usage(api_key=KEY, base_url=emu.base_url).to_dict() | {"windows": data["windows"]}
    five = data["windows"][0]
    assert five["name"] == "5h" and five["limit"] == 100 and five["remaining"] == 100
    assert data["windows"][1]["name"] == "7d" and data["parallel_limit"] == 30


def test_rejected_key_exits_1_with_next_step(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "usage", "--base-url", emu.base_url, "--api-key", "sk-not-valid")
    assert code == 1 and out == ""
    assert "401" in err and "kimi-coder login" in err and "sk-not-valid" not in err


def test_no_credentials_lists_the_sources(emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "models", "--base-url", emu.base_url)
    assert code == 1
    assert "KIMI_CODER_API_KEY" in err and "kimi-cli" in err and "kimi-code" in err
    assert emu.counts["models"] == 0


def test_models_as_a_real_process(emu: Emulator, isolated_home: object) -> None:
    env = {**os.environ, "KIMI_CODER_API_KEY": KEY, "KIMI_CODE_BASE_URL": emu.base_url}
    proc = subprocess.run(
        [sys.executable, "-m", "kimi_coder_auth", "models"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "kimi-for-coding" in proc.stdout and KEY not in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- formatting


def test_format_usage_accepts_variants() -> None:
    with use_clock(FakeClock(start=1_800_000_000.0)):
        text = format_usage(
            {
                "limits": [
                    {"name": "weekly", "detail": {"used": 5, "limit": 50, "reset_at": 1_800_000_000 + 90}},
                    {"window": {"duration": 7, "timeUnit": "TIME_UNIT_DAY"}, "detail": {"used": "1"}},
                    {"window": {"duration": 1, "timeUnit": "TIME_UNIT_WEEK"}, "detail": {"remaining": "3", "resetTime": "2027-01-15T07:00:00Z"}},
                ],
                "usage": {"used": "12.0", "limit": "0"},
            }
        )
    lines = text.splitlines()
    assert lines[2].startswith("weekly") and "5/50 (10%)" in lines[2] and "45" in lines[2] and "(in 1 min)" in lines[2]
    # the legacy weekly `usage` fills the 7-day entry's gaps; a second 7-day entry keeps its own row
    assert lines[3].startswith("weekly (7-day) window") and "1/0" in lines[3]
    assert lines[4].startswith("7d_2 window") and "(now)" in lines[4] and len(lines) == 5


def test_format_usage_with_nothing() -> None:
    assert "shape kimi-coder does not know" in format_usage({})
    assert "no quota windows" in format_usage({"limits": []})


def test_format_models_empty_and_minimal() -> None:
    assert "no models" in format_models([])
    table = format_models([{"id": "m1"}])
    assert table.splitlines()[2].split()[0] == "m1"
