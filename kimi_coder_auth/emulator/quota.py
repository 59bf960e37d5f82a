"""Scripted quota windows for the emulator: the real 403 bodies, `/usages` shapes, `X-Msh-*` ids.

``emu.quota.exhaust("7d", resets_at=clock.now() + 3600)`` makes chat answer the weekly-quota
403 until the (injectable) clock reaches ``resets_at``; ``emu.quota.usages_shape = "ratio"``
picks the `/usages` shape; ``emu.quota.id_headers = "msh"`` sends ``X-Msh-Trace-Id`` /
``Msh-Request-Id`` instead of ``x-trace-id`` / ``x-request-id``.

The messages are the service's own, as quoted in ``shared/reference/kimi-service-2026-12.md``
§1.1 (each with its source); where the reference abridges one, the quoted part is kept exactly.
"""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass
from typing import Any

from .. import clock

__all__ = ["BODIES", "QuotaScript", "error_body"]

#: name -> (HTTP status, error.type on the OpenAI route, message)
BODIES: dict[str, tuple[int, str, str]] = {
    # row a, quoted in full: https://github.com/openclaw/openclaw/pull/142656,
    # https://github.com/openclaw/openclaw/issues/142524, https://github.com/MoonshotAI/kimi-code/issues/3951
    "7d": (
        403,
        "access_terminated_error",
        "You've reached your weekly (7-day) usage limit. Your quota will reset when the current "
        "7-day window ends. To continue now, purchase extra usage or upgrade your plan: "
        "https://www.kimi.com/membership/subscription?tab=quota",
    ),
    # row b (as quoted; the reference may abridge it): https://github.com/can1357/oh-my-pi/pull/11827
    "month": (403, "access_terminated_error", "You've reached your monthly usage limit for this billing cycle"),
    # row c, abridged in the reference after "purchase extra usage"; permission_error on the
    # Anthropic route, OpenAI-route type unverified: https://github.com/NanmiCoder/cc-haha/issues/1208
    "billing": (
        403,
        "permission_error",
        "You've reached your usage limit for this billing cycle. Your quota will be refreshed in "
        "the next cycle. To continue now, purchase extra usage",
    ),
    # row d, quoted in full, type unverified: https://github.com/Wei-Shaw/sub2api/issues/6203
    "concurrency": (
        403,
        "permission_error",
        "You've reached your concurrent request limit. Please wait for your ongoing requests to "
        "finish and try again.",
    ),
    # row f, abridged in the reference (base reference, pi #5009)
    "terminated": (403, "access_terminated_error", "Access terminated. Review our Community Guidelines"),
    # row i, assembled from the two fragments the reference quotes (not a verbatim body):
    # MoonshotAI/kimi-code:packages/kosong/src/providers/kimi-errors.ts@d723cc47
    "balance": (429, "exceeded_current_quota_error", "You exceeded your current token quota, please check your account balance"),
}


def error_body(name: str, envelope: str = "openai", *, error_type: str | None = None) -> dict[str, Any]:
    """The error body for ``name`` on the OpenAI route or in the Anthropic envelope."""
    _, etype, message = BODIES[name]
    etype = error_type or etype
    if envelope == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": message}}
    return {"error": {"message": message, "type": etype}}


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Exhausted:
    body: str
    resets_at: float | None
    error_type: str | None
    starts_at: float | None = None


