"""Crash-safe file replacement: temp file in the same directory, fsync, 0600, `os.replace`.

A reader never sees a partial file; a crash at any point leaves either the old file or the new
one. The temp file is removed on any failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write_bytes", "ensure_private_dir", "probe_writable", "stray_temps"]

_REPLACE_RETRIES = 5


def ensure_private_dir(path: Path, *, force_mode: bool = False) -> None:
    """Create `path` (and parents) as 0700 if missing; with `force_mode` also chmod an existing one."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    elif force_mode:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)


def _mkstemp_tmp(target: Path) -> tuple[int, str]:
    """Our temp naming: `.<file>.<pid>.<random>.tmp` (the pid lets a later process tell a dead
    writer's leftover from a write in progress)."""
    return tempfile.mkstemp(
        dir=str(target.parent), prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp"
    )


def kimi_code_tmp(target: Path) -> tuple[int, str]:
    """Kimi Code's temp naming: `<file>.tmp.<pid>.<8 hex>`, created 0600."""
    tmp = f"{target}.tmp.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return fd, tmp


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a write of `path` really replaces (a symlink is written through)."""
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    return target


def stray_temps(path: str | os.PathLike[str]) -> list[tuple[Path, int]]:
    """Temp files of `path` in our two namings (ours, Kimi Code's), with the writer's pid."""
    target = resolve_target(path)
    name = re.escape(target.name)
    pattern = re.compile(
        rf"\.{name}\.(\d+)\.[a-z0-9_]+\.tmp|{name}\.tmp\.(\d+)\.[0-9a-f]{{8}}"
    )
    out: list[tuple[Path, int]] = []
    try:
        entries = os.listdir(target.parent)
    except OSError:
        return out
    for entry in sorted(entries):
        match = pattern.fullmatch(entry)
        if match:
            out.append((target.parent / entry, int(match.group(1) or match.group(2))))
    return out


def probe_writable(
    path: str | os.PathLike[str],
    size: int,
    *,
    make_temp: Callable[[Path], tuple[int, str]] | None = None,
) -> None:
    """Raise OSError unless a `size`-byte temp file can be created, written and fsynced next to
    `path` (the same steps `atomic_write_bytes` takes); the probe file is always removed."""
    target = resolve_target(path)
    fd, tmp = (make_temp or _mkstemp_tmp)(target)
    try:
        view = memoryview(bytes(size))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _replace(src: str, dst: str) -> None:
    # Windows refuses to replace a file another process holds open (antivirus, indexers): retry.
    for attempt in range(_REPLACE_RETRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if sys.platform != "win32" or attempt == _REPLACE_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def atomic_write_bytes(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    make_temp: Callable[[Path], tuple[int, str]] | None = None,
) -> None:
    """Atomically replace `path` with `data`, mode 0600; a symlinked `path` is written through.

    `make_temp(target) -> (fd, temp_path)` chooses the temp name (same directory as the target).
    """
    target = resolve_target(path)
    fd, tmp = (make_temp or _mkstemp_tmp)(target)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)
        _replace(tmp, str(target))
    except BaseException:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sys.platform != "win32":
        # Make the rename itself durable; best effort.
        with contextlib.suppress(OSError):
            dfd = os.open(str(target.parent), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
