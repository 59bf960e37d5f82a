"""Subprocess workers for the credential tests (real processes, real locks, real files).

Usage: python creds_worker.py MODE [args...]. Paths come from KIMI_SHARE_DIR / KIMI_CODE_HOME in
the environment. Output lines on stdout are the protocol with the parent test.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _barrier(barrier: str, ident: str) -> None:
    """Announce readiness, then wait for the parent's `go` file (file-based barrier)."""
    d = Path(barrier)
    (d / f"ready-{ident}").touch()
    deadline = time.monotonic() + 20
    while not (d / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("barrier timeout")
        time.sleep(0.002)


def mode_refresh(store_name: str, barrier: str, ident: str) -> None:
    """Get a token through our OAuthCredential after the barrier; print it."""
    from kimi_coder_auth.refresh import OAuthCredential
    from kimi_coder_auth.stores import store_for

    cred = OAuthCredential(store_for(store_name), lock_timeout=20)
    _barrier(barrier, ident)
    token = cred.get_token()
    print("TOKEN", token.reveal(), flush=True)


def _kimi_cli_save(path: Path, data: dict) -> None:
    """Exactly kimi-cli's `_save_to_file`."""
    fd, tmp_path = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    raw = json.dumps(data, ensure_ascii=False).encode("utf-8")
    os.write(fd, raw)
    os.fsync(fd)
    os.close(fd)
    os.chmod(tmp_path, 0o600)
    os.replace(tmp_path, path)


def mode_kimicli_hold(hold: str, new_token_json: str) -> None:
    """kimi-cli's cross-process protocol: flock kimi-code.lock, 'refresh' (write), release."""
    import fcntl

    share = Path(os.environ["KIMI_SHARE_DIR"])
    cred_dir = share / "credentials"
    cred_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(cred_dir / "kimi-code.lock"), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("LOCKED", flush=True)
    time.sleep(float(hold))
    if new_token_json != "-":
        _kimi_cli_save(cred_dir / "kimi-code.json", json.loads(new_token_json))
    print("WROTE", flush=True)
    os.close(fd)


def mode_kimicode_hold(hold: str, new_token_json: str) -> None:
    """Kimi Code's proper-lockfile protocol: mkdir oauth/kimi-code.lock, keep it fresh, write, rmdir."""
    home = Path(os.environ["KIMI_CODE_HOME"])
    (home / "oauth").mkdir(parents=True, exist_ok=True)
    (home / "oauth" / "kimi-code").touch()
    lock_dir = home / "oauth" / "kimi-code.lock"
    os.mkdir(lock_dir)
    print("LOCKED", flush=True)
    end = time.monotonic() + float(hold)
    while time.monotonic() < end:
        time.sleep(0.1)
        os.utime(lock_dir)
    if new_token_json != "-":
        cred = home / "credentials" / "kimi-code.json"
        cred.parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{cred}.tmp.{os.getpid()}.deadbeef"
        with open(tmp, "w") as fh:
            fh.write(json.dumps(json.loads(new_token_json), indent=2) + "\n")
        os.replace(tmp, cred)
    print("WROTE", flush=True)
    os.rmdir(lock_dir)


def mode_write_pause(store_name: str) -> None:
    """Write a new token through our store, but stop just before os.replace (to be SIGKILLed)."""
    from kimi_coder_auth.secret import Secret
    from kimi_coder_auth.stores import store_for
    from kimi_coder_auth.token import OAuthToken

    def paused_replace(src: str, dst: str) -> None:
        print("PAUSED", src, flush=True)
        time.sleep(60)

    os.replace = paused_replace  # type: ignore[assignment]
    store = store_for(store_name)
    store.write(
        OAuthToken(
            Secret("AT-NEW"), Secret("RT-NEW"), time.time() + 900, 900.0, "kimi-code", "Bearer"
        )
    )


def mode_counter(store_name: str, barrier: str, ident: str, rounds: str) -> None:
    """Bracket test: under our store lock, log `<pid` / `>pid` and bump a shared counter."""
    from kimi_coder_auth.stores import store_for

    store = store_for(store_name)
    counter = Path(barrier) / "counter"
    log = Path(barrier) / "log"
    _barrier(barrier, ident)
    for _ in range(int(rounds)):
        with store.lock(20):
            with open(log, "a") as fh:
                fh.write(f"<{ident}\n")
            value = int(counter.read_text() or "0") if counter.exists() else 0
            time.sleep(0.002)
            counter.write_text(str(value + 1))
            with open(log, "a") as fh:
                fh.write(f">{ident}\n")
    print("DONE", flush=True)


def mode_hold_our_lock(store_name: str, hold: str) -> None:
    """Hold our own store lock for `hold` seconds (to check kimi-cli's view of it)."""
    from kimi_coder_auth.stores import store_for

    with store_for(store_name).lock(10):
        print("LOCKED", flush=True)
        time.sleep(float(hold))
    print("RELEASED", flush=True)


def mode_refresh_file_limit(store_name: str, limit: str) -> None:
    """Refresh through OAuthCredential while files may not grow past `limit` bytes (RLIMIT_FSIZE:
    the kernel refuses the write, as on a full disk); print the token or the error."""
    import resource
    import signal

    from kimi_coder_auth.errors import KimiCoderError
    from kimi_coder_auth.refresh import OAuthCredential
    from kimi_coder_auth.stores import store_for

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write returns EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    try:
        token = OAuthCredential(store_for(store_name), lock_timeout=20).get_token()
    except KimiCoderError as exc:
        print("ERROR", type(exc).__name__, json.dumps(str(exc)), flush=True)
        return
    print("TOKEN", token.reveal(), flush=True)


def mode_refresh_pause(store_name: str) -> None:
    """Refresh through OAuthCredential, but stop just before the rename (to be SIGKILLed there)."""
    from kimi_coder_auth.refresh import OAuthCredential
    from kimi_coder_auth.stores import store_for

    def paused_replace(src: str, dst: str) -> None:
        print("PAUSED", src, flush=True)
        time.sleep(60)

    os.replace = paused_replace  # type: ignore[assignment]
    OAuthCredential(store_for(store_name), lock_timeout=20).get_token()


MODES = {
    "refresh-file-limit": mode_refresh_file_limit,
    "refresh-pause": mode_refresh_pause,
    "refresh": mode_refresh,
    "kimicli-hold": mode_kimicli_hold,
    "kimicode-hold": mode_kimicode_hold,
    "write-pause": mode_write_pause,
    "counter": mode_counter,
    "hold-our-lock": mode_hold_our_lock,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
