"""Responders decide what the emulated model "says": a `Turn` per chat request.

`DefaultResponder` is deterministic and good enough to drive agents and the standard
LangChain/LlamaIndex test suites; `ScriptedResponder` replays canned turns.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DefaultResponder", "Responder", "ScriptedResponder", "Turn"]


@dataclass
class Turn:
    """One assistant turn.

    `reasoning`: None lets the server invent reasoning when thinking is on; "" is sent as an
    empty `reasoning_content`. `content` / `reasoning` may be a list of strings to fix the exact
    stream chunk boundaries. `tool_calls` is a list of `(name, arguments_json)` pairs.
    `finish_reason` overrides the computed one.
    """

    content: str | list[str] = ""
    reasoning: str | list[str] | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish_reason: str | None = None

    @staticmethod
    def coerce(item: Turn | str | dict[str, Any]) -> Turn:
        """Accept a Turn, a plain string (content) or a dict with the Turn's field names."""
        if isinstance(item, Turn):
            return item
        if isinstance(item, str):
            return Turn(content=item)
        if isinstance(item, dict):
            calls: list[tuple[str, str]] = []
            for call in item.get("tool_calls") or []:
                if isinstance(call, dict):
                    name = call.get("name") or call.get("function", {}).get("name")
                    args = call.get("arguments", call.get("args", call.get("function", {}).get("arguments", {})))
                else:
                    name, args = call
                if not isinstance(args, str):
                    args = json.dumps(args, ensure_ascii=False)
                calls.append((str(name), args))
            return Turn(
                content=item.get("content") or "",
                reasoning=item.get("reasoning", item.get("reasoning_content")),
                tool_calls=calls,
                finish_reason=item.get("finish_reason"),
            )
        raise TypeError(f"cannot turn {type(item).__name__} into an emulator Turn; pass a Turn, str or dict")


class Responder:
    """Interface: produce the assistant turn for a (validated) chat request body."""

    def respond(self, request_body: dict[str, Any]) -> Turn:
        raise NotImplementedError


class ScriptedResponder(Responder):
    """Replays canned turns in order; after the script runs out, repeats the last one
    (or defers to `fallback` when one is given)."""

    def __init__(self, turns: Iterable[Turn | str | dict[str, Any]], *, fallback: Responder | None = None) -> None:
        self._turns = [Turn.coerce(t) for t in turns]
        self._next = 0
        self._fallback = fallback
        self._lock = threading.Lock()
        self.seen: list[dict[str, Any]] = []

    def respond(self, request_body: dict[str, Any]) -> Turn:
        with self._lock:
            self.seen.append(request_body)
            if self._next < len(self._turns):
                turn = self._turns[self._next]
                self._next += 1
                return turn
        if self._fallback is not None:
            return self._fallback.respond(request_body)
        if not self._turns:
            return Turn(content="OK")
        return self._turns[-1]

    @property
    def remaining(self) -> int:
        """Turns not yet replayed."""
        return max(0, len(self._turns) - self._next)


# --------------------------------------------------------------------------- helpers


