"""OpenAI-route decoding: ``chat.completion`` bodies and ``chat.completion.chunk`` events.

:class:`StreamAccumulator` folds chunks into neutral :class:`~kimi_coder_auth.neutral.StreamDelta`
values and one :class:`~kimi_coder_auth.neutral.Completion`; per-chunk work stays O(chunk).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import MalformedResponseError
from ..neutral import Completion, StreamDelta, ToolCall, ToolCallDelta, Usage

__all__ = [
    "StreamAccumulator",
    "extract_usage",
    "merge_reasoning_details",
    "parse_completion",
    "replay_reasoning_details",
]


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


class _CallState:
    """Accumulating state of one tool call (argument fragments joined once, at the end)."""

    __slots__ = ("id", "name", "parts")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []


def _malformed(what: str) -> MalformedResponseError:
    """The typed error for a chunk or body that is not a well-formed chat completion."""
    return MalformedResponseError(
        f"The server sent a malformed chat completion: {what}. The answer was discarded."
    )


def _shape_problem(choices: Any, exc: Exception) -> str:
    """What is wrong with a chunk's ``choices`` (the slow path, only after a shape error)."""
    if not isinstance(choices, list):
        return f"'choices' is a {type(choices).__name__}, not a list"
    ch = choices[0]
    if not isinstance(ch, Mapping):
        return f"choices[0] is {type(ch).__name__}, not an object"
    delta = ch.get("delta")
    if delta and not isinstance(delta, Mapping):
        return f"'delta' is a {type(delta).__name__}, not an object"
    tcs = delta.get("tool_calls") if isinstance(delta, Mapping) else None
    if tcs and not isinstance(tcs, list):
        return "'tool_calls' is not a list"
    for tc in tcs or ():
        if not isinstance(tc, Mapping):
            return f"a tool-call fragment is a {type(tc).__name__}, not an object"
        if tc.get("function") and not isinstance(tc.get("function"), Mapping):
            return "a tool-call fragment's 'function' is not an object"
    return f"a chunk of an unexpected shape ({type(exc).__name__})"


def _unnamed(index: int) -> str:
    return f"the server sent arguments for tool call #{index} but never its name"


def _synth_id(name: str, index: int) -> str:
    # Kimi's native id shape, for the rare stream that never sends an id.
    return f"functions.{name}:{index}"


class StreamAccumulator:
    """Folds Kimi SSE chunks into deltas and, at the end, one :class:`Completion`.

    Per-chunk work is O(size of the chunk): fragments are appended to lists and joined once in
    :meth:`result`. Tool calls are merged by ``index`` (any number per chunk, interleaved, id or
    name arriving late, argument fragments before the name).
    """

    __slots__ = (
        "_calls", "_content", "_details", "_reasoning", "finish_reason", "id", "model", "usage"
    )

    def __init__(self) -> None:
        self._reasoning: list[str] | None = None
        self._details: dict[int, dict[str, Any]] | None = None
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
            try:  # free unless raised: shape errors surface as AttributeError/TypeError/KeyError
                ch = choices[0]
                delta = ch.get("delta")
                if delta:
                    r = delta.get("reasoning_content")
                    if r is None:
                        r = delta.get("reasoning")
                    if r is not None:
                        if type(r) is not str and not isinstance(r, str):
                            raise _malformed(f"reasoning content is a {type(r).__name__}, not a string")
                        out.reasoning = r
                        if self._reasoning is None:
                            self._reasoning = [r]
                        else:
                            self._reasoning.append(r)
                    rd = delta.get("reasoning_details")
                    if rd and isinstance(rd, list):
                        out.reasoning_details = rd
                        if self._details is None:
                            self._details = {}
                        _fold_reasoning_details(self._details, rd)
                    c = delta.get("content")
                    if c is not None:
                        if type(c) is not str and not isinstance(c, str):
                            raise _malformed(f"'content' is a {type(c).__name__}, not a string")
                        out.content = c
                        if c:
                            self._content.append(c)
                    tcs = delta.get("tool_calls")
                    if tcs:
                        out.tool_calls = self._feed_tool_calls(tcs)
                fr = ch.get("finish_reason")
            except (AttributeError, TypeError, KeyError) as exc:
                raise _malformed(_shape_problem(choices, exc)) from None
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

    def reasoning_details(self) -> list[dict[str, Any]] | None:
        """``reasoning_details`` merged so far, ordered by index, in replay form (no ``index``)."""
        if self._details is None:
            return None
        return [_joined(self._details[i]) for i in sorted(self._details)]

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
            error = None if st.name else _unnamed(idx)
            out.append(ToolCall(st.id or _synth_id(name, idx), name, args, error))
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
            reasoning_details=self.reasoning_details(),
        )


