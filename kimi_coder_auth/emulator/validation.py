"""Strict validation of chat requests, mirroring the Kimi Coding API's documented 400s."""

from __future__ import annotations

from typing import Any

from .models import LEGACY_ROUTES

__all__ = ["RequestRejected", "thinking_enabled", "validate_chat"]

_ROLES = ("system", "user", "assistant", "tool")
_SCHEMA_CHILD_KEYS = ("properties", "patternProperties", "$defs", "definitions")


class RequestRejected(Exception):
    """A chat request the real service would refuse: HTTP status + OpenAI-style error body."""

    def __init__(self, status: int, message: str, err_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.err_type}}


def thinking_enabled(body: dict[str, Any], model: dict[str, Any]) -> bool:
    """Whether the request thinks: "only" always, "no" never, "both" unless disabled."""
    kind = model.get("supports_thinking_type") or ("both" if model.get("supports_reasoning") else "no")
    if kind == "only":
        return True
    if kind == "no":
        return False
    thinking = body.get("thinking")
    return not (isinstance(thinking, dict) and thinking.get("type") == "disabled")


def _bad(message: str) -> RequestRejected:
    return RequestRejected(400, message)


def _check_schema(schema: Any, fn: str, path: str) -> None:
    if not isinstance(schema, dict):
        return
    props = schema.get("properties")
    if isinstance(props, dict):
        for pname, pschema in props.items():
            ppath = f"{path}.{pname}" if path else pname
            if not isinstance(pschema, dict):
                raise _bad(
                    f"Invalid request: tool parameters of function {fn} is not a valid moonshot flavored "
                    f"json schema, details: <property {ppath} must be an object>"
                )
            _check_property(pschema, fn, ppath)
    for key in ("$defs", "definitions"):
        defs = schema.get(key)
        if isinstance(defs, dict):
            for dname, dschema in defs.items():
                _check_schema(dschema, fn, f"{key}.{dname}")


def _check_property(pschema: dict[str, Any], fn: str, ppath: str) -> None:
    branches = [b for k in ("anyOf", "oneOf") for b in (pschema.get(k) or []) if isinstance(b, dict)]
    if "type" not in pschema:
        if branches and all("type" in b for b in branches):
            for b in branches:
                _check_property(b, fn, ppath)
            return
        raise _bad(
            f"Invalid request: tool parameters of function {fn} is not a valid moonshot flavored json "
            f"schema, details: <property '{ppath}' has no 'type'; every property must declare a type>"
        )
    if isinstance(pschema.get("properties"), dict):
        _check_schema(pschema, fn, ppath)
    items = pschema.get("items")
    if isinstance(items, dict) and items:
        _check_property(items, fn, f"{ppath}[]")
    for b in branches:
        _check_property(b, fn, ppath)


def _check_content(content: Any, index: int, role: str, *, may_omit: bool) -> int:
    """Validate a message's content; returns its character count."""
    if content is None:
        if may_omit:
            return 0
        raise _bad(f"Invalid request: text content is empty (message at index {index}, role {role})")
    if isinstance(content, str):
        if content == "":
            raise _bad(f"Invalid request: text content is empty (message at index {index}, role {role})")
        return len(content)
    if isinstance(content, list):
        if not content:
            raise _bad(f"Invalid request: text content is empty (message at index {index}, role {role})")
        total = 0
        for part in content:
            if not isinstance(part, dict):
                raise _bad(f"Invalid request: content part of message at index {index} must be an object")
            ptype = part.get("type")
            if ptype == "text":
                text = part.get("text")
                if not isinstance(text, str) or text == "":
                    raise _bad(f"Invalid request: text content is empty (message at index {index}, role {role})")
                total += len(text)
            elif ptype == "image_url":
                url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
                if not isinstance(url, str) or not (url.startswith("data:") or url.startswith("ms://")):
                    raise _bad(
                        f"Invalid request: unsupported image url in message at index {index}; "
                        "send images as base64 data: URLs"
                    )
                total += 1000
            elif ptype == "video_url":
                total += 1000
            else:
                raise _bad(f"Invalid request: unsupported content part type {ptype!r} in message at index {index}")
        return total
    raise _bad(f"Invalid request: content of message at index {index} must be a string or a list of parts")


