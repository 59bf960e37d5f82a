"""Tool schema normalisation: refs inlined, every property typed, input untouched."""

from __future__ import annotations

import copy

import pytest

from kimi_coder_auth.schema import normalize_schema, normalize_tool, normalize_tools


def test_enum_only_and_const_properties_get_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["smart", "full"]},
            "n": {"enum": [1, 2]},
            "x": {"enum": [1, 2.5]},
            "flag": {"const": True},
            "mixed": {"enum": ["a", 1]},
            "anything": {},
            "described": {"description": "free text"},
        },
        "required": ["mode"],
    }
    assert normalize_schema(schema) == {
        "type": "object",
        "properties": {
            "mode": {"enum": ["smart", "full"], "type": "string"},
            "n": {"enum": [1, 2], "type": "integer"},
            "x": {"enum": [1, 2.5], "type": "number"},
            "flag": {"const": True, "type": "boolean"},
            "mixed": {"enum": ["a", 1], "type": "string"},
            "anything": {"type": "string"},
            "described": {"description": "free text", "type": "string"},
        },
        "required": ["mode"],
    }


def test_structural_inference_and_nesting() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"items": {"enum": ["a"]}},
            "obj": {"properties": {"inner": {"enum": [None]}}},
            "count": {"minimum": 0},
            "name": {"maxLength": 3},
            "map": {"type": "object", "additionalProperties": {"enum": [1]}},
        },
    }
    out = normalize_schema(schema)["properties"]
    assert out["tags"] == {"type": "array", "items": {"enum": ["a"], "type": "string"}}
    assert out["obj"] == {"type": "object", "properties": {"inner": {"enum": [None], "type": "null"}}}
    assert out["count"]["type"] == "number"
    assert out["name"]["type"] == "string"
    assert out["map"]["additionalProperties"] == {"enum": [1], "type": "integer"}


def test_anyof_members_typed_but_combinator_node_left_untyped() -> None:
    schema = {
        "type": "object",
        "properties": {
            "v": {"anyOf": [{"type": "integer"}, {"enum": ["x"]}], "description": "d"},
        },
    }
    out = normalize_schema(schema)
    assert out["properties"]["v"] == {
        "anyOf": [{"type": "integer"}, {"enum": ["x"], "type": "string"}],
        "description": "d",
    }


def test_refs_inlined_and_defs_removed_with_sibling_keywords_kept() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "$defs": {
            "Color": {"title": "Color", "enum": ["red", "blue"]},
            "Point": {
                "title": "Point",
                "type": "object",
                "properties": {"x": {"title": "X", "type": "number"}},
            },
        },
        "properties": {
            "color": {"$ref": "#/$defs/Color", "description": "the colour"},
            "points": {"type": "array", "items": {"$ref": "#/$defs/Point"}},
        },
        "required": ["color"],
    }
    assert normalize_schema(schema) == {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "blue"], "description": "the colour", "type": "string"},
            "points": {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "number"}}},
            },
        },
        "required": ["color"],
    }


def test_draft7_definitions_supported() -> None:
    schema = {
        "type": "object",
        "definitions": {"S": {"type": "string"}},
        "properties": {"s": {"$ref": "#/definitions/S"}},
    }
    assert normalize_schema(schema) == {"type": "object", "properties": {"s": {"type": "string"}}}


def test_recursive_ref_becomes_object_and_terminates() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
            }
        },
        "properties": {"root": {"$ref": "#/$defs/Node"}},
    }
    out = normalize_schema(schema)
    root = out["properties"]["root"]
    assert root["properties"]["value"] == {"type": "integer"}
    assert root["properties"]["children"]["items"] == {"type": "object"}
    assert "$defs" not in out


def test_dangling_ref_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="points nowhere"):
        normalize_schema({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}})


