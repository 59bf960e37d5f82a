"""`kimi-coder login`, `logout` and `status`: the device login and the stored credentials.

None of these commands ever prints a token or the device code: status shows the source, the
file, the expiry and whether it refreshes; login shows the verification URL and the user code.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import signal
import sys
import threading
from typing import Any, TextIO

from .. import clock
from ..device import STORE_NAMES, DeviceProgress, DevicePrompt, resolve_store
from ..errors import CredentialError, RegionError
from ._options import REGION_HELP, add_credentials_option

__all__ = ["cmd_login", "cmd_logout", "cmd_status", "register"]

_STORE_HELP = {
    "kimi-cli": "kimi-cli's file ($KIMI_SHARE_DIR/credentials/kimi-code.json, default ~/.kimi; "
    "default host only)",
    "kimi-code": "Kimi Code's file ($KIMI_CODE_HOME/credentials/<slot>.json, default ~/.kimi-code; "
    "one slot per host)",
}
_STORE_DEFAULT = " (default: kimi-cli for the default host, else kimi-code)"
_SOURCE_LABEL = {
    "explicit": "api_key argument (static key)",
    "env": "KIMI_CODER_API_KEY (static API key)",
    "kimi-cli": "kimi-cli login",
    "kimi-code": "Kimi Code login",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `login`, `logout` and `status`."""
    p = sub.add_parser(
        "login",
        help="log in to Kimi Code in the browser (device login) and save the token",
        description="Log in with Kimi's device login (RFC 8628): open the shown URL, check the code, "
        "approve, and the token is saved to the chosen store.",
    )
    p.add_argument(
        "--store",
        choices=STORE_NAMES,
        default=None,
        help="where to save the login: "
        + "; ".join(f"{k}: {v}" for k, v in _STORE_HELP.items())
        + _STORE_DEFAULT,
    )
    p.add_argument("--region", default=None, metavar="REGION", help=REGION_HELP)
    p.add_argument(
        "--no-browser", action="store_true", help="only print the URL; do not open a browser"
    )
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=None,
        metavar="S",
        help="give up after S seconds without approval (default: until the code expires)",
    )
    p.set_defaults(handler=cmd_login)

    p = sub.add_parser(
        "logout",
        help="remove the stored login from a store",
        description="Delete the login file of the chosen store, under that store's lock.",
    )
    p.add_argument(
        "--store", choices=STORE_NAMES, default=None, help="which login to remove" + _STORE_DEFAULT
    )
    p.add_argument("--region", default=None, metavar="REGION", help=REGION_HELP)
    p.set_defaults(handler=cmd_logout)

    p = sub.add_parser(
        "status",
        help="show which credentials are in use and when they expire (never the token)",
        description="Show the credential source kimi-coder would use, its file, expiry and whether "
        "it refreshes. Exit status 1 when no usable credentials are found.",
    )
    add_credentials_option(p)
    p.add_argument("--region", default=None, metavar="REGION", help=REGION_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError("the timeout must be a positive number of seconds")
    return value


# --------------------------------------------------------------------------- formatting


def _in_words(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _when(epoch: float) -> str:
    """Absolute local time with zone, plus "in N min" / "N min ago" from the clock in force."""
    stamp = _dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    left = epoch - clock.now()
    rel = f"in {_in_words(left)}" if left >= 0 else f"expired {_in_words(left)} ago"
    return f"{stamp} ({rel})"


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# --------------------------------------------------------------------------- login


class _Progress:
    """Shows that polling is alive: a spinner + countdown on a TTY, a few plain lines otherwise."""

    _FRAMES = "|/-\\"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._deadline: float | None = None  # monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, remaining: float) -> None:
        self._deadline = clock.monotonic() + remaining
        if self.tty:
            self._thread = threading.Thread(
                target=self._spin, name="kimi-coder-login-spinner", daemon=True
            )
            self._thread.start()
        else:
            self._line(f"Waiting for approval (up to {_in_words(remaining)}; Ctrl-C to cancel)...")

    def update(self, p: DeviceProgress) -> None:
        self._deadline = clock.monotonic() + p.remaining
        if p.event == "slow_down":
            self._line(f"The server asked to slow down; polling every {p.interval:g} s.")
        elif p.event == "connection_error":
            self._line(f"Could not reach the OAuth server; retrying in {p.next_poll_in:g} s.")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
            with self._lock:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _line(self, text: str) -> None:
        with self._lock:
            prefix = "\r\033[K" if self.tty else ""
            self.stream.write(f"{prefix}{text}\n")
            self.stream.flush()

    def _spin(self) -> None:
        for frame in itertools.cycle(self._FRAMES):
            if self._stop.wait(0.125):
                return
            left = (self._deadline or 0.0) - clock.monotonic()
            with self._lock:
                self.stream.write(
                    f"\r\033[K{frame} Waiting for approval in the browser... "
                    f"{_clock_text(left)} left (Ctrl-C to cancel)"
                )
                self.stream.flush()


def _ctrl_c_cancels() -> None:
    """Make Ctrl-C cancel the login even when the process inherited SIGINT as ignored (started
    in the background, e.g. `nohup ... &`): restore Python's default handler."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _cli_target(args: argparse.Namespace, action: str) -> tuple[Any, Any] | None:
    """The store and endpoint for `--store` / `--region`; None after printing a CLI error."""
    from ..region import resolve_endpoint

    try:
        endpoint = resolve_endpoint(args.region, via="--region")
    except RegionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if args.store == "kimi-cli" and not endpoint.is_default:
        print(
            f"error: --store kimi-cli: kimi-cli's file holds only the login for the default host "
            f"https://auth.kimi.com, and this {action} is for {endpoint.oauth_host} "
            f"({endpoint.region}, {endpoint.reason}).\nUse --store kimi-code (Kimi Code's slot "
            f"{endpoint.slot}) or leave --store out.",
            file=sys.stderr,
        )
        return None
    store = args.store or ("kimi-cli" if endpoint.is_default else "kimi-code")
    return resolve_store(store, endpoint.slot), endpoint


def _where(endpoint: Any) -> str:
    return f"{endpoint.oauth_host} ({endpoint.region} region; from {endpoint.reason})"


def _region_line(endpoint: Any) -> str:
    return (
        f"Region:     {endpoint.region} (OAuth host {endpoint.oauth_host}, API "
        f"{endpoint.base_url}; from {endpoint.reason})"
    )


def cmd_login(args: argparse.Namespace) -> int:
    """Run the device login and report where the token was saved."""
    from .. import device

    _ctrl_c_cancels()
    target = _cli_target(args, "login")
    if target is None:
        return 2
    store, endpoint = target
    out = sys.stdout
    progress = _Progress(sys.stderr)
    open_browser = not args.no_browser

    def prompt(p: DevicePrompt) -> None:
        lines = ["To log in to Kimi Code, open this page in a browser:", f"  {p.url}"]
        if p.verification_uri_complete and p.verification_uri:
            lines.append(f"  (or go to {p.verification_uri} and enter the code)")
        lines.append(f"Check that the page shows this code: {p.user_code}")
        if open_browser:
            lines.append("Opening your browser...")
        print("\n".join(lines), file=out, flush=True)
        progress.start(max(0.0, min(p.expires_at - clock.now(), args.timeout or float("inf"))))

    try:
        token = device.login(
            store=store,
            region=args.region,
            prompt=prompt,
            open_browser=open_browser,
            timeout=args.timeout,
            on_progress=progress.update,
        )
    except KeyboardInterrupt:
        progress.stop()
        print("\nLogin cancelled; nothing was written.", file=sys.stderr)
        return 130
    finally:
        progress.stop()
    print(f"Logged in to {_where(endpoint)}.", file=out)
    label = _STORE_HELP[store.name].split(" (")[0]
    slot = f" (slot {endpoint.slot})" if store.name == "kimi-code" else ""
    print(f"Saved to {label}{slot}: {store.path}", file=out)
    refresh = "refreshes automatically" if token.refresh_token else "cannot be refreshed"
    print(f"The access token expires {_when(token.expires_at)} and {refresh}.", file=out)
    if store.name == "kimi-cli":
        print("kimi-cli (`kimi`) shares this login file.", file=out)
    if args.region is not None and not endpoint.is_default:
        print(
            f"To use this login, pass region={endpoint.region!r} (Python) or set "
            f"KIMI_CODER_REGION={endpoint.region} (kimi-coder reads the same slot then).",
            file=out,
        )
    if os.environ.get("KIMI_CODER_API_KEY", "").strip():
        print("Note: KIMI_CODER_API_KEY is set and takes precedence over this login.", file=out)
    return 0


# --------------------------------------------------------------------------- logout


def cmd_logout(args: argparse.Namespace) -> int:
    """Delete the chosen store's login file under its lock."""
    target = _cli_target(args, "logout")
    if target is None:
        return 2
    store, _ = target
    path = store.path
    label = "kimi-cli" if store.name == "kimi-cli" else "Kimi Code"
    # Nothing there: say so without creating the credentials folder or its lock file.
    if (path.exists() or path.is_symlink()) and store.delete():
        print(f"Logged out: removed the {label} login {path}.")
        if store.name == "kimi-cli":
            print("kimi-cli (`kimi`) used the same file, so it is logged out too.")
    else:
        print(f"No {label} login to remove: {path} does not exist.")
    if os.environ.get("KIMI_CODER_API_KEY", "").strip():
        print("Note: KIMI_CODER_API_KEY is still set; kimi-coder keeps using that key.")
    return 0


# --------------------------------------------------------------------------- status


def _status_dict(st: Any) -> dict[str, Any]:
    now = clock.now()
    expires_at = st.expires_at
    return {
        "source": st.source,
        "location": st.location,
        "expires_at": expires_at,
        "expires_at_iso": (
            _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc).isoformat()
            if expires_at
            else None
        ),
        "expires_in_seconds": round(expires_at - now, 1) if expires_at else None,
        "expired": bool(expires_at) and expires_at <= now,
        "refreshable": st.refreshable,
        "detail": st.detail,
        "region": st.region,
        "oauth_host": st.oauth_host,
        "slot": st.slot,
    }


def cmd_status(args: argparse.Namespace) -> int:
    """Show the credential in use (never the token); exit 1 when nothing is usable."""
    from ..sources import DiscoveredCredential, resolve_credential

    try:  # validates the pin and the region; no I/O
        pinned = resolve_credential(credentials=args.credentials, region=args.region, via="--region")
        # A fresh discovery (not the process-wide cached one) so the answer reflects the files now.
        discovery = DiscoveredCredential(
            getattr(pinned, "pin", None), region=args.region, via="--region"
        )
        endpoint = discovery.endpoint
    except RegionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = {
        "region": endpoint.region,
        "region_reason": endpoint.reason,
        "oauth_host": endpoint.oauth_host,
        "base_url": endpoint.base_url,
        "slot": endpoint.slot,
    }
    others = [_status_dict(s) for s in discovery.describe_all()]
    try:
        credential = discovery.resolve()
    except CredentialError as exc:
        if args.json:
            body = {"source": None, "error": str(exc), "endpoint": where, "sources": others}
            print(json.dumps(body, indent=2))
        else:
            print(f"{_region_line(endpoint)}; Kimi Code slot {endpoint.slot}", file=sys.stderr)
            print(str(exc), file=sys.stderr)
        return 1
    status = _status_dict(discovery._with_endpoint(credential.describe()))
    if args.json:
        print(json.dumps({**status, "endpoint": where, "sources": others}, indent=2))
        return 0
    lines = [f"Source:     {_SOURCE_LABEL.get(status['source'], status['source'])}"]
    lines.append(_region_line(endpoint))
    if status["source"] in ("kimi-cli", "kimi-code"):
        slot = endpoint.slot if status["source"] == "kimi-code" else "kimi-code (its only one)"
        lines.append(f"Slot:       {slot}")
    if status["location"]:
        kind = "Variable:" if status["source"] in ("env", "explicit") else "File:    "
        lines.append(f"{kind}   {status['location']}")
    if status["expires_at"]:
        lines.append(f"Expires:    {_when(status['expires_at'])}")
    else:
        lines.append("Expires:    never (a static key does not expire locally)")
    if status["refreshable"]:
        refresh = "yes, automatically before it expires"
        if status["expired"]:
            refresh = "yes, on next use (the access token has expired)"
    elif status["detail"].startswith("revoked"):
        refresh = "no: the server rejected this login; log in again (see Detail)"
    else:
        refresh = "no"
    lines.append(f"Refreshes:  {refresh}")
    lines.append(f"Detail:     {status['detail']}")
    lines.append("")
    lines.append("All sources, in discovery order:")
    for other in others:
        mark = "*" if other["source"] == status["source"] else " "
        lines.append(f" {mark} {other['source']:<9} {other['detail']}")
    print("\n".join(lines))
    return 0
