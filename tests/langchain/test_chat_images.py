"""Images reach Kimi as base64 data URLs in every LangChain form, remote URLs inlined (offline:
the "remote" server is a loopback http.server)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kimi_lc_support import API_KEY
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from kimi_coder_auth import errors as k
from kimi_coder_auth.emulator import Emulator
from langchain_kimi_coder import ChatKimiCoder

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
PNG_B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{PNG_B64}"


class _Images(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        type(self).hits.append(path)
        if path == "/cat.png":
            body, ctype, status = PNG, "image/png", 200
        elif path == "/page.html":
            body, ctype, status = b"<html></html>", "text/html", 200
        else:
            body, ctype, status = b"missing", "text/plain", 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _sent_images(emu: Emulator) -> list[str]:
    body = [r.body for r in emu.requests if r.path.endswith("/chat/completions")][-1]
    urls = []
    for m in body["messages"]:
        if isinstance(m.get("content"), list):
            urls += [p["image_url"]["url"] for p in m["content"] if p["type"] == "image_url"]
    return urls


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": DATA_URL}},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
    ],
    ids=["openai-image_url", "v1-base64", "v0-source_type", "anthropic-source"],
)
def test_inline_forms_reach_the_server_as_data_urls(
    emulator: Emulator, model_kwargs: dict, block: dict
) -> None:
    msg = HumanMessage(content=[{"type": "text", "text": "Describe the image."}, block])
    answer = ChatKimiCoder(**model_kwargs).invoke([msg])
    assert "image" in answer.text.lower()  # the emulator saw an image part
    assert _sent_images(emulator) == [DATA_URL]


@pytest.mark.parametrize(
    "make_block",
    [
        lambda url: {"type": "image_url", "image_url": {"url": url}},
        lambda url: {"type": "image", "url": url},
        lambda url: {"type": "image", "source_type": "url", "url": url},
        lambda url: {"type": "image", "source": {"type": "url", "url": url}},
    ],
    ids=["openai", "v1", "v0", "anthropic"],
)
def test_remote_urls_are_fetched_and_inlined(
    emulator: Emulator, model_kwargs: dict, image_server: str, make_block: Any
) -> None:
    url = f"{image_server}/cat.png"
    msg = HumanMessage(content=[{"type": "text", "text": "What is it?"}, make_block(url)])
    ChatKimiCoder(**model_kwargs).invoke([msg])
    assert _sent_images(emulator) == [DATA_URL]


async def test_remote_url_async_and_streaming(
    emulator: Emulator, model_kwargs: dict, image_server: str
) -> None:
    url = f"{image_server}/cat.png?async"
    msg = HumanMessage(content=[{"type": "text", "text": "What?"}, {"type": "image", "url": url}])
    chunks = [c async for c in ChatKimiCoder(**model_kwargs).astream([msg])]
    assert chunks and _sent_images(emulator) == [DATA_URL]


def test_image_in_tool_result(emulator: Emulator, model_kwargs: dict) -> None:
    history = [
        HumanMessage("take a screenshot"),
        AIMessage("", tool_calls=[{"name": "screenshot", "args": {}, "id": "call_1"}]),
        ToolMessage(content=[{"type": "image", "base64": PNG_B64, "mime_type": "image/png"}],
                    tool_call_id="call_1"),
    ]
    ChatKimiCoder(**model_kwargs, thinking=True).invoke(history)
    assert _sent_images(emulator) == [DATA_URL]


@pytest.mark.parametrize(
    ("path", "match"), [("/page.html", "not an image"), ("/nope.png", "HTTP 404")]
)
def test_bad_remote_image_fails_before_sending(
    emulator: Emulator, model_kwargs: dict, image_server: str, path: str, match: str
) -> None:
    before = emulator.counts["chat"]
    msg = HumanMessage(content=[{"type": "text", "text": "x"},
                                {"type": "image", "url": image_server + path}])
    with pytest.raises(k.ImageFetchError, match=match):
        ChatKimiCoder(**model_kwargs).invoke([msg])
    assert emulator.counts["chat"] == before


def test_model_without_image_input_says_so() -> None:
    from kimi_coder_auth.emulator.models import model_entry

    msg = HumanMessage(content=[{"type": "text", "text": "x"},
                                {"type": "image", "base64": PNG_B64, "mime_type": "image/png"}])
    with Emulator(api_keys=[API_KEY], models=[model_entry("text-only", 262144, "only", image=False)]) as emu:
        with pytest.raises(ValueError, match="does not accept images"):
            ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, model="text-only").invoke([msg])
        assert emu.counts["chat"] == 0
