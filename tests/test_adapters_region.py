"""`region=` on both adapters reaches the credential (its login slot) and the transport (its host)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import RegionError
from kimi_coder_auth.region import kimi_code_slot
from kimi_coder_auth.sources import clear_credential_cache

KEY = "sk-kimi-region-test"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    clear_credential_cache()
    yield
    clear_credential_cache()


def make(adapter: str, **kw: Any) -> Any:
    if adapter == "langchain":
        from langchain_kimi_coder import ChatKimiCoder

        return ChatKimiCoder(max_retries=0, **kw)
    from llama_index_kimi_coder import KimiCoderLLM

    return KimiCoderLLM(max_retries=0, **kw)


def ask(adapter: str, model: Any) -> str:
    if adapter == "langchain":
        return str(model.invoke("hi").content)
    from llama_index.core.llms import ChatMessage

    return str(model.chat([ChatMessage(role="user", content="hi")]).message.content)


ADAPTERS = ["langchain", "llama_index"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_region_sets_the_api_host(adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make(adapter, api_key=KEY, region="global")
    assert model._kimi_client().transport.base_url == "https://api.kimi.ai/coding/v1"
    assert make(adapter, api_key=KEY)._kimi_client().transport.base_url == (
        "https://api.kimi.com/coding/v1")
    monkeypatch.setenv("KIMI_CODER_REGION", "intl")
    assert make(adapter, api_key=KEY)._kimi_client().transport.base_url == (
        "https://api.kimi.ai/coding/v1")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_region_picks_the_regions_login_slot(adapter: str, isolated_home: Path) -> None:
    """A global login (slot of auth.kimi.ai + this base URL) is used; the mainland one is not."""
    with Emulator() as emu:
        good, stale = emu.issue_token(), emu.issue_token()
        creds = isolated_home / ".kimi-code" / "credentials"
        creds.mkdir(parents=True)
        for slot, tok in ((kimi_code_slot("https://auth.kimi.ai", emu.base_url), good),
                          (kimi_code_slot("https://auth.kimi.com", emu.base_url), stale)):
            wire = {**tok, "expires_at": int(time.time()) + 900, "expires_in": 900}
            (creds / f"{slot}.json").write_text(json.dumps(wire, indent=2) + "\n")
        model = make(adapter, region="global", base_url=emu.base_url)
        assert ask(adapter, model)
        auth = [r.headers.get("authorization") for r in emu.requests_to("/chat/completions")]
        assert auth == [f"Bearer {good['access_token']}"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_unknown_region_is_a_clear_error_before_any_request(adapter: str) -> None:
    with Emulator(api_keys=[KEY]) as emu:
        model = make(adapter, api_key=KEY, base_url=emu.base_url, region="mars")
        with pytest.raises(RegionError) as info:
            ask(adapter, model)
        assert "region=" in str(info.value) and "global" in str(info.value)
        assert emu.counts["chat"] == 0
