"""LlamaIndex web search / fetch tools against the emulator."""

from __future__ import annotations

import json

import pytest

from kimi_coder_auth.emulator import Emulator
from llama_index_kimi_coder.tools import kimi_fetch_url_tool, kimi_web_search_tool

KEY = "sk-kimi-li-tools"


@pytest.fixture
def emu():
    with Emulator(api_keys=[KEY]) as e:
        yield e


def test_search_tool_sync_and_async(emu: Emulator) -> None:
    tool = kimi_web_search_tool(api_key=KEY, base_url=emu.base_url, max_results=1)
    assert tool.metadata.name == "web_search"
    out = tool.call(query="llama")
    hits = json.loads(out.content)
    assert len(hits) == 1 and hits[0]["title"] == "llama - overview"
    assert emu.requests_to("/search")[-1].body == {"text_query": "llama"}


async def test_fetch_tool_async(emu: Emulator) -> None:
    tool = kimi_fetch_url_tool(api_key=KEY, base_url=emu.base_url, max_chars=20)
    out = await tool.acall(url="https://example.org/a")
    assert out.content.startswith("# Page at https://e") and "[truncated" in out.content
    assert emu.requests_to("/fetch")[-1].headers["accept"] == "text/markdown"
