"""Bench-only loopback SSE server: serves pre-serialised Kimi-style chat streams of exactly N
chunks (or a tool call split into exactly N argument fragments), so the benchmark measures the
clients, not the server.

Run as a subprocess: `python bench/_server.py [--framing chunked|length]` prints the port on stdout and serves until stdin
closes. The last user message selects the stream: `bench:content:N` (N deltas, the first quarter
`reasoning_content`, the rest `content`) or `bench:tool:N` (one tool call, N argument fragments).
Framing mirrors the emulator and the real service: HTTP/1.1 keep-alive, chunked transfer, one
frame per SSE event, usage in `choices[0].usage` of the last chunk, then `data: [DONE]`.
`POST .../messages` serves the Anthropic Messages event stream of the same N deltas (thinking
then text, `event:`/`data:` without the space after the colon, as Kimi writes them).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "kimi-for-coding"
_SELECT = re.compile(rb"bench:(content|tool):(\d+)")
_MODELS = json.dumps({"object": "list", "data": [{
    "id": MODEL, "object": "model", "type": "model", "display_name": "Kimi For Coding",
    "context_length": 262144, "supports_reasoning": True, "supports_thinking_type": "both",
    "think_efforts": None, "supports_image_in": True, "supports_video_in": False,
    "supports_tool_use": True,
}]}).encode()


def _event(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return b"data: " + data.encode() + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    if usage is not None:
        choice["usage"] = usage
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
            "model": MODEL, "choices": [choice]}


def content_events(n: int) -> list[bytes]:
    """N deltas: the first quarter reasoning, the rest answer text, then finish + usage."""
    n_reason = n // 4
    deltas: list[dict[str, Any]] = [{"reasoning_content": f"r{i} "} for i in range(n_reason)]
    deltas += [{"content": f"w{i} "} for i in range(n - n_reason)]
    if deltas:
        deltas[0] = {"role": "assistant", **deltas[0]}
    usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n, "cached_tokens": 0}
    return [*(_event(_chunk(d)) for d in deltas), _event(_chunk({}, "stop", usage))]


def tool_events(n: int) -> list[bytes]:
    """One tool call whose JSON arguments arrive in exactly N fragments (N >= 2)."""
    n = max(2, n)
    frags = ['{"code": "'] + ["abcdefgh"] * (n - 2) + ['"}']
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": [{
        "index": 0, "id": "functions.write_code:0", "type": "function",
        "function": {"name": "write_code", "arguments": ""}}]}]
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in frags]
    usage = {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}
    return [*(_event(_chunk(d)) for d in deltas), _event(_chunk({}, "tool_calls", usage))]


def _mevent(obj: dict[str, Any]) -> bytes:
    """One Messages event as Kimi writes it: ``event:``/``data:`` without the space."""
    return (b"event:" + obj["type"].encode() + b"\ndata:"
            + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n")


def message_events(n: int) -> list[bytes]:
    """The Anthropic Messages stream with N deltas: the first quarter thinking, the rest text."""
    n_reason = n // 4
    usage = {"input_tokens": 12, "cache_read_input_tokens": 0, "output_tokens": 0}
    out = [_mevent({"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    index = 0
    if n_reason:
        out.append(_mevent({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
        out += [_mevent({"type": "content_block_delta", "index": 0,
                         "delta": {"type": "thinking_delta", "thinking": f"r{i} "}}) for i in range(n_reason)]
        out.append(_mevent({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}}))
        out.append(_mevent({"type": "content_block_stop", "index": 0}))
        index = 1
    out.append(_mevent({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}))
    out += [_mevent({"type": "content_block_delta", "index": index,
                     "delta": {"type": "text_delta", "text": f"w{i} "}}) for i in range(n - n_reason)]
    out.append(_mevent({"type": "content_block_stop", "index": index}))
    out.append(_mevent({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": n}}))
    out.append(_mevent({"type": "message_stop"}))
    return out


FRAMING = "chunked"  # or "length": the whole stream as one Content-Length body


@functools.lru_cache(maxsize=64)
def stream_body(kind: str, n: int) -> bytes:
    """The whole response body for one stream (cached: served with one sendall): one chunked
    frame per event, or (framing "length") the plain event bytes."""
    events = content_events(n) if kind == "content" else tool_events(n)
    events = [b": keep-alive\n\n", *events, b"data: [DONE]\n\n"]
    if FRAMING == "length":
        return b"".join(events)
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


@functools.lru_cache(maxsize=64)
def messages_body(n: int) -> bytes:
    """A whole Messages event stream (framed like `stream_body`)."""
    events = message_events(n)
    if FRAMING == "length":
        return b"".join(events)
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


@functools.lru_cache(maxsize=64)
def completion_body(kind: str, n: int) -> bytes:
    """Non-streamed answer for the same selector."""
    n_reason = n // 4
    message: dict[str, Any] = {"role": "assistant",
                               "reasoning_content": "".join(f"r{i} " for i in range(n_reason)),
                               "content": "".join(f"w{i} " for i in range(n - n_reason))}
    finish = "stop"
    if kind == "tool":
        message = {"role": "assistant", "content": "", "tool_calls": [{
            "index": 0, "id": "functions.write_code:0", "type": "function",
            "function": {"name": "write_code", "arguments": json.dumps({"code": "abcdefgh" * max(0, n - 2)})}}]}
        finish = "tool_calls"
    return json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
                       "model": MODEL, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       "usage": {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n}}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, ctype: str, *, chunked: bool = False) -> None:
        head = [f"HTTP/1.1 {status} OK", f"Content-Type: {ctype}", "x-trace-id: bench"]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, _MODELS, "application/json")
        else:
            self._send(404, b'{"error":{"message":"not found","type":"not_found"}}', "application/json")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        m = _SELECT.search(raw)
        kind, n = (m.group(1).decode(), int(m.group(2))) if m else ("content", 8)
        if self.path.rstrip("/").endswith("/messages"):  # the Anthropic route (streams only)
            self._send(200, messages_body(n), "text/event-stream; charset=utf-8",
                       chunked=FRAMING == "chunked")
        elif b'"stream":true' in raw.replace(b" ", b""):
            self._send(200, stream_body(kind, n), "text/event-stream; charset=utf-8",
                       chunked=FRAMING == "chunked")
        else:
            self._send(200, completion_body(kind, n), "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def serve(port: int = 0) -> _Server:
    """Start serving on 127.0.0.1 in a background thread; returns the server."""
    server = _Server(("127.0.0.1", port), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    if "--framing" in sys.argv:
        FRAMING = sys.argv[sys.argv.index("--framing") + 1]
    srv = serve()
    print(srv.server_address[1], flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    srv.shutdown()
