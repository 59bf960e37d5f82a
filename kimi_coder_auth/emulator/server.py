"""The emulator's HTTP server: the `Emulator` API (lifecycle, tokens, faults), dispatch and raw replies.

Stdlib only (`http.server.ThreadingHTTPServer`, HTTP/1.1 keep-alive). Responses are written as
raw bytes; a streamed answer is pre-serialised and sent with one `sendall` unless delays are
injected, so thousands of chunks cost almost nothing. The routes live in their own modules:
`oauth_endpoints` (device flow, refresh rotation), `chat_route` (``/chat/completions``),
`messages_route` (``/messages``), `side_services` (``/search``, ``/fetch``, ``/files``);
``/models`` and ``/usages`` are answered here.
"""

from __future__ import annotations

import collections
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import clock
from .chat_route import handle_chat
from .models import default_models
from .oauth_endpoints import CLIENT_ID, DEVICE_STEPS, handle_device_authorization, handle_token
from .prompt_cache import PromptCache
from .quota import QuotaScript
from .replies import (
    _DEFAULT_FAULT_BODIES,
    _REASONS,
    INVALID_TOKEN_MESSAGE,
    _Disconnected,
    _error_body,
    _json,
)
from .responders import DefaultResponder, Responder
from .side_services import SERVICE_PATHS, handle_service

__all__ = ["CLIENT_ID", "Emulator", "Fault", "RecordedRequest"]

ENDPOINTS = ("chat", "messages", "models", "usages", "refresh", "device_token", "device_authorization",
             "search", "fetch", "files")
#: ``ua_gate="real"``: the OpenAI route admits only User-Agents of known coding agents, like the
#: real service; the Anthropic route (``/messages``) admits everyone.
CODING_AGENT_UA = r"^(KimiCLI|kimi-code-cli|claude-cli|claude-code|RooCode|Roo-Code|Kilo-Code|KiloCode)/"


