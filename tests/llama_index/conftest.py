"""Shared fixtures for the LlamaIndex adapter: the strict emulator on loopback and LLM factories."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kimi_coder_auth.emulator import Emulator
from llama_index_kimi_coder import KimiCoderLLM

API_KEY = "sk-kimi-test-key-do-not-leak"

# A 1x1 transparent PNG.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def api_key() -> str:
    """The API key the emulator accepts (also used to check it never leaks)."""
    return API_KEY


@pytest.fixture
def png() -> bytes:
    """A tiny valid PNG."""
    return PNG_1X1


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A strict Coding API emulator (every documented 400) that accepts API_KEY."""
    emu = Emulator(api_keys=[API_KEY]).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def make_llm(emulator: Emulator) -> Callable[..., KimiCoderLLM]:
    """Build a KimiCoderLLM pointed at the emulator; keyword arguments override defaults."""

    def make(**overrides: Any) -> KimiCoderLLM:
        params: dict[str, Any] = {"api_key": API_KEY, "base_url": emulator.base_url}
        params.update(overrides)
        return KimiCoderLLM(**params)

    return make


@pytest.fixture
def llm(make_llm: Callable[..., KimiCoderLLM]) -> KimiCoderLLM:
    """KimiCoderLLM with thinking on, against the emulator."""
    return make_llm(thinking=True)


@pytest.fixture
def toggle_llm(make_llm: Callable[..., KimiCoderLLM]) -> KimiCoderLLM:
    """KimiCoderLLM with thinking on, on a model whose thinking can be switched off."""
    return make_llm(model="toggle-thinking", thinking=True)


@pytest.fixture
def chat_bodies(emulator: Emulator) -> Callable[[], list[dict[str, Any]]]:
    """A function returning the bodies of the chat requests the emulator received, in order."""

    def bodies() -> list[dict[str, Any]]:
        return [
            r.body for r in emulator.requests if r.path.endswith("/chat/completions") and r.body
        ]

    return bodies


@pytest.fixture
def image_server() -> Iterator[str]:
    """A loopback http.server serving PNG_1X1 at /pixel.png; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/pixel.png":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG_1X1)))
            self.end_headers()
            self.wfile.write(PNG_1X1)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
