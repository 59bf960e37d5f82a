"""The emulator's OpenAI route: ``POST /coding/v1/chat/completions``, JSON or a pre-serialised SSE stream.

Checks in the service's order (injected fault, bearer token, optional User-Agent gate, scripted
quota, `validation`), asks the responder for a `Turn` and encodes it via `answers._Answer`. A
stream is written with one ``sendall`` unless a chunk delay is set.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

from .answers import _Answer
from .replies import UA_GATE_MESSAGE, _Disconnected, _error_body, _json
from .responders import Turn
from .validation import RequestRejected, validate_chat

if TYPE_CHECKING:
    from .server import Emulator, Fault, _Handler

__all__ = ["handle_chat"]


def handle_chat(emu: Emulator, h: _Handler, headers: dict[str, str], body: Any, raw: bytes, trace_id: str) -> None:
    """Answer one ``POST /coding/v1/chat/completions``, as JSON or as an SSE stream."""
    emu._count("chat")
    fault = emu._take_fault("chat")
    if emu._apply_fault(h, fault, trace_id):
        return
    if not emu._authorized(h, headers, trace_id):
        return
    if emu.ua_gate is not None and not emu.ua_gate.search(headers.get("user-agent", "")):
        emu._count("ua_rejected")
        emu._send_json(h, 403, _error_body(UA_GATE_MESSAGE, "access_terminated_error"), trace_id)
        return
    blocked = emu.quota.chat_block()
    if blocked is not None:
        emu._send_json(h, *blocked, trace_id)
        return
    if not isinstance(body, dict):
        emu._send_json(h, 400, _error_body("Invalid request: the body must be a JSON object", "invalid_request_error"), trace_id)
        return
    try:
        model, think = validate_chat(body, {m["id"]: m for m in emu.models})
    except RequestRejected as exc:
        emu._send_json(h, exc.status, exc.body(), trace_id)
        return
    try:
        turn = Turn.coerce(emu.responder.respond(body))
        answer = _Answer.build(turn, body, model, think, raw_len=len(raw), call_seq=_next_call_seq(body),
                               cache=emu.prompt_cache)
    except Exception as exc:  # a broken responder must not hang the client
        emu._send_json(h, 500, _error_body(
            f"emulator responder failed: {type(exc).__name__}: {exc}", "server_error"), trace_id)
        return
    if fault is not None and fault.drop_after_chunks is not None and not body.get("stream"):
        h.close_connection = True
        raise _Disconnected()
    if body.get("stream"):
        _stream(emu, h, answer, body, trace_id, fault)
    else:
        emu._send_json(h, 200, answer.completion(), trace_id)


def _next_call_seq(body: dict[str, Any]) -> int:
    # Kimi numbers tool calls across the conversation: functions.<name>:<n>
    n = 0
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "assistant":
            n += len(m.get("tool_calls") or [])
    return n


def _stream(emu: Emulator, h: _Handler, answer: _Answer, body: dict[str, Any], trace_id: str, fault: Fault | None) -> None:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = answer.events(include_usage, emu.chunk_chars)
    drop = fault.drop_after_chunks if fault else None
    sse_error = fault.sse_error if fault else None
    delay = (fault.chunk_delay if fault and fault.chunk_delay else 0.0) or emu.chunk_delay
    if sse_error is not None:
        n = max(0, fault.sse_error_after if fault else 1)
        events = [*events[:n], b"data: " + _json(sse_error) + b"\n\n"]
    elif drop is not None:
        events = events[:drop]
    else:
        events.append(b"data: [DONE]\n\n")
    head = emu._head(200, [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache"),
        ("Transfer-Encoding", "chunked"),
        *([("Connection", "close")] if h.close_connection or drop is not None else []),
    ], trace_id)
    frames = [b"%x\r\n%s\r\n" % (len(e), e) for e in (b": keep-alive\n\n", *events)]
    tail = b"" if drop is not None else b"0\r\n\r\n"
    write = h.wfile.write
    if delay <= 0:
        write(head + b"".join(frames) + tail)
    else:
        write(head + frames[0])
        for frame in frames[1:]:
            time.sleep(delay)
            write(frame)
        if tail:
            write(tail)
    if drop is not None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
