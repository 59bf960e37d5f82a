"""LangChain web search / fetch tools against the emulator, including use by an agent."""

from __future__ import annotations

import json

import pytest

from kimi_coder_auth.emulator import Emulator
from langchain_kimi_coder.tools import KimiFetchURL, KimiWebSearch

KEY = "sk-kimi-lc-tools"


@pytest.fixture
def emu():
    with Emulator(api_keys=[KEY]) as e:
        yield e


def test_search_tool_invoke(emu: Emulator) -> None:
    tool = KimiWebSearch(api_key=KEY, base_url=emu.base_url)
    hits = json.loads(tool.invoke({"query": "langgraph"}))
    assert [h["title"] for h in hits] == ["langgraph - overview", "langgraph (wiki)"]
    assert "content" not in hits[1]  # empty fields are left out
    assert KEY not in repr(tool)


async def test_fetch_tool_ainvoke_and_error(emu: Emulator) -> None:
    tool = KimiFetchURL(api_key=KEY, base_url=emu.base_url, max_retries=0)
    assert (await tool.ainvoke({"url": "https://example.org/x"})).startswith("# Page at")
    with pytest.raises(Exception, match="404"):
        await tool.ainvoke({"url": "https://example.org/missing"})


def test_agent_calls_web_search(emu: Emulator) -> None:
    from langgraph.prebuilt import create_react_agent

    from langchain_kimi_coder import ChatKimiCoder

    llm = ChatKimiCoder(api_key=KEY, base_url=emu.base_url)
    agent = create_react_agent(llm, [KimiWebSearch(api_key=KEY, base_url=emu.base_url)])
    result = agent.invoke({"messages": [("user", "Use web_search to look up kimi k3")]})
    tool_msgs = [m for m in result["messages"] if m.type == "tool"]
    assert tool_msgs and "overview" in tool_msgs[0].content
    assert emu.counts["search"] == 1
