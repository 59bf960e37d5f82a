"""The plan's usage as typed data: ``get_usage()`` / ``aget_usage()`` over every ``/usages`` shape.

Shapes read (reference kimi-service-2026-12.md §2):

* legacy: ``usage`` (the rolling **7-day** window, not a plan total), ``limits[]`` (the 5-hour
  window), ``parallel.limit``, ``totalQuota``, ``boosterWallet``, ``user.membership.level``;
* the ratio map ``usages.limit_5h`` / ``limit_7d`` / ``limit_month_*`` (``used_ratio`` 0..1,
  ``reset_time``), sent beside the legacy keys;
* the camelCase envelope ``{"code":0,"data":{...,"quota":{"usages":{"limit5h":{...}}}}}``.

Numbers arrive as decimal strings. An answer with none of these keys is reported as
``shape == "unknown"`` with the raw body kept, never an exception.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["PlanUsage", "UsageWindow", "aget_usage", "get_usage", "parse_time", "parse_usages"]

WINDOW_LABELS = {
    "5h": "5-hour window",
    "7d": "weekly (7-day) window",
    "month": "monthly (billing cycle)",
    "month_code": "monthly, coding (billing cycle)",
}
_UNIT_SECONDS = {
    "TIME_UNIT_SECOND": 1,
    "TIME_UNIT_MINUTE": 60,
    "TIME_UNIT_HOUR": 3600,
    "TIME_UNIT_DAY": 86400,
    "TIME_UNIT_WEEK": 7 * 86400,
}
_RESET_KEYS = ("resetTime", "reset_time", "resetAt", "reset_at")


@dataclass
class UsageWindow:
    """One quota window: counts where the server gives them, else the used ratio (0..1)."""

    name: str  # "5h", "7d", "month", "month_code", or the server's own key
    label: str
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    used_ratio: float | None = None
    reset_at: float | None = None  # epoch seconds
    reset_time: str | None = None  # as the server wrote it

    @property
    def exhausted(self) -> bool:
        """Whether the server's numbers say this window is used up (they can lag the 403s)."""
        if self.remaining is not None:
            return self.remaining <= 0
        if self.used_ratio is not None:
            return self.used_ratio >= 1.0
        return self.limit is not None and self.used is not None and self.used >= self.limit


