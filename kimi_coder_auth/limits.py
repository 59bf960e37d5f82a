"""Size caps and deadlines: how much a server may send in one answer, and for how long.

Caps (decompressed bytes; a gzip bomb is cut at the cap, never inflated in full):

* ``max_response_bytes`` — a non-streaming body (chat, /models, /usages, error bodies):
  64 MiB. A real chat answer is a few hundred KiB at most.
* ``max_stream_bytes`` — everything one stream delivers: 512 MiB (a 256k-token answer with
  SSE framing is well under 100 MiB).
* ``max_event_bytes`` — one SSE event (so one line): 16 MiB. Kimi's events are a few hundred
  bytes; even a tool call's arguments sent in one event fit many times over.

Each is a `Transport` argument, else an environment variable read when the transport is made
(``KIMI_CODER_MAX_RESPONSE_BYTES``, ``KIMI_CODER_MAX_STREAM_BYTES``,
``KIMI_CODER_MAX_EVENT_BYTES``), else the default. Exceeding one raises
`ResponseTooLargeError`, which is never retried.

Deadlines (seconds, wall clock, retries and backoff included), see `Deadlines`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import ResponseTooLargeError

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_STREAM_BYTES",
    "Deadlines",
    "Limits",
    "too_large",
]

MiB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 64 * MiB
DEFAULT_MAX_STREAM_BYTES = 512 * MiB
DEFAULT_MAX_EVENT_BYTES = 16 * MiB
ENV_MAX_RESPONSE_BYTES = "KIMI_CODER_MAX_RESPONSE_BYTES"
ENV_MAX_STREAM_BYTES = "KIMI_CODER_MAX_STREAM_BYTES"
ENV_MAX_EVENT_BYTES = "KIMI_CODER_MAX_EVENT_BYTES"


def _cap(value: int | None, env: str, default: int, name: str) -> int:
    """An argument, else the environment variable, else the default; must be a positive int."""
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{env} must be a whole number of bytes, got {raw!r}") from None
        name = env
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Limits:
    """The three size caps of one transport (see the module docstring)."""

    response: int = DEFAULT_MAX_RESPONSE_BYTES
    stream: int = DEFAULT_MAX_STREAM_BYTES
    event: int = DEFAULT_MAX_EVENT_BYTES

    @classmethod
    def resolve(
        cls,
        max_response_bytes: int | None = None,
        max_stream_bytes: int | None = None,
        max_event_bytes: int | None = None,
    ) -> Limits:
        """Arguments, then environment variables, then defaults."""
        return cls(
            _cap(max_response_bytes, ENV_MAX_RESPONSE_BYTES, DEFAULT_MAX_RESPONSE_BYTES, "max_response_bytes"),
            _cap(max_stream_bytes, ENV_MAX_STREAM_BYTES, DEFAULT_MAX_STREAM_BYTES, "max_stream_bytes"),
            _cap(max_event_bytes, ENV_MAX_EVENT_BYTES, DEFAULT_MAX_EVENT_BYTES, "max_event_bytes"),
        )


def too_large(what: str, cap: int, setting: str) -> ResponseTooLargeError:
    """The typed error for an answer that went over ``cap`` bytes (``setting`` names the knob)."""
    return ResponseTooLargeError(
        f"The server sent {what} larger than {cap:,} bytes; reading stopped there and the answer "
        f"was discarded (not retried). Raise {setting} if such an answer is expected."
    )


def _seconds(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return None if math.isinf(seconds) else seconds


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Wall-clock bounds of one call (seconds; None = no bound), on top of ``timeout=``.

    ``timeout=`` bounds each network step (connect, each read); a server that trickles a byte
    at a time never trips it. These bound the call itself:

    * ``total`` — the whole call, retries and backoff included: from sending to the complete
      body, or for a stream to its terminator. Default: the read timeout for a non-streaming
      call (``timeout=5`` means the call is over within ~5 s); no bound for a stream, which
      may legitimately run for a long time while events keep coming.
    * ``first_event`` — a stream: from sending (retries included) to its first complete
      event. Default: the read timeout.
    * ``between_events`` — a stream: the longest gap between two complete events. Default:
      the read timeout.

    Deadlines are checked whenever data arrives, and each read is given at most the time left,
    so a call overruns a deadline by at most one read timeout of a silent connection.
    """

    total: float | None = None
    first_event: float | None = None
    between_events: float | None = None
    stream_total: float | None = None

    @classmethod
    def resolve(
        cls,
        read_timeout: float | None,
        *,
        deadline: float | None = None,
        first_event_timeout: float | None = None,
        event_timeout: float | None = None,
    ) -> Deadlines:
        """Deadlines from the arguments, defaulting to the read timeout as documented above."""
        total = _seconds(deadline, "deadline")
        first = _seconds(first_event_timeout, "first_event_timeout")
        between = _seconds(event_timeout, "event_timeout")
        return cls(
            total=total if total is not None else read_timeout,
            first_event=first if first is not None else read_timeout,
            between_events=between if between is not None else read_timeout,
            stream_total=total,
        )
