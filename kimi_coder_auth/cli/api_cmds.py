"""`kimi-coder models` and `kimi-coder usage`: what the Coding API offers and how much is left.

Both read credentials like the adapters do (`resolve_credential`), print a readable table by
default and the server's JSON with ``--json``. Neither prints a token.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .. import clock
from ._options import add_credentials_option, credentials_pin

__all__ = ["cmd_models", "cmd_usage", "format_models", "format_usage", "register"]

_TIME_UNITS = {
    "TIME_UNIT_SECOND": ("s", 1),
    "TIME_UNIT_MINUTE": ("min", 60),
    "TIME_UNIT_HOUR": ("h", 3600),
    "TIME_UNIT_DAY": ("d", 86400),
    "TIME_UNIT_WEEK": ("week", 7 * 86400),
    "TIME_UNIT_MONTH": ("month", 30 * 86400),
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the server's JSON answer")
    p.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="Coding API base URL (default: $KIMI_CODE_BASE_URL or https://api.kimi.com/coding/v1)",
    )
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="a Kimi Code API key to use instead of the discovered login "
        "(prefer KIMI_CODER_API_KEY: command lines are visible to other users)",
    )
    add_credentials_option(p)
    p.add_argument(
        "--user-agent",
        default=None,
        metavar="UA",
        help="User-Agent to send (default: $KIMI_CODER_USER_AGENT or kimi-coder's own)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `models` and `usage`."""
    p = sub.add_parser(
        "models",
        help="list the models your plan can use (GET /models)",
        description="List the Coding API's models: id, context window, thinking mode, "
        "reasoning efforts and image input.",
    )
    _common(p)
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser(
        "usage",
        help="show the plan's quota windows and when they reset (GET /usages)",
        description="Show how much of each quota window is used and when it resets "
        "(local time and time remaining).",
    )
    _common(p)
    p.set_defaults(handler=cmd_usage)


def _transport(args: argparse.Namespace) -> Any:
    from ..sources import resolve_credential
    from ..transport import Transport

    credential = resolve_credential(api_key=args.api_key, credentials=credentials_pin(args.credentials))
    return Transport(credential=credential, base_url=args.base_url, user_agent=args.user_agent)


# --------------------------------------------------------------------------- tables


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _tokens(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


def format_models(models: Sequence[Mapping[str, Any]]) -> str:
    """The `models` table from the service's own entries: id, context, thinking, efforts,
    images, video, protocol (``-`` where the service declares no protocol)."""
    from ..catalogue import model_info_from_api

    thinking_label = {"only": "always", "both": "on/off", "no": "no"}
    rows = []
    for entry in models:
        info = model_info_from_api(entry)
        efforts = ", ".join(info.efforts) if info.efforts else "-"
        if info.efforts and info.default_effort:
            efforts += f" (default {info.default_effort})"
        rows.append(
            [
                info.id,
                _tokens(info.context_length),
                thinking_label.get(info.thinking, info.thinking),
                efforts,
                "yes" if info.supports_image_in else "no",
                "yes" if info.supports_video_in else "no",
                str(entry.get("protocol") or "-"),
            ]
        )
    if not rows:
        return "The server listed no models."
    return _table(["id", "context", "thinking", "efforts", "images", "video", "protocol"], rows)


def _number(value: Any) -> int | None:
    """Quota numbers arrive as decimal strings ("40"); accept ints/floats too."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _reset_epoch(detail: Mapping[str, Any]) -> float | None:
    for key in ("resetTime", "reset_time", "resetAt", "reset_at"):
        value = detail.get(key)
        if value in (None, ""):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) / (1000.0 if value > 1e12 else 1.0)
        if isinstance(value, str):
            text = value.strip()
            try:
                return float(text)
            except ValueError:
                pass
            try:
                parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=_dt.timezone.utc)
            return parsed.timestamp()
    return None


def _in(seconds: float) -> str:
    """'in 4 h 59 min' / 'in 2 d 3 h' / 'now'."""
    if seconds <= 0:
        return "now"
    minutes = int(seconds // 60)
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {mins} min"
    return f"in {mins} min" if mins else "in <1 min"


def _window_label(window: Mapping[str, Any] | None, fallback: str) -> str:
    if not isinstance(window, Mapping):
        return fallback
    duration = _number(window.get("duration"))
    unit = str(window.get("timeUnit") or window.get("time_unit") or "")
    if duration is None:
        return fallback
    short, seconds = _TIME_UNITS.get(unit, (unit.removeprefix("TIME_UNIT_").lower() or "?", 0))
    total = duration * seconds
    if 0 < seconds < 86400 and total >= 86400 and total % 86400 == 0:
        return f"{total // 86400} d window"
    if 0 < seconds < 3600 and total >= 3600 and total % 3600 == 0:
        return f"{total // 3600} h window"
    return f"{duration} {short} window"


def _usage_row(label: str, detail: Mapping[str, Any], now: float) -> list[str]:
    used, limit = _number(detail.get("used")), _number(detail.get("limit"))
    remaining = _number(detail.get("remaining"))
    if remaining is None and used is not None and limit is not None:
        remaining = max(0, limit - used)
    if used is not None and limit:
        usage = f"{used}/{limit} ({100 * used / limit:.0f}%)"
    elif used is not None or limit is not None:
        usage = f"{used if used is not None else '?'}/{limit if limit is not None else '?'}"
    else:
        usage = "-"
    reset = _reset_epoch(detail)
    if reset is None:
        when = "-"
    else:
        local = _dt.datetime.fromtimestamp(reset).astimezone()
        when = f"{local:%Y-%m-%d %H:%M %Z}".strip() + f" ({_in(reset - now)})"
    return [label, usage, "-" if remaining is None else str(remaining), when]


def format_usage(data: Mapping[str, Any]) -> str:
    """The `usage` table: one row per quota window plus the plan total."""
    now = clock.now()
    rows: list[list[str]] = []
    limits = data.get("limits")
    if isinstance(limits, list):
        for i, item in enumerate(limits):
            if not isinstance(item, Mapping):
                continue
            raw_detail = item.get("detail")
            detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else item
            label = item.get("name") or item.get("title")
            label = str(label) if label else _window_label(item.get("window"), f"limit {i + 1}")
            rows.append(_usage_row(label, detail, now))
    total = data.get("usage")
    if isinstance(total, Mapping):
        label = str(total.get("name") or total.get("title") or "plan total")
        rows.append(_usage_row(label, total, now))
    if not rows:
        return "The server reported no quota windows (see --json for the raw answer)."
    return _table(["quota", "used/limit", "remaining", "resets"], rows)


# --------------------------------------------------------------------------- handlers


def cmd_models(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Print the model list."""
    out = out or sys.stdout
    models = _transport(args).list_models()
    if args.json:
        out.write(json.dumps({"data": models}, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(format_models(models) + "\n")
    return 0


def cmd_usage(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Print the quota windows."""
    out = out or sys.stdout
    data = _transport(args).get_usages()
    if args.json:
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(format_usage(data) + "\n")
    return 0