def message_text(message: dict[str, Any]) -> str:
    """The text of a wire message (string content or the text parts of a list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def _has_image(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") in ("image_url", "video_url") for p in content
    )


_INT_RE = re.compile(r"(?<![\w.])-?\d+(?![\w.]\d)(?![\w])")
_NUM_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_QUOTED_RE = re.compile(r"""'([^'\n]{1,200})'|"([^"\n]{1,200})"|`([^`\n]{1,200})`|“([^”\n]{1,200})”|「([^」\n]{1,200})」""")
_FILE_RE = re.compile(r"(?<![\w/.-])(?:[\w.-]*/)*[\w-]+\.[A-Za-z0-9]{1,6}(?![\w/])")
_PATHISH_RE = re.compile(r"(?<![\w])(?:\.{0,2}/[\w./-]*|[\w.-]+/[\w./-]*)")
_CAPS_RE = re.compile(r"[A-Z][\w'’-]*(?:(?:\s+|,\s*)(?:[A-Z][\w'’-]*))*")
_STOPWORDS = {
    "the", "a", "an", "what", "whats", "is", "of", "to", "and", "use", "using", "tool", "tools",
    "please", "call", "value", "for", "with", "in", "on", "it", "me", "you", "your", "then",
    "this", "that", "be", "are", "was", "do", "does", "can", "could", "would", "should", "i", "my",
    "hi", "hello", "tell", "give", "get", "set", "about", "how", "why", "who", "when", "where",
    "which", "make", "show", "find", "run", "after", "before", "first", "next", "finally", "now",
    "need", "want", "some", "any", "all", "there", "here", "by", "from", "at", "as", "or", "if",
    "function", "functions", "result", "results", "answer", "return", "include", "no", "not",
}
# words a tool name may be "asked for" by, beyond its own words
_SYNONYMS = {
    "multiply": ("times", "product", "multiplied", "×", " * "),
    "add": ("plus", "sum", "added", " + "),
    "adder": ("add", "plus", "sum", " + "),
    "calculate": ("calculation", "compute", " + ", " * ", " - ", " / "),
    "calculator": ("calculate", "compute", " + ", " * ", " - ", " / "),
    "subtract": ("minus", "difference", "subtracted", " - "),
    "divide": ("divided", "quotient", "÷", " / "),
    "weather": ("temperature", "forecast", "sunny", "raining"),
    "search": ("look up", "lookup", "find information"),
    "time": ("clock", "what time"),
}
_GENERIC_NAME_WORDS = {"get", "set", "do", "run", "tool", "func", "function", "magic", "my", "the", "make", "fn", "call", "no", "args"}
_LOCATION_NAMES = ("location", "city", "place", "address", "country", "region", "where", "destination", "town")
_FREE_TEXT_NAMES = ("query", "question", "prompt", "text", "message", "content", "search", "input", "expression", "q")
_FILE_NAMES = ("path", "file", "filename", "filepath")
_MATH_NAMES = ("expression", "expr", "formula", "math", "equation", "calculation")
_MATH_RE = re.compile(r"[-(]*\d+(?:\.\d+)?(?:\s*[-+*/×÷^%]\s*[(]*\d+(?:\.\d+)?[)]*)+")
_DIR_NAMES = ("dir", "folder", "directory")


