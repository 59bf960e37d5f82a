"""End-to-end secrets hygiene: canary keys and tokens never reach a log, repr, error or payload.

Project rule: secrets never leak - not into logs at any level, reprs, exception messages,
tracebacks, LangSmith metadata or serialized models; credential files are written atomically
with mode 0600. Every test here plants unique canaries (``sk-kimi-CANARY-<uuid>``,
``AT-CANARY-<uuid>``, ``RT-CANARY-<uuid>``), drives the real code against the emulator on
127.0.0.1 with *every* logger at DEBUG, and scans everything a user, a log pipeline, a tracer
or an error tracker could see for the canary and its first/last 12 characters.

A leak that is still open is an ``xfail(strict=True, reason="LEAK: ...")`` test, so the suite
stays green while the leak is visible, and turns red the moment it is fixed (remove the mark).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import pickle
import re
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from _canary import (
    LOGGERS,
    Leaks,
    LogCollector,
    exception_texts,
    make_canary,
    make_opaque_canary,
    to_text,
)

from kimi_coder_auth import refresh as refresh_mod
from kimi_coder_auth.cli import main as cli_main
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.sources import clear_credential_cache, resolve_credential
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

pytestmark = pytest.mark.timeout(30)

PRODUCT = ("kimi_coder_auth", "langchain_kimi_coder", "llama_index_kimi_coder")
SECRET_MARKER = {"lc": 1, "type": "secret", "id": ["KIMI_CODER_API_KEY"]}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogCollector]:
    """Every audited logger at DEBUG, captured by caplog and by a handler on the root logger."""
    handler = LogCollector()
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def log_texts(handler: LogCollector, caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Everything the logging system saw, as (where, text) pairs for `Leaks.check_all`."""
    return [
        ("root handler", handler.text()),
        ("caplog.text", caplog.text),
        ("caplog messages", "\n".join(r.getMessage() for r in caplog.records)),
    ]


@pytest.fixture
def key() -> str:
    return make_canary("sk-kimi")


