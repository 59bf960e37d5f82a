"""The Kimi wire mapping both adapters share: request bodies in, completions and deltas out.

Adapters convert framework messages to *wire messages* (OpenAI chat dicts plus Kimi's
``reasoning_content``) and call :func:`build_request`; responses come back through
:class:`StreamAccumulator` (streaming) or :func:`parse_completion`. Kimi's request rules live
here once: flattened text content, no empty text, reasoning replayed on tool-call turns,
thinking vs forced ``tool_choice``, images inlined as data URLs, typed tool schemas.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalogue import ModelInfo, get_model_info
from .errors import ImageFetchError, ParameterError
from .schema import normalize_schema, normalize_tools

if TYPE_CHECKING:
    import httpx

# httpx is imported only when an image URL must be fetched, so importing the adapters (which
# import this module) stays cheap.

__all__ = [
    "DEFAULT_REASONING_PLACEHOLDER",
    "FORCED_TOOL_POLICIES",
    "SAMPLING_PARAMS",
    "BuiltRequest",
    "Completion",
    "StreamAccumulator",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "abuild_request",
    "build_request",
    "extract_usage",
    "is_forced_choice",
    "map_tool_choice",
    "needs_live_model_info",
    "normalize_response_format",
    "parse_completion",
    "parse_tool_arguments",
    "prepare_messages",
    "thinking_on",
    "thinking_param",
    "to_data_url",
    "tool_call_dict",
    "tool_calls_to_dicts",
    "usage_counts",
]

#: Sent as ``reasoning_content`` on an assistant tool-call turn that has none while thinking is
#: on. A single space, not ``""``: Kimi's check is "reasoning_content is missing", and a space
#: passes both a key-presence check and a non-empty check, while carrying no meaning. A
#: ``reasoning_content`` that *was* captured (``""`` included) is always replayed verbatim.
DEFAULT_REASONING_PLACEHOLDER = " "

FORCED_TOOL_POLICIES = ("disable_thinking", "auto", "error")

#: Sampling parameters both adapters expose; ``build_request`` sends each only when not None
#: (Kimi fixes them per model, so unset means "server default", never a client-side default).
SAMPLING_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "n", "seed")

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024


# --------------------------------------------------------------------------- data types


@dataclass(slots=True)
class Usage:
    """Token usage; ``input_tokens`` includes ``cache_read``, ``output_tokens`` includes
    ``reasoning_tokens`` (as Kimi counts them). ``raw`` is the server's usage dict."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int | None = None
    reasoning_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCall:
    """A finished tool call; ``arguments`` is the raw JSON text and ``id`` the server's, verbatim."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ToolCallDelta:
    """One streamed tool-call fragment, keyed by ``index`` (fields are per-chunk, not cumulative).

    ``id`` and ``name`` are set only on the fragment that first carries them, even when a server
    repeats them on every fragment, so concatenating deltas (as LangChain does) stays correct.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@dataclass(slots=True)
class StreamDelta:
    """What one SSE chunk added. ``reasoning`` may be ``""`` (meaningful): test ``is not None``."""

    reasoning: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None


@dataclass(slots=True)
class Completion:
    """A whole assistant turn (non-stream response, or a stream's accumulated result)."""

    id: str | None
    model: str | None
    content: str
    reasoning_content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage | None


@dataclass(slots=True)
class BuiltRequest:
    """A request body ready for ``Transport`` plus warnings for the adapter to surface.

    ``thinking_on``: whether thinking is effectively on for this request (after the forced-tool
    policy). ``tool_choice_relaxed``: a forced tool choice was downgraded to ``"auto"``, so the
    adapter should check that a tool call actually came back.
    """

    body: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    thinking_on: bool = False
    tool_choice_relaxed: bool = False


# --------------------------------------------------------------------------- usage


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _usage_from_dict(u: Mapping[str, Any]) -> Usage:
    prompt = _int(u.get("prompt_tokens")) or 0
    completion = _int(u.get("completion_tokens")) or 0
    total = _int(u.get("total_tokens"))
    cached = _int(u.get("cached_tokens"))
    if cached is None:
        details = u.get("prompt_tokens_details")
        if isinstance(details, Mapping):
            cached = _int(details.get("cached_tokens"))
    reasoning = None
    cdetails = u.get("completion_tokens_details")
    if isinstance(cdetails, Mapping):
        reasoning = _int(cdetails.get("reasoning_tokens"))
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=total if total is not None else prompt + completion,
        cache_read=cached,
        reasoning_tokens=reasoning,
        raw=u if isinstance(u, dict) else dict(u),
    )


