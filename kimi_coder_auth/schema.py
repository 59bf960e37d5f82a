"""Tool JSON-schema normalisation to Kimi's dialect.

Moonshot's validator rejects some valid JSON Schema shapes ("At path 'properties.X': type is not
defined"), so tool parameters are rewritten the way kimi-cli (``ensure_property_types``) and
Kimi Code (``normalizeKimiToolSchema``) do: local ``$ref`` inlined, definition buckets removed,
every nested property schema given a ``type``. The input is never mutated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["BUILTIN_PREFIX", "normalize_schema", "normalize_tool", "normalize_tools"]

#: Tool names starting with ``$`` are Moonshot built-ins (``$web_search``) and carry no schema.
BUILTIN_PREFIX = "$"

# Nodes holding any of these declare their shape without ``type``; leave them untyped.
_COMBINATOR_KEYS = frozenset(("$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"))

# Child-schema slots walked when filling types: (key, kind) with kind "map" | "single" | "list"
# | "either" (schema or list of schemas). Same set as Kimi Code's CHILD_SCHEMA_SLOTS.
_CHILD_SLOTS: tuple[tuple[str, str], ...] = (
    ("properties", "map"),
    ("patternProperties", "map"),
    ("dependentSchemas", "map"),
    ("additionalProperties", "single"),
    ("unevaluatedProperties", "single"),
    ("propertyNames", "single"),
    ("additionalItems", "single"),
    ("unevaluatedItems", "single"),
    ("contains", "single"),
    ("not", "single"),
    ("if", "single"),
    ("then", "single"),
    ("else", "single"),
    ("allOf", "list"),
    ("anyOf", "list"),
    ("oneOf", "list"),
    ("prefixItems", "list"),
    ("items", "either"),
)

_OBJECT_KEYS = frozenset((
    "properties", "patternProperties", "additionalProperties", "unevaluatedProperties",
    "propertyNames", "dependentSchemas", "dependentRequired", "required", "minProperties",
    "maxProperties",
))
_ARRAY_KEYS = frozenset((
    "items", "prefixItems", "additionalItems", "unevaluatedItems", "contains", "minItems",
    "maxItems", "uniqueItems", "minContains", "maxContains",
))
_STRING_KEYS = frozenset((
    "minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType",
))
_NUMBER_KEYS = frozenset(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                          "multipleOf"))

# A $ref that points back into itself is replaced by this (Kimi has no recursive schemas).
_RECURSIVE_PLACEHOLDER: dict[str, Any] = {"type": "object"}


def _clone(value: Any) -> Any:
    """Deep copy of JSON-like data (faster than copy.deepcopy, and turns tuples into lists)."""
    if isinstance(value, Mapping):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clone(v) for v in value]
    return value


def _resolve_pointer(root: Mapping[str, Any], ref: str) -> Any:
    if ref == "#":
        return root
    current: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise ValueError(
                f"The tool schema has a $ref {ref!r} that points nowhere; "
                "fix the schema or define the referenced entry under $defs."
            )
    return current


def _deref(node: Any, root: Mapping[str, Any], active: tuple[str, ...]) -> Any:
    """Return a copy of ``node`` with local refs inlined; ``active`` guards recursion."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
            if ref in active:
                resolved: Any = dict(_RECURSIVE_PLACEHOLDER)
            else:
                resolved = _deref(_resolve_pointer(root, ref), root, (*active, ref))
            if not isinstance(resolved, dict):
                raise ValueError(f"The tool schema's $ref {ref!r} does not point to an object.")
            # Sibling keywords (description, default, ...) win over the referenced definition.
            merged = dict(resolved)
            for key, value in node.items():
                if key != "$ref":
                    merged[key] = _deref(value, root, active)
            return merged
        return {
            k: _deref(v, root, active)
            for k, v in node.items()
            if k not in ("$defs", "definitions")
        }
    if isinstance(node, (list, tuple)):
        return [_deref(v, root, active) for v in node]
    return node


def _infer_from_values(values: list[Any]) -> str:
    kinds: set[str] = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int):
            kinds.add("integer")
        elif isinstance(value, float):
            kinds.add("number")
        elif isinstance(value, str):
            kinds.add("string")
        elif value is None:
            kinds.add("null")
        elif isinstance(value, Mapping):
            kinds.add("object")
        elif isinstance(value, list):
            kinds.add("array")
        else:
            return "string"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"integer", "number"}:
        return "number"
    # Mixed enums: Moonshot tolerates "string" without cross-checking values (kimi-cli).
    return "string"


def _infer_from_structure(node: Mapping[str, Any]) -> str:
    keys = node.keys()
    if not _OBJECT_KEYS.isdisjoint(keys):
        return "object"
    if not _ARRAY_KEYS.isdisjoint(keys):
        return "array"
    if not _STRING_KEYS.isdisjoint(keys):
        return "string"
    if not _NUMBER_KEYS.isdisjoint(keys):
        return "number"
    return "string"


