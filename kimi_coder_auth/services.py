"""The plan's side services: web search (``/search``), page fetch (``/fetch``), video upload (``/files``).

Shapes as Kimi Code uses them: ``POST {base}/search`` with ``{"text_query": ...}`` answers
``{"search_results": [...]}``; ``POST {base}/fetch`` with ``{"url": ...}`` and
``Accept: text/markdown`` answers the extracted page text; ``POST {base}/files`` (multipart,
``purpose=video``, one ``video/*`` file) answers ``{"id": ...}``, used as ``ms://<id>``. All go
through the chat :class:`~kimi_coder_auth.transport.Transport` (same credential, identity,
retries and typed errors). As in Kimi Code, ``KIMI_WEB_SEARCH_BASE_URL`` /
``KIMI_WEB_FETCH_BASE_URL`` override the full service URL, and ``KIMI_WEB_SEARCH_API_KEY`` /
``KIMI_WEB_FETCH_API_KEY`` give that service its own key (sent instead of the login's token,
with the same settings, read on each call).
"""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import APIError

if TYPE_CHECKING:
    import httpx

    from .transport import Transport

__all__ = [
    "ENV_FETCH_KEY",
    "ENV_FETCH_URL",
    "ENV_SEARCH_KEY",
    "ENV_SEARCH_URL",
    "KimiServices",
    "SearchResult",
    "video_url_part",
]

ENV_SEARCH_URL = "KIMI_WEB_SEARCH_BASE_URL"
ENV_FETCH_URL = "KIMI_WEB_FETCH_BASE_URL"
ENV_SEARCH_KEY = "KIMI_WEB_SEARCH_API_KEY"
ENV_FETCH_KEY = "KIMI_WEB_FETCH_API_KEY"

