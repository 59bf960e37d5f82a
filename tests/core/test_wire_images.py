"""Image inlining: bytes, paths, data URLs, and http(s) fetched from a loopback server."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kimi_coder_auth import wire
from kimi_coder_auth.errors import ImageFetchError
from kimi_coder_auth.wire import build_request, prepare_messages, to_data_url

# 1x1 transparent PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
GIF = b"GIF89a" + b"\x00" * 20
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20


class _Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        _Handler.hits[self.path] = _Handler.hits.get(self.path, 0) + 1
        routes: dict[str, tuple[int, str, bytes]] = {
            "/a.png": (200, "image/png", PNG),
            "/octet": (200, "application/octet-stream", PNG),
            "/page": (200, "text/html; charset=utf-8", b"<html></html>"),
            "/big.png": (200, "image/png", PNG + b"\x00" * 5000),
            "/missing": (404, "text/plain", b"nope"),
        }
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/a.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, ctype, body = routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    _Handler.hits = {}
    wire._cache.clear()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        wire._cache.clear()


def test_bytes_sniffed_by_magic() -> None:
    assert to_data_url(PNG) == PNG_URL
    assert to_data_url(JPEG).startswith("data:image/jpeg;base64,")
    assert to_data_url(GIF).startswith("data:image/gif;base64,")
    assert to_data_url(WEBP).startswith("data:image/webp;base64,")
    assert to_data_url(b"whatever", mime="image/bmp").startswith("data:image/bmp;base64,")
    with pytest.raises(ImageFetchError, match="not a recognised image"):
        to_data_url(b"plain text")


def test_data_url_passthrough_and_size_limit_on_bytes() -> None:
    assert to_data_url(PNG_URL) == PNG_URL
    with pytest.raises(ImageFetchError, match="limit"):
        to_data_url(PNG, max_bytes=10)


def test_local_path_and_file_url(tmp_path: Path) -> None:
    p = tmp_path / "pic.png"
    p.write_bytes(PNG)
    assert to_data_url(p) == PNG_URL
    assert to_data_url(str(p)) == PNG_URL
    assert to_data_url(p.as_uri()) == PNG_URL
    with pytest.raises(ImageFetchError, match="Could not read"):
        to_data_url(tmp_path / "nope.png")
    with pytest.raises(ImageFetchError, match="limit"):
        to_data_url(p, max_bytes=5)


def test_http_fetch_inlines_png(server: str) -> None:
    assert to_data_url(f"{server}/a.png") == PNG_URL


def test_redirect_followed_and_octet_stream_sniffed(server: str) -> None:
    assert to_data_url(f"{server}/redirect") == PNG_URL
    assert to_data_url(f"{server}/octet") == PNG_URL


def test_non_image_404_and_size_limit_are_clear_errors(server: str) -> None:
    with pytest.raises(ImageFetchError, match="not an image"):
        to_data_url(f"{server}/page")
    with pytest.raises(ImageFetchError, match="HTTP 404"):
        to_data_url(f"{server}/missing")
    with pytest.raises(ImageFetchError, match="limit"):
        to_data_url(f"{server}/big.png", max_bytes=1000)
    assert isinstance(ImageFetchError("x"), ValueError)


def test_connection_refused_is_image_fetch_error() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ImageFetchError, match="Could not fetch"):
        to_data_url(f"http://127.0.0.1:{port}/a.png", timeout=2.0)


def test_fetched_images_are_cached_across_requests(server: str) -> None:
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what?"},
                                         {"type": "image_url", "image_url": {"url": f"{server}/a.png"}}]}]
    first = prepare_messages(msgs, thinking_on=True)
    second = build_request("kimi-for-coding", msgs).body["messages"]
    assert first == second == [{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]}]
    assert _Handler.hits["/a.png"] == 1


def test_images_in_tool_results_are_inlined(server: str) -> None:
    msgs = [
        {"role": "assistant", "reasoning_content": "", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": [
            {"type": "text", "text": "screenshot:"},
            {"type": "image_url", "image_url": {"url": f"{server}/a.png"}}]},
    ]
    out = prepare_messages(msgs, thinking_on=True)
    assert out[1]["content"][1] == {"type": "image_url", "image_url": {"url": PNG_URL}}


async def test_abuild_request_fetches_off_the_loop(server: str) -> None:
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"{server}/a.png"}}]}]
    r = await wire.abuild_request("kimi-for-coding", msgs, stream=True)
    assert r.body["messages"][0]["content"][0]["image_url"]["url"] == PNG_URL


def test_error_messages_do_not_show_signed_query_or_userinfo(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    url = f"http://user:pw@127.0.0.1:{port}/page?X-Amz-Signature=SECRET123"
    with pytest.raises(ImageFetchError) as info:
        to_data_url(url)
    text = str(info.value)
    assert "SECRET123" not in text and "pw" not in text
    assert f"127.0.0.1:{port}/page" in text