class QuotaScript:
    """The emulator's quota state: exhausted windows, the `/usages` shape, id header spelling."""

    SHAPES = ("legacy", "ratio", "both", "envelope", "unknown")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exhausted: dict[str, list[_Exhausted]] = {}
        self.usages_shape = "legacy"
        self.id_headers = "x"  # "x" (x-trace-id / x-request-id), "msh" or "both"
        self.membership_level = "LEVEL_STANDARD"
        self.rejections: list[float] = []  # clock times of chat requests answered with a quota body

    def exhaust(
        self,
        window: str,
        *,
        resets_at: float | None = None,
        body: str | None = None,
        error_type: str | None = None,
        starts_at: float | None = None,
    ) -> None:
        """Use up ``window`` ("5h", "7d", "month") until ``resets_at`` (clock time; None = until
        `restore`), from ``starts_at`` (None = now; later spells queue up behind earlier ones).
        ``body``: which of `BODIES` chat answers (default: the window's own wording; the 5-hour
        window answers with the ambiguous "billing cycle" text, as observed)."""
        name = body or {"5h": "billing", "7d": "7d", "month": "month"}[window]
        with self._lock:
            self._exhausted.setdefault(window, []).append(_Exhausted(name, resets_at, error_type, starts_at))

    def restore(self, window: str | None = None) -> None:
        """Give ``window`` (or every window) its quota back now."""
        with self._lock:
            if window is None:
                self._exhausted.clear()
            else:
                self._exhausted.pop(window, None)

    def _active(self) -> dict[str, _Exhausted]:
        now = clock.now()
        active: dict[str, _Exhausted] = {}
        with self._lock:
            for name, spells in self._exhausted.items():
                spells[:] = [e for e in spells if e.resets_at is None or now < e.resets_at]
                current = next((e for e in spells if e.starts_at is None or e.starts_at <= now), None)
                if current is not None:
                    active[name] = current
        return active

    def chat_block(self, envelope: str = "openai") -> tuple[int, dict[str, Any]] | None:
        """(status, body) a chat request gets while a window is used up, else None."""
        active = self._active()
        if not active:
            return None
        # the longest block answers (a used-up week outlasts the 5-hour window)
        order = {"month": 0, "7d": 1, "5h": 2}
        window = min(active, key=lambda n: order.get(n, 3))
        state = active[window]
        with self._lock:
            self.rejections.append(clock.now())
        return BODIES[state.body][0], error_body(state.body, envelope, error_type=state.error_type)

    def response_headers(self, trace_id: str) -> list[str]:
        """The id header lines every response carries, in the chosen spelling."""
        lines = []
        if self.id_headers in ("x", "both"):
            lines += [f"x-trace-id: {trace_id}", f"x-request-id: {trace_id}"]
        if self.id_headers in ("msh", "both"):
            lines += [f"X-Msh-Trace-Id: {trace_id}", f"Msh-Request-Id: req-{trace_id}"]
        return lines

    # ------------------------------------------------------------------ /usages

    def _window(self, name: str, default_reset: float, used: int, limit: int) -> tuple[int, int, float]:
        state = self._active().get(name)
        if state is not None:
            return limit, limit, state.resets_at if state.resets_at is not None else default_reset
        return min(used, limit), limit, default_reset

    def usages_payload(self, chat_count: int) -> dict[str, Any]:
        """The `/usages` answer in ``usages_shape``; exhausted windows read as used up."""
        now = clock.now()
        u5, l5, r5 = self._window("5h", now + 5 * 3600, chat_count, 100)
        u7, l7, r7 = self._window("7d", now + 3 * 86400, chat_count, 1000)
        um, lm, rm = self._window("month", now + 20 * 86400, chat_count, 5000)
        shape = self.usages_shape
        if shape == "unknown":
            return {"quotaInfo": {"windows": "a shape nobody documented"}}
        legacy: dict[str, Any] = {
            "usage": {"limit": str(l7), "used": str(u7), "remaining": str(l7 - u7), "resetTime": _iso(r7)},
            "limits": [{
                "window": {"duration": 300, "timeUnit": "TIME_UNIT_MINUTE"},
                "detail": {"limit": str(l5), "used": str(u5), "remaining": str(l5 - u5), "resetTime": _iso(r5)},
            }],
            "parallel": {"limit": "30"},
            "totalQuota": {},
            "subType": "TYPE_PURCHASE",
            "user": {"membership": {"level": self.membership_level}},
        }
        ratios = {
            "limit_5h": {"used_ratio": u5 / l5, "reset_time": _iso(r5)},
            "limit_7d": {"used_ratio": u7 / l7, "reset_time": _iso(r7)},
            "limit_month_total": {"used_ratio": um / lm, "reset_time": _iso(rm)},
            "limit_month_code": {"used_ratio": um / lm, "reset_time": _iso(rm)},
        }
        if shape == "legacy":
            return legacy
        if shape == "ratio":
            return {"usages": ratios}
        if shape == "both":
            return {**legacy, "usages": ratios}
        if shape == "envelope":
            return {"code": 0, "data": {"kind": "ok", "quota": {"extraUsage": None, "usages": {
                "limit5h": {"resetAt": _iso(r5), "usedRatio": u5 / l5},
                "limit7d": {"resetAt": _iso(r7), "usedRatio": u7 / l7},
            }}}}
        raise ValueError(f"usages_shape={shape!r}; use one of {', '.join(self.SHAPES)}")