_RESULT_FIELDS = ("site_name", "title", "url", "snippet", "content", "date", "icon", "mime")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One ``/search`` hit (every field as the service sent it; absent fields are ``""``)."""

    title: str
    url: str
    snippet: str = ""
    content: str = ""
    site_name: str = ""
    date: str = ""
    icon: str = ""
    mime: str = ""

    def as_dict(self) -> dict[str, str]:
        """The hit as a plain dict (for tool outputs)."""
        return {name: getattr(self, name) for name in _RESULT_FIELDS}


def video_url_part(ms_url: str) -> dict[str, Any]:
    """A wire content part referencing an uploaded video (``ms://<id>``)."""
    return {"type": "video_url", "video_url": {"url": ms_url}}


def _service_path(env: str, path: str) -> str:
    override = os.environ.get(env, "").strip()
    return override.rstrip("/") if override else path


def _parse_search(response: httpx.Response) -> list[SearchResult]:
    try:
        data = response.json()
    except ValueError:
        data = None
    results = data.get("search_results") if isinstance(data, Mapping) else None
    if not isinstance(results, list):
        raise APIError(
            "The /search answer had no 'search_results' list.",
            status=response.status_code,
            trace_id=response.headers.get("x-trace-id"),
            hint="Check that the base URL points at the Kimi Coding API (…/coding/v1).",
        )
    out: list[SearchResult] = []
    for item in results:
        if not isinstance(item, Mapping):
            continue
        values = {k: item.get(k) for k in _RESULT_FIELDS}
        out.append(SearchResult(**{k: v if isinstance(v, str) else "" for k, v in values.items()}))
    return out


def _parse_upload(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    file_id = data.get("id") if isinstance(data, Mapping) else None
    if not isinstance(file_id, str) or not file_id:
        raise APIError(
            "The /files answer had no file 'id'.",
            status=response.status_code,
            trace_id=response.headers.get("x-trace-id"),
            hint="Check that the base URL points at the Kimi Coding API (…/coding/v1).",
        )
    return file_id if file_id.startswith("ms://") else f"ms://{file_id}"


def _video_payload(
    video: bytes | str | os.PathLike[str], filename: str | None, mime: str | None
) -> tuple[bytes, str, str]:
    if isinstance(video, (bytes, bytearray)):
        data, name = bytes(video), filename or "video.mp4"
    else:
        path = Path(video)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(
                f"upload_video could not read {str(path)!r} ({exc.strerror}); pass an existing "
                "video file path or the video's bytes."
            ) from None
        name = filename or path.name
    kind = mime or mimetypes.guess_type(name)[0] or ""
    if not kind.startswith("video/"):
        raise ValueError(
            f"upload_video takes a video/* file; {name!r} looks like {kind or 'an unknown type'}. "
            "Pass mime='video/mp4' (or the right video type) if the name has no video suffix."
        )
    if not data:
        raise ValueError("upload_video got an empty video; pass the video's bytes or path.")
    return data, name, kind


def _multipart(data: bytes, filename: str, mime: str) -> tuple[bytes, str]:
    boundary = "kimi-coder-" + secrets.token_hex(12)
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nvideo\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{safe_name}\"\r\nContent-Type: {mime}\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _check_text(value: Any, name: str, call: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{call} needs a non-empty {name} string.")
    return value.strip()


class KimiServices:
    """Typed calls to the plan's side services over one :class:`Transport` (sync and async)."""

    __slots__ = ("_own_keys", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._own_keys: dict[str, tuple[str, Transport]] = {}  # variable -> (its key, transport)

    def _for(self, env_key: str) -> Transport:
        """The transport for a service: the login's, or one over the service's own key."""
        key = os.environ.get(env_key, "").strip()
        if not key:
            return self.transport
        held = self._own_keys.get(env_key)
        if held is not None and held[0] == key:
            return held[1]
        from .sources import StaticCredential

        own = self.transport.with_credential(StaticCredential(key, source=f"env:{env_key}"))
        self._own_keys[env_key] = (key, own)
        return own

    @classmethod
    def create(cls, *, api_key: str | None = None, base_url: str | None = None,
               credentials: str | None = None, **settings: Any) -> KimiServices:
        """Services over a new client's transport (credentials discovered lazily; no I/O)."""
        from .client import KimiClient

        client = KimiClient(api_key=api_key, base_url=base_url, credentials=credentials, **settings)
        return cls(client.transport)

    # ------------------------------------------------------------------ search

    def web_search(self, query: str) -> list[SearchResult]:
        """``POST /search``: the plan's web search for ``query``."""
        q = _check_text(query, "query", "web_search")
        response = self._for(ENV_SEARCH_KEY).request(
            "POST", _service_path(ENV_SEARCH_URL, "/search"), json_body={"text_query": q}
        )
        return _parse_search(response)

    async def aweb_search(self, query: str) -> list[SearchResult]:
        """Async `web_search`."""
        q = _check_text(query, "query", "web_search")
        response = await self._for(ENV_SEARCH_KEY).arequest(
            "POST", _service_path(ENV_SEARCH_URL, "/search"), json_body={"text_query": q}
        )
        return _parse_search(response)

    # ------------------------------------------------------------------ fetch

    def fetch_url(self, url: str) -> str:
        """``POST /fetch``: the page at ``url`` as extracted text (markdown)."""
        u = _check_text(url, "url", "fetch_url")
        response = self._for(ENV_FETCH_KEY).request(
            "POST", _service_path(ENV_FETCH_URL, "/fetch"), json_body={"url": u},
            headers={"Accept": "text/markdown"},
        )
        return response.text

    async def afetch_url(self, url: str) -> str:
        """Async `fetch_url`."""
        u = _check_text(url, "url", "fetch_url")
        response = await self._for(ENV_FETCH_KEY).arequest(
            "POST", _service_path(ENV_FETCH_URL, "/fetch"), json_body={"url": u},
            headers={"Accept": "text/markdown"},
        )
        return response.text

    # ------------------------------------------------------------------ files

    def upload_video(
        self, video: bytes | str | os.PathLike[str], *, filename: str | None = None,
        mime: str | None = None,
    ) -> str:
        """``POST /files`` (``purpose=video``): upload a video; returns its ``ms://`` URL for a
        ``video_url`` content part (see :func:`video_url_part`)."""
        data, name, kind = _video_payload(video, filename, mime)
        body, ctype = _multipart(data, name, kind)
        response = self.transport.request(
            "POST", "/files", content=body, headers={"Content-Type": ctype}
        )
        return _parse_upload(response)

    async def aupload_video(
        self, video: bytes | str | os.PathLike[str], *, filename: str | None = None,
        mime: str | None = None,
    ) -> str:
        """Async `upload_video` (the file is read in a thread)."""
        import asyncio

        data, name, kind = await asyncio.to_thread(_video_payload, video, filename, mime)
        body, ctype = _multipart(data, name, kind)
        response = await self.transport.arequest(
            "POST", "/files", content=body, headers={"Content-Type": ctype}
        )
        return _parse_upload(response)
