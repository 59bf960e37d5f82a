"""ChatKimiCoder reuses its core client between calls, yet follows settings changed in place."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from kimi_coder_auth.http_pool import _headers_dict
from langchain_kimi_coder import ChatKimiCoder


def test_client_reused_while_settings_unchanged() -> None:
    llm = ChatKimiCoder(api_key="sk-a", base_url="http://127.0.0.1:9/v1", default_headers={"X-A": "1"})
    first = llm._kimi_client()
    assert llm._kimi_client() is first
    assert llm._get_transport() is first.transport


def test_in_place_setting_changes_rebuild_the_client() -> None:
    llm = ChatKimiCoder(api_key="sk-a", base_url="http://127.0.0.1:9/v1", default_headers={"X-A": "1"})
    client = llm._kimi_client()
    llm.base_url = "http://127.0.0.1:10/v1"
    moved = llm._kimi_client()
    assert moved is not client and moved.transport.base_url == "http://127.0.0.1:10/v1"
    assert llm.default_headers is not None
    llm.default_headers["X-A"] = "2"  # mutated in place, not reassigned
    rehead = llm._kimi_client()
    assert rehead is not moved and rehead.transport._headers == {"X-A": "2"}
    llm.api_key = SecretStr("sk-b")
    rekeyed = llm._kimi_client()
    assert rekeyed is not rehead and rekeyed.api_key is not None
    assert rekeyed.api_key.reveal() == "sk-b"
    llm.max_retries = 0
    assert llm._kimi_client().transport.max_retries == 0


def test_model_copy_does_not_share_a_stale_client() -> None:
    llm = ChatKimiCoder(api_key="sk-a", base_url="http://127.0.0.1:9/v1")
    client = llm._kimi_client()
    moved = llm.model_copy(update={"base_url": "http://127.0.0.1:10/v1"})
    assert moved._kimi_client() is not client
    assert moved._get_transport().base_url == "http://127.0.0.1:10/v1"
    assert llm._kimi_client() is client


def test_response_headers_dict_matches_httpx() -> None:
    headers = httpx.Headers(
        [("Content-Type", "text/event-stream"), ("X-Trace-Id", "t"), ("x-a", "1"), ("X-A", "2")]
    )
    fast = _headers_dict(headers)
    assert fast == dict(headers) and list(fast) == list(dict(headers))
    assert fast["x-a"] == "1, 2" and fast["x-trace-id"] == "t"
