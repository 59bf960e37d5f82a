"""Issue 12 item 6: malformed chunks and bodies give typed errors, never untyped crashes or
silently wrong answers; a tool call the server never named is reported as invalid."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from _hostile import HostileServer, Request, head, sse_answer

from kimi_coder_auth.codecs.openai_response import StreamAccumulator, parse_completion
from kimi_coder_auth.errors import MalformedResponseError
from kimi_coder_auth.sources import StaticCredential
from kimi_coder_auth.transport import Transport

KEY = "sk-kimi-chunks-test"
BODY: dict[str, Any] = {"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]}


def _chunk(choice: Any) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [choice]}


BAD_CHUNKS = {
    "choices-null": {"id": "c1", "choices": [None]},
    "choices-not-list": {"id": "c1", "choices": {"0": {}}},
    "delta-str": _chunk({"index": 0, "delta": "hello"}),
    "content-int": _chunk({"index": 0, "delta": {"content": 5}}),
    "content-list": _chunk({"index": 0, "delta": {"content": ["a"]}}),
    "reasoning-dict": _chunk({"index": 0, "delta": {"reasoning_content": {"x": 1}}}),
    "tool-calls-str": _chunk({"index": 0, "delta": {"tool_calls": "call it"}}),
    "tool-call-null": _chunk({"index": 0, "delta": {"tool_calls": [None]}}),
    "function-str": _chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}),
}


@pytest.mark.parametrize("case", sorted(BAD_CHUNKS))
def test_malformed_chunks_are_typed_errors(case: str) -> None:
    acc = StreamAccumulator()
    with pytest.raises(MalformedResponseError, match="malformed"):
        acc.feed(BAD_CHUNKS[case])


def _serve_sse(events: list[Any]) -> HostileServer:
    return HostileServer(lambda conn, req: conn.sendall(sse_answer(events)))


def _serve_json(body: Any) -> HostileServer:
    raw = json.dumps(body).encode()

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(200, {"Content-Type": "application/json", "Content-Length": str(len(raw))}) + raw)

    return HostileServer(handler)


@pytest.mark.parametrize("case", ["choices-null", "delta-str", "content-int"])
def test_malformed_chunks_through_both_adapters(case: str) -> None:
    from langchain_core.exceptions import ModelAPIError
    from llama_index.core.base.llms.types import ChatMessage

    from langchain_kimi_coder import ChatKimiCoder
    from llama_index_kimi_coder import KimiCoderLLM

    good = _chunk({"index": 0, "delta": {"content": "ok"}})
    with _serve_sse([good, BAD_CHUNKS[case]]) as srv:
        with pytest.raises(ModelAPIError) as info:
            list(ChatKimiCoder(api_key=KEY, base_url=srv.base_url).stream("hi"))
        assert isinstance(info.value, MalformedResponseError)
        with pytest.raises(MalformedResponseError):
            list(KimiCoderLLM(api_key=KEY, base_url=srv.base_url).stream_chat([ChatMessage(role="user", content="hi")]))


@pytest.mark.parametrize(
    "body",
    [{"error": {"message": "engine overloaded", "type": "server_error"}}, {"error": "overloaded"}],
)
def test_a_200_carrying_an_error_object_is_a_typed_error_with_the_message(body: dict[str, Any]) -> None:
    with _serve_json(body) as srv, pytest.raises(MalformedResponseError, match="overloaded") as info:
        Transport(credential=StaticCredential(KEY), base_url=srv.base_url).chat(BODY)
    assert info.value.status == 200


@pytest.mark.parametrize("body", [{"choices": []}, {"choices": [None]}, {"id": "x"}, {"choices": [{"message": "hi"}]}])
def test_a_200_without_a_usable_choice_is_a_typed_error(body: dict[str, Any]) -> None:
    from langchain_kimi_coder import ChatKimiCoder

    with pytest.raises(MalformedResponseError):
        parse_completion(body)
    with _serve_json(body) as srv, pytest.raises(MalformedResponseError):
        ChatKimiCoder(api_key=KEY, base_url=srv.base_url).invoke("hi")


def test_nul_bytes_before_data_are_a_typed_error_not_a_dropped_event() -> None:
    events = [_chunk({"index": 0, "delta": {"content": "a"}}),
              b"\x00\x00data: " + json.dumps(_chunk({"index": 0, "delta": {"content": "b"}})).encode() + b"\n\n"]
    with _serve_sse(events) as srv, pytest.raises(MalformedResponseError, match="NUL"):
        list(Transport(credential=StaticCredential(KEY), base_url=srv.base_url).stream_chat(BODY))


def _orphan_chunks() -> list[Any]:
    named = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    return [
        _chunk({"index": 0, "delta": {"tool_calls": [named]}}),
        _chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}}),
        # index 3 was never announced (no id, no name)
        _chunk({"index": 0, "delta": {"tool_calls": [{"index": 3, "function": {"arguments": '{"x": 1}'}}]}}),
        _chunk({"index": 0, "delta": {}, "finish_reason": "tool_calls"}),
    ]


def test_an_unannounced_tool_call_index_is_marked_invalid_in_the_core() -> None:
    acc = StreamAccumulator()
    for chunk in _orphan_chunks():
        acc.feed(chunk)
    good, orphan = acc.result().tool_calls
    assert good.name == "get_weather" and good.error is None
    assert orphan.name == "" and orphan.error and "never its name" in orphan.error


def test_an_unnamed_tool_call_is_an_invalid_tool_call_in_langchain() -> None:
    from langchain_kimi_coder import ChatKimiCoder

    body = {"id": "r1", "model": "kimi-for-coding", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"arguments": '{"x": 1}'}},
        ]}}]}
    with _serve_json(body) as srv:
        message = ChatKimiCoder(api_key=KEY, base_url=srv.base_url).invoke("hi")
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    (bad,) = message.invalid_tool_calls
    assert bad["id"] == "call_2" and "never its name" in (bad["error"] or "")


def test_an_unnamed_streamed_tool_call_is_an_error_in_llama_index_not_a_tool_named_empty() -> None:
    from llama_index.core.base.llms.types import ChatMessage

    from llama_index_kimi_coder import KimiCoderLLM

    with _serve_sse(_orphan_chunks()) as srv:
        llm = KimiCoderLLM(api_key=KEY, base_url=srv.base_url)
        *_, last = llm.stream_chat([ChatMessage(role="user", content="hi")])
    with pytest.raises(MalformedResponseError, match="no tool name"):
        llm.get_tool_calls_from_response(last)


@pytest.mark.parametrize("mode", ["stream", "astream", "streaming-invoke"])
def test_an_unnamed_streamed_tool_call_raises_in_langchain_not_a_tool_named_empty(mode: str) -> None:
    """LangChain re-derives tool calls from merged chunks, so a stream cannot carry the call as
    invalid: it raises a typed error instead of ending with a tool named ''."""
    import asyncio

    from langchain_core.exceptions import ModelAPIError

    from langchain_kimi_coder import ChatKimiCoder

    with _serve_sse(_orphan_chunks()) as srv:
        extra = {"streaming": True} if mode == "streaming-invoke" else {}
        model = ChatKimiCoder(api_key=KEY, base_url=srv.base_url, **extra)
        with pytest.raises(MalformedResponseError, match="never its name") as info:
            if mode == "stream":
                list(model.stream("hi"))
            elif mode == "astream":
                async def run() -> None:
                    async for _ in model.astream("hi"):
                        pass

                asyncio.run(run())
            else:
                model.invoke("hi")
    assert isinstance(info.value, ModelAPIError)