def test_input_not_mutated() -> None:
    schema = {
        "type": "object",
        "$defs": {"C": {"enum": ["a"]}},
        "properties": {"c": {"$ref": "#/$defs/C"}, "e": {"enum": [1]}, "t": {"title": "T"}},
    }
    before = copy.deepcopy(schema)
    normalize_schema(schema)
    assert schema == before


def test_top_level_always_object_with_properties() -> None:
    assert normalize_schema(None) == {"type": "object", "properties": {}}
    assert normalize_schema({}) == {"type": "object", "properties": {}}
    assert normalize_schema({"type": "object"}) == {"type": "object", "properties": {}}
    with pytest.raises(ValueError, match="object schema"):
        normalize_schema({"type": "string"})


def test_property_named_title_survives() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string", "title": "Title"}}}
    assert normalize_schema(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
    }


def test_contradicting_enum_type_repaired() -> None:
    schema = {"type": "object", "properties": {"k": {"type": "object", "enum": ["a", "b"]}}}
    assert normalize_schema(schema)["properties"]["k"]["type"] == "string"


def test_normalize_tool_formats() -> None:
    openai = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}},
            "strict": False,
        },
    }
    expected = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {
                "type": "object",
                "properties": {"unit": {"enum": ["c", "f"], "type": "string"}},
            },
        },
    }
    assert normalize_tool(openai) == expected
    assert normalize_tool(openai["function"]) == expected
    anthropic = {"name": "get_weather", "description": "Weather",
                 "input_schema": openai["function"]["parameters"]}
    assert normalize_tool(anthropic) == expected


def test_no_arg_tool_and_builtins() -> None:
    assert normalize_tool({"type": "function", "function": {"name": "now"}}) == {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
    }
    builtin = {"type": "builtin_function", "function": {"name": "$web_search"}}
    assert normalize_tool({"type": "function", "function": {"name": "$web_search"}}) == builtin
    assert normalize_tool(builtin) == builtin


def test_tool_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="no name"):
        normalize_tool({"type": "function", "function": {"parameters": {}}})
    with pytest.raises(ValueError, match="'bad'"):
        normalize_tool({"name": "bad", "parameters": {"type": "array"}})
    with pytest.raises(ValueError, match="unique"):
        normalize_tools([{"name": "a"}, {"name": "a"}])


def test_pydantic_schema_normalised_is_accepted_by_strict_validator() -> None:
    """A realistic pydantic v2 schema (enum class, Literal, nested/recursive models, Any) is
    rejected raw by the emulator's Moonshot validator and accepted once normalised."""
    import enum
    from typing import Any, Literal, Optional

    from pydantic import BaseModel, Field

    validation = pytest.importorskip("kimi_coder_auth.emulator.validation")
    models_mod = pytest.importorskip("kimi_coder_auth.emulator.models")

    class Color(str, enum.Enum):
        red = "red"
        blue = "blue"

    class Point(BaseModel):
        x: float
        y: float = 0

    class Tree(BaseModel):
        value: int
        children: list[Tree] = []

    class Args(BaseModel):
        color: Color
        mode: Literal["a", "b"] = "a"
        pts: list[Point]
        maybe: Optional[Point] = None  # noqa: UP045 - the Optional spelling is what users write
        anything: Any = None
        tree: Tree | None = None
        n: int = Field(ge=0, description="count")

    Tree.model_rebuild()
    raw = Args.model_json_schema()
    models = {m["id"]: m for m in models_mod.default_models()}

    def body(params: dict[str, Any]) -> dict[str, Any]:
        return {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": params}}]}

    with pytest.raises(validation.RequestRejected, match="type"):
        validation.validate_chat(body(raw), models)
    norm = normalize_schema(raw)
    validation.validate_chat(body(norm), models)
    props = norm["properties"]
    assert props["color"] == {"enum": ["red", "blue"], "type": "string"}
    assert props["pts"]["items"]["properties"]["x"] == {"type": "number"}
    assert props["n"] == {"description": "count", "minimum": 0, "type": "integer"}
    assert "$defs" not in norm and "title" not in norm