@pytest.fixture
def emu(key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The strict emulator, accepting the canary key, also serving as the OAuth host."""
    with Emulator(api_keys=[key]) as e:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", e.oauth_host)
        monkeypatch.setenv("KIMI_CODE_BASE_URL", e.base_url)
        yield e


@pytest.fixture(autouse=True)
def _fresh_credentials() -> Iterator[None]:
    """Process-wide credential objects and the rejected-refresh memo start empty."""
    clear_credential_cache()
    refresh_mod._rejected.clear()
    yield
    clear_credential_cache()
    refresh_mod._rejected.clear()


def closed_port_url() -> str:
    """A loopback base URL nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/coding/v1"


# --------------------------------------------------------------------------- LangChain


def lc_model(**kw: Any) -> Any:
    from langchain_kimi_coder import ChatKimiCoder

    return ChatKimiCoder(**kw)


def test_chat_model_reprs_dumps_and_ls_params_hide_the_key(key: str, emu: Emulator) -> None:
    from langchain_core.load import dumpd, dumps, loads

    model = lc_model(api_key=key, base_url=emu.base_url, temperature=0.2)
    leaks = Leaks(key)
    assert model.api_key is not None and model.api_key.get_secret_value() == key  # planted

    leaks.check("repr", repr(model))
    leaks.check("str", str(model))
    leaks.check("model_dump", repr(model.model_dump()))
    leaks.check("model_dump(json)", json.dumps(model.model_dump(mode="json")))
    leaks.check("model_dump_json", model.model_dump_json())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaks.check("dict()", repr(model.dict()))
    leaks.check("_identifying_params", to_text(model._identifying_params))
    leaks.check("_get_ls_params", to_text(model._get_ls_params(stop=["x"])))
    leaks.check("_get_invocation_params", to_text(model._get_invocation_params(stop=["x"])))
    leaks.check("bind_tools repr", repr(model.bind_tools([{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}])))
    leaks.check("with_config repr", repr(model.with_config(tags=["t"])))
    leaks.check("model_copy repr", repr(model.model_copy(update={"temperature": 0.5})))
    leaks.check("deepcopy repr", repr(copy.deepcopy(model)))

    serialized = dumpd(model)
    leaks.check("dumpd", json.dumps(serialized, default=repr))
    assert serialized["kwargs"]["api_key"] == SECRET_MARKER
    text = dumps(model)
    leaks.check("dumps", text)
    assert json.loads(text)["kwargs"]["api_key"] == SECRET_MARKER
    leaks.check("dumps(pretty)", dumps(model, pretty=True))

    # the marker round-trips only with the secret supplied from outside
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `loads` is beta
        restored = loads(
            text,
            secrets_map={"KIMI_CODER_API_KEY": key},
            valid_namespaces=["langchain_kimi_coder"],
            allowed_objects=[type(model)],
        )
    assert restored.api_key.get_secret_value() == key
    assert restored.invoke("hello again").content


def test_chat_model_constructor_errors_hide_the_key(key: str) -> None:
    from pydantic import ValidationError

    leaks = Leaks(key)
    for bad in ({"temperature": "hot"}, {"forced_tool_choice": "sometimes"}, {"max_retries": "x"},
                {"unknown_model_field": {"nested": 1}, "max_tokens": "lots"}):
        with pytest.raises((ValidationError, ValueError, TypeError)) as info:
            lc_model(api_key=key, **bad)
        # langchain_core's own __init__ frame holds the caller's raw kwargs (not ours to fix):
        # scan the locals of kimi-coder's frames only
        leaks.check_exc(f"ChatKimiCoder({bad})", info.value, locals_of=PRODUCT)


class SpyHandler:
    """A LangChain callback handler recording every payload it is given."""

    def __new__(cls) -> Any:
        from langchain_core.callbacks import BaseCallbackHandler

        class _Spy(BaseCallbackHandler):
            raise_error = True

            def __init__(self) -> None:
                self.events: list[tuple[str, Any]] = []

            def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
                self.events.append(("on_chat_model_start", {"serialized": serialized,
                                                            "messages": messages, **kw}))

            def on_llm_start(self, serialized: Any, prompts: Any, **kw: Any) -> None:
                self.events.append(("on_llm_start", {"serialized": serialized, "prompts": prompts, **kw}))

            def on_llm_new_token(self, token: str, **kw: Any) -> None:
                self.events.append(("on_llm_new_token", {"token": token, **kw}))

            def on_llm_end(self, response: Any, **kw: Any) -> None:
                self.events.append(("on_llm_end", {"response": response, **kw}))

            def on_llm_error(self, error: BaseException, **kw: Any) -> None:
                self.events.append(("on_llm_error", {"error": error, **kw}))

            def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
                self.events.append(("on_chain_start", {"serialized": serialized, "inputs": inputs, **kw}))

            def on_chain_end(self, outputs: Any, **kw: Any) -> None:
                self.events.append(("on_chain_end", {"outputs": outputs, **kw}))

            def on_chain_error(self, error: BaseException, **kw: Any) -> None:
                self.events.append(("on_chain_error", {"error": error, **kw}))

        return _Spy()


def test_chat_calls_keep_the_key_out_of_logs_callbacks_tracers_and_events(
    key: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

    leaks = Leaks(key)
    spy = SpyHandler()
    collector = RunCollectorCallbackHandler()
    model = lc_model(api_key=key, base_url=emu.base_url, thinking=True)
    config = {"callbacks": [spy, collector], "metadata": {"user": "u1"}, "tags": ["audit"]}

    model.invoke("hello", config=config)
    chunks = list(model.stream("stream please", config=config))
    assert chunks
    (model | (lambda m: m.content)).invoke("in a chain", config=config)

    async def events() -> list[dict[str, Any]]:
        out = [e async for e in model.astream_events("events please", version="v2", config=config)]
        await model.ainvoke("async hello", config=config)
        return out

    evs = asyncio.run(events())
    assert any(e["event"] == "on_chat_model_stream" for e in evs)

    # the bearer header really carried the canary, so the scans below are not vacuous
    assert any(r.headers.get("authorization") == f"Bearer {key}" for r in emu.requests)
    assert any(n.startswith("httpcore") for n in logs.names()), "httpcore DEBUG not captured"
    assert any(n.startswith("kimi_coder_auth") for n in logs.names())

    starts = [p for name, p in spy.events if name == "on_chat_model_start"]
    assert starts and all(p["serialized"]["kwargs"]["api_key"] == SECRET_MARKER for p in starts)
    assert all("ls_provider" in p["metadata"] for p in starts)  # the LangSmith metadata
    for name, payload in spy.events:
        leaks.check(f"callback {name}", to_text(payload))
    assert collector.traced_runs
    for run in collector.traced_runs:
        leaks.check("tracer run json", run.model_dump_json())
        leaks.check("tracer run repr", repr(run))
    for ev in evs:
        leaks.check(f"astream_events {ev['event']}", json.dumps(ev, default=repr))
    leaks.check_all(log_texts(logs, caplog))


def test_langsmith_tracer_payloads_hide_the_key(key: str, emu: Emulator) -> None:
    """What LangChainTracer would post to LangSmith (a mocked client records the calls)."""
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client

    client = mock.MagicMock(spec=Client)
    tracer = LangChainTracer(client=client, project_name="audit")
    model = lc_model(api_key=key, base_url=emu.base_url)
    model.invoke("trace me", config={"callbacks": [tracer]})
    list(model.stream("trace my stream", config={"callbacks": [tracer]}))
    tracer.wait_for_futures()
    posted = "\n".join(to_text(c) for c in client.mock_calls)
    # the runs were posted, with the LangSmith metadata and the serialized model's secret marker
    assert "create_run" in posted and "ls_provider" in posted and "KIMI_CODER_API_KEY" in posted
    Leaks(key).check("LangSmith client calls", posted)


def test_pickling_an_unused_chat_model_never_writes_the_key(key: str) -> None:
    model = lc_model(api_key=key)
    try:
        data = pickle.dumps(model)
    except TypeError as exc:  # refusing is acceptable, if the message is clean
        Leaks(key).check_exc("pickle refusal", exc)
        return
    Leaks(key).check("pickle bytes", data.decode("latin-1"))


def test_pickling_a_used_chat_model_never_writes_the_key(key: str, emu: Emulator) -> None:
    model = lc_model(api_key=key, base_url=emu.base_url)
    model.invoke("warm up")
    try:
        data = pickle.dumps(model)
    except TypeError as exc:
        Leaks(key).check_exc("pickle refusal", exc)
        return
    Leaks(key).check("pickle bytes", data.decode("latin-1"))


def test_env_key_is_never_copied_into_models_or_payloads(
    key: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch, logs: LogCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """KIMI_CODER_API_KEY is read at request time and stays out of both adapters' state."""
    from langchain_core.load import dumps

    monkeypatch.setenv("KIMI_CODER_API_KEY", key)
    leaks = Leaks(key)
    spy = SpyHandler()
    model = lc_model(base_url=emu.base_url)
    model.invoke("hello", config={"callbacks": [spy]})
    llm = li_llm(base_url=emu.base_url)
    llm.chat(_user("hello"))
    assert sum(r.headers.get("authorization") == f"Bearer {key}" for r in emu.requests) >= 2
    leaks.check("ChatKimiCoder repr/dumps", repr(model) + dumps(model) + model.model_dump_json())
    leaks.check("KimiCoderLLM repr/to_json", repr(llm) + llm.to_json())
    for obj in (model, llm):
        try:
            data = pickle.dumps(obj)
        except TypeError as exc:  # a used ChatKimiCoder refuses (its cached transport holds a Secret)
            leaks.check_exc(f"pickle refusal of {type(obj).__name__}", exc)
        else:
            leaks.check(f"pickle of {type(obj).__name__}", data.decode("latin-1"))
    for name, payload in spy.events:
        leaks.check(f"callback {name}", to_text(payload))
    leaks.check("credential", to_text(resolve_credential()) + to_text(resolve_credential().describe()))
    leaks.check_all(log_texts(logs, caplog))


# -- errors


ERROR_CASES = ("401", "403-ua", "429", "500", "drop", "sse-error", "refused",
               "msg-401", "msg-429", "msg-drop", "msg-sse-error")


def _arrange(case: str, emu: Emulator, key: str) -> tuple[dict[str, Any], type | tuple[type, ...]]:
    """Constructor overrides and the expected kimi error type for one failure case."""
    from kimi_coder_auth import errors as k

    if case == "401":
        emu.api_keys.discard(key)
        return {}, k.AuthenticationError
    if case == "403-ua":
        emu.ua_gate = re.compile(r"^KimiCLI/")
        return {"protocol": "openai"}, k.UserAgentRejectedError  # pinned: no switch
    # the Anthropic Messages route (x-api-key auth, Anthropic error envelope)
    msg = {"protocol": "anthropic"}
    if case == "msg-401":
        emu.api_keys.discard(key)
        return msg, k.AuthenticationError
    if case == "msg-429":
        emu.inject("messages", status=429, times=None)
        return msg, k.RateLimitError
    if case == "msg-drop":
        emu.inject("messages", drop_after_chunks=2, times=None)
        return msg, k.APIConnectionError
    if case == "msg-sse-error":
        emu.inject("messages", sse_error={"error": {"message": "overloaded", "type": "overloaded_error"}},
                   times=None)
        return msg, (k.APIError, k.APIConnectionError)
    if case == "429":
        emu.inject("chat", status=429, times=None)
        return {}, k.RateLimitError
    if case == "500":
        emu.inject("chat", status=500, times=None)
        return {}, k.ServerError
    if case == "drop":
        emu.inject("chat", drop_after_chunks=2, times=None)
        return {}, k.APIConnectionError
    if case == "sse-error":
        emu.inject("chat", sse_error={"error": {"message": "engine overloaded", "type": "server_error"}},
                   times=None)
        return {}, (k.APIError, k.APIConnectionError)
    if case == "refused":
        return {"base_url": closed_port_url()}, k.APIConnectionError
    raise AssertionError(case)


@pytest.mark.parametrize("case", ERROR_CASES)
def test_chat_model_errors_hide_the_key(
    case: str, key: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    overrides, expected = _arrange(case, emu, key)
    leaks = Leaks(key)
    spy = SpyHandler()
    kw = {"api_key": key, "base_url": emu.base_url, "max_retries": 0, **overrides}
    model = lc_model(**kw)
    errors: list[tuple[str, BaseException]] = []
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("invoke", lambda: model.invoke("hello there", config={"callbacks": [spy]})),
        ("stream", lambda: list(model.stream("hello there", config={"callbacks": [spy]}))),
        ("ainvoke", lambda: asyncio.run(model.ainvoke("hello there", config={"callbacks": [spy]}))),
    ]
    for name, call in calls:
        if case in ("sse-error", "msg-sse-error") and name != "stream":
            continue  # an SSE error event exists only on streams
        with pytest.raises(expected) as info:
            call()
        errors.append((name, info.value))
    assert any(
        r.headers.get("authorization") == f"Bearer {key}" or r.headers.get("x-api-key") == key
        for r in emu.requests
    ) or case == "refused"
    for name, exc in errors:
        leaks.check_exc(f"{case}/{name}", exc)
    for name, payload in spy.events:
        leaks.check(f"callback {name}", to_text(payload))
    leaks.check_all(log_texts(logs, caplog))


# --------------------------------------------------------------------------- LlamaIndex


def li_llm(**kw: Any) -> Any:
    from llama_index_kimi_coder import KimiCoderLLM

    return KimiCoderLLM(**kw)


def _user(text: str) -> list[Any]:
    from llama_index.core.base.llms.types import ChatMessage

    return [ChatMessage(role="user", content=text)]


def test_llm_reprs_serialisation_and_pickling_hide_the_key(key: str, emu: Emulator) -> None:
    leaks = Leaks(key)
    llm = li_llm(api_key=key, base_url=emu.base_url, thinking=True)
    for stage in ("unused", "used"):
        leaks.check(f"{stage} repr", repr(llm))
        leaks.check(f"{stage} str", str(llm))
        leaks.check(f"{stage} to_dict", json.dumps(llm.to_dict(), default=repr))
        leaks.check(f"{stage} to_json", llm.to_json())
        leaks.check(f"{stage} dict", repr(llm.dict()))
        leaks.check(f"{stage} model_dump", repr(llm.model_dump()))
        leaks.check(f"{stage} model_dump_json", llm.model_dump_json())
        leaks.check(f"{stage} metadata", to_text(llm.metadata.model_dump()))
        leaks.check(f"{stage} __getstate__-free repr of private attrs",
                    repr(getattr(llm, "__pydantic_private__", {})))
        with pytest.raises(TypeError) as info:
            pickle.dumps(llm)
        leaks.check_exc(f"{stage} pickle refusal", info.value)
        leaks.check(f"{stage} deepcopy repr", repr(copy.deepcopy(llm)))
        llm.chat(_user("warm up"))


def test_llm_calls_keep_the_key_out_of_logs_callbacks_and_instrumentation(
    key: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.callbacks.base_handler import BaseCallbackHandler
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler

    seen: list[tuple[str, str]] = []

    class CBSpy(BaseCallbackHandler):
        def __init__(self) -> None:
            super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])

        def on_event_start(self, event_type: Any, payload: Any = None, event_id: str = "",
                           parent_id: str = "", **kw: Any) -> str:
            seen.append((f"cb start {event_type}", to_text(payload) + to_text(kw)))
            return event_id

        def on_event_end(self, event_type: Any, payload: Any = None, event_id: str = "",
                         **kw: Any) -> None:
            seen.append((f"cb end {event_type}", to_text(payload) + to_text(kw)))

        def start_trace(self, trace_id: str | None = None) -> None:
            return None

        def end_trace(self, trace_id: str | None = None, trace_map: Any = None) -> None:
            return None

    class EventSpy(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "EventSpy"

        def handle(self, event: Any, **kw: Any) -> None:
            try:
                dumped = event.model_dump_json()
            except Exception:
                dumped = repr(event.model_dump())
            seen.append((f"event {event.class_name()}", dumped + repr(event)))

    dispatcher = get_dispatcher()
    ev_spy, span_spy = EventSpy(), SimpleSpanHandler()
    dispatcher.add_event_handler(ev_spy)
    dispatcher.add_span_handler(span_spy)
    try:
        llm = li_llm(api_key=key, base_url=emu.base_url, thinking=True,
                     callback_manager=CallbackManager([CBSpy()]))
        llm.chat(_user("hello"))
        list(llm.stream_chat(_user("stream please")))
        llm.complete("complete please")

        async def run() -> None:
            await llm.achat(_user("async hello"))
            async for _ in await llm.astream_chat(_user("async stream")):
                pass

        asyncio.run(run())
    finally:
        dispatcher.event_handlers.remove(ev_spy)
        dispatcher.span_handlers.remove(span_spy)

    assert any(r.headers.get("authorization") == f"Bearer {key}" for r in emu.requests)
    assert any(w.startswith("cb start") for w, _ in seen) and any(w.startswith("event") for w, _ in seen)
    assert any(n.startswith("httpcore") for n in logs.names())
    leaks = Leaks(key)
    leaks.check_all(seen)
    leaks.check("span handler", repr(span_spy.completed_spans) + repr(span_spy.open_spans))
    leaks.check_all(log_texts(logs, caplog))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_llm_errors_hide_the_key(
    case: str, key: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    overrides, expected = _arrange(case, emu, key)
    llm = li_llm(**{"api_key": key, "base_url": emu.base_url, "max_retries": 0, **overrides})
    errors: list[tuple[str, BaseException]] = []

    async def astream() -> None:
        async for _ in await llm.astream_chat(_user("hello there")):
            pass

    for name, call in (
        ("chat", lambda: llm.chat(_user("hello there"))),
        ("stream_chat", lambda: list(llm.stream_chat(_user("hello there")))),
        ("astream_chat", lambda: asyncio.run(astream())),
    ):
        if case in ("sse-error", "msg-sse-error") and name == "chat":
            continue  # an SSE error event exists only on streams
        with pytest.raises(expected) as info:
            call()
        errors.append((name, info.value))
    leaks = Leaks(key)
    for name, exc in errors:
        leaks.check_exc(f"{case}/{name}", exc)
    leaks.check_all(log_texts(logs, caplog))


# --------------------------------------------------------------------------- echoed keys of any shape

KEY_SHAPES = ("sk-kimi", "opaque")
ECHO_CASES = ("sse-error-event", "sse-data-error", "http-error-text")


def _shaped_key(shape: str) -> str:
    return make_canary("sk-kimi") if shape == "sk-kimi" else make_opaque_canary()


def _echo(case: str, emu: Emulator, key: str) -> None:
    """Make the emulator quote the key back in the error it sends (as proxies do)."""
    if case == "sse-error-event":
        emu.inject("chat", sse_error={"error": {"message": f"token {key} rejected", "type": f"e {key}"}},
                   times=None)
    elif case == "sse-data-error":
        emu.inject("chat", sse_error={"error": f"upstream said: Authorization {key}"}, times=None)
    else:
        emu.inject("chat", status=500, body={"error": {"message": f"bad token {key}", "type": key}},
                   times=None)


@pytest.mark.parametrize("case", ECHO_CASES)
@pytest.mark.parametrize("shape", KEY_SHAPES)
def test_a_server_echoing_a_key_of_any_shape_never_leaks_it(
    shape: str, case: str, logs: LogCollector, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 12 item 5: the exact sent secret is scrubbed from every quoted server text, also
    for tokens no pattern recognises; checked in str/repr/pickle/tracebacks, LangChain debug
    output, callbacks and logs, through both adapters."""
    from langchain_core.globals import set_debug

    key = _shaped_key(shape)
    leaks = Leaks(key)
    spy = SpyHandler()
    errors: list[tuple[str, BaseException]] = []
    with Emulator(api_keys=[key]) as emu:
        _echo(case, emu, key)
        model = lc_model(api_key=key, base_url=emu.base_url, max_retries=0)
        llm = li_llm(api_key=key, base_url=emu.base_url, max_retries=0)
        set_debug(True)
        try:
            for name, call in (
                ("lc-stream", lambda: list(model.stream("hello there", config={"callbacks": [spy]}))),
                ("li-stream", lambda: list(llm.stream_chat(_user("hello there")))),
            ):
                with pytest.raises(Exception) as info:
                    call()
                errors.append((name, info.value))
        finally:
            set_debug(False)
        assert any(key in json.dumps(r.body or {}) or r.headers.get("authorization") == f"Bearer {key}"
                   for r in emu.requests)
    for name, exc in errors:
        leaks.check_exc(f"{shape}/{case}/{name}", exc)
        leaks.check(f"{shape}/{case}/{name} pickle", repr(pickle.loads(pickle.dumps(exc)).__dict__))
    out = capsys.readouterr()
    leaks.check("LangChain debug stdout", out.out)
    leaks.check("LangChain debug stderr", out.err)
    for name, payload in spy.events:
        leaks.check(f"callback {name}", to_text(payload))
    leaks.check_all(log_texts(logs, caplog))


# --------------------------------------------------------------------------- OAuth (login file)


def login_file() -> Path:
    """The emulator host's login: Kimi Code's per-host slot (kimi-cli's file is the default
    host's only, so an emulator login never goes there)."""
    return KimiCodeStore().path


def plant_login(emu: Emulator, *, expired: bool) -> tuple[str, str]:
    """Write a login with canary tokens the emulator knows; return (access, refresh)."""
    at, rt = make_canary("AT"), make_canary("RT")
    emu.issue_token(access_token=at, refresh_token=rt)
    expires_at = time.time() + (-60 if expired else 800)
    KimiCodeStore().write(
        OAuthToken(Secret(at), Secret(rt), expires_at, 900.0, "kimi-code", "Bearer")
    )
    return at, rt


def file_secrets() -> list[str]:
    """Whatever tokens the credential files hold now (rotated ones are secrets too)."""
    found: list[str] = []
    for path in (login_file(), Path(os.environ["KIMI_SHARE_DIR"]) / "credentials" / "kimi-code.json",
                 Path(os.environ["KIMI_CODE_HOME"]) / "credentials" / "kimi-code.json"):
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            found += [data.get("access_token") or "", data.get("refresh_token") or ""]
    return [s for s in found if s]


def credential_reprs() -> list[tuple[str, str]]:
    """Reprs of every credential object a user could print: resolved credential, token, stores."""
    cred = resolve_credential(credentials="kimi-code")
    out = [("resolve_credential()", to_text(cred)),
           ("resolve_credential().describe()", to_text(cred.describe()))]
    from kimi_coder_auth.errors import CredentialError

    inner = getattr(cred, "resolve", None)
    if inner is not None:
        try:
            resolved = inner()
        except CredentialError as exc:  # e.g. the login was revoked: its message is audited
            out.append(("resolve() error", str(exc)))
        else:
            out.append(("resolved credential", to_text(resolved)))
            out.append(("resolved __dict__", repr(getattr(resolved, "__dict__", {}))))
    for store in (KimiCliStore(), KimiCodeStore()):
        out.append((f"{store.name} store", to_text(store)))
        try:
            token = store.read()
        except CredentialError as exc:
            out.append((f"{store.name} read() error", str(exc)))
            continue
        if token is not None:
            out.append((f"{store.name} OAuthToken", to_text(token)))
            out.append((f"{store.name} OAuthToken.access", str(token.access_token)))
    return out


def assert_private_file_and_no_temp(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path} has mode {oct(mode)}"
    dir_mode = stat.S_IMODE(path.parent.stat().st_mode)
    assert dir_mode & 0o077 == 0, f"{path.parent} has mode {oct(dir_mode)}"
    leftovers = [p.name for p in path.parent.iterdir() if ".tmp" in p.name]
    assert not leftovers, f"temp files left behind: {leftovers}"


def _oauth_chat(adapter: str, base_url: str) -> Callable[[], Any]:
    if adapter == "langchain":
        model = lc_model(base_url=base_url, credentials="kimi-code", max_retries=0)
        return lambda: (model.invoke("hi").content, list(model.stream("and stream")))
    llm = li_llm(base_url=base_url, credentials="kimi-code", max_retries=0)
    return lambda: (llm.chat(_user("hi")), list(llm.stream_chat(_user("and stream"))))


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_oauth_refresh_through_adapter_hides_tokens_and_writes_0600(
    adapter: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    at, rt = plant_login(emu, expired=True)
    old_umask = os.umask(0)  # a permissive umask must not widen the rewritten file
    try:
        _oauth_chat(adapter, emu.base_url)()
    finally:
        os.umask(old_umask)
    assert emu.counts["refresh"] == 1
    new = file_secrets()
    assert at not in new and rt not in new  # rotated and stored
    assert_private_file_and_no_temp(login_file())
    leaks = Leaks(at, rt, *new)
    leaks.check_all(log_texts(logs, caplog))
    leaks.check_all(credential_reprs())
    assert any("refresh token" in r.getMessage() for r in logs.records)  # refresh was logged


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_oauth_401_refreshes_once_and_hides_tokens(
    adapter: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    at, rt = plant_login(emu, expired=False)
    emu.expire_access_tokens()  # the server now rejects the stored token: 401 -> refresh -> retry
    _oauth_chat(adapter, emu.base_url)()
    assert emu.counts["refresh"] == 1
    assert_private_file_and_no_temp(login_file())
    leaks = Leaks(at, rt, *file_secrets())
    leaks.check_all(log_texts(logs, caplog))
    leaks.check_all(credential_reprs())


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
@pytest.mark.parametrize("path", ["expired", "401"])
def test_oauth_rejected_refresh_errors_hide_tokens(
    adapter: str, path: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    from kimi_coder_auth.errors import AuthenticationError, ReauthRequired

    at, rt = plant_login(emu, expired=path == "expired")
    if path == "401":
        emu.expire_access_tokens()
    emu.revoke_refresh_tokens()
    with pytest.raises((ReauthRequired, AuthenticationError)) as info:
        _oauth_chat(adapter, emu.base_url)()
    assert emu.counts["refresh_rejected"] >= 1
    tombstone = json.loads(login_file().read_text())  # Kimi Code's revoked tombstone
    assert tombstone["access_token"] == tombstone["refresh_token"] == ""
    leaks = Leaks(at, rt, *file_secrets())
    leaks.check_exc(f"{adapter}/{path}", info.value)
    leaks.check_all(log_texts(logs, caplog))
    leaks.check_all(credential_reprs())


def test_kimi_code_store_refresh_write_is_private(emu: Emulator) -> None:
    """Kimi Code's file format: same 0600 / no-temp guarantee after a refresh write."""
    from kimi_coder_auth.refresh import OAuthCredential

    at, rt = make_canary("AT"), make_canary("RT")
    emu.issue_token(access_token=at, refresh_token=rt)
    store = KimiCodeStore()
    store.write(OAuthToken(Secret(at), Secret(rt), time.time() - 60, 900.0, "kimi-code", "Bearer"))
    cred = OAuthCredential(store)
    token = cred.get_token()
    assert token.reveal() not in (at, "") and emu.counts["refresh"] == 1
    assert_private_file_and_no_temp(store.path)
    leaks = Leaks(at, rt, token.reveal(), *file_secrets())
    leaks.check("OAuthCredential repr", to_text(cred) + repr(cred.__dict__))
    leaks.check("token repr", to_text(token))


# --------------------------------------------------------------------------- CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out + "\n" + err


def test_cli_status_and_logout_never_print_tokens(
    emu: Emulator, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    logs: LogCollector, caplog: pytest.LogCaptureFixture,
) -> None:
    at, rt = plant_login(emu, expired=False)
    leaks = Leaks(at, rt, key)
    outputs = [_cli(capsys, "status"), _cli(capsys, "status", "--json"),
               _cli(capsys, "status", "--credentials", "kimi-code", "--json")]
    monkeypatch.setenv("KIMI_CODER_API_KEY", key)
    outputs += [_cli(capsys, "status"), _cli(capsys, "status", "--json"),
                _cli(capsys, "logout"), _cli(capsys, "status", "--credentials", "env")]
    assert all(code == 0 for code, _ in outputs), outputs
    assert not login_file().exists()
    assert "Kimi Code" in outputs[0][1] and '"source": "kimi-code"' in outputs[1][1]
    assert '"source": "env"' in outputs[4][1]
    for i, (_, text) in enumerate(outputs):
        leaks.check(f"status output #{i}", text)
    leaks.check_all(log_texts(logs, caplog))


def test_cli_login_never_prints_device_code_or_tokens(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    logs: LogCollector, caplog: pytest.LogCaptureFixture,
) -> None:
    from kimi_coder_auth import device_login
    from kimi_coder_auth.clock import FakeClock, use_clock

    monkeypatch.setattr(device_login.webbrowser, "open", lambda url: True)
    emu.script_device(["authorization_pending", "approve"])
    with use_clock(FakeClock()):
        code, text = _cli(capsys, "login", "--no-browser")
    assert code == 0, text
    device_codes = [r.body["device_code"] for r in emu.requests
                    if isinstance(r.body, dict) and r.body.get("device_code")]
    assert device_codes
    saved = file_secrets()
    assert len(saved) == 2
    assert_private_file_and_no_temp(login_file())
    leaks = Leaks(*device_codes, *saved)
    leaks.check("login output", text)
    leaks.check_all(log_texts(logs, caplog))


def test_cli_api_commands_never_print_the_key(
    emu: Emulator, key: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    logs: LogCollector, caplog: pytest.LogCaptureFixture,
) -> None:
    leaks = Leaks(key)
    ok = [
        _cli(capsys, "models", "--api-key", key, "--base-url", emu.base_url),
        _cli(capsys, "models", "--json", "--api-key", key, "--base-url", emu.base_url),
        _cli(capsys, "usage", "--api-key", key, "--base-url", emu.base_url),
        _cli(capsys, "usage", "--json", "--api-key", key, "--base-url", emu.base_url),
        _cli(capsys, "chat", "--api-key", key, "--base-url", emu.base_url, "--plain", "say hi"),
    ]
    assert [c for c, _ in ok] == [0] * len(ok), ok
    monkeypatch.setenv("KIMI_CODER_API_KEY", key)
    ok.append(_cli(capsys, "chat", "--base-url", emu.base_url, "--plain", "via env"))
    assert ok[-1][0] == 0
    emu.api_keys.discard(key)  # now every call is a 401
    bad = [
        _cli(capsys, "models", "--api-key", key, "--base-url", emu.base_url),
        _cli(capsys, "usage", "--base-url", emu.base_url),
        _cli(capsys, "chat", "--api-key", key, "--base-url", emu.base_url, "--plain", "say hi"),
        _cli(capsys, "models", "--api-key", key, "--base-url", closed_port_url()),
    ]
    assert all(c != 0 for c, _ in bad), bad
    for i, (_, text) in enumerate(ok + bad):
        leaks.check(f"cli output #{i}", text)
    leaks.check_all(log_texts(logs, caplog))


def test_cli_real_subprocess_never_prints_secrets(emu: Emulator) -> None:
    at, rt = plant_login(emu, expired=True)
    key = make_canary("sk-kimi")  # not known to the emulator: `models` gets a 401
    env = {**os.environ, "KIMI_CODE_BASE_URL": emu.base_url, "KIMI_CODE_OAUTH_HOST": emu.oauth_host,
           "PYTHONWARNINGS": "always"}
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr);"
        "from kimi_coder_auth.cli import main;"
        "codes = [main(['models']), main(['usage']), main(['status', '--json']),"
        f" main(['models', '--api-key', {key!r}])];"
        "print('CODES', codes)"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=30)
    # the expired login is refreshed by `models`; the unknown key gets a 401
    assert "CODES [0, 0, 0, 1]" in proc.stdout, proc.stdout + proc.stderr
    assert emu.counts["refresh"] == 1
    assert "httpcore" in proc.stderr  # DEBUG logging really was on
    Leaks(at, rt, key, *file_secrets()).check("subprocess output", proc.stdout + proc.stderr)


def test_doctor_report_never_prints_tokens_or_device_ids(emu: Emulator) -> None:
    """`kimi-coder doctor` (a report meant to be pasted publicly) with a real OAuth login that
    must be refreshed, device-id files of both CLIs, DEBUG logging and the gate on."""
    at, rt = plant_login(emu, expired=True)
    emu.ua_gate = re.compile(r"^KimiCLI/")
    device_ids = [make_canary("DEV"), make_canary("DEV")]
    for home, device in zip(("KIMI_SHARE_DIR", "KIMI_CODE_HOME"), device_ids, strict=True):
        Path(os.environ[home]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ[home]) / "device_id").write_text(device)
    env = {**os.environ, "KIMI_CODE_BASE_URL": emu.base_url, "KIMI_CODE_OAUTH_HOST": emu.oauth_host}
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr);"
        "from kimi_coder_auth.cli import main;"
        "codes = [main(['doctor']), main(['doctor', '--json'])]; print('CODES', codes)"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert "CODES [0, 0]" in proc.stdout, proc.stdout + proc.stderr
    assert "credential: kimi-c" in proc.stdout and "Anthropic /messages: admitted" in proc.stdout
    assert emu.counts["refresh"] == 1
    Leaks(at, rt, *device_ids, *file_secrets()).check("doctor output", proc.stdout + proc.stderr)


# --------------------------------------------------------------------------- httpx / httpcore


def test_httpx_and_httpcore_debug_logs_never_show_the_authorization_value(
    key: str, emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    from kimi_coder_auth.transport import Transport

    transport = Transport(credential=resolve_credential(api_key=key), base_url=emu.base_url)
    transport.list_models()
    transport.get_usages()
    transport.chat({"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hi"}]})
    list(transport.stream_chat({"model": "kimi-for-coding",
                                "messages": [{"role": "user", "content": "hi"}]}))
    httpish = [r for r in logs.records if r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("httpcore.http11") for r in httpish)
    text = "\n".join(r.getMessage() + repr(r.args) for r in httpish)
    assert "Bearer" not in text and "authorization" not in text.lower()
    Leaks(key).check("httpx/httpcore records", text)
    Leaks(key).check("transport repr", repr(transport) + repr(transport._auth) + repr(transport.credential))
    Leaks(key).check_all(log_texts(logs, caplog))


def test_exception_scanner_catches_a_planted_leak(key: str) -> None:
    """The scanner itself: a key hidden in a cause's attribute or a local variable is found."""
    leaks = Leaks(key)

    def fail(token: str) -> None:
        raise RuntimeError("inner")

    caught: BaseException | None = None
    try:
        try:
            fail(key)
        except RuntimeError as inner:
            raise ValueError("outer") from inner
    except ValueError as exc:
        caught = exc
    assert caught is not None
    exc = caught
    texts = exception_texts(exc)
    assert not leaks.find(texts["format_exception"])
    assert not any(leaks.find(t) for n, t in texts.items() if "local" in n)  # test frames skipped
    inside = exception_texts(exc, test_frames=True)
    assert any(leaks.find(t) for n, t in inside.items() if "local 'token'" in n)
    err = RuntimeError("x")
    err.detail = {"auth": key[:12] + "..."}  # type: ignore[attr-defined]
    assert any(leaks.find(t) for t in exception_texts(err).values())


def test_log_collector_sees_extra_fields_and_tracebacks(
    key: str, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    """The log scan itself: a key in ``extra=`` or in a logged traceback is found."""
    leaks = Leaks(key)
    logging.getLogger("kimi_coder_auth.selftest").debug("plain", extra={"token": key[:12]})
    assert leaks.find(logs.text())
    logs.texts.clear()
    try:
        raise RuntimeError(key)
    except RuntimeError:
        logging.getLogger("httpcore.selftest").debug("boom", exc_info=True)
    assert leaks.find(logs.text()) and leaks.find(caplog.text)


# --------------------------------------------------------------------------- more paths


def truncated_login(at: str, rt: str) -> str:
    """A kimi-cli login file cut off mid-write (invalid JSON) holding the given tokens."""
    return f'{{"access_token": "{at}", "refresh_token": "{rt}", "expires_at": '


def test_corrupt_credential_file_errors_hide_its_content(
    emu: Emulator, capsys: pytest.CaptureFixture[str], logs: LogCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A truncated or mistyped login file holding canaries: errors name the file, never its text."""
    from kimi_coder_auth.errors import CredentialError

    at, rt = make_canary("AT"), make_canary("RT")
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    bad_files = [
        truncated_login(at, rt),  # truncated
        json.dumps({"access_token": at, "refresh_token": rt, "expires_at": at}),  # wrong type
        json.dumps({"access_token": [at], "refresh_token": {"v": rt}, "expires_at": 1.0}),
    ]
    leaks = Leaks(at, rt)
    for i, content in enumerate(bad_files):
        path.write_text(content)
        os.chmod(path, 0o600)
        clear_credential_cache()
        _code, text = _cli(capsys, "status")
        leaks.check(f"status with bad file #{i}", text)
        for adapter in ("langchain", "llama_index"):
            with pytest.raises(CredentialError) as info:
                _oauth_chat(adapter, emu.base_url)()
            # frame locals and the suppressed JSONDecodeError context are audited by the
            # test_corrupt_credential_file_* tests below
            leaks.check_exc(f"{adapter} bad file #{i}", info.value, locals_of=(), suppressed=False)
        assert path.read_text() == content  # left untouched
    leaks.check_all(log_texts(logs, caplog))


@pytest.mark.parametrize("step", ["access_denied", "expired_token"])
def test_cli_failed_login_never_prints_the_device_code(
    step: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], logs: LogCollector, caplog: pytest.LogCaptureFixture,
) -> None:
    from kimi_coder_auth import device_login
    from kimi_coder_auth.clock import FakeClock, use_clock

    monkeypatch.setattr(device_login.webbrowser, "open", lambda url: True)
    emu.script_device(["authorization_pending", step])
    with use_clock(FakeClock()):
        code, text = _cli(capsys, "login", "--no-browser")
    assert code == 1
    device_codes = [r.body["device_code"] for r in emu.requests
                    if isinstance(r.body, dict) and r.body.get("device_code")]
    assert device_codes and not login_file().exists()
    leaks = Leaks(*device_codes)
    leaks.check("failed login output", text)
    leaks.check_all(log_texts(logs, caplog))


def test_warnings_never_carry_the_key(key: str, emu: Emulator, recwarn: pytest.WarningsRecorder) -> None:
    """Request-shaping warnings (forced tool choice relaxed, etc.) name settings, not secrets."""
    model = lc_model(api_key=key, base_url=emu.base_url, thinking=True, forced_tool_choice="auto")
    tool = {"type": "function", "function": {"name": "get_time", "description": "time",
                                             "parameters": {"type": "object", "properties": {}}}}
    model.bind_tools([tool], tool_choice="required").invoke("call get_time")
    li_llm(api_key=key, base_url=emu.base_url, thinking=True).chat(_user("hi"))
    Leaks(key).check("warnings", "\n".join(f"{w.category.__name__}: {w.message}" for w in recwarn))


# -- tracebacks with frame locals (pytest -l, rich show_locals, Sentry's default
# include_local_variables=True): what kimi-coder's own frames hold when an error passes


def test_corrupt_credential_file_traceback_locals_hide_its_content(emu: Emulator) -> None:
    from kimi_coder_auth.errors import CredentialError

    at, rt = make_canary("AT"), make_canary("RT")
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(truncated_login(at, rt))
    with pytest.raises(CredentialError) as info:
        _oauth_chat("langchain", emu.base_url)()
    Leaks(at, rt).check_exc("corrupt file", info.value, locals_of=PRODUCT, suppressed=False)


def test_corrupt_credential_file_error_chain_hides_its_content(emu: Emulator) -> None:
    from kimi_coder_auth.errors import CredentialError

    at, rt = make_canary("AT"), make_canary("RT")
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(truncated_login(at, rt))
    with pytest.raises(CredentialError) as info:
        _oauth_chat("langchain", emu.base_url)()
    Leaks(at, rt).check_exc("corrupt file", info.value, locals_of=())


@pytest.mark.parametrize("failure", ["unreachable", "non-json"])
def test_oauth_request_failure_traceback_locals_hide_the_refresh_token(
    failure: str, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kimi_coder_auth.errors import OAuthError

    if failure == "unreachable":  # a login from a host that no longer answers
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", closed_port_url().split("/coding")[0])
    at, rt = plant_login(emu, expired=True)
    if failure != "unreachable":
        emu.inject("refresh", status=502, body="<html>502 Bad Gateway</html>")
    with pytest.raises(OAuthError) as info:
        _oauth_chat("langchain", emu.base_url)()
    leaks = Leaks(at, rt)
    leaks.check_exc(f"refresh {failure} (no locals)", info.value, locals_of=())  # message is clean
    leaks.check_exc(f"refresh {failure}", info.value, locals_of=PRODUCT)


# -- defence in depth: servers or proxies that echo what they were sent


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_api_error_bodies_echoing_the_key_are_redacted(adapter: str, key: str, emu: Emulator) -> None:
    leaks = Leaks(key)
    for status in (400, 401, 403, 500):
        emu.inject("chat", status=status, body={"error": {"message": f"Invalid API key: {key}",
                                                          "type": "invalid_request_error"}})
        call = _api_call(adapter, key, emu)
        with pytest.raises(Exception) as info:
            call()
        leaks.check_exc(f"{adapter} {status} echo", info.value, locals_of=())


def _api_call(adapter: str, key: str, emu: Emulator) -> Callable[[], Any]:
    if adapter == "langchain":
        model = lc_model(api_key=key, base_url=emu.base_url, max_retries=0)
        return lambda: model.invoke("hi")
    llm = li_llm(api_key=key, base_url=emu.base_url, max_retries=0)
    return lambda: llm.chat(_user("hi"))


@pytest.mark.parametrize("status,error", [(400, "invalid_request"), (401, "invalid_grant")])
def test_token_endpoint_errors_echoing_the_refresh_token_are_redacted(
    status: int, error: str, emu: Emulator
) -> None:
    at, rt = plant_login(emu, expired=True)
    emu.inject("refresh", status=status,
               body={"error": error, "error_description": f"bad refresh_token {rt}"})
    with pytest.raises(Exception) as info:
        _oauth_chat("langchain", emu.base_url)()
    # messages and the error chain only: a local holding the server's own answer is out of scope
    Leaks(at, rt).check_exc(f"refresh {status} echo", info.value, locals_of=())


def test_advisory_refresh_failure_warning_hides_the_refresh_token(
    emu: Emulator, logs: LogCollector, caplog: pytest.LogCaptureFixture
) -> None:
    at, rt = make_canary("AT"), make_canary("RT")
    emu.issue_token(access_token=at, refresh_token=rt)
    # due for refresh (inside max(300, 900/2) s of expiry) but still valid: advisory window
    KimiCodeStore().write(
        OAuthToken(Secret(at), Secret(rt), time.time() + 400, 900.0, "kimi-code", "Bearer")
    )
    emu.inject("refresh", status=400,
               body={"error": "invalid_request", "error_description": f"bad refresh_token {rt}"})
    assert lc_model(base_url=emu.base_url, credentials="kimi-code").invoke("hi").content
    assert any(r.levelno == logging.WARNING for r in logs.records)
    Leaks(at, rt).check_all(log_texts(logs, caplog))
