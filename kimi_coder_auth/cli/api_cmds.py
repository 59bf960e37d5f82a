"""`kimi-coder models` and `kimi-coder usage`: what the Coding API offers and how much is left.

Both read credentials like the adapters do (`resolve_credential`), print a readable table by
default and JSON with ``--json`` (``usage``: the typed data of ``get_usage()``). Neither prints a token.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .. import clock
from ..usage import PlanUsage, UsageWindow, get_usage, parse_usages
from ._options import add_credentials_option, add_region_option, credentials_pin

__all__ = ["cmd_models", "cmd_usage", "format_models", "format_usage", "register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
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
    add_region_option(p)
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
    from ..region import resolve_endpoint
    from ..sources import resolve_credential
    from ..transport import Transport

    region, base_url = args.region, args.base_url
    credential = resolve_credential(api_key=args.api_key, credentials=credentials_pin(args.credentials),
                                    region=region, base_url=base_url, via="--region")
    if region is not None and base_url is None:  # the region's API host (unless the env sets one)
        base_url = resolve_endpoint(region, via="--region").base_url
    return Transport(credential=credential, base_url=base_url, user_agent=args.user_agent)


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


def _usage_row(window: UsageWindow, now: float) -> list[str]:
    used, limit, remaining = window.used, window.limit, window.remaining
    if used is not None and limit:
        usage = f"{used}/{limit} ({100 * used / limit:.0f}%)"
    elif used is not None or limit is not None:
        usage = f"{used if used is not None else '?'}/{limit if limit is not None else '?'}"
    elif window.used_ratio is not None:
        usage = f"{100 * window.used_ratio:.0f}% used"
    else:
        usage = "-"
    reset = window.reset_at
    if reset is None:
        when = "-"
    else:
        local = _dt.datetime.fromtimestamp(reset).astimezone()
        when = f"{local:%Y-%m-%d %H:%M %Z}".strip() + f" ({_in(reset - now)})"
    return [window.label, usage, "-" if remaining is None else str(remaining), when]


def format_usage(data: Mapping[str, Any] | PlanUsage) -> str:
    """The `usage` table: one row per quota window, then membership and extras."""
    usage = data if isinstance(data, PlanUsage) else parse_usages(data)
    now = clock.now()
    if usage.shape == "unknown":
        return (
            "The server's /usages answer has a shape kimi-coder does not know; "
            "see `kimi-coder usage --json` for the raw answer."
        )
    rows = [_usage_row(w, now) for w in usage.windows]
    lines = [_table(["quota", "used/limit", "remaining", "resets"], rows)] if rows else [
        "The server reported no quota windows (see --json for the raw answer)."
    ]
    if usage.membership_level:
        lines.append(f"membership: {usage.membership_level.removeprefix('LEVEL_').lower()}")
    if usage.parallel_limit is not None:
        lines.append(f"concurrent requests: up to {usage.parallel_limit}")
    booster = usage.extras.get("boosterWallet")
    if isinstance(booster, Mapping):
        balance = booster.get("balance") if isinstance(booster.get("balance"), Mapping) else booster
        left = balance.get("amountLeft") if isinstance(balance, Mapping) else None
        if left is not None:
            lines.append(f"extra usage left: {left}")
    return "\n".join(lines)


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
    usage = get_usage(transport=_transport(args))
    if args.json:
        out.write(json.dumps(usage.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(format_usage(usage) + "\n")
    return 0