def _fill_children(node: dict[str, Any]) -> None:
    for key, kind in _CHILD_SLOTS:
        value = node.get(key)
        if value is None:
            continue
        if kind == "map":
            if isinstance(value, dict):
                for child in value.values():
                    _fill_property(child)
        elif kind == "single":
            if isinstance(value, dict):
                _fill_property(value)
        elif kind == "list":
            if isinstance(value, list):
                for child in value:
                    _fill_property(child)
        elif isinstance(value, dict):
            _fill_property(value)
        elif isinstance(value, list):
            for child in value:
                _fill_property(child)


def _fill_property(node: Any) -> None:
    if not isinstance(node, dict):
        return
    node.pop("title", None)
    if "regex" in node:  # a non-standard keyword some MCP servers emit (Kimi Code fixes it too)
        regex = node.pop("regex")
        if isinstance(regex, str) and "pattern" not in node:
            node["pattern"] = regex
    if "type" not in node and _COMBINATOR_KEYS.isdisjoint(node.keys()):
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            node["type"] = _infer_from_values(enum)
        elif "const" in node:
            node["type"] = _infer_from_values([node["const"]])
        else:
            node["type"] = _infer_from_structure(node)
    elif isinstance(node.get("type"), str) and _COMBINATOR_KEYS.isdisjoint(node.keys()):
        # Repair a type that contradicts its enum/const (seen from MCP generators).
        enum = node.get("enum")
        values = enum if isinstance(enum, list) and enum else (
            [node["const"]] if "const" in node else None
        )
        if values is not None:
            inferred = _infer_from_values(values)
            declared = node["type"]
            compatible = declared == "number" and inferred == "integer"
            mixed = inferred == "string" and len({type(v) for v in values}) > 1
            if inferred != declared and not compatible and not mixed:
                node["type"] = inferred
    _fill_children(node)


def normalize_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return Kimi-compatible tool ``parameters``: refs inlined, every property typed.

    The result is always an object schema with ``properties`` (empty for no-argument tools).
    Titles are removed (they only cost tokens); descriptions, defaults and enums are kept.
    Raises ``ValueError`` for a schema that is not an object schema or has a dangling ``$ref``.
    """
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, Mapping):
        raise ValueError(
            f"Tool parameters must be a JSON-schema object, got {type(schema).__name__}; "
            "pass a dict like {'type': 'object', 'properties': {...}}."
        )
    root = _deref(schema, schema, ())
    assert isinstance(root, dict)
    root_type = root.get("type")
    if root_type is None:
        root["type"] = "object"
    elif root_type != "object":
        raise ValueError(
            f"Tool parameters must be an object schema (type 'object'), got type {root_type!r}; "
            "wrap the value in an object property."
        )
    root.pop("title", None)
    props = root.get("properties")
    if not isinstance(props, dict):
        root["properties"] = {}
    _fill_children(root)
    return root


def _builtin(name: str) -> dict[str, Any]:
    return {"type": "builtin_function", "function": {"name": name}}


def normalize_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Kimi tool dict for an OpenAI function tool, a bare function spec, or a builtin.

    Accepts ``{"type":"function","function":{...}}``, ``{"name":..., "parameters":...}`` (also
    Anthropic-style ``input_schema``) and ``{"type":"builtin_function",...}``. Names starting with
    ``$`` become Moonshot builtins. Raises ``ValueError`` naming what is wrong.
    """
    if not isinstance(tool, Mapping):
        raise ValueError(
            f"A tool must be a dict (OpenAI function-tool format), got {type(tool).__name__}; "
            "convert it with your framework's tool converter first."
        )
    kind = tool.get("type")
    fn: Any
    if kind == "builtin_function":
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ValueError("A builtin_function tool needs function.name (e.g. '$web_search').")
        return _builtin(name)
    if kind == "function" or "function" in tool:
        fn = tool.get("function")
        if not isinstance(fn, Mapping):
            raise ValueError("A function tool needs a 'function' object with a name.")
    elif kind is None or "name" in tool:
        fn = tool
    else:
        raise ValueError(
            f"Unsupported tool type {kind!r}; Kimi accepts function tools and builtin functions."
        )
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"A tool has no name (keys: {sorted(fn)}); every function tool needs a 'name'."
        )
    if name.startswith(BUILTIN_PREFIX):
        return _builtin(name)
    params = fn.get("parameters")
    if params is None:
        params = fn.get("input_schema")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            raise ValueError(f"Tool {name!r} has parameters that are not valid JSON.") from None
    try:
        parameters = normalize_schema(params)
    except ValueError as exc:
        raise ValueError(f"Tool {name!r}: {exc}") from None
    out: dict[str, Any] = {"name": name}
    description = fn.get("description")
    if isinstance(description, str) and description:
        out["description"] = description
    out["parameters"] = parameters
    return {"type": "function", "function": out}


def normalize_tools(tools: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """``normalize_tool`` over a list; rejects duplicate names (Kimi cannot tell them apart)."""
    if not tools:
        return []
    out = [normalize_tool(t) for t in tools]
    seen: set[str] = set()
    for t in out:
        name = t["function"]["name"]
        if name in seen:
            raise ValueError(f"Two tools are named {name!r}; tool names must be unique.")
        seen.add(name)
    return out
