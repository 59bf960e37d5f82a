"""The request fast path: JSON encoding (orjson when installed), parsed URLs and merged headers cached.

`Transport` inherits `CachedRequestBuilder._build_request`, so the send loop still makes one
direct method call per attempt; the header cache itself (``_base_headers``) is created in
`Transport.__init__`.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

try:  # optional: faster request encoding
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = ["CachedRequestBuilder"]


def _encode(body: Mapping[str, Any]) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(body)
        except TypeError:
            pass  # let the standard library produce its clearer message
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The request body is not JSON-serialisable: {exc}") from None


_URLS: dict[str, httpx.URL] = {}


def _parsed_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per distinct URL (parsing costs ~40 us per request)."""
    parsed = _URLS.get(url)
    if parsed is None:
        parsed = httpx.URL(url)
        if len(_URLS) >= 64:
            _URLS.clear()
        _URLS[url] = parsed
    return parsed


_FRAMING_HEADERS = ("host", "content-length", "transfer-encoding")


def _base_headers(
    client: httpx.Client | httpx.AsyncClient, url: httpx.URL, headers: dict[str, str]
) -> list[tuple[bytes, bytes]] | bool:
    """``Host`` + the client's default headers updated with ours, as httpx orders them; False
    when ours set a framing header themselves (then httpx's own path decides)."""
    merged = httpx.Headers(client.headers)
    merged.update(headers)
    if any(name in merged for name in _FRAMING_HEADERS):
        return False
    return [(b"Host", url.netloc), *merged.raw]



class CachedRequestBuilder:
    """Mixin for `Transport`: builds each attempt's `httpx.Request` from cached parts, and keeps
    this transport's own cookies (the pooled clients, shared by every login, keep none)."""

    _timeout: httpx.Timeout
    _cookies: httpx.Cookies | None
    _base_headers: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], list[tuple[bytes, bytes]] | bool]]

    def _build_request(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        """The request ``client.build_request`` would make, from a cached header list.

        httpx merges the client's default headers into ours and normalises every header three
        times per request (~35 us, on the path to the first token). The merged list, ``Host``
        included, is cached per client, URL and header set; only ``Content-Length`` is added per
        call, in httpx's order, so the request is identical (tested). An empty body other than
        a GET's, or a caller-set framing header, takes httpx's own path. This transport's own
        cookies, once it has any, are added last.
        """
        parsed = _parsed_url(url)
        timeout = timeout or self._timeout
        if not client.cookies.jar and (content or (content is None and method == "GET")):
            cache = self._base_headers.get(client)
            if cache is None:  # held weakly: a closed per-loop client is not kept alive
                cache = self._base_headers[client] = {}
            key = (url, tuple(headers.items()))
            base = cache.get(key)
            if base is None:
                if len(cache) >= 16:
                    cache.clear()
                base = cache[key] = _base_headers(client, parsed, headers)
            if base:
                if content:
                    raw, body = [*base, (b"Content-Length", str(len(content)).encode())], content
                else:
                    raw, body = base, b""
                request = httpx.Request(
                    method, parsed, headers=raw, stream=httpx.ByteStream(body),
                    extensions={"timeout": timeout.as_dict()},
                )
                request.read()  # as httpx does for in-memory bodies (auth may replay it)
                if self._cookies is not None:
                    self._cookies.set_cookie_header(request)
                return request
        request = client.build_request(method, parsed, content=content, headers=headers, timeout=timeout)
        if self._cookies is not None:
            self._cookies.set_cookie_header(request)
        return request

    def _keep_cookies(self, response: httpx.Response) -> None:
        """Keep the ``Set-Cookie``s of an answer (a load balancer's sticky cookie, say) for this
        transport's later requests: its credential and base URL only. Called only when the
        answer sets one or a jar exists, so answers without cookies cost one header lookup."""
        if self._cookies is None:
            self._cookies = httpx.Cookies()
        self._cookies.extract_cookies(response)