class _ValueSource:
    """Hands out values found in the prompt (each number / quoted string once, in order)."""

    def __init__(
        self, text: str, *, exclude: Sequence[str] = (), topic_fallback: bool = False,
        fallback: _ValueSource | None = None, context: str = "",
    ) -> None:
        for name in sorted(exclude, key=len, reverse=True):
            if name:
                text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", " ", text)
        self.text = text
        self.topic_fallback = topic_fallback
        self.context = " ".join(context.split())[:200]
        self.fallback = fallback
        self.quoted = [next(g for g in m if g) for m in _QUOTED_RE.findall(text)]
        unquoted = _QUOTED_RE.sub(" ", text)
        self.ints = [int(m) for m in _INT_RE.findall(unquoted)]
        self.nums = [float(m) if "." in m else int(m) for m in _NUM_RE.findall(unquoted)]
        self.words = [w for w in re.findall(r"[^\W\d_][\w\-]*", unquoted) if w.lower() not in _STOPWORDS]
        self._i = 0
        self._n = 0
        self._q = 0

    def integer(self, schema: dict[str, Any]) -> int:
        if not self.ints and self.fallback is not None:
            return self.fallback.integer(schema)
        if self._i < len(self.ints):
            self._i += 1
            value = self.ints[self._i - 1]
        else:
            value = self.ints[-1] if self.ints else 1
        return int(_clamp(value, schema))

    def number(self, schema: dict[str, Any]) -> float | int:
        if not self.nums and self.fallback is not None:
            return self.fallback.number(schema)
        if self._n < len(self.nums):
            self._n += 1
            value = self.nums[self._n - 1]
        else:
            value = self.nums[-1] if self.nums else 1
        return _clamp(value, schema)

    def topic(self) -> str:
        m = re.search(r"\babout\s+(?:the\s+|a\s+|an\s+)?([^\W\d_][\w-]*)", self.text, flags=re.I)
        if m:
            return m.group(1)
        words = [w for w in self.words if w.lower() not in ("json", "keys", "key", "format", "object")]
        return words[-1] if words else "this"

    def string(self, name: str, schema: dict[str, Any]) -> str:
        found = self._string(name, schema)
        if found is None and self.fallback is not None:
            found = self.fallback._string(name, schema)
        if found is None:
            words = self.words or (self.fallback.words if self.fallback else [])
            found = words[-1] if words else (name or "value")
        return found

    def _string(self, name: str, schema: dict[str, Any]) -> str | None:
        if self._q < len(self.quoted):
            self._q += 1
            return self.quoted[self._q - 1]
        lname = name.lower()
        if any(k in lname for k in _FILE_NAMES):
            m = _FILE_RE.search(self.text)
            return m.group(0) if m else None
        if any(k in lname for k in _DIR_NAMES):
            m = _PATHISH_RE.search(self.text)
            return m.group(0) if m else None
        if lname in _MATH_NAMES:
            m = _MATH_RE.search(self.text)
            if m:
                return m.group(0).strip()
        if any(k in lname for k in _LOCATION_NAMES):
            return self._capitalised()
        if self.topic_fallback:
            desc = str(schema.get("description") or name.replace("_", " ") or "value")
            value = f"{desc[:1].upper()}{desc[1:]} about {self.topic()}"
            return f"{value} ({self.context})" if self.context else value
        if lname in _FREE_TEXT_NAMES or lname.endswith(("query", "question", "text")):
            words = self.text.split()
            while words and words[0].lower().strip(",.:;") in _STOPWORDS:
                words.pop(0)
            text = " ".join(words).strip(" ,.;:")
            return text[:200] if text else None
        return self._capitalised() or (self.words[-1] if self.words else None)

    def _capitalised(self) -> str | None:
        """The last capitalised phrase that does not merely start a sentence."""
        found = []
        for m in _CAPS_RE.finditer(self.text):
            before = self.text[: m.start()].rstrip()
            phrase = m.group(0).strip(" ,")
            if (not before or before[-1] in ".!?:\n") and " " not in phrase and "," not in phrase:
                continue  # a sentence-initial single word
            if phrase.lower() in _STOPWORDS:
                continue
            found.append(phrase)
        return found[-1] if found else None


def _clamp(value: float, schema: dict[str, Any]) -> float:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(lo, (int, float)) and value < lo:
        value = lo + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(hi, (int, float)) and value > hi:
        value = hi - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return value


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def build_args(
    schema: dict[str, Any] | None, src: _ValueSource, name: str = "", depth: int = 0,
    root: dict[str, Any] | None = None,
) -> Any:
    """Build a value satisfying `schema`, preferring values taken from the prompt."""
    if not isinstance(schema, dict) or depth > 8:
        return src.string(name, {})
    root = root if root is not None else schema
    schema = _resolve_ref(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            if key == "allOf":
                merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
                for b in branches:
                    if isinstance(b, dict):
                        merged.update(_resolve_ref(b, root))
                return build_args(merged, src, name, depth + 1, root)
            non_null = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
            chosen = dict(non_null[0] if non_null else branches[0])
            if "description" in schema and "description" not in chosen:
                chosen["description"] = schema["description"]
            return build_args(chosen, src, name, depth + 1, root)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        required = schema.get("required")
        out: dict[str, Any] = {}
        for pname, pschema in props.items():
            if required is not None and pname not in required and depth > 0:
                continue
            out[pname] = build_args(pschema, src, pname, depth + 1, root)
        return out
    if typ == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [build_args(schema.get("items") or {"type": "string"}, src, name, depth + 1, root) for _ in range(count)]
    if typ == "integer":
        return src.integer(schema)
    if typ == "number":
        return src.number(schema)
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    return src.string(name, schema)


def _tool_name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or {}).get("name") or tool.get("name") or "")


