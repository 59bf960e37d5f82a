"""`kimi-coder emulator`: run the local Kimi Coding API + OAuth emulator in the foreground."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["register", "run_emulator"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the `emulator` command."""
    p = sub.add_parser(
        "emulator",
        help="run a local emulator of the Kimi Coding API and its OAuth server (for tests and demos)",
        description=(
            "Serve an emulator of the Kimi Coding API (/coding/v1) and its OAuth device login "
            "(/api/oauth) on this machine until Ctrl-C. Point clients at it with the printed "
            "environment lines (KIMI_CODE_BASE_URL, KIMI_CODE_OAUTH_HOST and a throwaway "
            "KIMI_SHARE_DIR / KIMI_CODE_HOME)."
        ),
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port; default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--ua-gate", metavar="REGEX", default=None,
        help="only accept /chat/completions requests whose User-Agent matches REGEX (403 otherwise); "
             "'real' = known coding agents only, like the real service. /messages admits everyone",
    )
    p.add_argument("--token-ttl", type=int, default=900, help="access-token lifetime in seconds (default 900)")
    p.add_argument(
        "--api-key", action="append", default=[], metavar="KEY",
        help="a static API key the emulator always accepts (repeatable)",
    )
    p.add_argument(
        "--device-interval", type=int, default=1,
        help="polling interval the device login asks for, in seconds (default 1)",
    )
    p.set_defaults(handler=run_emulator)


def run_emulator(args: argparse.Namespace, *, ready: threading.Event | None = None,
                 stop: threading.Event | None = None) -> int:
    """Start the emulator, print where it listens, and serve until Ctrl-C (or `stop` is set)."""
    from ..emulator import Emulator

    if args.ua_gate:
        try:
            re.compile(args.ua_gate)
        except re.error as exc:
            print(f"error: --ua-gate is not a valid regular expression ({exc}); fix the pattern and retry.",
                  file=sys.stderr)
            return 2
    if args.token_ttl <= 0:
        print("error: --token-ttl must be a positive number of seconds.", file=sys.stderr)
        return 2
    emu = Emulator(
        access_token_ttl=args.token_ttl, ua_gate=args.ua_gate, host=args.host, port=args.port,
        api_keys=args.api_key or None, device_interval=max(0, args.device_interval),
    )
    stop = stop or threading.Event()
    try:
        emu.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
              "pick another --port (or --port 0 for any free port).", file=sys.stderr)
        return 1
    restore = _install_signal_handlers(stop)  # before printing: callers act on the output
    print("Kimi Coding API emulator running.")
    print(f"  base URL:   {emu.base_url}")
    print(f"  OAuth host: {emu.oauth_host}")
    homes = Path(tempfile.mkdtemp(prefix="kimi-coder-emulator-"))
    print("Use it with (a throwaway home, so no real login is read or replaced):")
    print(f"  export KIMI_CODE_BASE_URL={shlex.quote(emu.base_url)}")
    print(f"  export KIMI_CODE_OAUTH_HOST={shlex.quote(emu.oauth_host)}")
    print(f"  export KIMI_SHARE_DIR={shlex.quote(str(homes / 'kimi'))}")
    print(f"  export KIMI_CODE_HOME={shlex.quote(str(homes / 'kimi-code'))}")
    print("  unset KIMI_CODER_REGION KIMI_CODER_API_KEY KIMI_CODER_CREDENTIALS")
    print(f"  ({homes} is removed on exit unless a login was saved there)")
    if args.api_key:
        print(f"  static API keys accepted: {len(args.api_key)}")
    if args.ua_gate:
        print(f"  User-Agent gate: {args.ua_gate}")
    print("Press Ctrl-C to stop.", flush=True)
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        restore()
        _remove_if_unused(homes)
    print("Emulator stopped.", flush=True)
    return 0


def _remove_if_unused(homes: Path) -> None:
    """Remove the throwaway home when nothing was saved there (a login there is kept)."""
    try:
        if not any(p.is_file() for p in homes.rglob("*")):
            shutil.rmtree(homes, ignore_errors=True)
    except OSError:
        pass


def _install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """Make Ctrl-C (SIGINT) and SIGTERM stop the server cleanly, even when the shell started us
    with SIGINT ignored; returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, object] = {}

    def _handle(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _handle)
        except (ValueError, OSError):
            pass

    def restore() -> None:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):
                pass

    return restore