@dataclass
class PlanUsage:
    """The plan's windows plus what else ``/usages`` said (membership, extras, the raw body)."""

    windows: list[UsageWindow] = field(default_factory=list)
    membership_level: str | None = None
    parallel_limit: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # totalQuota, boosterWallet, subType, ...
    shape: str = "unknown"  # "legacy", "ratio", "envelope", joined with "+", or "unknown"
    raw: Any = None

    def window(self, name: str) -> UsageWindow | None:
        """The window called ``name`` ("5h", "7d", "month", ...), or None."""
        return next((w for w in self.windows if w.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (what ``kimi-coder usage --json`` prints)."""
        out = asdict(self)
        out.pop("raw")
        if self.shape == "unknown":
            out["raw"] = self.raw
        return out


# --------------------------------------------------------------------------- parsing


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string, epoch seconds/milliseconds, or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / (1000.0 if value > 1e12 else 1.0)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number / (1000.0 if number > 1e12 else 1.0)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))  # ns -> us
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _ratio(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _reset(detail: Mapping[str, Any]) -> tuple[float | None, str | None]:
    for key in _RESET_KEYS:
        value = detail.get(key)
        when = parse_time(value)
        if when is not None:
            return when, str(value)
    return None, None


def _counted(name: str, label: str, detail: Mapping[str, Any]) -> UsageWindow:
    limit, used, remaining = _int(detail.get("limit")), _int(detail.get("used")), _int(detail.get("remaining"))
    if remaining is None and limit is not None and used is not None:
        remaining = max(0, limit - used)
    if used is None and limit is not None and remaining is not None:
        used = max(0, limit - remaining)
    ratio = used / limit if used is not None and limit else None
    reset_at, reset_time = _reset(detail)
    return UsageWindow(name, label, limit, used, remaining, ratio, reset_at, reset_time)


def _limit_name(window: Any, index: int) -> str:
    """"5h" for the 300-minute window; "<n>s" style for any other duration."""
    if isinstance(window, Mapping):
        duration = _int(window.get("duration"))
        unit = _UNIT_SECONDS.get(str(window.get("timeUnit") or window.get("time_unit") or ""))
        if duration is not None and unit:
            seconds = duration * unit
            if seconds == 5 * 3600:
                return "5h"
            if seconds % 86400 == 0:
                return f"{seconds // 86400}d"
            if seconds % 3600 == 0:
                return f"{seconds // 3600}h"
            return f"{seconds // 60}min"
    return f"limit_{index + 1}"


def _ratio_name(key: str) -> str:
    """``limit_5h``/``limit5h`` -> "5h"; ``limit_month_total``/``limitMonthTotal`` -> "month"."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
    snake = snake.removeprefix("limit").lstrip("_")
    if snake in ("month_total", "month"):
        return "month"
    return snake or key


def _merge(windows: list[UsageWindow], new: UsageWindow) -> None:
    """Add ``new``, or fill the gaps of the window with the same name (counts win over ratios)."""
    old = next((w for w in windows if w.name == new.name), None)
    if old is None:
        windows.append(new)
        return
    for attr in ("limit", "used", "remaining", "used_ratio", "reset_at", "reset_time"):
        if getattr(old, attr) is None:
            setattr(old, attr, getattr(new, attr))


def _ratio_windows(usages: Mapping[str, Any], windows: list[UsageWindow]) -> bool:
    found = False
    for key, detail in usages.items():
        if not isinstance(detail, Mapping) or not str(key).lower().startswith("limit"):
            continue
        name = _ratio_name(str(key))
        ratio = _ratio(detail.get("used_ratio", detail.get("usedRatio")))
        reset_at, reset_time = _reset(detail)
        window = _counted(name, WINDOW_LABELS.get(name, str(key)), detail)
        window.used_ratio = ratio if ratio is not None else window.used_ratio
        window.reset_at, window.reset_time = reset_at, reset_time
        _merge(windows, window)
        found = True
    return found


def parse_usages(data: Any) -> PlanUsage:
    """A `PlanUsage` from any documented ``/usages`` body; unknown shapes give ``shape="unknown"``."""
    result = PlanUsage(raw=data)
    if not isinstance(data, Mapping):
        return result
    shapes: list[str] = []
    body: Mapping[str, Any] = data
    inner = data.get("data")
    if "code" in data and isinstance(inner, Mapping):  # camelCase envelope
        quota = inner.get("quota")
        usages = quota.get("usages") if isinstance(quota, Mapping) else None
        if isinstance(usages, Mapping) and _ratio_windows(usages, result.windows):
            shapes.append("envelope")
            for key, value in quota.items():
                if key != "usages" and value is not None:
                    result.extras[key] = value
        body = inner
    limits = body.get("limits")
    if isinstance(limits, list):
        for i, item in enumerate(limits):
            if isinstance(item, Mapping):
                detail = item.get("detail")
                base = name = _limit_name(item.get("window"), i)
                n = 1
                while any(w.name == name for w in result.windows):  # two windows of one length
                    n += 1
                    name = f"{base}_{n}"
                label = str(item.get("name") or item.get("title") or WINDOW_LABELS.get(name, f"{name} window"))
                _merge(result.windows, _counted(name, label, detail if isinstance(detail, Mapping) else item))
        shapes.append("legacy")
    weekly = body.get("usage")
    if isinstance(weekly, Mapping):  # the rolling 7-day window (Kimi Code: "Weekly limit")
        _merge(result.windows, _counted("7d", WINDOW_LABELS["7d"], weekly))
        if "legacy" not in shapes:
            shapes.append("legacy")
    usages = body.get("usages")
    if isinstance(usages, Mapping) and _ratio_windows(usages, result.windows):
        shapes.append("ratio")
    parallel = body.get("parallel")
    if isinstance(parallel, Mapping):
        result.parallel_limit = _int(parallel.get("limit"))
    user = body.get("user")
    membership = user.get("membership") if isinstance(user, Mapping) else body.get("membership")
    if isinstance(membership, Mapping):
        level = membership.get("level")
        result.membership_level = str(level) if level is not None else None
    for key in ("totalQuota", "boosterWallet", "subType", "authentication", "extraUsage"):
        if body.get(key) not in (None, {}) or (key == "totalQuota" and key in body):
            result.extras[key] = body[key]
    result.shape = "+".join(shapes) if shapes else "unknown"
    return result


# --------------------------------------------------------------------------- API


def _transport(
    transport: Transport | None, api_key: Any, credentials: str | None, base_url: str | None
) -> Transport:
    if transport is not None:
        return transport
    from .sources import resolve_credential
    from .transport import Transport

    return Transport(credential=resolve_credential(api_key=api_key, credentials=credentials), base_url=base_url)


def get_usage(
    *,
    api_key: Any = None,
    credentials: str | None = None,
    base_url: str | None = None,
    transport: Transport | None = None,
) -> PlanUsage:
    """The plan's quota windows from ``GET /usages`` (same credentials as the adapters)."""
    return parse_usages(_transport(transport, api_key, credentials, base_url).get_usages())


async def aget_usage(
    *,
    api_key: Any = None,
    credentials: str | None = None,
    base_url: str | None = None,
    transport: Transport | None = None,
) -> PlanUsage:
    """Async `get_usage`."""
    return parse_usages(await _transport(transport, api_key, credentials, base_url).aget_usages())