def _tool_params(tool: dict[str, Any]) -> dict[str, Any]:
    params = (tool.get("function") or {}).get("parameters")
    return params if isinstance(params, dict) else {"type": "object", "properties": {}}


def _split_name_words(name: str) -> list[str]:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").replace(".", " ").split()
    return [w.lower() for w in words if w]


def _mentions(text: str, name: str) -> int:
    """Where `text` names tool `name` exactly (or its words joined by spaces); -1 if nowhere."""
    if not name:
        return -1
    m = re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text)
    if m:
        return m.start()
    words = _split_name_words(name)
    if len(words) > 1:
        m = re.search(r"(?<![\w])" + r"[\s_-]+".join(map(re.escape, words)) + r"(?![\w])", text, flags=re.I)
        if m:
            return m.start()
    return -1


def _asks_for(text: str, name: str) -> int:
    """Where `text` asks for what tool `name` does (a significant word of its name, or a
    synonym); -1 if nowhere. Weaker than `_mentions`."""
    low = text.lower()
    best = -1
    for word in _split_name_words(name):
        if word in _GENERIC_NAME_WORDS or len(word) < 3:
            continue
        candidates = [word, *_SYNONYMS.get(word, ())]
        for cand in candidates:
            if cand.startswith(" ") or not cand.isalnum():
                pos = low.find(cand)
            else:
                suffix = "(?:s|es|ed|ing)?" if len(cand) > 4 else ""  # "times" must not ask for get_time
                m = re.search(rf"(?<![\w]){re.escape(cand)}{suffix}(?![\w])", low)
                pos = m.start() if m else -1
            if pos >= 0 and (best < 0 or pos < best):
                best = pos
    return best


_CLAUSE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|[,;]?\s+(?:and\s+)?then\s+|;\s*", flags=re.I)


def _args_for(
    name: str, params: dict[str, Any], text: str, all_names: list[str], *, structured: bool, context: str = "",
) -> dict[str, Any]:
    """Arguments for tool `name`: values from the clause that asks for it first, then from the
    whole prompt (so "6 times 7, then add 2 and 3" gives each tool its own numbers)."""
    whole = _ValueSource(text, exclude=all_names, topic_fallback=structured, context=context)
    src = whole
    pos = _mentions(text, name)
    if pos < 0:
        pos = _asks_for(text, name)
    if pos >= 0 and not structured:
        start = 0
        for m in _CLAUSE_SPLIT_RE.finditer(text):
            if m.end() <= pos:
                start = m.end()
            else:
                end = m.start()
                break
        else:
            end = len(text)
        src = _ValueSource(text[start:end], exclude=all_names, fallback=whole)
    args = build_args(params, src)
    return args if isinstance(args, dict) else {}


_REACT_MARKERS = ("Action Input", "## Output Format")
_PARALLEL_WORDS = ("in parallel", "at the same time", "simultaneously", "at once", "parallel")