def extract_usage(chunk_or_response: Mapping[str, Any]) -> Usage | None:
    """Usage from top-level ``usage`` or Moonshot's ``choices[0].usage``; None when absent."""
    u = chunk_or_response.get("usage")
    if not isinstance(u, Mapping):
        choices = chunk_or_response.get("choices")
        if not choices or not isinstance(choices, list):
            return None
        first = choices[0]
        u = first.get("usage") if isinstance(first, Mapping) else None
        if not isinstance(u, Mapping):
            return None
    return _usage_from_dict(u)


def usage_counts(usage: Usage) -> dict[str, int]:
    """``Usage`` as OpenAI-style counts (``prompt_tokens``/``completion_tokens``/``total_tokens``
    plus ``cached_tokens``/``reasoning_tokens`` when known), the shape token counters read."""
    out = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read is not None:
        out["cached_tokens"] = usage.cache_read
    if usage.reasoning_tokens is not None:
        out["reasoning_tokens"] = usage.reasoning_tokens
    return out


# --------------------------------------------------------------------------- tool-call dicts


def tool_call_dict(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """One OpenAI-style tool-call dict; non-string ``arguments`` are JSON-encoded (None -> ``{}``)
    so framework argument dicts and raw JSON text give the same wire shape."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_calls_to_dicts(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Finished :class:`ToolCall`s as OpenAI-style dicts (ids and argument text verbatim)."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


# --------------------------------------------------------------------------- streaming


class _CallState:
    """Accumulating state of one tool call (argument fragments joined once, at the end)."""

    __slots__ = ("id", "name", "parts")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []


def _synth_id(name: str, index: int) -> str:
    # Kimi's native id shape, for the rare stream that never sends an id.
    return f"functions.{name}:{index}"


class StreamAccumulator:
    """Folds Kimi SSE chunks into deltas and, at the end, one :class:`Completion`.

    Per-chunk work is O(size of the chunk): fragments are appended to lists and joined once in
    :meth:`result`. Tool calls are merged by ``index`` (any number per chunk, interleaved, id or
    name arriving late, argument fragments before the name).
    """

    __slots__ = ("_calls", "_content", "_reasoning", "finish_reason", "id", "model", "usage")

    def __init__(self) -> None:
        self._reasoning: list[str] | None = None
        self._content: list[str] = []
        self._calls: dict[int, _CallState] = {}
        self.id: str | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def feed(self, chunk: Mapping[str, Any]) -> StreamDelta:
        """Apply one chunk dict; return what it added."""
        out = StreamDelta()
        cid = chunk.get("id")
        if cid is not None:
            out.id = cid
            if self.id is None:
                self.id = cid
        model = chunk.get("model")
        if model is not None:
            out.model = model
            if self.model is None:
                self.model = model
        u = chunk.get("usage")
        choices = chunk.get("choices")
        if choices:
            ch = choices[0]
            delta = ch.get("delta")
            if delta:
                r = delta.get("reasoning_content")
                if r is None:
                    r = delta.get("reasoning")
                if r is not None:
                    out.reasoning = r
                    if self._reasoning is None:
                        self._reasoning = [r]
                    else:
                        self._reasoning.append(r)
                c = delta.get("content")
                if c is not None:
                    out.content = c
                    if c:
                        self._content.append(c)
                tcs = delta.get("tool_calls")
                if tcs:
                    out.tool_calls = self._feed_tool_calls(tcs)
            fr = ch.get("finish_reason")
            if fr is not None:
                out.finish_reason = fr
                self.finish_reason = fr
            if u is None:
                u = ch.get("usage")
        if u is not None and isinstance(u, Mapping):
            usage = _usage_from_dict(u)
            out.usage = usage
            self.usage = usage
        return out

    def _feed_tool_calls(self, tcs: Sequence[Mapping[str, Any]]) -> list[ToolCallDelta]:
        calls = self._calls
        deltas: list[ToolCallDelta] = []
        for tc in tcs:
            tid = tc.get("id") or None
            idx = tc.get("index")
            if not isinstance(idx, int):
                idx = self._guess_index(tid)
            state = calls.get(idx)
            if state is None:
                state = calls[idx] = _CallState()
            if tid is not None:
                if state.id is None:
                    state.id = tid
                else:
                    tid = None  # already reported
            fn = tc.get("function")
            name = args = None
            if fn:
                name = fn.get("name") or None
                if name is not None:
                    if state.name is None:
                        state.name = name
                    else:
                        name = None  # already reported
                args = fn.get("arguments")
                if args:
                    if not isinstance(args, str):  # some servers send an object
                        args = json.dumps(args, ensure_ascii=False)
                    state.parts.append(args)
                else:
                    args = None
            deltas.append(ToolCallDelta(idx, tid, name, args))
        return deltas

    def _guess_index(self, tid: str | None) -> int:
        """Index for a fragment without ``index`` (non-conforming servers)."""
        calls = self._calls
        if not calls:
            return 0
        if tid is not None:
            for i, st in calls.items():
                if st.id == tid:
                    return i
            return max(calls) + 1
        return max(calls)

    @property
    def reasoning(self) -> str | None:
        """Reasoning so far (``""`` if the server sent only empty reasoning, None if none)."""
        return None if self._reasoning is None else "".join(self._reasoning)

    @property
    def content(self) -> str:
        """Visible text so far."""
        return "".join(self._content)

    def synthesized_ids(self) -> dict[int, str]:
        """``index -> id`` for the calls whose id the stream never sent (the ids
        :meth:`tool_calls` uses for them), so an adapter that streamed id-less fragments can
        report the final id once."""
        return {
            idx: _synth_id(st.name or "", idx) for idx, st in self._calls.items() if st.id is None
        }

    def tool_calls(self) -> list[ToolCall]:
        """Tool calls so far, ordered by index; ids missing from the stream are synthesised."""
        out: list[ToolCall] = []
        for idx in sorted(self._calls):
            st = self._calls[idx]
            name = st.name or ""
            parts = st.parts
            args = "".join(parts)
            if len(parts) > 1:
                # Collapse: a caller reading the calls after every chunk (LlamaIndex's cumulative
                # responses) then joins two strings, not every fragment so far (quadratic).
                parts[:] = [args]
            out.append(ToolCall(st.id or _synth_id(name, idx), name, args))
        return out

    def result(self) -> Completion:
        """The accumulated turn; may be called more than once."""
        return Completion(
            id=self.id,
            model=self.model,
            content="".join(self._content),
            reasoning_content=self.reasoning,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage,
        )


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or ""
            for p in content
            if isinstance(p, Mapping) and p.get("type") in ("text", None)
        )
    return str(content)


def parse_completion(data: Mapping[str, Any]) -> Completion:
    """Parse a non-streaming ``chat.completion`` response body."""
    choices = data.get("choices") or []
    msg: Mapping[str, Any] = {}
    finish = None
    if choices and isinstance(choices[0], Mapping):
        msg = choices[0].get("message") or {}
        finish = choices[0].get("finish_reason")
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")
    calls: list[ToolCall] = []
    for i, tc in enumerate(msg.get("tool_calls") or []):
        fn = tc.get("function") or {}
        name = fn.get("name") or ""
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append(ToolCall(tc.get("id") or _synth_id(name, i), name, args))
    return Completion(
        id=data.get("id"),
        model=data.get("model"),
        content=_text_of(msg.get("content")),
        reasoning_content=reasoning if isinstance(reasoning, str) else None,
        tool_calls=calls,
        finish_reason=finish,
        usage=extract_usage(data),
    )


def parse_tool_arguments(arguments: str | None) -> dict[str, Any]:
    """Decode a tool call's JSON ``arguments`` (empty means no arguments).

    Raises ``ValueError`` saying what was wrong when the text is not a JSON object, so adapters
    can report an invalid tool call instead of crashing.
    """
    if arguments is None or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool call arguments are not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"tool call arguments must be a JSON object, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- images

_http_client: httpx.Client | None = None
_http_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str | None, int], str] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_ENTRIES = 16
_CACHE_BYTES = 64 * 1024 * 1024


def _client() -> httpx.Client:
    global _http_client
    if _http_client is None:
        with _http_lock:
            if _http_client is None:
                import httpx

                _http_client = httpx.Client(follow_redirects=True)
    return _http_client


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _pick_mime(data: bytes, mime: str | None, header: str | None, where: str) -> str:
    if mime:
        return mime
    sniffed = _sniff(data)
    if sniffed:
        return sniffed
    if header:
        ctype = header.split(";", 1)[0].strip().lower()
        if ctype.startswith("image/"):
            return ctype
    raise ImageFetchError(
        f"{where} is not a recognised image (png, jpeg, gif or webp); pass mime= if it is one."
    )


def _encode(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _too_big(where: str, size: int, max_bytes: int) -> ImageFetchError:
    return ImageFetchError(
        f"{where} is {size} bytes, over the {max_bytes}-byte image limit; "
        "resize it or raise max_bytes."
    )


def _shown(url: str) -> str:
    """The URL for error messages: no credentials or query string (signed URLs carry secrets)."""
    import httpx

    try:
        u = httpx.URL(url)
        return str(u.copy_with(userinfo=b"", query=None, fragment=None))
    except Exception:
        return "<the image URL>"


def _fetch(url: str, mime: str | None, max_bytes: int, timeout: float) -> str:
    import httpx

    shown = _shown(url)
    try:
        with _client().stream("GET", url, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise ImageFetchError(
                    f"Fetching the image {shown} returned HTTP {resp.status_code}; "
                    "check the URL or pass the image bytes instead."
                )
            header = resp.headers.get("content-type")
            ctype = (header or "").split(";", 1)[0].strip().lower()
            if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
                raise ImageFetchError(
                    f"The URL {shown} served {ctype!r}, not an image; "
                    "point it at an image file (png, jpeg, gif, webp)."
                )
            length = resp.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _too_big(f"The image at {shown}", int(length), max_bytes)
            buf = bytearray()
            for block in resp.iter_bytes():
                buf += block
                if len(buf) > max_bytes:
                    raise _too_big(f"The image at {shown}", len(buf), max_bytes)
    except httpx.HTTPError as exc:
        raise ImageFetchError(
            f"Could not fetch the image {shown}: {type(exc).__name__}: "
            f"{str(exc).replace(url, shown)}; "
            "check the URL and your network, or pass the image bytes instead."
        ) from None
    data = bytes(buf)
    return _encode(data, _pick_mime(data, mime, header, f"The content at {shown}"))


def to_data_url(
    source: bytes | bytearray | memoryview | str | os.PathLike[str],
    mime: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    timeout: float = 30.0,
) -> str:
    """Return ``data:<mime>;base64,...`` for image bytes, a data URL (returned as is), an http(s)
    URL (fetched, redirects followed, must be an image within ``max_bytes``), a ``file://`` URL
    or a local path. The mime type is sniffed from magic bytes when not given.

    Raises :class:`ImageFetchError` (a ``ValueError``) when the image cannot be used.
    Fetched URLs are cached (small LRU) because agent loops resend the same history every turn.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_big("The image", len(data), max_bytes)
        return _encode(data, _pick_mime(data, mime, None, "The given bytes"))
    if isinstance(source, str):
        if source.startswith("data:"):
            return source
        low = source[:8].lower()
        if low.startswith(("http://", "https://")):
            key = (source, mime, max_bytes)
            with _cache_lock:
                hit = _cache.get(key)
                if hit is not None:
                    _cache.move_to_end(key)
                    return hit
            url = _fetch(source, mime, max_bytes, timeout)
            with _cache_lock:
                _cache[key] = url
                total = sum(len(v) for v in _cache.values())
                while len(_cache) > _CACHE_ENTRIES or (total > _CACHE_BYTES and len(_cache) > 1):
                    _, old = _cache.popitem(last=False)
                    total -= len(old)
            return url
        if low.startswith("file://"):
            source = source[7:]
        elif "://" in source[:16]:
            raise ImageFetchError(
                f"Unsupported image URL scheme in {source[:40]!r}; use http(s), file, data: "
                "or a local path."
            )
    path = Path(os.fspath(source))
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(f"The image file {path}", size, max_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise ImageFetchError(
            f"Could not read the image file {path}: {exc.strerror or exc}; check the path."
        ) from None
    if mime is None and _sniff(data) is None:
        guessed = mimetypes.guess_type(path.name)[0]
        if guessed and guessed.startswith("image/"):
            mime = guessed
    return _encode(data, _pick_mime(data, mime, None, f"The file {path}"))


# --------------------------------------------------------------------------- messages

_TEXT = "text"
_IMAGE = "image_url"


def _image_part(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, Mapping) else spec
    if not isinstance(url, (str, bytes, bytearray)) or not url:
        raise ValueError(f"{where}: an image_url part has no url; give image_url.url.")
    keep = isinstance(url, str) and url.startswith(("data:", "ms://"))
    final = url if keep else to_data_url(url)
    out: dict[str, Any] = {"url": final}
    if isinstance(spec, Mapping) and spec.get("id") is not None:
        out["id"] = spec["id"]
    return {"type": _IMAGE, "image_url": out}


def _content_parts(content: Any, where: str, *, images: bool) -> tuple[str, list[dict[str, Any]]]:
    """Return (joined text, []) for text-only content, or ("", parts) when media is present
    (the full part list in order, empty text parts dropped, images as data URLs)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        if isinstance(content, (Mapping, int, float, bool)):
            return json.dumps(content, ensure_ascii=False), []
        return str(content), []
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    media = False
    for p in content:
        if isinstance(p, str):
            if p:
                texts.append(p)
                parts.append({"type": _TEXT, "text": p})
            continue
        if not isinstance(p, Mapping):
            raise ValueError(f"{where}: content part {p!r} is not a dict or string.")
        kind = p.get("type")
        if kind == _TEXT:
            t = p.get("text")
            if t:
                texts.append(t)
                parts.append({"type": _TEXT, "text": t})
        elif kind == _IMAGE:
            if not images:
                raise ValueError(
                    f"{where}: this model does not accept images; remove the image or pick a "
                    "model with image input."
                )
            media = True
            parts.append(_image_part(p, where))
        elif kind == "video_url":
            media = True
            parts.append({"type": "video_url", "video_url": dict(p.get("video_url") or {})})
        else:
            raise ValueError(
                f"{where}: unsupported content part type {kind!r}; wire messages take 'text', "
                "'image_url' and 'video_url' parts (adapters convert the rest)."
            )
    if media:
        return "", parts
    return "".join(texts), []


def _tool_call(tc: Mapping[str, Any], where: str) -> dict[str, Any]:
    fn = tc.get("function")
    if isinstance(fn, Mapping):
        name, args = fn.get("name"), fn.get("arguments")
    else:  # tolerate the flat {"id","name","args"} shape frameworks use
        name, args = tc.get("name"), tc.get("arguments", tc.get("args"))
    tid = tc.get("id")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a tool call has no function name.")
    if not isinstance(tid, str) or not tid:
        raise ValueError(
            f"{where}: tool call {name!r} has no id; keep the id the server returned "
            "(it must match the tool message's tool_call_id)."
        )
    if args is None or args == "":
        args = "{}"
    elif not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    return {"type": "function", "id": tid, "function": {"name": name, "arguments": args}}


_PASSTHROUGH_KEYS = ("name", "partial")


def _prepare(
    messages: Sequence[Mapping[str, Any]],
    thinking_on: bool,
    placeholder: str,
    images: bool,
    warnings: list[str],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i} is {type(m).__name__}, not a dict with 'role'.")
        role = m.get("role")
        where = f"message {i} ({role})"
        if role == "developer":
            role = "system"
        msg: dict[str, Any]
        if role in ("system", "user"):
            text, parts = _content_parts(m.get("content"), where, images=images)
            if parts:
                msg = {"role": role, "content": parts}
            elif text:
                msg = {"role": role, "content": text}
            elif role == "system":
                warnings.append(f"{where}: empty system message dropped (Kimi rejects empty text).")
                continue
            else:
                raise ValueError(
                    f"{where} has no content; Kimi rejects empty text. Remove the message or "
                    "give it text."
                )
        elif role == "assistant":
            text, parts = _content_parts(m.get("content"), where, images=images)
            raw_calls = m.get("tool_calls") or []
            calls = [_tool_call(tc, where) for tc in raw_calls]
            reasoning = m.get("reasoning_content")
            if not text and not parts and not calls:
                warnings.append(
                    f"{where}: assistant message without text or tool calls dropped "
                    "(Kimi rejects empty assistant messages)."
                )
                continue
            msg = {"role": "assistant"}
            if parts:
                msg["content"] = parts
            elif text:
                msg["content"] = text
            # tool-call turn without text: the content key is omitted ("text content is empty")
            if reasoning is not None:
                msg["reasoning_content"] = reasoning if isinstance(reasoning, str) else str(
                    reasoning
                )
            elif calls and thinking_on:
                msg["reasoning_content"] = placeholder
            if calls:
                msg["tool_calls"] = calls
        elif role == "tool":
            tcid = m.get("tool_call_id")
            if not isinstance(tcid, str) or not tcid:
                raise ValueError(
                    f"{where} has no tool_call_id; set it to the id of the tool call it answers."
                )
            text, parts = _content_parts(m.get("content"), where, images=images)
            if parts:
                msg = {"role": "tool", "tool_call_id": tcid, "content": parts}
            else:
                # An empty tool result would be rejected as empty text; say so explicitly.
                msg = {"role": "tool", "tool_call_id": tcid, "content": text or "(no output)"}
        else:
            raise ValueError(
                f"message {i} has unsupported role {role!r}; use system, user, assistant or tool."
            )
        for key in _PASSTHROUGH_KEYS:
            if key in m and m[key] is not None and role != "tool":
                msg[key] = m[key]
        out.append(msg)
    return out


def prepare_messages(
    messages: Sequence[Mapping[str, Any]],
    *,
    thinking_on: bool,
    reasoning_placeholder: str = DEFAULT_REASONING_PLACEHOLDER,
    images: bool = True,
) -> list[dict[str, Any]]:
    """Apply Kimi's request rules to wire messages (returns new dicts; input is not mutated).

    Text-only part lists become one string (empty parts dropped); tool-call turns without text
    omit ``content``; captured ``reasoning_content`` (``""`` included) is replayed verbatim and
    a tool-call turn without it gets ``reasoning_placeholder`` while thinking is on; ``developer``
    becomes ``system``; http(s)/path images become data URLs; empty system messages and
    assistant turns with neither text nor tool calls are dropped; an empty tool result is sent
    as ``"(no output)"``. ``images=False`` rejects image parts with a clear error.
    """
    return _prepare(messages, thinking_on, reasoning_placeholder, images, [])


# --------------------------------------------------------------------------- thinking


def _info_thinking(info: ModelInfo | None) -> str:
    return info.thinking if info is not None else "both"


def thinking_on(thinking: bool | None, info: ModelInfo | None) -> bool:
    """Whether the model will think: ``"only"`` always, ``"no"`` never, else on unless False
    (the server default is on)."""
    kind = _info_thinking(info)
    if kind == "only":
        return True
    if kind == "no":
        return False
    return thinking is not False


def thinking_param(
    thinking: bool | None, effort: str | None, info: ModelInfo | None
) -> dict[str, Any] | None:
    """The top-level ``thinking`` body field, or None to leave the server default.

    Raises ``ValueError`` for combinations the model cannot honour (disabling an always-thinking
    model, enabling a non-thinking one, an effort level it does not list).
    """
    kind = _info_thinking(info)
    name = info.id if info is not None else "this model"
    if effort is not None:
        if thinking is False:
            raise ParameterError(
                f"{{effort={effort!r}}} needs thinking; drop {{effort}} or {{thinking=False}}."
            )
        if kind == "no":
            raise ParameterError(f"{name} does not think, so {{effort={effort!r}}} cannot apply.")
        if info is not None and info.known:
            if not info.efforts:
                raise ParameterError(
                    f"{name} has no effort levels; drop {{effort}} ({{thinking=True}} enables "
                    "thinking)."
                )
            if effort not in info.efforts:
                raise ParameterError(
                    f"{{effort={effort!r}}} is not valid for {name}; valid: {', '.join(info.efforts)}."
                )
    if thinking is None:
        return {"type": "enabled", "effort": effort} if effort is not None else None
    if thinking:
        if kind == "no":
            raise ParameterError(f"{name} does not support thinking; drop {{thinking=True}}.")
        out: dict[str, Any] = {"type": "enabled"}
        if effort is not None:
            out["effort"] = effort
        return out
    if kind == "only":
        raise ParameterError(
            f"{name} always thinks and rejects thinking disabled; drop {{thinking=False}} or use "
            "a model that can turn thinking off."
        )
    if kind == "no":
        return None  # nothing to disable
    return {"type": "disabled"}


# --------------------------------------------------------------------------- request


def map_tool_choice(tool_choice: Any) -> Any:
    """Map framework tool-choice values to Kimi's: a tool name -> named function choice,
    ``"any"``/``"required"``/True -> ``"required"``, ``"auto"``/``"none"``/dict unchanged,
    None/False -> None (omitted) / ``"none"``."""
    if tool_choice is None:
        return None
    if tool_choice is True:
        return "required"
    if tool_choice is False:
        return "none"
    if isinstance(tool_choice, str):
        if tool_choice in ("auto", "none", "required"):
            return tool_choice
        if tool_choice == "any":
            return "required"
        return {"type": "function", "function": {"name": tool_choice}}
    if isinstance(tool_choice, Mapping):
        if tool_choice.get("type") == "function" and "function" not in tool_choice \
                and isinstance(tool_choice.get("name"), str):
            return {"type": "function", "function": {"name": tool_choice["name"]}}
        return dict(tool_choice)
    raise ValueError(
        f"tool_choice {tool_choice!r} is not understood; use 'auto', 'none', 'required', a tool "
        "name, or {'type': 'function', 'function': {'name': ...}}."
    )


def _is_forced(choice: Any) -> bool:
    return choice == "required" or (isinstance(choice, Mapping) and choice.get("type") in (
        "function", "builtin_function"))


def is_forced_choice(tool_choice: Any) -> bool:
    """True when ``tool_choice`` (framework or Kimi form) forces a tool call: ``"required"``,
    ``"any"``, True, a tool name or a named-function dict. Not-understood values are False
    (``build_request`` reports them)."""
    try:
        return _is_forced(map_tool_choice(tool_choice))
    except ValueError:
        return False


def _has_media(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(p, Mapping) and p.get("type") not in (_TEXT, None) for p in content
    )


def needs_live_model_info(
    messages: Sequence[Mapping[str, Any]],
    *,
    thinking: bool | None = None,
    effort: str | None = None,
    tool_choice: Any = None,
) -> bool:
    """Whether a request depends on the live ``/models`` entry (thinking mode, effort levels, a
    forced tool choice's thinking rules, image input); plain requests skip that lookup."""
    return (
        thinking is not None
        or effort is not None
        or is_forced_choice(tool_choice)
        or any(isinstance(m, Mapping) and _has_media(m.get("content")) for m in messages)
    )


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def normalize_response_format(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """A ``response_format`` in Kimi's dialect (a new dict; the input is not mutated).

    ``json_schema`` formats get the schema normalised like tool parameters (refs inlined, every
    property typed), ``$schema`` dropped (Moonshot rejects it) and the name made safe
    (``[A-Za-z0-9_-]``, <= 64 chars; from the schema title when absent). Other types pass as is.
    """
    if not isinstance(response_format, Mapping):
        raise ValueError(
            f"response_format must be a dict such as {{'type': 'json_object'}}, got "
            f"{type(response_format).__name__}."
        )
    out = dict(response_format)
    if out.get("type") != "json_schema":
        return out
    spec = out.get("json_schema")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
        raise ValueError(
            "response_format type 'json_schema' needs json_schema.schema (a JSON-schema object); "
            "pass {'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}."
        )
    schema = spec["schema"]
    try:
        wire_schema = normalize_schema(schema)
    except ValueError as exc:
        raise ValueError(f"response_format json_schema: {exc}") from None
    wire_schema.pop("$schema", None)
    name = spec.get("name") or schema.get("title") or "response"
    new_spec = dict(spec)
    new_spec["name"] = _NAME_UNSAFE.sub("_", str(name))[:64]
    new_spec["schema"] = wire_schema
    if not new_spec.get("description") and isinstance(schema.get("description"), str) \
            and schema["description"]:
        new_spec["description"] = schema["description"]
    out["json_schema"] = new_spec
    return out


def _has_remote_images(messages: Sequence[Mapping[str, Any]]) -> bool:
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list):
            for p in content:
                if isinstance(p, Mapping) and p.get("type") == _IMAGE:
                    spec = p.get("image_url")
                    url = spec.get("url") if isinstance(spec, Mapping) else spec
                    if not (isinstance(url, str) and url.startswith(("data:", "ms://"))):
                        return True
    return False


def build_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    thinking: bool | None = None,
    effort: str | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    include_usage: bool = True,
    stop: str | Sequence[str] | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: Mapping[str, Any] | None = None,
    forced_tool_policy: str = "disable_thinking",
    model_info: ModelInfo | None = None,
    extra: Mapping[str, Any] | None = None,
    reasoning_placeholder: str = DEFAULT_REASONING_PLACEHOLDER,
    **sampling: Any,
) -> BuiltRequest:
    """Build a Kimi ``/chat/completions`` body (see module doc for the rules applied).

    ``forced_tool_policy`` decides what happens when the tool choice is forced (``"required"``
    or a named tool) while thinking would be on, which Kimi rejects: ``"disable_thinking"``
    (default) sends ``thinking: disabled`` for this request when the model allows it, else falls
    back to ``"auto"`` with a warning; ``"auto"`` always falls back with a warning; ``"error"``
    raises ``ValueError``. Sampling kwargs are sent only when not None; ``extra`` is merged last.
    """
    if forced_tool_policy not in FORCED_TOOL_POLICIES:
        raise ValueError(
            f"forced_tool_policy={forced_tool_policy!r}; use one of {', '.join(FORCED_TOOL_POLICIES)}."
        )
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty model id such as 'kimi-for-coding'.")
    info = model_info if model_info is not None else get_model_info(model)
    warnings: list[str] = []

    norm_tools = normalize_tools(list(tools) if tools else None)
    if norm_tools and not info.supports_tool_use:
        warnings.append(f"{model} is not listed as supporting tools; sending them anyway.")
    choice = map_tool_choice(tool_choice)
    relaxed = False
    if choice is not None and not norm_tools:
        if _is_forced(choice):
            raise ValueError(
                f"tool_choice={tool_choice!r} forces a tool call but no tools were given; "
                "pass tools= or drop tool_choice."
            )
        choice = None  # Kimi rejects tool_choice without tools; nothing to choose from
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        wanted = (choice.get("function") or {}).get("name")
        names = [t["function"]["name"] for t in norm_tools]
        if wanted not in names:
            raise ValueError(
                f"tool_choice names {wanted!r}, which is not among the tools ({', '.join(names)})."
            )

    tparam = thinking_param(thinking, effort, info)
    on = thinking_on(thinking, info)
    if choice is not None and _is_forced(choice) and on:
        if forced_tool_policy == "error":
            raise ParameterError(
                f"Kimi rejects a forced tool_choice while thinking is on ({model}); pass "
                "{thinking=False}, {tool_choice='auto'}, or {forced_tool_choice='disable_thinking'}."
            )
        if forced_tool_policy == "disable_thinking" and info.thinking != "only":
            tparam = {"type": "disabled"}
            on = False
            if thinking or effort is not None:
                warnings.append(
                    "thinking was disabled for this request because a tool call is forced "
                    "(Kimi rejects forced tool_choice while thinking)."
                )
        else:
            choice = "auto"
            relaxed = True
            why = "always thinks" if info.thinking == "only" else "is thinking"
            warnings.append(
                f"tool_choice {tool_choice!r} was relaxed to 'auto' because {model} {why} and "
                "Kimi rejects a forced tool_choice while thinking; the model may answer "
                "without calling the tool."
            )

    if extra and isinstance(extra.get("thinking"), Mapping):
        # An explicit override wins; the placeholder rule must follow what is actually sent.
        t = extra["thinking"].get("type")
        if t == "disabled":
            on = False
        elif t == "enabled":
            on = True

    prepared = _prepare(
        messages, on, reasoning_placeholder, info.supports_image_in or not info.known, warnings
    )
    if not prepared:
        raise ValueError("There are no messages to send; pass at least one user message.")
    body: dict[str, Any] = {"model": model, "messages": prepared}
    if norm_tools:
        body["tools"] = norm_tools
    if choice is not None:
        body["tool_choice"] = choice
    if tparam is not None:
        body["thinking"] = tparam
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ParameterError(f"{{max_tokens={max_tokens!r}}} is not a positive integer.")
        body["max_completion_tokens"] = max_tokens
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    if stop:
        body["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if parallel_tool_calls is not None and norm_tools:
        body["parallel_tool_calls"] = parallel_tool_calls
    if response_format is not None:
        body["response_format"] = normalize_response_format(response_format)
    for key, value in sampling.items():
        if value is not None:
            body[key] = value
    if extra:
        body.update(extra)
    return BuiltRequest(body, warnings, on, relaxed)


async def abuild_request(model: str, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> (
    BuiltRequest
):
    """:func:`build_request` for async code: runs in a thread only when remote images must be
    fetched, so the event loop never blocks on the network."""
    if _has_remote_images(messages):
        return await asyncio.to_thread(build_request, model, messages, **kwargs)
    return build_request(model, messages, **kwargs)
