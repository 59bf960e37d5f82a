"""Responders decide what the emulated model "says": a `Turn` per chat request.

`DefaultResponder` is deterministic and good enough to drive agents and the standard
LangChain/LlamaIndex test suites (its tool arguments come from `tool_arguments`);
`ScriptedResponder` replays canned turns.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .tool_arguments import (
    _args_for,
    _asks_for,
    _mentions,
    _tool_name,
    _tool_params,
    _ValueSource,
    build_args,
)

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
