"""Streamed tool calls from servers that repeat or omit a call's id/name per fragment: the
aggregated LangChain message must match what the core accumulator (and invoke) produce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_kimi_coder import ChatKimiCoder

pytestmark = pytest.mark.timeout(30)


class _FakeStream:
    """A transport stream double: yields canned chunk dicts (the wire shapes under test)."""

    trace_id = None

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._chunks)

    def close(self) -> None:
        pass


class _FakeTransport:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def stream_chat(self, body: dict[str, Any]) -> _FakeStream:
        return _FakeStream(self.chunks)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "model": "kimi-for-coding",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _frag(index: int, args: str, *, call_id: str | None, name: str | None) -> dict[str, Any]:
    tc: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id is not None:
        tc["id"] = call_id
    if name is not None:
        tc["function"]["name"] = name
    return _chunk({"tool_calls": [tc]})


def _aggregate(chunks: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
               version: str) -> AIMessageChunk:
    monkeypatch.setattr(ChatKimiCoder, "_get_transport", lambda self: _FakeTransport(chunks))
    llm = ChatKimiCoder(api_key="sk-test", output_version=version)
    agg: Any = None
    for c in llm.stream("weather?"):
        agg = c if agg is None else agg + c
    return agg


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_id_and_name_repeated_on_every_fragment_are_not_concatenated(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    chunks = [
        _frag(0, '{"city":', call_id="functions.get_weather:0", name="get_weather"),
        _frag(0, ' "Lima"}', call_id="functions.get_weather:0", name="get_weather"),
        _chunk({}, "tool_calls"),
    ]
    msg = _aggregate(chunks, monkeypatch, version)
    assert msg.tool_calls == [{"name": "get_weather", "args": {"city": "Lima"},
                               "id": "functions.get_weather:0", "type": "tool_call"}]


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_a_call_streamed_without_id_gets_the_same_id_as_invoke(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    chunks = [
        _frag(0, '{"city": "Lima"}', call_id=None, name="get_weather"),
        _frag(1, '{"city": "Oslo"}', call_id=None, name="get_weather"),
        _chunk({}, "tool_calls"),
    ]
    msg = _aggregate(chunks, monkeypatch, version)
    assert [c["id"] for c in msg.tool_calls] == ["functions.get_weather:0", "functions.get_weather:1"]
    assert [c["args"] for c in msg.tool_calls] == [{"city": "Lima"}, {"city": "Oslo"}]
    if version == "v1":
        kinds = [b["type"] for b in msg.content_blocks]
        assert kinds == ["tool_call", "tool_call"]
