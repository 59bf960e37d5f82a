"""Images for the wire: bytes, paths and http(s) URLs become ``data:`` URLs (fetched once, cached).

httpx is imported only when an image URL must be fetched, so importing the adapters stays cheap.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ImageFetchError

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_MAX_IMAGE_BYTES", "to_data_url"]

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024

_http_client: httpx.Client | None = None
_http_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str | None, int], str] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_ENTRIES = 16
_CACHE_BYTES = 64 * 1024 * 1024


def _client() -> httpx.Client:
    global _http_client
    if _http_client is None:
        with _http_lock:
            if _http_client is None:
                import httpx

                _http_client = httpx.Client(follow_redirects=True)
    return _http_client


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _pick_mime(data: bytes, mime: str | None, header: str | None, where: str) -> str:
    if mime:
        return mime
    sniffed = _sniff(data)
    if sniffed:
        return sniffed
    if header:
        ctype = header.split(";", 1)[0].strip().lower()
        if ctype.startswith("image/"):
            return ctype
    raise ImageFetchError(
        f"{where} is not a recognised image (png, jpeg, gif or webp); pass mime= if it is one."
    )


def _encode(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _too_big(where: str, size: int, max_bytes: int) -> ImageFetchError:
    return ImageFetchError(
        f"{where} is {size} bytes, over the {max_bytes}-byte image limit; "
        "resize it or raise max_bytes."
    )


def _shown(url: str) -> str:
    """The URL for error messages: no credentials or query string (signed URLs carry secrets)."""
    import httpx

    try:
        u = httpx.URL(url)
        return str(u.copy_with(userinfo=b"", query=None, fragment=None))
    except Exception:
        return "<the image URL>"


def _fetch(url: str, mime: str | None, max_bytes: int, timeout: float) -> str:
    import httpx

    shown = _shown(url)
    try:
        with _client().stream("GET", url, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise ImageFetchError(
                    f"Fetching the image {shown} returned HTTP {resp.status_code}; "
                    "check the URL or pass the image bytes instead."
                )
            header = resp.headers.get("content-type")
            ctype = (header or "").split(";", 1)[0].strip().lower()
            if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
                raise ImageFetchError(
                    f"The URL {shown} served {ctype!r}, not an image; "
                    "point it at an image file (png, jpeg, gif, webp)."
                )
            length = resp.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _too_big(f"The image at {shown}", int(length), max_bytes)
            buf = bytearray()
            for block in resp.iter_bytes():
                buf += block
                if len(buf) > max_bytes:
                    raise _too_big(f"The image at {shown}", len(buf), max_bytes)
    except httpx.HTTPError as exc:
        raise ImageFetchError(
            f"Could not fetch the image {shown}: {type(exc).__name__}: "
            f"{str(exc).replace(url, shown)}; "
            "check the URL and your network, or pass the image bytes instead."
        ) from None
    data = bytes(buf)
    return _encode(data, _pick_mime(data, mime, header, f"The content at {shown}"))


def to_data_url(
    source: bytes | bytearray | memoryview | str | os.PathLike[str],
    mime: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    timeout: float = 30.0,
) -> str:
    """Return ``data:<mime>;base64,...`` for image bytes, a data URL (returned as is), an http(s)
    URL (fetched, redirects followed, must be an image within ``max_bytes``), a ``file://`` URL
    or a local path. The mime type is sniffed from magic bytes when not given.

    Raises :class:`ImageFetchError` (a ``ValueError``) when the image cannot be used.
    Fetched URLs are cached (small LRU) because agent loops resend the same history every turn.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_big("The image", len(data), max_bytes)
        return _encode(data, _pick_mime(data, mime, None, "The given bytes"))
    if isinstance(source, str):
        if source.startswith("data:"):
            return source
        low = source[:8].lower()
        if low.startswith(("http://", "https://")):
            key = (source, mime, max_bytes)
            with _cache_lock:
                hit = _cache.get(key)
                if hit is not None:
                    _cache.move_to_end(key)
                    return hit
            url = _fetch(source, mime, max_bytes, timeout)
            with _cache_lock:
                _cache[key] = url
                total = sum(len(v) for v in _cache.values())
                while len(_cache) > _CACHE_ENTRIES or (total > _CACHE_BYTES and len(_cache) > 1):
                    _, old = _cache.popitem(last=False)
                    total -= len(old)
            return url
        if low.startswith("file://"):
            source = source[7:]
        elif "://" in source[:16]:
            raise ImageFetchError(
                f"Unsupported image URL scheme in {source[:40]!r}; use http(s), file, data: "
                "or a local path."
            )
    path = Path(os.fspath(source))
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(f"The image file {path}", size, max_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise ImageFetchError(
            f"Could not read the image file {path}: {exc.strerror or exc}; check the path."
        ) from None
    if mime is None and _sniff(data) is None:
        guessed = mimetypes.guess_type(path.name)[0]
        if guessed and guessed.startswith("image/"):
            mime = guessed
    return _encode(data, _pick_mime(data, mime, None, f"The file {path}"))