@dataclass
class RecordedRequest:
    """One request as the emulator saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """An injected fault for the next `times` requests to one endpoint (None = forever)."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    drop_after_chunks: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    sse_error: dict[str, Any] | None = None
    sse_error_after: int = 1
    times: int | None = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    emulator: Emulator

    def process_request(self, request: Any, client_address: Any) -> None:
        self.emulator._track(request, add=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.emulator._track(request, add=False)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # a client went away; nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kimi-coder-emulator"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self.server.emulator._dispatch(self)

    def do_POST(self) -> None:
        self.server.emulator._dispatch(self)

    do_PUT = do_DELETE = do_PATCH = do_POST


class Emulator:
    """A local Kimi Coding API + OAuth server on 127.0.0.1 for tests and demos.

    Strict like the real service (documented 400s, 401 on expired tokens, rotating refresh
    tokens), countable (`counts`, `requests`) and scriptable (`script_device`, `inject`).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        access_token_ttl: int = 900,
        ua_gate: str | None = None,
        models: list[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: list[str] | tuple[str, ...] | None = None,
        device_interval: int = 5,
        device_expires_in: int = 600,
        chunk_delay: float = 0.0,
        chunk_chars: int = 12,
        record_requests: bool = True,
    ) -> None:
        self.responder: Responder = responder or DefaultResponder()
        self.access_token_ttl = int(access_token_ttl)
        self.ua_gate = re.compile(CODING_AGENT_UA if ua_gate == "real" else ua_gate) if ua_gate else None
        self.thinking_key = secrets.token_bytes(16)  # signs the Messages route's thinking blocks
        self.models: list[dict[str, Any]] = models if models is not None else default_models()
        self.host = host
        self.port = port
        self.api_keys: set[str] = set(api_keys or ())
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.chunk_delay = chunk_delay
        self.chunk_chars = max(1, int(chunk_chars))
        self.record_requests = record_requests
        self.prompt_cache = PromptCache()
        self.uploads: dict[str, tuple[str | None, str, bytes]] = {}  # file id -> (name, type, bytes)
        self.counts: collections.Counter[str] = collections.Counter()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._access: dict[str, float] = {}  # token -> expires_at (clock.now() epoch)
        self._refresh: set[str] = set()
        self._used_refresh: set[str] = set()
        self._devices: dict[str, dict[str, Any]] = {}
        self._device_script: collections.deque[str] = collections.deque()
        self._faults: dict[str, list[Fault]] = {e: [] for e in ENDPOINTS}
        self._call_seq = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[Any] = set()
        self.quota = QuotaScript()  # scripted quota windows, /usages shapes, id header spelling

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kimi-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Run in the foreground until KeyboardInterrupt (the CLI command)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: Any, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    @property
    def oauth_host(self) -> str:
        """OAuth host URL (`KIMI_CODE_OAUTH_HOST`)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Coding API base URL (`KIMI_CODE_BASE_URL`)."""
        return f"{self.oauth_host}/coding/v1"

    # ------------------------------------------------------------------ test controls

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def reset_counts(self) -> None:
        """Zero every counter and forget recorded requests."""
        with self._lock:
            self.counts.clear()
            self.requests.clear()

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        """Recorded requests whose path ends with `path_suffix` (e.g. "/chat/completions")."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    def issue_token(
        self, ttl: int | None = None, *, access_token: str | None = None, refresh_token: str | None = None,
    ) -> dict[str, Any]:
        """Mint a valid token response (access + refresh pair), as the token endpoint returns it.

        Pass `access_token` / `refresh_token` to register chosen values (e.g. canary strings
        already written to a credential file)."""
        ttl = self.access_token_ttl if ttl is None else int(ttl)
        access = access_token or "emu-at-" + secrets.token_urlsafe(24)
        refresh = refresh_token or "emu-rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = clock.now() + ttl
            self._refresh.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ttl,
            "scope": "kimi-code",
            "token_type": "Bearer",
        }

    def is_access_valid(self, token: str) -> bool:
        """Whether the API would accept `token` now (static keys always)."""
        with self._lock:
            if token in self.api_keys:
                return True
            exp = self._access.get(token)
        return exp is not None and clock.now() < exp

    def is_refresh_valid(self, token: str) -> bool:
        """Whether a refresh with `token` would succeed."""
        with self._lock:
            return token in self._refresh

    def expire_access_tokens(self) -> None:
        """Make every issued access token invalid (the 401 path) without touching the clock."""
        with self._lock:
            for tok in self._access:
                self._access[tok] = float("-inf")

    def revoke_refresh_tokens(self) -> None:
        """Invalidate every refresh token (the next refresh gets invalid_grant)."""
        with self._lock:
            self._used_refresh |= self._refresh
            self._refresh.clear()

    def script_device(self, steps: list[str]) -> None:
        """Queue answers for the next device-code polls (any device code); when the queue is
        empty, polls are approved. Steps: authorization_pending, slow_down, access_denied,
        expired_token, approve."""
        for step in steps:
            if step not in DEVICE_STEPS:
                raise ValueError(f"unknown device step {step!r}; use one of {', '.join(DEVICE_STEPS)}")
        with self._lock:
            self._device_script = collections.deque(steps)

    def inject(
        self,
        endpoint: str,
        *,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        drop_after_chunks: int | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        chunk_delay: float = 0.0,
        sse_error: dict[str, Any] | None = None,
        sse_error_after: int = 1,
    ) -> None:
        """Queue a fault for the next `times` requests to `endpoint` (None = every request).

        `status`: answer with that status (default error body per status, or `body`);
        `delay`: real seconds to wait before answering; `drop_after_chunks`: close the
        connection after N stream events (non-stream: without any response);
        `sse_error`: send `data: <sse_error>` after `sse_error_after` events and end the stream;
        `chunk_delay`: real seconds between stream events.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)}")
        fault = Fault(
            status=status, body=body, headers=headers, drop_after_chunks=drop_after_chunks,
            delay=delay, chunk_delay=chunk_delay, sse_error=sse_error, sse_error_after=sse_error_after,
            times=times,
        )
        with self._lock:
            self._faults[endpoint].append(fault)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            for lst in self._faults.values():
                lst.clear()

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults[endpoint]
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault

    # ------------------------------------------------------------------ HTTP plumbing

    def _dispatch(self, h: _Handler) -> None:
        trace_id = secrets.token_hex(8)
        try:
            raw = self._read_body(h)
            parsed = urllib.parse.urlsplit(h.path)
            path = parsed.path.rstrip("/") or "/"
            headers = {k.lower(): v for k, v in h.headers.items()}
            body: Any = None
            if raw:
                ctype = headers.get("content-type", "")
                if "application/x-www-form-urlencoded" in ctype:
                    body = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode("utf-8", "replace")
            if self.record_requests:
                rec = RecordedRequest(
                    h.command, path, headers, body,
                    {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()},
                )
                with self._lock:
                    self.requests.append(rec)
            route = (h.command, path)
            if route == ("POST", "/api/oauth/device_authorization"):
                handle_device_authorization(self, h, body, trace_id)
            elif route == ("POST", "/api/oauth/token"):
                handle_token(self, h, body, trace_id)
            elif route == ("GET", "/coding/v1/models"):
                self._api_get(h, headers, trace_id, "models")
            elif route == ("GET", "/coding/v1/usages"):
                self._api_get(h, headers, trace_id, "usages")
            elif route == ("POST", "/coding/v1/chat/completions"):
                handle_chat(self, h, headers, body, raw, trace_id)
            elif h.command == "POST" and path in SERVICE_PATHS:
                handle_service(self, h, SERVICE_PATHS[path], headers, body, raw, trace_id)
            elif route == ("POST", "/coding/v1/messages"):
                from .messages_route import handle_messages

                handle_messages(self, h, headers, body, raw, trace_id)
            elif path in ("/api/oauth/device_authorization", "/api/oauth/token", "/coding/v1/models",
                          "/coding/v1/usages", "/coding/v1/chat/completions", "/coding/v1/messages"):
                self._send_json(h, 405, _error_body(f"Method {h.command} not allowed on {path}", "invalid_request_error"), trace_id)
            elif h.command == "GET" and path == "/verify":
                self._send(h, 200, b"<html><body>Emulated Kimi login: approved automatically.</body></html>",
                           trace_id, content_type="text/html; charset=utf-8")
            else:
                self._send_json(h, 404, _error_body(f"Not found: {path}", "resource_not_found_error"), trace_id)
        except _Disconnected:
            h.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            h.close_connection = True

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        te = h.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            while True:
                line = h.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += h.rfile.read(size)
                h.rfile.readline(65537)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _head(self, status: int, headers: list[tuple[str, str]], trace_id: str) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", *self.quota.response_headers(trace_id)]
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(
        self, h: _Handler, status: int, payload: bytes, trace_id: str, *,
        content_type: str = "application/json", extra: dict[str, str] | None = None,
    ) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        if extra:
            headers += [(k, str(v)) for k, v in extra.items()]
        if h.close_connection:
            headers.append(("Connection", "close"))
        h.wfile.write(self._head(status, headers, trace_id) + payload)

    def _send_json(self, h: _Handler, status: int, obj: Any, trace_id: str, extra: dict[str, str] | None = None) -> None:
        self._send(h, status, _json(obj), trace_id, extra=extra)

    def _apply_fault(self, h: _Handler, fault: Fault | None, trace_id: str, *, oauth: bool = False) -> bool:
        """Delay and/or answer with the injected status. True = the request is fully answered."""
        if fault is None:
            return False
        if fault.delay > 0:
            time.sleep(fault.delay)
        if fault.status is not None:
            body = fault.body
            if body is None:
                if oauth:
                    body = {"error": "server_error" if fault.status >= 500 else "invalid_request",
                            "error_description": _REASONS.get(fault.status, "error")}
                else:
                    msg, typ = _DEFAULT_FAULT_BODIES.get(fault.status, (_REASONS.get(fault.status, "error"), "error"))
                    body = _error_body(msg, typ)
            payload = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else _json(body))
            self._send(h, fault.status, payload, trace_id, extra=fault.headers)
            return True
        return False

    # ------------------------------------------------------------------ API

    def _authorized(self, h: _Handler, headers: dict[str, str], trace_id: str) -> bool:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if token and self.is_access_valid(token):
            return True
        self._count("unauthorized")
        self._send_json(h, 401, _error_body(INVALID_TOKEN_MESSAGE, "invalid_authentication_error"), trace_id)
        return False

    def _api_get(self, h: _Handler, headers: dict[str, str], trace_id: str, kind: str) -> None:
        self._count(kind)
        if self._apply_fault(h, self._take_fault(kind), trace_id):
            return
        if not self._authorized(h, headers, trace_id):
            return
        if kind == "models":
            self._send_json(h, 200, {"object": "list", "data": self.models}, trace_id)
        else:
            self._send_json(h, 200, self.usages_payload(), trace_id)

    def usages_payload(self) -> dict[str, Any]:
        """The `/usages` answer in ``quota.usages_shape`` (default: legacy weekly + 5-hour window)."""
        return self.quota.usages_payload(self.counts.get("chat", 0))
