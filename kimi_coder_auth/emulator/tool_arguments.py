"""Tool arguments for `DefaultResponder`: JSON-schema values filled from the prompt's words.

Also where a prompt names or asks for a tool (`_mentions`, `_asks_for`), which decides both the
tool chosen and the clause its values are taken from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["build_args"]


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
