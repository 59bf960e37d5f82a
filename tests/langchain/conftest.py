"""Fixtures for the LangChain adapter tests: one strict emulator per module, loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kimi_lc_support import API_KEY, live_enabled

from kimi_coder_auth.emulator import Emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A strict emulator (every documented 400 enforced) accepting the static key API_KEY."""
    emu = Emulator(api_keys=[API_KEY]).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def model_kwargs(emulator: Emulator) -> dict[str, Any]:
    """Constructor arguments that point ChatKimiCoder at the module's emulator."""
    return {"base_url": emulator.base_url, "api_key": API_KEY}


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """pytest-recording settings: never store credentials in a cassette."""
    return {
        "filter_headers": [("authorization", "REDACTED"), ("x-api-key", "REDACTED"),
                           ("cookie", "REDACTED")],
        "filter_post_data_parameters": ["refresh_token", "access_token", "device_code"],
        # record new cassettes only on a live run; otherwise never write one
        "record_mode": "once" if live_enabled() else "none",
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    """Cassettes live in tests/langchain/cassettes."""
    return str(Path(__file__).parent / "cassettes")
