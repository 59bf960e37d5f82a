"""Crash-safe file replacement: temp file in the same directory, fsync, 0600, `os.replace`.

A reader never sees a partial file; a crash at any point leaves either the old file or the new
one. The temp file is removed on any failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write_bytes", "ensure_private_dir"]

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
    return tempfile.mkstemp(dir=str(target.parent), prefix=f".{target.name}.", suffix=".tmp")


def kimi_code_tmp(target: Path) -> tuple[int, str]:
    """Kimi Code's temp naming: `<file>.tmp.<pid>.<8 hex>`, created 0600."""
    tmp = f"{target}.tmp.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return fd, tmp


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
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
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
