"""Reading a 2xx JSON answer: `ChatResult` for chat / messages, typed errors for bodies that are not."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .error_mapping import _extract_error, _scrub, _sent_secrets
from .errors import APIError, MalformedResponseError
from .http_pool import _headers_dict
from .response_ids import request_id as _request_id
from .response_ids import trace_id as _trace_id

__all__ = ["ChatResult", "chat_result", "json_answer"]


@dataclass(frozen=True)
class ChatResult:
    """A non-streaming chat answer: the JSON body, the trace id, the response headers, the request id."""

    data: dict[str, Any]
    trace_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None


def json_answer(response: httpx.Response, what: str) -> Any:
    """The parsed JSON of a read 2xx answer; `APIError` (with the ids) when it is not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise APIError(
            f"The {what} answer was not valid JSON.",
            status=response.status_code,
            trace_id=_trace_id(response.headers),
            request_id=_request_id(response.headers),
            hint="Check that the base URL points at the Kimi Coding API (…/coding/v1).",
        ) from None


def chat_result(response: httpx.Response) -> ChatResult:
    """A read 2xx chat / messages answer as a `ChatResult`; a typed error for a non-object or an error object."""
    data = json_answer(response, "chat")
    if not isinstance(data, dict):
        raise APIError(
            "The chat answer was not a JSON object.",
            status=response.status_code,
            trace_id=_trace_id(response.headers),
        )
    if data.get("error") and "choices" not in data:  # an error object with a 2xx status
        message, etype = _scrub(response, *_extract_error(response.content, _sent_secrets(response)))
        raise MalformedResponseError(
            f"The server answered with an error and a success status: {message or 'no message'}",
            status=response.status_code,
            error_type=etype,
            trace_id=_trace_id(response.headers),
            request_id=_request_id(response.headers),
        )
    headers = response.headers
    return ChatResult(data, _trace_id(headers), _headers_dict(headers), _request_id(headers))
