"""A raw-socket HTTP server on 127.0.0.1 for hostile answers the emulator does not make.

``HostileServer(handler)``: every connection reads one request (headers + Content-Length
body) and calls ``handler(conn, request)`` which writes whatever bytes it likes (gzip bombs,
trickles, bodies that break mid-read, HTML, malformed SSE). ``requests`` counts requests;
``gave_up`` is set when a handler's write failed because the client went away.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["HostileServer", "Request", "gzip_bomb", "head", "sse_answer"]


class Request:
    """One received request: method, path, lower-case headers, raw body."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


def head(status: int = 200, headers: dict[str, str] | None = None, reason: str = "OK") -> bytes:
    """A status line and headers (no body)."""
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def gzip_bomb(size: int) -> bytes:
    """A gzip member that expands to ``size`` bytes of spaces (valid JSON whitespace)."""
    return gzip.compress(b" " * size, compresslevel=9)


def sse_answer(events: Iterable[dict[str, Any] | bytes], *, done: bool = True) -> bytes:
    """A complete 200 event-stream answer (Content-Length framed) with ``events``."""
    body = b"".join(
        e if isinstance(e, bytes) else b"data: " + json.dumps(e).encode() + b"\n\n" for e in events
    )
    if done:
        body += b"data: [DONE]\n\n"
    return head(200, {"Content-Type": "text/event-stream", "Content-Length": str(len(body))}) + body


class HostileServer:
    """Threaded raw HTTP/1.1 server; one request per connection (``Connection: close``)."""

    def __init__(self, handler: Callable[[socket.socket, Request], None]) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.gave_up = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/coding/v1"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            raw_head, _, body = data.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                piece = conn.recv(65536)
                if not piece:
                    break
                body += piece
            request = Request(method, path, headers, body)
            self.requests.append(request)
            self.handler(conn, request)
        except OSError:
            self.gave_up.set()  # the client closed the connection under us
        finally:
            try:
                conn.close()
            except OSError:
                pass


def trickle(conn: socket.socket, data: bytes, *, every: float, stop: threading.Event | None = None) -> None:
    """Send ``data`` one byte at a time, ``every`` seconds apart (raises OSError when the
    client has gone)."""
    for i in range(len(data)):
        if stop is not None and stop.is_set():
            return
        conn.sendall(data[i : i + 1])
        time.sleep(every)
