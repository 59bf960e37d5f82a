"""The emulator's Anthropic Messages route: ``POST /coding/v1/messages``, stream and non-stream.

The shared responders decide what to answer (the request is translated to the OpenAI shape
they read); this module only validates (`anthropic_validation`) and encodes the answer as
Messages JSON or as the event stream Kimi sends (``event:``/``data:`` without the space after
the colon, a ``ping``, signed thinking blocks). Auth: ``x-api-key`` (what Kimi Code sends) or
``Authorization: Bearer``. The User-Agent gate never applies here: this route admits everyone.
"""

from __future__ import annotations

import json
import socket
import time
from json.encoder import encode_basestring as quote
from typing import TYPE_CHECKING, Any

from .answers import _Answer, _pieces, _split_args
from .anthropic_validation import MessagesRejected, sign_thinking, to_openai_body, validate_messages
from .responders import Turn

if TYPE_CHECKING:
    from .server import Emulator, Fault, _Handler

__all__ = ["handle_messages", "message_body", "message_events"]

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
_FAULT_BODIES = {
    400: ("invalid_request_error", "Invalid request Error"),
    401: ("authentication_error", "unauthenticated"),
    403: ("permission_error", "Access terminated. Review our Community Guidelines or contact support."),
    429: ("rate_limit_error", "The engine is currently overloaded, please try again later"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _envelope(err_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": err_type, "message": message}}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _usage(answer: _Answer) -> dict[str, int]:
    u = answer.usage
    cached = u["cached_tokens"]
    uncached = u["prompt_tokens"] - cached
    return {
        # Kimi reports -1 when the whole prompt was a cache hit
        "input_tokens": uncached if uncached > 0 or cached == 0 else -1,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": u["completion_tokens"],
    }


def _content(answer: _Answer, key: bytes) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning is not None:
        text = "".join(answer.reasoning)
        blocks.append({"type": "thinking", "thinking": text, "signature": sign_thinking(key, text)})
    text = "".join(answer.content)
    if text:
        blocks.append({"type": "text", "text": text})
    for cid, name, args in answer.tool_calls:
        blocks.append({"type": "tool_use", "id": cid, "name": name, "input": json.loads(args or "{}")})
    return blocks


def message_body(answer: _Answer, key: bytes) -> dict[str, Any]:
    """A non-streaming ``message`` answer."""
    return {
        "id": "msg_" + answer.id.split("-", 1)[-1], "type": "message", "role": "assistant",
        "model": answer.model, "content": _content(answer, key),
        "stop_reason": _STOP.get(answer.finish_reason, answer.finish_reason), "stop_sequence": None,
        "usage": _usage(answer),
    }


def _ev(name: str, payload: bytes) -> bytes:
    return b"event:" + name.encode() + b"\ndata:" + payload + b"\n\n"


def message_events(answer: _Answer, key: bytes, chunk_chars: int = 12) -> list[bytes]:
    """The event stream for ``answer`` (``message_start`` ... ``message_stop``)."""

    usage = _usage(answer)
    start = {"type": "message_start", "message": {
        "id": "msg_" + answer.id.split("-", 1)[-1], "type": "message", "role": "assistant",
        "model": answer.model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0}}}
    out = [_ev("message_start", _dumps(start)), _ev("ping", b'{"type":"ping"}')]
    index = 0

    def delta(kind: str, field: str, value: str) -> bytes:
        return _ev("content_block_delta", b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":%s}}'
                   % (index, kind.encode(), field.encode(), quote(value).encode()))

    def stop() -> bytes:
        return _ev("content_block_stop", b'{"type":"content_block_stop","index":%d}' % index)

    if answer.reasoning is not None:
        text = "".join(answer.reasoning)
        out.append(_ev("content_block_start", _dumps({"type": "content_block_start", "index": index,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}})))
        out += [delta("thinking_delta", "thinking", p) for p in _pieces(answer.reasoning, chunk_chars)]
        out.append(delta("signature_delta", "signature", sign_thinking(key, text)))
        out.append(stop())
        index += 1
    pieces = _pieces(answer.content, chunk_chars)
    if pieces:
        out.append(_ev("content_block_start", b'{"type":"content_block_start","index":%d,'
                       b'"content_block":{"type":"text","text":""}}' % index))
        out += [delta("text_delta", "text", p) for p in pieces]
        out.append(stop())
        index += 1
    for cid, name, args in answer.tool_calls:
        out.append(_ev("content_block_start", _dumps({"type": "content_block_start", "index": index,
                       "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}}})))
        out += [delta("input_json_delta", "partial_json", f) for f in _split_args(args)]
        out.append(stop())
        index += 1
    out.append(_ev("message_delta", _dumps({
        "type": "message_delta",
        "delta": {"stop_reason": _STOP.get(answer.finish_reason, answer.finish_reason), "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]}})))
    return out


def _authorized(emu: Emulator, headers: dict[str, str]) -> bool:
    token = headers.get("x-api-key", "")
    if not token:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bool(token) and emu.is_access_valid(token)


def _apply_fault(emu: Emulator, h: _Handler, fault: Fault | None, trace_id: str) -> bool:
    if fault is None:
        return False
    if fault.status is not None and fault.body is None:
        if fault.delay > 0:
            time.sleep(fault.delay)
        err_type, message = _FAULT_BODIES.get(fault.status, ("api_error", "error"))
        emu._send_json(h, fault.status, _envelope(err_type, message), trace_id, extra=fault.headers)
        return True
    return emu._apply_fault(h, fault, trace_id)


def handle_messages(emu: Emulator, h: _Handler, headers: dict[str, str], body: Any, raw: bytes,
                    trace_id: str) -> None:
    """Answer one ``POST /coding/v1/messages``."""
    from .server import _Disconnected

    emu._count("messages")
    fault = emu._take_fault("messages")
    if _apply_fault(emu, h, fault, trace_id):
        return
    if not _authorized(emu, headers):
        emu._count("unauthorized")
        emu._send_json(h, 401, _envelope("authentication_error", "unauthenticated"), trace_id)
        return
    blocked = emu.quota.chat_block("anthropic")  # scripted quota windows (emulator/quota.py)
    if blocked is not None:
        emu._send_json(h, *blocked, trace_id)
        return
    key = emu.thinking_key
    try:
        model, think = validate_messages(body, {m["id"]: m for m in emu.models}, key)
    except MessagesRejected as exc:
        emu._send_json(h, exc.status, exc.body(), trace_id)
        return
    oai = to_openai_body(body)
    user_id = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user_id, str) and user_id:
        oai["prompt_cache_key"] = user_id  # Kimi Code's session affinity on this route
    try:
        turn = Turn.coerce(emu.responder.respond(oai))
        seq = sum(1 for m in body["messages"] if m["role"] == "assistant" and isinstance(m["content"], list)
                  for b in m["content"] if b.get("type") == "tool_use")
        answer = _Answer.build(turn, oai, model, think, raw_len=len(raw), call_seq=seq,
                               cache=emu.prompt_cache)
    except Exception as exc:  # a broken responder must not hang the client
        emu._send_json(h, 500, _envelope("api_error", f"emulator responder failed: {type(exc).__name__}: {exc}"),
                       trace_id)
        return
    if not body.get("stream"):
        if fault is not None and fault.drop_after_chunks is not None:
            h.close_connection = True
            raise _Disconnected()
        emu._send_json(h, 200, message_body(answer, key), trace_id)
        return
    events = message_events(answer, key, emu.chunk_chars)
    drop = fault.drop_after_chunks if fault else None
    if fault is not None and fault.sse_error is not None:
        n = max(0, fault.sse_error_after)
        err = fault.sse_error if fault.sse_error.get("type") == "error" else {"type": "error", **fault.sse_error}
        events = [*events[:n], _ev("error", _dumps(err))]
    elif drop is not None:
        events = events[:drop]
    else:
        events.append(_ev("message_stop", b'{"type":"message_stop"}'))
    head = emu._head(200, [
        ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
        ("Transfer-Encoding", "chunked"), *([("Connection", "close")] if drop is not None else []),
    ], trace_id)
    frames = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    tail = b"" if drop is not None else b"0\r\n\r\n"
    delay = (fault.chunk_delay if fault and fault.chunk_delay else 0.0) or emu.chunk_delay
    if delay <= 0:
        h.wfile.write(head + b"".join(frames) + tail)
    else:
        h.wfile.write(head)
        for frame in frames:
            time.sleep(delay)
            h.wfile.write(frame)
        h.wfile.write(tail)
    if drop is not None:
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
