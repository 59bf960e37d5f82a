"""Request rules both routes share: thinking on/off and effort, tool choice vs thinking, formats.

Kimi enforces these on either route; each codec turns the decisions into its own body fields.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .catalogue import ModelInfo
from .errors import ParameterError
from .schema import normalize_schema

__all__ = [
    "FORCED_TOOL_POLICIES",
    "SAMPLING_PARAMS",
    "derive_prompt_cache_key",
    "has_remote_images",
    "is_forced_choice",
    "map_tool_choice",
    "needs_live_model_info",
    "normalize_response_format",
    "resolve_prompt_cache_key",
    "resolve_tools_and_thinking",
    "thinking_on",
    "thinking_param",
]

FORCED_TOOL_POLICIES = ("disable_thinking", "auto", "error")

#: Sampling parameters both adapters expose; ``build_request`` sends each only when not None
#: (Kimi fixes them per model, so unset means "server default", never a client-side default).
SAMPLING_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "n", "seed")

_TEXT = "text"
_IMAGE = "image_url"


def thinking_on(thinking: bool | None, info: ModelInfo | None) -> bool:
    """Whether the model will think: ``"only"`` always, ``"no"`` never, else on unless False
    (the server default is on)."""
    kind = info.thinking if info is not None else "both"
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
    kind = info.thinking if info is not None else "both"
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
    if thinking is not None or effort is not None:
        return True
    if tool_choice is not None and is_forced_choice(tool_choice):
        return True
    return any(isinstance(m, Mapping) and _has_media(m.get("content")) for m in messages)


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


def has_remote_images(messages: Sequence[Mapping[str, Any]]) -> bool:
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


# --------------------------------------------------------------------------- prompt cache key

#: ``prompt_cache_key="auto"``: derive the key from the conversation's own id when there is one.
AUTO_CACHE_KEY = "auto"


def derive_prompt_cache_key(conversation_id: str) -> str:
    """A stable cache key for one conversation id (a LangGraph ``thread_id``, a chat-store key):
    hashed, so no user identifier goes on the wire, and namespaced to kimi-coder."""
    digest = hashlib.sha256(b"kimi-coder/prompt-cache\0" + conversation_id.encode("utf-8"))
    return "kc-" + digest.hexdigest()[:32]


def resolve_prompt_cache_key(setting: str | None, conversation_id: Any = None) -> str | None:
    """The key to send: an explicit string verbatim; ``"auto"`` -> derived from
    ``conversation_id`` (None when there is none); None -> no key."""
    if setting is None:
        return None
    if not isinstance(setting, str):
        raise ValueError(
            f"prompt_cache_key must be a string, 'auto' or None, got {type(setting).__name__}."
        )
    if setting != AUTO_CACHE_KEY:
        return setting
    if conversation_id is None or conversation_id == "":
        return None
    return derive_prompt_cache_key(str(conversation_id))
def resolve_tools_and_thinking(
    model: str,
    info: ModelInfo,
    tool_names: Sequence[str],
    tool_choice: Any,
    thinking: bool | None,
    effort: str | None,
    forced_tool_policy: str,
    warnings: list[str],
) -> tuple[Any, dict[str, Any] | None, bool, bool]:
    """Decide tool choice and thinking together, the same way on both routes.

    Returns ``(choice, thinking_param, thinking_on, relaxed)``: ``choice`` in Kimi's OpenAI form
    (None = omit), the ``thinking`` field (None = server default), whether thinking is on, and
    whether a forced choice was relaxed to ``"auto"``. Kimi rejects a forced tool choice while
    thinking; ``forced_tool_policy`` decides (see ``build_request``). Warnings are appended.
    """
    if tool_names and not info.supports_tool_use:
        warnings.append(f"{model} is not listed as supporting tools; sending them anyway.")
    choice = map_tool_choice(tool_choice) if tool_choice is not None else None
    relaxed = False
    if choice is not None and not tool_names:
        if _is_forced(choice):
            raise ValueError(
                f"tool_choice={tool_choice!r} forces a tool call but no tools were given; "
                "pass tools= or drop tool_choice."
            )
        choice = None  # Kimi rejects tool_choice without tools; nothing to choose from
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        wanted = (choice.get("function") or {}).get("name")
        if wanted not in tool_names:
            raise ValueError(
                f"tool_choice names {wanted!r}, which is not among the tools "
                f"({', '.join(tool_names)})."
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
    return choice, tparam, on, relaxed
