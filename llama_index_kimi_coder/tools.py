"""Ready LlamaIndex tools for the plan's web search and page fetch (``/search``, ``/fetch``).

``kimi_web_search_tool()`` and ``kimi_fetch_url_tool()`` return ``FunctionTool``s (sync and
async) that use the same credential discovery and connection pool as ``KimiCoderLLM``; no I/O
happens until a tool is called.
"""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.tools import FunctionTool

from kimi_coder_auth.services import KimiServices

__all__ = ["kimi_fetch_url_tool", "kimi_web_search_tool"]


def _services(api_key: str | None, base_url: str | None, credentials: str | None,
              settings: dict[str, Any]) -> KimiServices:
    return KimiServices.create(api_key=api_key, base_url=base_url, credentials=credentials,
                               **settings)


def kimi_web_search_tool(
    *, api_key: str | None = None, base_url: str | None = None, credentials: str | None = None,
    max_results: int = 5, name: str = "web_search", **settings: Any,
) -> FunctionTool:
    """A ``FunctionTool`` searching the web through the Kimi Coding Plan (``POST /search``)."""
    svc = _services(api_key, base_url, credentials, settings)

    def _fmt(results: list[Any]) -> str:
        return json.dumps([{k: v for k, v in r.as_dict().items() if v} for r in results[:max_results]],
                          ensure_ascii=False)

    def web_search(query: str) -> str:
        """Search the web; returns a JSON list of results (title, url, snippet, content)."""
        return _fmt(svc.web_search(query))

    async def aweb_search(query: str) -> str:
        """Search the web; returns a JSON list of results (title, url, snippet, content)."""
        return _fmt(await svc.aweb_search(query))

    return FunctionTool.from_defaults(fn=web_search, async_fn=aweb_search, name=name)


def kimi_fetch_url_tool(
    *, api_key: str | None = None, base_url: str | None = None, credentials: str | None = None,
    max_chars: int | None = 50000, name: str = "fetch_url", **settings: Any,
) -> FunctionTool:
    """A ``FunctionTool`` reading a web page through the Kimi Coding Plan (``POST /fetch``)."""
    svc = _services(api_key, base_url, credentials, settings)

    def _cut(text: str) -> str:
        if max_chars is not None and len(text) > max_chars:
            return text[:max_chars] + f"\n\n[truncated: the page has {len(text)} characters]"
        return text

    def fetch_url(url: str) -> str:
        """Fetch the http(s) page at url; returns its text as markdown."""
        return _cut(svc.fetch_url(url))

    async def afetch_url(url: str) -> str:
        """Fetch the http(s) page at url; returns its text as markdown."""
        return _cut(await svc.afetch_url(url))

    return FunctionTool.from_defaults(fn=fetch_url, async_fn=afetch_url, name=name)
