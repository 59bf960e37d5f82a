"""Ready LangChain tools for the plan's web search and page fetch (``/search``, ``/fetch``).

Both use the same credential discovery and connection pool as ``ChatKimiCoder``; construction
does no I/O. Bind them like any tool: ``ChatKimiCoder().bind_tools([KimiWebSearch()])``.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from kimi_coder_auth.services import KimiServices, SearchResult

from ._errors import translate_error

__all__ = ["KimiFetchURL", "KimiWebSearch"]


class _SearchInput(BaseModel):
    query: str = Field(description="What to search the web for.")


class _FetchInput(BaseModel):
    url: str = Field(description="The http(s) URL of the page to read.")


class _ServiceTool(BaseTool):
    """Connection settings shared by the service tools (same meaning as on ``ChatKimiCoder``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    api_key: SecretStr | None = None
    """A Kimi Code API key; None = discover the login like ``ChatKimiCoder``."""
    base_url: str | None = None
    """API base URL; default ``KIMI_CODE_BASE_URL`` or ``https://api.kimi.com/coding/v1``."""
    credentials: str | None = None
    """Pin one credential source: ``"env"``, ``"kimi-cli"`` or ``"kimi-code"``."""
    timeout: float | None = None
    max_retries: int = 2

    _services: KimiServices | None = PrivateAttr(default=None)

    def _svc(self) -> KimiServices:
        if self._services is None:
            self._services = KimiServices.create(
                api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
                base_url=self.base_url, credentials=self.credentials, timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._services


def _format_results(results: list[SearchResult], limit: int) -> str:
    return json.dumps(
        [{k: v for k, v in r.as_dict().items() if v} for r in results[:limit]], ensure_ascii=False
    )


class KimiWebSearch(_ServiceTool):
    """Web search through the Kimi Coding Plan (``POST /search``); returns JSON hits."""

    name: str = "web_search"
    description: str = (
        "Search the web. Input: a query. Output: a JSON list of results with title, url, "
        "snippet and (when available) page content."
    )
    args_schema: type[BaseModel] = _SearchInput
    max_results: int = 5
    """How many hits the tool returns to the model."""

    def _run(self, query: str, run_manager: Any = None) -> str:
        try:
            return _format_results(self._svc().web_search(query), self.max_results)
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__

    async def _arun(self, query: str, run_manager: Any = None) -> str:
        try:
            return _format_results(await self._svc().aweb_search(query), self.max_results)
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__


class KimiFetchURL(_ServiceTool):
    """Read a web page through the Kimi Coding Plan (``POST /fetch``); returns markdown text."""

    name: str = "fetch_url"
    description: str = "Fetch a web page. Input: an http(s) URL. Output: the page's text as markdown."
    args_schema: type[BaseModel] = _FetchInput
    max_chars: int | None = 50000
    """Longest text returned to the model (None = no limit); longer pages are cut, with a note."""

    def _cut(self, text: str) -> str:
        if self.max_chars is not None and len(text) > self.max_chars:
            return text[: self.max_chars] + f"\n\n[truncated: the page has {len(text)} characters]"
        return text

    def _run(self, url: str, run_manager: Any = None) -> str:
        try:
            return self._cut(self._svc().fetch_url(url))
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__

    async def _arun(self, url: str, run_manager: Any = None) -> str:
        try:
            return self._cut(await self._svc().afetch_url(url))
        except Exception as exc:
            raise translate_error(exc) from exc.__cause__