#: ``reasoning_details`` fields whose streamed fragments are concatenated (others: first wins).
_DETAIL_TEXT_KEYS = frozenset(("summary", "text", "encrypted", "data"))


class _Parts(list):  # type: ignore[type-arg]
    """The streamed fragments of one text field, joined when read (not one copy per fragment)."""

    __slots__ = ()


def _fold_reasoning_details(merged: dict[int, dict[str, Any]], entries: Sequence[Any]) -> None:
    """`merge_reasoning_details`, keeping each text field's fragments in a `_Parts` list."""
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        idx = entry.get("index")
        if not isinstance(idx, int) or isinstance(idx, bool):
            idx = (max(merged) + 1) if merged else 0
        state = merged.get(idx)
        if state is None:
            state = merged[idx] = {}
        for key, value in entry.items():
            if key == "index" or value is None:
                continue
            old = state.get(key)
            if old is None:
                state[key] = _Parts((value,)) if key in _DETAIL_TEXT_KEYS and isinstance(value, str) else value
            elif key in _DETAIL_TEXT_KEYS and isinstance(value, str):
                if type(old) is _Parts:
                    old.append(value)
                elif isinstance(old, str):
                    state[key] = _Parts((old, value))


def _joined(state: dict[str, Any]) -> dict[str, Any]:
    """One merged entry with its text fields joined; the fragments collapse to the joined text,
    so reading the entries after every chunk stays linear in what arrived since."""
    out = {}
    for key, value in state.items():
        if type(value) is _Parts:
            text = "".join(value)
            if len(value) > 1:
                value[:] = (text,)
            value = text
        out[key] = value
    return out


def merge_reasoning_details(
    merged: dict[int, dict[str, Any]], entries: Sequence[Any]
) -> None:
    """Fold streamed ``reasoning_details`` entries into ``merged`` by their ``index`` (summary
    and encrypted text concatenated); the ``index`` itself is dropped, as the service rejects a
    replay that carries it. Entries without an index start a new one."""
    _fold_reasoning_details(merged, entries)
    for idx, state in merged.items():
        merged[idx] = _joined(state)


def replay_reasoning_details(details: Any) -> list[dict[str, Any]] | None:
    """``reasoning_details`` in the form the service accepts back: entries without ``index``
    (fragments sharing an index merged), None when there are none."""
    if not isinstance(details, list) or not details:
        return None
    merged: dict[int, dict[str, Any]] = {}
    merge_reasoning_details(merged, details)
    return [merged[i] for i in sorted(merged)] or None


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
    """Parse a non-streaming ``chat.completion`` response body.

    Raises `MalformedResponseError` for a body without a usable first choice (``{"choices":
    []}``, ``[null]``, a message that is not an object): an empty answer is never invented.
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _malformed("the answer has no choices")
    if not isinstance(choices[0], Mapping):
        raise _malformed(f"choices[0] is {type(choices[0]).__name__}, not an object")
    msg = choices[0].get("message") or {}
    if not isinstance(msg, Mapping):
        raise _malformed(f"the message is a {type(msg).__name__}, not an object")
    finish = choices[0].get("finish_reason")
    reasoning = msg.get("reasoning_content")
    if reasoning is None:
        reasoning = msg.get("reasoning")
    calls: list[ToolCall] = []
    for i, tc in enumerate(msg.get("tool_calls") or []):
        if not isinstance(tc, Mapping) or not isinstance(tc.get("function") or {}, Mapping):
            raise _malformed("a tool call is not an object")
        fn = tc.get("function") or {}
        name = fn.get("name") or ""
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append(
            ToolCall(tc.get("id") or _synth_id(name, i), name, args, None if name else _unnamed(i))
        )
    return Completion(
        id=data.get("id"),
        model=data.get("model"),
        content=_text_of(msg.get("content")),
        reasoning_content=reasoning if isinstance(reasoning, str) else None,
        tool_calls=calls,
        finish_reason=finish,
        usage=extract_usage(data),
        reasoning_details=replay_reasoning_details(msg.get("reasoning_details")),
    )
