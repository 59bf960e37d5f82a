"""`Transport`'s JSON endpoints besides chat: ``/models`` (cached), ``/usages`` and side-service requests."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

import httpx

from . import clock
from .errors import APIError
from .response_ids import trace_id as _trace_id

__all__ = ["MODELS_TTL", "TransportEndpoints"]

MODELS_TTL = 600.0

_models_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, list[dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary()
)


class TransportEndpoints:
    """Mixin for `Transport`: ``/models``, ``/usages`` and `request`, sent through its `_send`
    / `_asend` and parsed with its `_json` (keyed by its ``credential`` and ``base_url``)."""

    def request(
        self, method: str, path: str, *, json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One authenticated request to ``{base}{path}`` (or a full URL) with the transport's
        retries and typed errors; returns the read 2xx response (side services use this)."""
        raw = (content, dict(headers or {}))
        response, _ = self._send(method, path, json_body, raw=raw)
        return response

    async def arequest(
        self, method: str, path: str, *, json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Async `request`."""
        raw = (content, dict(headers or {}))
        response, _ = await self._asend(method, path, json_body, raw=raw)
        return response

    # ------------------------------------------------------------------ models / usages

    def _cached_models(self) -> list[dict[str, Any]] | None:
        try:
            per_url = _models_cache.get(self.credential)
        except TypeError:
            return None
        hit = per_url.get(self.base_url) if per_url else None
        if hit is not None and hit[0] > clock.monotonic():
            return deepcopy(hit[1])
        return None

    def _store_models(self, models: list[dict[str, Any]]) -> None:
        try:
            per_url = _models_cache.setdefault(self.credential, {})
        except TypeError:
            return  # credential not weak-referenceable: no cache
        per_url[self.base_url] = (clock.monotonic() + MODELS_TTL, deepcopy(models))

    def _models_from(self, response: httpx.Response) -> list[dict[str, Any]]:
        data = self._json(response, "/models")
        models = data.get("data") if isinstance(data, dict) else data
        if not isinstance(models, list):
            raise APIError(
                "The /models answer had no model list.",
                status=response.status_code,
                trace_id=_trace_id(response.headers),
            )
        return [m for m in models if isinstance(m, dict)]

    def list_models(self) -> list[dict[str, Any]]:
        """``GET /models`` entries, cached for 10 minutes per (credential, base URL)."""
        cached = self._cached_models()
        if cached is not None:
            return cached
        response, _ = self._send("GET", "/models")
        models = self._models_from(response)
        self._store_models(models)
        return models

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async `list_models` (same cache)."""
        cached = self._cached_models()
        if cached is not None:
            return cached
        response, _ = await self._asend("GET", "/models")
        models = self._models_from(response)
        self._store_models(models)
        return models

    def invalidate_models(self) -> None:
        """Forget the cached ``/models`` answer for this credential and base URL."""
        try:
            per_url = _models_cache.get(self.credential)
        except TypeError:
            return
        if per_url:
            per_url.pop(self.base_url, None)

    def model_info(self, model: str) -> dict[str, Any] | None:
        """The live ``/models`` entry for ``model``, or None if the server does not list it."""
        return next((m for m in self.list_models() if m.get("id") == model), None)

    async def amodel_info(self, model: str) -> dict[str, Any] | None:
        """Async `model_info`."""
        return next((m for m in await self.alist_models() if m.get("id") == model), None)

    def get_usages(self) -> dict[str, Any]:
        """``GET /usages``: the plan's quota windows (numbers arrive as decimal strings)."""
        response, _ = self._send("GET", "/usages")
        return self._usages_from(response)

    async def aget_usages(self) -> dict[str, Any]:
        """Async `get_usages`."""
        response, _ = await self._asend("GET", "/usages")
        return self._usages_from(response)

    def _usages_from(self, response: httpx.Response) -> dict[str, Any]:
        data = self._json(response, "/usages")
        if not isinstance(data, dict):
            raise APIError("The /usages answer was not a JSON object.", status=response.status_code)
        return data
