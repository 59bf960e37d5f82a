"""langchain-tests standard suites for ChatKimiCoder, offline against the strict emulator.

Two integration classes: the defaults (thinking = server default, forced tool choices handled
by turning thinking off for that request) and thinking=True without forced tool choice, where
every tool call is preceded by streamed reasoning (the v1 index-collision case) and hand-built
tool-call histories need the reasoning placeholder.
"""

from __future__ import annotations

import json
import os
from typing import Any
from unittest import mock

import pytest
from kimi_lc_support import API_KEY
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from kimi_coder_auth.emulator import Emulator
from langchain_kimi_coder import ChatKimiCoder

_EMULATOR: dict[str, Emulator] = {}


@pytest.fixture(scope="module", autouse=True)
def _shared_emulator(emulator: Emulator) -> None:
    """Make the module's emulator visible to the suites' ``chat_model_params`` properties."""
    _EMULATOR["emu"] = emulator


def _emulator_params() -> dict[str, Any]:
    return {"base_url": _EMULATOR["emu"].base_url, "api_key": API_KEY}


class TestChatKimiCoderUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatKimiCoder

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "kimi-for-coding"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # The key is NOT read from the environment at construction (discovery reads
        # KIMI_CODER_API_KEY lazily on the first request), so api_key stays None.
        return ({"KIMI_CODER_API_KEY": "test"}, {}, {"api_key": None})

    @pytest.mark.xfail(
        strict=True,
        reason=(
            "langchain-core 1.8 load(allowed_objects='all') admits only classes listed in "
            "core's own serialization mapping, so a partner class under its own namespace "
            "cannot be revived without patching core (which we do not). The snapshot half of "
            "this test runs; test_serdes_own_namespace checks the full round trip."
        ),
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    def test_serdes_own_namespace(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        """dumpd matches the committed snapshot, the key is stored as a secret reference only,
        and load() with ChatKimiCoder explicitly allowed revives an equal model."""
        env = {"KIMI_CODER_API_KEY": "test"}
        with mock.patch.dict(os.environ, env):
            ser = dumpd(model)
            assert ser == snapshot(name="serialized")
            assert "test" not in json.dumps(ser["kwargs"]["api_key"])
            loaded = load(
                ser,
                valid_namespaces=["langchain_kimi_coder"],
                allowed_objects=[ChatKimiCoder],
                secrets_from_env=True,
            )
        assert isinstance(loaded, ChatKimiCoder)
        assert loaded.asdict() == model.asdict()
        assert loaded.api_key is not None and loaded.api_key.get_secret_value() == "test"
        assert loaded.temperature == 0 and loaded.max_tokens == 100


class _EmulatorSuite(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatKimiCoder

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        # The standard test downloads its image from the internet; tests/langchain/
        # test_chat_images.py covers every image form offline instead.
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        # Anthropic tool format, tool_use and signed thinking blocks in history (no download
        # happens because supports_image_inputs is False).
        return True

    @property
    def model_override_value(self) -> str:
        return "toggle-thinking"

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[Any]]:
        return {"invoke": ["cache_read_input"], "stream": ["cache_read_input"]}

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        """A long earlier turn repeated under one prompt_cache_key: the emulator reports cached
        prompt tokens for the repeat, as Kimi does."""
        llm = ChatKimiCoder(**self.chat_model_params, prompt_cache_key=f"std-cache-{stream}")
        history = [
            HumanMessage("Remember this text: " + "lorem ipsum dolor sit amet " * 200),
            AIMessage("I will remember it."),
            HumanMessage("What did I ask you to remember?"),
        ]
        llm.invoke(history)  # fills the cache under the key
        if stream:
            full = None
            for chunk in llm.stream(history):
                full = chunk if full is None else full + chunk
            assert full is not None
            return full  # type: ignore[return-value]
        return llm.invoke(history)


class TestChatKimiCoderIntegration(_EmulatorSuite):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # a model whose thinking can be turned off, so forced tool choices are honoured
        return {**_emulator_params(), "model": "toggle-thinking"}

    @property
    def model_override_value(self) -> str:
        return "kimi-for-coding"


class TestChatKimiCoderThinkingIntegration(_EmulatorSuite):
    """thinking=True: reasoning streams before every tool call; no forced tool choice."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**_emulator_params(), "thinking": True}

    @property
    def has_tool_choice(self) -> bool:
        # Kimi rejects a forced tool_choice while thinking; without it the standard tool tests
        # let the model choose, so reasoning precedes each tool call.
        return False


class TestChatKimiCoderAnthropicIntegration(_EmulatorSuite):
    """The same suite over the Anthropic Messages route (``/messages``)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # a model whose thinking can be turned off, so forced tool choices are honoured
        return {**_emulator_params(), "protocol": "anthropic", "model": "toggle-thinking"}

    @property
    def model_override_value(self) -> str:
        return "kimi-for-coding"


class TestChatKimiCoderAnthropicThinkingIntegration(_EmulatorSuite):
    """Messages route with thinking=True: signed thinking blocks precede every tool call and are
    replayed byte for byte (the emulator rejects an altered or missing one)."""

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**_emulator_params(), "thinking": True, "protocol": "anthropic"}

    @property
    def has_tool_choice(self) -> bool:
        return False
