"""DefaultResponder / ScriptedResponder: deterministic answers that drive agents and test suites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kimi_coder_auth.emulator import DefaultResponder, Emulator, ScriptedResponder, Turn

R = DefaultResponder()


def fn(name: str, props: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"type": "object", "properties": props or {}}
    if required is not None:
        params["required"] = required
    return {"type": "function", "function": {"name": name, "description": name, "parameters": params}}


MAGIC = fn("magic_function", {"input": {"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}}, ["input"])
MAGIC_NO_ARGS = fn("magic_function_no_args")
WEATHER = fn("get_weather", {"location": {"type": "string"}}, ["location"])
ADDER = fn("my_adder_tool", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])
MULTIPLY = fn("multiply", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])
CUSTOMER = fn("unicode_customer", {"customer_name": {"type": "string"}, "description": {"type": "string"}},
              ["customer_name", "description"])
JOKE = fn("Joke", {"setup": {"type": "string", "description": "question to set up a joke"},
                   "punchline": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                 "description": "answer to resolve the joke"}}, ["setup"])
READ = fn("read_file", {"path": {"type": "string"}}, ["path"])
LIST = fn("list_folder", {"folder": {"type": "string"}}, ["folder"])
CALC = fn("calculate", {"expression": {"type": "string"}}, ["expression"])


def ask(text: str, tools: list[dict[str, Any]] | None = None, **kw: Any) -> Turn:
    body = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": text}], **kw}
    if tools:
        body["tools"] = tools
    return R.respond(body)


def calls(turn: Turn) -> list[tuple[str, dict[str, Any]]]:
    return [(name, json.loads(args)) for name, args in turn.tool_calls]


def test_named_tool_gets_prompt_integer() -> None:
    q = "What is the value of magic_function(3)? Use the tool."
    assert calls(ask(q, [MAGIC])) == [("magic_function", {"input": 3})]
    assert calls(ask(q, [MAGIC], tool_choice="required")) == [("magic_function", {"input": 3})]


def test_no_argument_tool_not_confused_with_prefix_name() -> None:
    q = "What is the value of magic_function_no_args()? Use the tool."
    assert calls(ask(q, [MAGIC, MAGIC_NO_ARGS])) == [("magic_function_no_args", {})]


def test_forced_choice_always_calls() -> None:
    assert calls(ask("Hello!", [MAGIC, WEATHER], tool_choice="required"))[0][0] in {"magic_function", "get_weather"}
    named = {"type": "function", "function": {"name": "magic_function"}}
    assert calls(ask("Hello!", [MAGIC, WEATHER], tool_choice=named))[0][0] == "magic_function"


def test_tool_asked_for_by_word_and_place_extracted() -> None:
    assert calls(ask("What is the weather in San Francisco, CA?", [WEATHER])) == [
        ("get_weather", {"location": "San Francisco, CA"})]


def test_unicode_quoted_value() -> None:
    q = "Create a customer named '你好啊集团' (Hello Group) - a Chinese technology company"
    (name, args), = calls(ask(q, [CUSTOMER], tool_choice="required"))
    assert name == "unicode_customer" and args["customer_name"] == "你好啊集团" and args["description"]
    turn = ask("Create a customer named 'こんにちは株式会社' (Hello Corporation)", [CUSTOMER])
    assert calls(turn)[0][1]["customer_name"] == "こんにちは株式会社"
    assert "こんにちは" in turn.tool_calls[0][1]  # not \\u-escaped


def test_arithmetic_synonyms() -> None:
    assert calls(ask("What is 3 + 4", [ADDER])) == [("my_adder_tool", {"a": 3, "b": 4})]
    assert calls(ask("What is 6 times 7?", [MULTIPLY])) == [("multiply", {"a": 6, "b": 7})]


def test_structured_output_schema_args() -> None:
    named = {"type": "function", "function": {"name": "Joke"}}
    (name, args), = calls(ask("Tell me a joke about cats.", [JOKE], tool_choice=named))
    assert name == "Joke" and set(args) == {"setup", "punchline"}
    assert all(isinstance(v, str) and "cats" in v for v in args.values())


def test_no_tool_when_not_asked() -> None:
    turn = ask("Hello there", [WEATHER])
    assert not turn.tool_calls and "Hello there" in str(turn.content)
    assert not ask("weather please", [WEATHER], tool_choice="none").tool_calls


def test_parallel_calls_when_asked() -> None:
    turn = ask("Call read_file and list_folder in parallel for docs/readme.md", [READ, LIST])
    assert [n for n, _ in calls(turn)] == ["read_file", "list_folder"]
    assert calls(turn)[0][1] == {"path": "docs/readme.md"}
    turn = ask("Call read_file and list_folder in parallel", [READ, LIST], parallel_tool_calls=False)
    assert len(turn.tool_calls) == 1


def test_json_object_keys_from_quoted_words() -> None:
    q = "Tell me a joke about cats. Return the result as a JSON with 'setup' and 'punchline' keys."
    obj = json.loads(str(ask(q, response_format={"type": "json_object"}).content))
    assert set(obj) == {"setup", "punchline"}


def test_json_schema_answer_satisfies_schema() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
              "tags": {"type": "array", "items": {"type": "string"}}, "ok": {"type": "boolean"},
              "kind": {"enum": ["a", "b"]}}, "required": ["name", "age", "tags", "ok", "kind"]}
    rf = {"type": "json_schema", "json_schema": {"name": "P", "schema": schema}}
    obj = json.loads(str(ask("Alice is 31", response_format=rf).content))
    assert obj["age"] == 31 and isinstance(obj["name"], str) and obj["tags"] and obj["ok"] is True and obj["kind"] == "a"


def test_react_format() -> None:
    system = (
        "You are designed to help.\n## Tools\n> Tool Name: multiply\nTool Description: Multiply\n"
        'Tool Args: {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "type": "object"}\n\n'
        "## Output Format\nThought: ...\nAction: ...\nAction Input: ...\n"
    )
    msgs: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": "What is 6 times 7?"}]
    first = str(R.respond({"model": "m", "messages": msgs}).content)
    assert first.startswith("Thought:") and "Action: multiply" in first
    assert json.loads(first.split("Action Input:", 1)[1]) == {"a": 6, "b": 7}
    msgs += [{"role": "assistant", "content": first}, {"role": "user", "content": "Observation: 42"}]
    second = str(R.respond({"model": "m", "messages": msgs}).content)
    assert "Thought: I can answer without using any more tools" in second and "Answer: 42" in second


def test_scripted_responder_replays_then_repeats_last() -> None:
    s = ScriptedResponder(["one", {"content": "two", "reasoning": "r2"},
                           {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}])
    body: dict[str, Any] = {"messages": []}
    assert s.respond(body).content == "one"
    t2 = s.respond(body)
    assert (t2.content, t2.reasoning) == ("two", "r2")
    assert s.respond(body).tool_calls == [("f", '{"x": 1}')]
    assert s.remaining == 0 and s.respond(body).tool_calls == [("f", '{"x": 1}')]
    assert len(s.seen) == 4


def test_scripted_responder_fallback() -> None:
    s = ScriptedResponder(["canned"], fallback=DefaultResponder())
    assert s.respond({"messages": [{"role": "user", "content": "x"}]}).content == "canned"
    assert "You said: later" in str(s.respond({"messages": [{"role": "user", "content": "later"}]}).content)


def test_deterministic() -> None:
    q = "Use read_file on notes.txt, then list_folder on src/, then calculate 6*7."
    assert ask(q, [READ, LIST, CALC]) == ask(q, [READ, LIST, CALC])


# ------------------------------------------------------------- a real loop over the wire

KEY = "sk-kimi-test"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY]) as e:
        yield e


def _collect_stream(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Accumulate a streamed answer into an assistant wire message (like an adapter would)."""
    msg: dict[str, Any] = {"role": "assistant"}
    content, reasoning, tcs = "", None, {}
    with client.stream("POST", url, json={**body, "stream": True, "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if "reasoning_content" in delta:
                reasoning = (reasoning or "") + delta["reasoning_content"]
            content += delta.get("content") or ""
            for frag in delta.get("tool_calls") or []:
                slot = tcs.setdefault(frag["index"], {"id": None, "type": "function", "function": {"name": None, "arguments": ""}})
                slot["id"] = frag.get("id") or slot["id"]
                slot["function"]["name"] = frag.get("function", {}).get("name") or slot["function"]["name"]
                slot["function"]["arguments"] += frag.get("function", {}).get("arguments") or ""
    if content:
        msg["content"] = content
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    if tcs:
        msg["tool_calls"] = [tcs[i] for i in sorted(tcs)]
    return msg


def test_three_round_agent_loop_over_the_wire(emu: Emulator) -> None:
    results = {"read_file": "hello from notes", "list_folder": "a.py b.py", "calculate": "42"}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Use read_file on notes.txt, then list_folder on src/, then calculate 6*7."}]
    order = []
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=5) as c:
        for _ in range(6):
            msg = _collect_stream(c, f"{emu.base_url}/chat/completions",
                                  {"model": "kimi-for-coding", "messages": messages, "tools": [READ, LIST, CALC]})
            messages.append(msg)
            if "tool_calls" not in msg:
                break
            for tc in msg["tool_calls"]:
                order.append((tc["function"]["name"], json.loads(tc["function"]["arguments"])))
                messages.append({"role": "tool", "tool_call_id": tc["id"], "content": results[tc["function"]["name"]]})
    assert order == [("read_file", {"path": "notes.txt"}), ("list_folder", {"folder": "src/"}),
                     ("calculate", {"expression": "6*7"})]
    final = messages[-1]
    assert "tool_calls" not in final and all(v in final["content"] for v in results.values())
    assert emu.counts["chat"] == 4


def test_replaying_without_reasoning_fails_loop(emu: Emulator) -> None:
    """The classic integration bug: dropping reasoning_content makes round 2 a 400."""
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=5) as c:
        url = f"{emu.base_url}/chat/completions"
        messages: list[dict[str, Any]] = [{"role": "user", "content": "weather in Paris via get_weather"}]
        msg = _collect_stream(c, url, {"model": "kimi-for-coding", "messages": messages, "tools": [WEATHER]})
        msg.pop("reasoning_content")
        messages += [msg, {"role": "tool", "tool_call_id": msg["tool_calls"][0]["id"], "content": "sunny"}]
        r = c.post(url, json={"model": "kimi-for-coding", "messages": messages, "tools": [WEATHER]})
        assert r.status_code == 400 and "reasoning_content is missing" in r.json()["error"]["message"]


def test_forced_agent_with_structured_output_tool_terminates() -> None:
    """create_agent(..., response_format=ToolStrategy(Weather)) forces tool_choice each round:
    the responder calls the real tool first, then the schema tool with the results."""
    weather_schema = fn("Weather", {"city": {"type": "string"}, "summary": {"type": "string"}}, ["city", "summary"])
    get_weather = fn("get_weather", {"city": {"type": "string"}}, ["city"])
    tools = [get_weather, weather_schema]
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = R.respond({"model": "m", "messages": msgs, "tools": tools, "tool_choice": "required"})
    assert calls(first) == [("get_weather", {"city": "Paris"})]
    msgs += [
        {"role": "assistant", "reasoning_content": "", "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": first.tool_calls[0][1]}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny, 21C"},
    ]
    second = R.respond({"model": "m", "messages": msgs, "tools": tools, "tool_choice": "required"})
    (name, args), = calls(second)
    assert name == "Weather" and args["city"] == "Paris" and "sunny, 21C" in args["summary"]
