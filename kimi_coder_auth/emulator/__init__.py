"""A local emulator of the Kimi Coding API and its OAuth server (stdlib only).

Usage in a test::

    from kimi_coder_auth.emulator import Emulator, ScriptedResponder

    with Emulator() as emu:                       # binds 127.0.0.1 on a free port
        tok = emu.issue_token(ttl=900)            # {"access_token", "refresh_token", "expires_in", ...}
        # point the client at it:
        #   KIMI_CODE_BASE_URL=emu.base_url       ("http://127.0.0.1:PORT/coding/v1")
        #   KIMI_CODE_OAUTH_HOST=emu.oauth_host   ("http://127.0.0.1:PORT")
        ...
        assert emu.counts["refresh"] == 1         # per-endpoint counters
        emu.requests[-1].body                     # recorded requests (method, path, headers, body)

Knobs:

* ``Emulator(api_keys=["sk-kimi-test"])``: static keys that are always valid.
* ``Emulator(ua_gate=r"^kimi-coder/")``: chat 403s (access_terminated_error) for other User-Agents.
* ``Emulator(responder=ScriptedResponder([...]))``: canned turns (str, dict or ``Turn``); the
  default ``DefaultResponder`` calls tools named in the prompt and answers from their results.
* ``emu.script_device(["authorization_pending", "slow_down", "approve"])``: device-flow answers.
* ``emu.inject("chat", status=429, headers={"Retry-After": "1"})``, ``inject("chat",
  drop_after_chunks=3)``, ``inject("chat", sse_error={"error": {...}})``, ``inject("refresh",
  delay=0.5)``; endpoints: chat, models, usages, refresh, device_token, device_authorization.
* ``emu.issue_token(ttl=60, access_token="canary-at", refresh_token="canary-rt")``: register
  chosen token values (refresh tokens rotate: each is good for exactly one refresh).
* ``emu.expire_access_tokens()``, ``emu.revoke_refresh_tokens()``, ``emu.reset_counts()``,
  ``emu.requests_to("/chat/completions")``, ``emu.clear_faults()``.
  Access tokens expire by ``kimi_coder_auth.clock.now()``, so a ``FakeClock`` can age them.
* ``Emulator(chunk_chars=1)``: stream deltas of N characters; ``Turn(content=["a", "b"])`` fixes
  the exact chunks; ``chunk_delay=`` / ``inject(..., chunk_delay=)`` spaces them in real time
  (otherwise a whole stream is written with one ``sendall``).
* ``Emulator(device_interval=1, device_expires_in=600)``: values the device login returns.
* ``emu.quota.exhaust("7d", resets_at=clock.now() + 3600)`` (also "5h", "month"; ``starts_at=``
  queues a later spell): chat and /messages answer the service's quota 403 until the clock
  reaches the reset; ``emu.quota.usages_shape = "legacy" | "ratio" | "both" | "envelope" |
  "unknown"``; ``emu.quota.id_headers = "x" | "msh" | "both"`` (``X-Msh-Trace-Id``,
  ``Msh-Request-Id``); ``emu.quota.rejections`` (clock times of quota answers).

Strictness (400 ``invalid_request_error`` with the service's wording): missing
``reasoning_content`` on an assistant tool-call turn while thinking is on, empty text content,
a tool-schema property without ``type``, ``tool_choice`` "required"/named while thinking is on,
``thinking`` disabled on an always-thinking model, non-``data:`` image URLs, role ``developer``,
a ``tool_call_id`` with no preceding call, too-long input ("context length"); unknown model 404;
expired/unknown bearer 401; optional User-Agent gate 403. Thinking is on by default for
"both" models, always for "only", never for "no"; reasoning streams before content, usage
rides in ``choices[0].usage`` of the last chunk when ``stream_options.include_usage``.

Counters: chat, models, usages, device_authorization, device_token, refresh, refresh_rejected,
unauthorized. Every response carries ``x-trace-id``.
"""

from __future__ import annotations

from .models import DEFAULT_MODELS, default_models, model_entry
from .responders import DefaultResponder, Responder, ScriptedResponder, Turn
from .server import CLIENT_ID, Emulator, Fault, RecordedRequest

__all__ = [
    "CLIENT_ID",
    "DEFAULT_MODELS",
    "DefaultResponder",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "Responder",
    "ScriptedResponder",
    "Turn",
    "default_models",
    "model_entry",
]
