"""`kimi-coder doctor`: check a login against the Coding API, both routes, and print a report
that is safe to paste into a bug report (no token, no device id, no credential file content).

It reports the credential source in use, the base URL and User-Agent, what ``/models`` says
about each model (protocol, thinking, efforts), whether each route (OpenAI
``/chat/completions``, Anthropic ``/messages``) admits this honest User-Agent, one small
streamed thinking + tool round trip on each route that does, and where usage arrived.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ._options import add_region_option

__all__ = ["register", "run_doctor"]

_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a timezone.",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}},
                       "required": ["timezone"]},
    },
}
_ASK = "Use the get_time tool to look up the time in UTC, then tell me the time in one sentence."


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `doctor`."""
    p = sub.add_parser(
        "doctor",
        help="check your login and both API routes; prints a report safe to paste",
        description=(
            "Check which credential is used, what /models says, whether each route (OpenAI "
            "/chat/completions and Anthropic /messages) admits kimi-coder's User-Agent, and run one "
            "small thinking + tool round trip on each route that does. The report contains no "
            "token and no device id."
        ),
    )
    p.add_argument("--model", default="kimi-for-coding", help="model for the round trips (default: kimi-for-coding)")
    p.add_argument("--base-url", default=None, metavar="URL",
                   help="Coding API base URL (default: $KIMI_CODE_BASE_URL or https://api.kimi.com/coding/v1)")
    p.add_argument("--credentials", choices=("env", "kimi-cli", "kimi-code"), default=None,
                   help="check only this credential source")
    add_region_option(p)
    p.add_argument("--user-agent", default=None, metavar="UA",
                   help="User-Agent to send (default: $KIMI_CODER_USER_AGENT or kimi-coder's own)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=lambda args: run_doctor(args))


def _error(exc: BaseException) -> str:
    """An error in one line (our errors never carry a token; server text is scrubbed)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _usage_place(protocol: str, event: Any) -> str:
    if not isinstance(event, Mapping):
        return "unknown"
    if protocol == "anthropic":
        return f"{event.get('type')} event"
    if event.get("choices"):
        return "chunk with choices (choices[0].usage)" if "usage" not in event else "final chunk (usage)"
    return "separate usage chunk (no choices)"


def _round_trip(transport: Any, model: str, protocol: str, info: Any) -> dict[str, Any]:
    """One streamed thinking + tool turn, the tool result, and the answer, pinned to ``protocol``."""
    from ..errors import UserAgentRejectedError
    from ..routing import ChatCall

    thinking = None if info.thinking == "no" else True
    opts = {"tools": [_TOOL], "thinking": thinking, "max_tokens": 4096, "stream": True}
    out: dict[str, Any] = {"route": protocol}
    messages: list[dict[str, Any]] = [{"role": "user", "content": _ASK}]
    try:
        call = ChatCall.prepare(transport, model, messages, protocol=protocol, model_info=info, **opts)
        stream = call.stream()
        places: list[str] = []
        for delta in stream:
            if delta.usage is not None:
                places.append(_usage_place(protocol, stream.last_event))
        first = stream.result()
    except UserAgentRejectedError as exc:
        out.update(admitted=False, detail=_error(exc))
        return out
    except Exception as exc:  # report and carry on with the other route
        out.update(admitted=None, detail=_error(exc))
        return out
    out["admitted"] = True
    out["reasoning"] = first.reasoning_content is not None and bool(first.reasoning_content.strip())
    blocks = first.thinking_blocks or []
    out["signed_thinking"] = any(b.get("signature") for b in blocks) if protocol == "anthropic" else None
    out["tool_calls"] = [c.name for c in first.tool_calls]
    out["usage_arrived"] = sorted(set(places)) or ["nowhere"]
    if first.usage is not None:
        u = first.usage
        out["usage"] = {"input": u.input_tokens, "output": u.output_tokens, "cache_read": u.cache_read,
                        "cache_creation": u.cache_creation}
    if not first.tool_calls:
        out["answer_ok"] = bool(first.content.strip())
        out["detail"] = "the model answered without calling the tool"
        return out
    reply: dict[str, Any] = {"role": "assistant", "tool_calls": [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in first.tool_calls]}
    if first.reasoning_content is not None:
        reply["reasoning_content"] = first.reasoning_content
    if first.thinking_blocks:
        reply["thinking_blocks"] = first.thinking_blocks
    messages += [reply] + [{"role": "tool", "tool_call_id": c.id, "content": "12:00 UTC"}
                           for c in first.tool_calls]
    try:
        second = ChatCall.prepare(transport, model, messages, protocol=protocol, model_info=info,
                                  **{**opts, "stream": False}).complete()
    except Exception as exc:
        out.update(answer_ok=False, detail="the tool-result turn failed: " + _error(exc))
        return out
    out["answer_ok"] = bool(second.content.strip())
    return out


def _models(client: Any) -> tuple[list[dict[str, Any]], str | None]:
    try:
        entries = client.list_models()
    except Exception as exc:
        return [], _error(exc)
    rows = []
    for m in entries:
        efforts = m.get("think_efforts") if isinstance(m.get("think_efforts"), Mapping) else None
        rows.append({
            "id": m.get("id"), "protocol": m.get("protocol") or "(none)",
            "thinking": m.get("supports_thinking_type") or ("both" if m.get("supports_reasoning") else "no"),
            "efforts": list(efforts.get("valid_efforts") or []) if efforts and efforts.get("support") else [],
            "default_effort": efforts.get("default_effort") if efforts else None,
            "context_length": m.get("context_length"),
        })
    return rows, None


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Gather the report (network calls happen here)."""
    from ..client import KimiClient

    region = getattr(args, "region", None)
    if region is not None:
        from ..region import resolve_endpoint

        resolve_endpoint(region, via="--region")  # an unknown region names the flag, not region=
    client = KimiClient(credentials=args.credentials, base_url=args.base_url, user_agent=args.user_agent,
                        timeout=args.timeout, max_retries=0, region=region)
    transport = client.transport
    status = transport.credential.describe()
    report: dict[str, Any] = {
        "credential": {"source": status.source, "location": status.location,
                       "refreshable": status.refreshable, "detail": status.detail},
        "base_url": transport.base_url,
        "user_agent": transport.user_agent,
    }
    rows, problem = _models(client)
    report["models"] = rows
    if problem:
        report["models_error"] = problem
    info = client.model_info(args.model, live=not problem)
    report["model"] = args.model
    report["routes"] = [_round_trip(transport, args.model, p, info) for p in ("openai", "anthropic")]
    return report


def _yes(value: Any) -> str:
    return {True: "yes", False: "no", None: "n/a"}.get(value, str(value))


def format_report(r: Mapping[str, Any]) -> str:
    """The report as text."""
    c = r["credential"]
    lines = ["kimi-coder doctor", "",
             f"credential: {c['source']} ({c['location'] or 'no location'}); {c['detail']}",
             f"base URL:   {r['base_url']}", f"User-Agent: {r['user_agent']}", "", "models (/models):"]
    if r.get("models_error"):
        lines.append(f"  could not list models: {r['models_error']}")
    for m in r["models"]:
        efforts = ", ".join(m["efforts"]) or "-"
        lines.append(f"  {m['id']}: protocol {m['protocol']}, thinking {m['thinking']}, efforts {efforts}"
                     + (f" (default {m['default_effort']})" if m["default_effort"] else ""))
    lines += ["", f"round trips with {r['model']} (thinking + one tool call):"]
    for route in r["routes"]:
        name = "OpenAI /chat/completions" if route["route"] == "openai" else "Anthropic /messages"
        admitted = route.get("admitted")
        if admitted is not True:
            state = "refused by the User-Agent gate" if admitted is False else "failed"
            lines.append(f"  {name}: {state}: {route.get('detail')}")
            continue
        lines.append(f"  {name}: admitted; reasoning {_yes(route['reasoning'])}, "
                     f"signed thinking {_yes(route['signed_thinking'])}, tool calls {route['tool_calls'] or 'none'}, "
                     f"answer after the tool result {_yes(route.get('answer_ok'))}")
        lines.append(f"    usage arrived in: {', '.join(route['usage_arrived'])}; {route.get('usage')}")
        if route.get("detail"):
            lines.append(f"    note: {route['detail']}")
    ok = [x["route"] for x in r["routes"] if x.get("admitted") and x.get("answer_ok")]
    lines += ["", f"result: {'working routes: ' + ', '.join(ok) if ok else 'no route completed a round trip'}",
              "(This report contains no token and no device id; paste it into a bug report as is.)"]
    return "\n".join(lines) + "\n"


def run_doctor(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`kimi-coder doctor`; exit 0 when at least one route completed the round trip."""
    out = out if out is not None else sys.stdout
    report = collect(args)
    out.write(json.dumps(report, indent=2) + "\n" if args.json else format_report(report))
    ok = any(x.get("admitted") and x.get("answer_ok") for x in report["routes"])
    return 0 if ok else 1