def validate_chat(body: Any, models: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Check a chat request like the real service does; returns (model entry, thinking on).

    Raises RequestRejected with the documented status and wording.
    """
    if not isinstance(body, dict):
        raise _bad("Invalid request: the request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise _bad("Invalid request: model is required")
    model = models.get(model_id)
    if model is None and model_id in LEGACY_ROUTES:
        model = models.get(LEGACY_ROUTES[model_id])
    if model is None:
        raise RequestRejected(
            404, f"Not found the model {model_id} or Permission denied", "resource_not_found_error"
        )
    thinking = body.get("thinking")
    kind = model.get("supports_thinking_type")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", None):
            raise _bad("Invalid request: thinking.type must be 'enabled' or 'disabled'")
        if kind == "only" and thinking.get("type") == "disabled":
            raise _bad("invalid thinking: only type=enabled is allowed for this model")
        effort = thinking.get("effort")
        efforts = (model.get("think_efforts") or {}).get("valid_efforts") or []
        if effort is not None and effort not in efforts:
            raise _bad(f"Invalid request: thinking.effort {effort!r} is not supported by {model_id}; valid: {efforts}")
    think = thinking_enabled(body, model)

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("Invalid request: messages must be a non-empty list")

    total_chars = 0
    seen_call_ids: set[str] = set()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _bad(f"Invalid request: message at index {i} must be an object")
        role = msg.get("role")
        if role not in _ROLES:
            raise _bad(
                f"Invalid request: unsupported role {role!r} in message at index {i}; "
                "use system, user, assistant or tool"
            )
        tool_calls = msg.get("tool_calls") if role == "assistant" else None
        if role == "assistant" and tool_calls:
            if not isinstance(tool_calls, list):
                raise _bad(f"Invalid request: tool_calls of message at index {i} must be a list")
            if think and msg.get("reasoning_content") is None:
                raise _bad(
                    f"thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"
                )
            for tc in tool_calls:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(fn, dict) or not fn.get("name") or not tc.get("id"):
                    raise _bad(f"Invalid request: malformed tool call in message at index {i}")
                seen_call_ids.add(str(tc["id"]))
                total_chars += len(str(fn.get("arguments") or ""))
            total_chars += _check_content(msg.get("content"), i, role, may_omit=True)
        else:
            total_chars += _check_content(msg.get("content"), i, role, may_omit=False)
        if role == "tool":
            tcid = msg.get("tool_call_id")
            if not tcid or str(tcid) not in seen_call_ids:
                raise _bad(
                    f"Invalid request: tool_call_id {tcid!r} of the tool message at index {i} is not found "
                    "in any preceding assistant tool call"
                )
        details = msg.get("reasoning_details") if role == "assistant" else None
        if isinstance(details, list):
            for j, entry in enumerate(details):
                if isinstance(entry, dict) and "index" in entry:
                    raise _bad(
                        f"the reasoning_details at position {i} entry {j} must not contain "
                        "streaming index"
                    )
        rc = msg.get("reasoning_content")
        if isinstance(rc, str):
            total_chars += len(rc)

    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("Invalid request: tools must be a list")
        for t in tools:
            if not isinstance(t, dict) or t.get("type") not in ("function", "builtin_function"):
                raise _bad("Invalid request: each tool must be {'type': 'function', 'function': {...}}")
            fn = t.get("function")
            if not isinstance(fn, dict) or not fn.get("name"):
                raise _bad("Invalid request: each tool needs function.name")
            names.add(fn["name"])
            if t.get("type") == "function":
                params = fn.get("parameters")
                if params is not None:
                    if not isinstance(params, dict):
                        raise _bad(f"Invalid request: tool parameters of function {fn['name']} must be an object")
                    _check_schema(params, fn["name"], "")
                total_chars += len(str(params or "")) + len(str(fn.get("description") or ""))

    tc = body.get("tool_choice")
    if tc is not None:
        if tc in ("auto", "none"):
            pass
        elif tc == "required":
            if think:
                raise _bad("tool_choice 'required' is incompatible with thinking enabled")
        elif isinstance(tc, dict):
            name = (tc.get("function") or {}).get("name")
            if think:
                raise _bad("tool_choice specified is incompatible with thinking enabled")
            if name not in names:
                raise _bad(f"Invalid request: tool_choice names function {name!r}, which is not in tools")
        else:
            raise _bad(f"Invalid request: unsupported tool_choice {tc!r}")

    rf = body.get("response_format")
    if rf is not None and (not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema")):
        raise _bad("Invalid request: response_format.type must be text, json_object or json_schema")

    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise _bad(f"Invalid request: {key} must be a positive integer")

    stop = body.get("stop")
    if stop is not None and not isinstance(stop, (str, list)):
        raise _bad("Invalid request: stop must be a string or a list of strings")

    context_length = int(model.get("context_length") or 262144)
    estimated = total_chars // 4
    if total_chars > context_length * 4:
        raise _bad(
            f"Invalid request: Your request exceeded model token limit: the messages are about {estimated} "
            f"tokens, over the model's maximum context length of {context_length} tokens"
        )
    return model, think
