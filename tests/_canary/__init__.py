"""Canary secrets and the places they must never reach (logs, reprs, errors, payloads).

A canary is a unique, recognisable fake secret (``AT-CANARY-<uuid>``, ``RT-CANARY-<uuid>``,
``sk-kimi-CANARY-<uuid>``). `Leaks` collects canaries and scans any text, object repr, JSON
payload or exception (str, repr, formatted traceback with and without locals, the whole
``__cause__`` / ``__context__`` chain and each exception's ``__dict__``) for the full value and
for its first and last 12 characters (a truncated or masked-but-partial value is a leak too).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import traceback
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "LOGGERS",
    "Leaks",
    "LogCollector",
    "exception_texts",
    "make_canary",
    "make_opaque_canary",
    "to_text",
]

#: every logger whose output is audited (all at DEBUG); "" is the root logger
LOGGERS = (
    "",
    "httpx",
    "httpcore",
    "kimi_coder_auth",
    "langchain",
    "langchain_core",
    "langchain_kimi_coder",
    "llama_index",
    "llama_index_kimi_coder",
    "asyncio",
)

_STD_RECORD_KEYS = frozenset(vars(logging.LogRecord("n", 10, "p", 1, "m", None, None)).keys()) | {
    "message",
    "asctime",
}


def make_canary(prefix: str) -> str:
    """A fresh canary such as ``AT-CANARY-3f2a…`` (prefix ``AT``, ``RT`` or ``sk-kimi``)."""
    return f"{prefix}-CANARY-{uuid.uuid4()}"


def make_opaque_canary() -> str:
    """A fresh canary of no recognisable shape (no prefix, not a JWT, URL-unsafe characters):
    only scrubbing the exact value sent can remove it, pattern redaction never will."""
    raw = uuid.uuid4().hex + uuid.uuid4().hex
    return f"{raw[:10]}~{raw[10:20]}+{raw[20:34]}/{raw[34:]}="


def to_text(obj: Any) -> str:
    """Everything a tool might print of `obj`: repr, str and a best-effort JSON dump."""
    parts = [repr(obj)]
    try:
        parts.append(str(obj))
    except Exception as exc:  # pragma: no cover - str() failing is itself fine
        parts.append(f"<str failed: {type(exc).__name__}>")
    try:
        parts.append(json.dumps(obj, default=repr, sort_keys=True))
    except Exception:
        pass
    return "\n".join(parts)


def _chain(exc: BaseException, *, suppressed: bool = True) -> Iterator[BaseException]:
    """`exc` and every exception reachable through ``__cause__`` / ``__context__`` (a context
    hidden by ``raise ... from None`` only when `suppressed`)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        hidden = cur.__suppress_context__ and not suppressed
        for nxt in (cur.__cause__, None if hidden else cur.__context__):
            if nxt is not None:
                todo.append(nxt)
        for sub in getattr(cur, "exceptions", ()) or ():  # ExceptionGroup
            if isinstance(sub, BaseException):
                todo.append(sub)


_TESTS_DIR = str(Path(__file__).resolve().parent.parent)


def _is_test_file(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_TESTS_DIR + os.sep) or "_pytest" in filename


def _in_packages(filename: str, packages: tuple[str, ...]) -> bool:
    parts = Path(filename).parts
    return any(p in parts for p in packages)


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("site-packages", "main"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    return filename


def exception_texts(
    exc: BaseException,
    *,
    locals_of: tuple[str, ...] | None = None,
    test_frames: bool = False,
    suppressed: bool = True,
) -> dict[str, str]:
    """Named renderings of an exception that a user, a log or an error tracker could see.

    Frame locals are scanned in every frame (``locals_of=None``) or only in frames of the named
    top-level packages; frames of this test suite are skipped unless `test_frames`. With
    `suppressed=False` a context hidden by ``raise ... from None`` is not followed (as the
    traceback module and error trackers do)."""
    out: dict[str, str] = {"format_exception": "".join(traceback.format_exception(exc))}
    for i, cur in enumerate(_chain(exc, suppressed=suppressed)):
        # what `pytest -l`, rich's show_locals or an error tracker shows: each frame's locals.
        # Frames of the test files themselves are skipped (they hold the canary on purpose).
        stack = traceback.StackSummary.extract(
            traceback.walk_tb(cur.__traceback__), capture_locals=True, lookup_lines=False
        )
        for frame in stack:
            if not test_frames and _is_test_file(frame.filename):
                continue
            if locals_of is not None and not _in_packages(frame.filename, locals_of):
                continue
            for var, value in (frame.locals or {}).items():
                out[f"chain[{i}] local {var!r} in {_short(frame.filename)}:{frame.lineno} {frame.name}()"] = value
        tag = f"chain[{i}]<{type(cur).__name__}>"
        out[f"{tag}.str"] = str(cur)
        out[f"{tag}.repr"] = repr(cur)
        out[f"{tag}.args"] = repr(cur.args)
        out[f"{tag}.__dict__"] = repr(getattr(cur, "__dict__", {}))
        notes = getattr(cur, "__notes__", None)
        if notes:
            out[f"{tag}.__notes__"] = repr(notes)
    try:
        out["pickle"] = pickle.dumps(exc).decode("latin-1")
    except Exception:
        pass  # an unpicklable error cannot be written out, which is fine
    return out


class LogCollector(logging.Handler):
    """A handler for the root logger keeping each record fully rendered (message, args,
    ``extra`` fields, traceback, stack), so a secret anywhere in a record is found."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            self.texts.append(self.format(record))
        except Exception as exc:  # a broken log call must not hide the rest
            self.texts.append(f"<format failed: {exc!r}> {record.msg!r}")
        self.texts.append(repr(record.args))
        extra = {k: v for k, v in vars(record).items() if k not in _STD_RECORD_KEYS}
        if extra:
            self.texts.append(repr(extra))

    def names(self) -> set[str]:
        return {r.name for r in self.records}

    def text(self) -> str:
        return "\n".join(self.texts)


class Leaks:
    """A set of canaries and the assertion that none of them (or a piece) shows up."""

    def __init__(self, *secrets: str) -> None:
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for s in secrets:
            if s and s not in self.secrets:
                self.secrets.append(s)

    def fragments(self) -> Iterator[tuple[str, str]]:
        for s in self.secrets:
            yield s, s
            if len(s) > 16:
                yield s, s[:12]
                yield s, s[-12:]

    def find(self, text: str) -> list[str]:
        """Which fragments occur in `text` (empty = clean)."""
        return [frag for _secret, frag in self.fragments() if frag in text]

    def check(self, where: str, text: str) -> None:
        found = self.find(text)
        if found:
            i = text.find(found[0])
            snippet = text[max(0, i - 160) : i + 60]
            raise AssertionError(f"secret fragment {found[0]!r} leaked into {where}: ...{snippet}...")

    def check_all(self, items: Iterable[tuple[str, str]]) -> None:
        for where, text in items:
            self.check(where, text)

    def check_obj(self, where: str, obj: Any) -> None:
        self.check(where, to_text(obj))

    def check_exc(
        self,
        where: str,
        exc: BaseException,
        *,
        locals_of: tuple[str, ...] | None = None,
        suppressed: bool = True,
    ) -> None:
        for name, text in exception_texts(exc, locals_of=locals_of, suppressed=suppressed).items():
            self.check(f"{where} {name}", text)
