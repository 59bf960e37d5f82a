"""The emulator's side services: ``/search``, ``/fetch`` and ``/files`` in Kimi Code's shapes.

Deterministic answers: a search returns two hits naming the query; a fetch returns markdown
naming the URL (a URL containing ``missing`` gets 404); an upload of a ``video/*`` file with
``purpose=video`` returns a file id and keeps the bytes in ``Emulator.uploads``.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["SERVICE_PATHS", "handle_service", "parse_multipart"]

SERVICE_PATHS = {
    "/coding/v1/search": "search",
    "/coding/v1/fetch": "fetch",
    "/coding/v1/files": "files",
}


def _err(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}


def search_results(query: str) -> list[dict[str, str]]:
    """The emulator's answer to a web search (two hits naming the query)."""
    slug = hashlib.sha256(query.encode()).hexdigest()[:8]
    return [
        {"site_name": "Example Docs", "title": f"{query} - overview", "url": f"https://docs.example/{slug}",
         "snippet": f"An overview of {query}.", "content": f"Full text about {query}.",
         "date": "2026-11-30", "icon": "", "mime": "text/html"},
        {"site_name": "Example Wiki", "title": f"{query} (wiki)", "url": f"https://wiki.example/{slug}",
         "snippet": f"{query} explained.", "content": "", "date": "", "icon": "", "mime": "text/html"},
    ]


def parse_multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, str, bytes]]:
    """``name -> (filename, content type, bytes)`` of a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    out: dict[str, tuple[str | None, str, bytes]] = {}
    if not msg.is_multipart():
        return out
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        out[str(name)] = (part.get_filename(), part.get_content_type(), payload)
    return out


def handle_service(emu: Emulator, h: Any, kind: str, headers: dict[str, str], body: Any,
                   raw: bytes, trace_id: str) -> None:
    """Answer one side-service request (auth and faults as for chat)."""
    emu._count(kind)
    if emu._apply_fault(h, emu._take_fault(kind), trace_id):
        return
    if not emu._authorized(h, headers, trace_id):
        return
    if kind == "search":
        query = body.get("text_query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            emu._send_json(h, 400, _err("Invalid request: text_query is required"), trace_id)
            return
        emu._send_json(h, 200, {"search_results": search_results(query)}, trace_id)
    elif kind == "fetch":
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            emu._send_json(h, 400, _err("Invalid request: url must be an http(s) URL"), trace_id)
            return
        if "missing" in url:
            emu._send_json(h, 404, _err(f"could not fetch {url}: 404", "resource_not_found_error"), trace_id)
            return
        text = f"# Page at {url}\n\nExtracted text of {url}.\n"
        emu._send(h, 200, text.encode(), trace_id, content_type="text/markdown; charset=utf-8")
    else:
        fields = parse_multipart(raw, headers.get("content-type", ""))
        purpose = fields.get("purpose")
        upload = fields.get("file")
        if purpose is None or purpose[2] != b"video":
            emu._send_json(h, 400, _err("Invalid request: purpose must be 'video'"), trace_id)
            return
        if upload is None or not upload[1].startswith("video/") or not upload[2]:
            emu._send_json(h, 400, _err("Invalid request: file must be one video/* file"), trace_id)
            return
        file_id = "file-" + hashlib.sha256(upload[2]).hexdigest()[:20]
        with emu._lock:
            emu.uploads[file_id] = upload
        emu._send_json(h, 200, {"id": file_id, "object": "file", "purpose": "video",
                                "bytes": len(upload[2]), "filename": upload[0]}, trace_id)
