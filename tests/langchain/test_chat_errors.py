"""Errors surface as kimi-coder's typed errors that are also LangChain's standard ones."""

from __future__ import annotations

from typing import Any

import pytest
from kimi_lc_support import API_KEY
from langchain_core import exceptions as lc
from langchain_core.messages import AIMessage, HumanMessage

from kimi_coder_auth import errors as k
from kimi_coder_auth.emulator import Emulator
from langchain_kimi_coder import ChatKimiCoder

#: A model whose thinking can be switched off (every live model now always thinks).
TOGGLE = "toggle-thinking"

def _llm(emu: Emulator, **kw: Any) -> ChatKimiCoder:
    return ChatKimiCoder(base_url=emu.base_url, api_key=API_KEY, max_retries=0, **kw)


def _consume(llm: ChatKimiCoder, mode: str) -> Any:
    if mode == "invoke":
        return llm.invoke("hi")
    return list(llm.stream("hi"))


@pytest.mark.parametrize("mode", ["invoke", "stream"])
@pytest.mark.parametrize(
    ("status", "body", "kimi_cls", "lc_cls"),
    [
        (400, None, k.BadRequestError, lc.ModelInvalidRequestError),
        (400, {"error": {"message": "Invalid request: context length exceeded the model's limit",
                         "type": "invalid_request_error"}},
         k.ContextTooLongError, lc.ContextOverflowError),
        (403, None, k.UserAgentRejectedError, lc.ModelPermissionDeniedError),
        (404, {"error": {"message": "Not found the model", "type": "resource_not_found_error"}},
         k.NotFoundError, lc.ModelNotFoundError),
        (429, None, k.RateLimitError, lc.ModelRateLimitError),
        (402, None, k.QuotaExceededError, lc.ModelRateLimitError),
        (500, None, k.ServerError, lc.ModelAPIError),
    ],
)
def test_http_errors_are_typed(
    emulator: Emulator, mode: str, status: int, body: Any, kimi_cls: type, lc_cls: type
) -> None:
    emulator.inject("chat", status=status, body=body)
    with pytest.raises(kimi_cls) as info:
        _consume(_llm(emulator, protocol="openai"), mode)  # pinned: a 403 gate never switches
    err = info.value
    assert isinstance(err, lc_cls)
    assert err.status == status and err.trace_id  # the server's x-trace-id travels along
    assert API_KEY not in str(err)
    if kimi_cls is k.QuotaExceededError:
        assert err.is_retryable is False
    elif kimi_cls in (k.RateLimitError, k.ServerError):
        assert err.is_retryable is True


def test_bad_key_is_authentication_error(emulator: Emulator) -> None:
    llm = ChatKimiCoder(base_url=emulator.base_url, api_key="sk-wrong-key-123", max_retries=0)
    with pytest.raises(k.AuthenticationError) as info:
        llm.invoke("hi")
    assert isinstance(info.value, lc.ModelAuthenticationError)
    assert "sk-wrong-key-123" not in str(info.value)


def test_no_credentials_says_how_to_log_in(emulator: Emulator) -> None:
    with pytest.raises(k.CredentialsUnavailable, match="kimi-coder login"):
        ChatKimiCoder(base_url=emulator.base_url).invoke("hi")


def test_retry_before_first_chunk(emulator: Emulator) -> None:
    emulator.inject("chat", status=503, headers={"Retry-After": "0"})
    before = emulator.counts["chat"]
    msg = ChatKimiCoder(base_url=emulator.base_url, api_key=API_KEY, max_retries=1).invoke("hi")
    assert msg.content and emulator.counts["chat"] - before == 2


def test_stream_cut_mid_way_is_interrupted(emulator: Emulator) -> None:
    emulator.inject("chat", drop_after_chunks=2)
    with pytest.raises(k.StreamInterruptedError) as info:
        list(_llm(emulator).stream("hello there"))
    assert isinstance(info.value, lc.ModelConnectionError)


def test_sse_error_event_is_stream_error(emulator: Emulator) -> None:
    emulator.inject(
        "chat", sse_error={"error": {"message": "engine overloaded", "type": "engine_overloaded_error"}},
        sse_error_after=2,
    )
    with pytest.raises(k.StreamError, match="overloaded") as info:
        list(_llm(emulator).stream("hello there"))
    assert isinstance(info.value, lc.ModelAPIError)


async def test_async_errors_are_typed(emulator: Emulator) -> None:
    emulator.inject("chat", status=429, times=2)
    llm = _llm(emulator)
    with pytest.raises(lc.ModelRateLimitError):
        await llm.ainvoke("hi")
    with pytest.raises(k.RateLimitError):
        [c async for c in llm.astream("hi")]


def test_invalid_history_fails_before_sending(emulator: Emulator) -> None:
    before = emulator.counts["chat"]
    broken = [HumanMessage("x"), AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": None}])]
    with pytest.raises(ValueError, match="no id"):
        _llm(emulator).invoke(broken)
    with pytest.raises(ValueError, match="forced_tool_choice"):
        _llm(emulator).invoke("x", forced_tool_choice="sometimes")
    assert emulator.counts["chat"] == before


def test_translated_errors_pickle(emulator: Emulator) -> None:
    import pickle

    emulator.inject("chat", status=429)
    with pytest.raises(k.RateLimitError) as info:
        _llm(emulator).invoke("hi")
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, k.RateLimitError) and isinstance(again, lc.ModelRateLimitError)
    assert str(again) == str(info.value) and again.status == 429


def test_model_without_key_pickles_after_use_and_still_works(emulator: Emulator) -> None:
    """A used model pickles (its connection pool is dropped and rebuilt) and answers again."""
    import pickle

    model = ChatKimiCoder(model=TOGGLE, base_url=emulator.base_url, thinking=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIMI_CODER_API_KEY", API_KEY)
        model.invoke("warm up")
        again = pickle.loads(pickle.dumps(model))
        assert again.invoke("hello again").content


def test_model_with_explicit_key_refuses_to_pickle() -> None:
    import pickle

    model = ChatKimiCoder(api_key="sk-kimi-never-written")
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(model)
    assert "sk-kimi-never-written" not in str(info.value)
