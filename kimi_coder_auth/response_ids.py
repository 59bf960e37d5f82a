"""Trace and request ids of a Kimi response, in every spelling the service uses.

The coding endpoint has sent ``x-trace-id`` / ``x-request-id``; the Moonshot platform sends
``X-Msh-Trace-Id`` / ``Msh-Request-Id``. Every place that reads ids (error mapping, streams,
the transport) asks this one helper, case-insensitively, so none of them comes back empty.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "REQUEST_ID_HEADERS",
    "TRACE_ID_HEADERS",
    "lowered_response_ids",
    "request_id",
    "response_ids",
    "trace_id",
]

#: checked in this order; names are lower-case (lookups are case-insensitive)
TRACE_ID_HEADERS = ("x-trace-id", "x-msh-trace-id", "msh-trace-id")
REQUEST_ID_HEADERS = ("x-request-id", "msh-request-id", "x-msh-request-id")


def _first(headers: Mapping[str, str] | None, names: tuple[str, ...]) -> str | None:
    if not headers:
        return None
    get = headers.get
    for name in names:  # httpx.Headers and our lower-cased dicts answer these directly
        value = get(name)
        if value:
            return value
    if type(headers) is dict:  # a plain dict may keep the server's capitalisation
        lowered = {k.lower(): v for k, v in headers.items() if isinstance(k, str)}
        for name in names:
            value = lowered.get(name)
            if value:
                return value
    return None


def trace_id(headers: Mapping[str, str] | None) -> str | None:
    """The response's trace id (``x-trace-id`` or ``X-Msh-Trace-Id``), else None."""
    return _first(headers, TRACE_ID_HEADERS)


def request_id(headers: Mapping[str, str] | None) -> str | None:
    """The response's request id (``x-request-id`` or ``Msh-Request-Id``), else None."""
    return _first(headers, REQUEST_ID_HEADERS)


def response_ids(headers: Mapping[str, str] | None) -> tuple[str | None, str | None]:
    """``(trace_id, request_id)`` of a response's headers."""
    return _first(headers, TRACE_ID_HEADERS), _first(headers, REQUEST_ID_HEADERS)


_T1, _T2, _T3 = TRACE_ID_HEADERS
_R1, _R2, _R3 = REQUEST_ID_HEADERS


def lowered_response_ids(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`response_ids` of headers whose names are already lower-case (``http_pool._headers_dict``),
    without the case-folding pass: a stream reads these on the path to its first token."""
    get = headers.get
    return (get(_T1) or get(_T2) or get(_T3) or None, get(_R1) or get(_R2) or get(_R3) or None)