class DefaultResponder(Responder):
    """Deterministic responder that drives agents and the standard test suites.

    1. Tools named in the latest user message (exactly, or by a significant word of the
       name / a synonym) are called one per round, in the order they are named, each once per
       user turn; "in parallel" calls them all in one turn. `tool_choice` "required" or a named
       function always yields a call. Arguments come from the tool's JSON schema, filled with
       values from the prompt (numbers, quoted strings, places, file names).
    2. After tool results, the answer quotes them.
    3. `response_format` json_object answers with the prompt's quoted words as keys;
       json_schema with an object satisfying the schema.
    4. LlamaIndex ReAct prompts get Thought/Action/Action Input, then Thought/Answer text.
    5. Otherwise a deterministic echo of the last user message.
    """

    def respond(self, request_body: dict[str, Any]) -> Turn:
        messages: list[dict[str, Any]] = [m for m in request_body.get("messages") or [] if isinstance(m, dict)]
        tools: list[dict[str, Any]] = [t for t in request_body.get("tools") or [] if isinstance(t, dict)]
        tool_choice = request_body.get("tool_choice")
        system = "\n".join(message_text(m) for m in messages if m.get("role") == "system")

        if any(marker in system for marker in _REACT_MARKERS):
            return self._react(system, messages)

        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        user_text = message_text(messages[last_user]) if last_user >= 0 else ""
        since_user = messages[last_user + 1 :] if last_user >= 0 else messages
        called = [
            str((tc.get("function") or {}).get("name"))
            for m in since_user
            if m.get("role") == "assistant"
            for tc in m.get("tool_calls") or []
            if isinstance(tc, dict)
        ]
        tool_results = [m for m in since_user if m.get("role") == "tool"]

        if tools and tool_choice != "none":
            context = "; ".join(message_text(m) for m in tool_results)
            call = self._choose_tools(tools, tool_choice, user_text, called, request_body, context)
            if call is not None:
                return call

        rf = request_body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
            return self._json_answer(rf, user_text)

        if tool_results:
            results = "; ".join(message_text(m) for m in tool_results)
            names = ", ".join(dict.fromkeys(n for n in called if n)) or "the tools"
            return Turn(
                reasoning=f"I called {names} and have the results; now I can answer.",
                content=f"Based on the results of {names}: {results}",
            )
        return self._echo(messages, user_text)

    # -- tool calls ---------------------------------------------------------------------------

    def _choose_tools(
        self, tools: list[dict[str, Any]], tool_choice: Any, user_text: str,
        called: Sequence[str], body: dict[str, Any], context: str = "",
    ) -> Turn | None:
        by_name = {_tool_name(t): t for t in tools if _tool_name(t)}
        if not by_name:
            return None
        exact = sorted((p, n) for n in by_name if (p := _mentions(user_text, n)) >= 0)
        exact_names = [n for _, n in exact]
        # class-like names (Joke, WeatherReport) are structured-output schemas: asked for last
        loose = sorted(
            (n[:1].isupper(), p, n) for n in by_name if n not in exact_names and (p := _asks_for(user_text, n)) >= 0
        )
        wanted = [*exact_names, *(n for _, _, n in loose)]
        pending = [n for n in wanted if n not in called]

        if isinstance(tool_choice, dict):
            forced = (tool_choice.get("function") or {}).get("name")
            if forced in by_name:
                # a forced tool the prompt does not name verbatim is a structured-output schema
                structured = re.search(rf"(?<![\w]){re.escape(forced)}(?![\w])", user_text) is None
                return self._calls([by_name[forced]], user_text, by_name, structured=structured, context=context)
        if tool_choice == "required":
            if pending:
                return self._calls([by_name[pending[0]]], user_text, by_name, context=context)
            # nothing asked for is left: prefer a tool not yet called this turn (typically a
            # structured-output tool), so forced-choice agent loops still terminate
            fresh = [n for n in by_name if n not in called and n not in wanted]
            if fresh:
                return self._calls([by_name[fresh[0]]], user_text, by_name, structured=True, context=context)
            first = wanted[0] if wanted else next(iter(by_name))
            return self._calls([by_name[first]], user_text, by_name, structured=not wanted, context=context)
        if not pending:
            return None
        parallel = body.get("parallel_tool_calls") is not False and any(
            w in user_text.lower() for w in _PARALLEL_WORDS
        )
        chosen = pending if parallel else pending[:1]
        return self._calls([by_name[n] for n in chosen], user_text, by_name, context=context)

    def _calls(
        self, tools: list[dict[str, Any]], user_text: str, by_name: dict[str, Any], *,
        structured: bool = False, context: str = "",
    ) -> Turn:
        calls: list[tuple[str, str]] = []
        for tool in tools:
            name = _tool_name(tool)
            schema_like = name[:1].isupper() and re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", user_text) is None
            args = _args_for(name, _tool_params(tool), user_text, list(by_name),
                             structured=structured or schema_like, context=context)
            calls.append((name, json.dumps(args, ensure_ascii=False)))
        names = " and ".join(n for n, _ in calls)
        return Turn(reasoning=f"The user needs {names}; I will call it with arguments from the request.",
                    content="", tool_calls=calls)

    # -- other answers ------------------------------------------------------------------------

    def _json_answer(self, rf: dict[str, Any], user_text: str) -> Turn:
        if rf.get("type") == "json_schema":
            spec = rf.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None
            obj = build_args(schema or {"type": "object"}, _ValueSource(user_text, topic_fallback=True))
        else:
            src = _ValueSource(user_text)
            keys = [q for q in src.quoted if re.fullmatch(r"[\w -]{1,40}", q)] or ["answer"]
            obj = {k: f"{k.replace('_', ' ').capitalize()} about {src.topic()}" for k in keys}
        return Turn(reasoning="The user wants JSON; I will answer with one JSON object.",
                    content=json.dumps(obj, ensure_ascii=False))

    def _echo(self, messages: list[dict[str, Any]], user_text: str) -> Turn:
        if not user_text and messages:
            user_text = message_text(messages[-1])
        image = bool(messages) and _has_image(messages[-1])
        prefix = "I see the image you sent. " if image else ""
        snippet = " ".join(user_text.split())
        if len(snippet) > 200:
            snippet = snippet[:200] + "..."
        return Turn(
            reasoning="The user sent a message; I will reply to it directly.",
            content=f"{prefix}You said: {snippet}" if snippet else f"{prefix}Hello! How can I help?",
        )

    def _react(self, system: str, messages: list[dict[str, Any]]) -> Turn:
        names = re.findall(r"^>?\s*Tool Name:\s*(\S+)", system, flags=re.M)
        question = ""
        for m in reversed(messages):
            text = message_text(m)
            if m.get("role") == "user" and not text.lstrip().startswith("Observation:"):
                question = text
                break
        start = max((i for i, m in enumerate(messages) if message_text(m) == question), default=0)
        later = messages[start + 1 :]
        tried = re.findall(r"^Action:\s*(\S+)", "\n".join(message_text(m) for m in later if m.get("role") == "assistant"), flags=re.M)
        observations = [
            message_text(m).split("Observation:", 1)[-1].strip()
            for m in later if message_text(m).lstrip().startswith("Observation:") or m.get("role") == "tool"
        ]
        ranked = sorted(
            ((p, n) for n in names if (p := max(_mentions(question, n), -1)) >= 0 or (p := _asks_for(question, n)) >= 0),
        )
        for _, name in ranked:
            if name in tried:
                continue
            schema: dict[str, Any] = {"type": "object", "properties": {}}
            m = re.search(rf"Tool Name:\s*{re.escape(name)}\s*\n.*?Tool Args:\s*(\{{.*\}})\s*$", system, flags=re.M | re.S)
            if m:
                line = m.group(1).split("\n", 1)[0]
                try:
                    schema = json.loads(line)
                except ValueError:
                    pass
            args = _args_for(name, schema, question, names, structured=False)
            return Turn(
                reasoning=f"ReAct: I should use {name}.",
                content=(
                    "Thought: The current language of the user is: English. I need to use a tool to help me "
                    f"answer the question.\nAction: {name}\nAction Input: {json.dumps(args, ensure_ascii=False)}"
                ),
            )
        answer = "; ".join(observations) if observations else f"You asked: {' '.join(question.split())[:200]}"
        return Turn(
            reasoning="ReAct: I have what I need.",
            content=f"Thought: I can answer without using any more tools. I'll use the user's language to answer\nAnswer: {answer}",
        )
