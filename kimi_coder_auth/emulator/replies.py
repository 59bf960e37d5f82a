"""What every emulator route answers with: JSON bytes, error bodies, status reasons, the service's wording."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["INVALID_TOKEN_MESSAGE", "UA_GATE_MESSAGE"]

INVALID_TOKEN_MESSAGE = (
    "The API Key appears to be invalid or may have expired. Please verify your credentials and try again."
)
UA_GATE_MESSAGE = (
    "Kimi For Coding is currently only available for Coding Agents such as Kimi CLI, Claude Code, "
    "Roo Code, Kilo Code, etc."
)

_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

#: the body an injected ``status`` gets when the test gives none (the service's own wording)
_DEFAULT_FAULT_BODIES = {
    400: ("Invalid request", "invalid_request_error"),
    401: (INVALID_TOKEN_MESSAGE, "invalid_authentication_error"),
    402: ("Membership expired, please renew your plan", "membership_expired_error"),
    403: (UA_GATE_MESSAGE, "access_terminated_error"),
    429: (
        "We're receiving too many requests at the moment. Please wait a moment and try again.",
        "rate_limit_reached_error",
    ),
    500: ("Internal server error", "server_error"),
    502: ("Bad gateway", "server_error"),
    503: ("The engine is currently overloaded, please try again later", "engine_overloaded_error"),
}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _error_body(message: str, err_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type}}


class _Disconnected(Exception):
    pass
