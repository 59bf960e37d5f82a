"""Route choice and the neutral call flow: build request -> send -> decode, on either route.

The adapters hand over a protocol-neutral request (wire messages + options) and get back
neutral :class:`~kimi_coder_auth.neutral.Completion` / :class:`~kimi_coder_auth.neutral.StreamDelta`
values; they never learn which route carried them (only ``protocol`` on the result says so).

``protocol``: ``"openai"`` (``/chat/completions``), ``"anthropic"`` (``/messages``) or ``"auto"``
(default; argument, then ``$KIMI_CODER_PROTOCOL``). ``auto`` takes the live ``/models`` entry's
``protocol`` when that list is already loaded and names one; otherwise it starts on the OpenAI
route and, when the User-Agent gate answers 403 (`UserAgentRejectedError`: nothing was
generated), resends the same request on the Anthropic route and remembers that for the
(credential, base URL) for the rest of the process, logging the switch once at INFO. A pinned
protocol never switches.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalogue import ModelInfo
from .codecs.anthropic_request import abuild_messages_request, build_messages_request
from .codecs.anthropic_response import MessagesAccumulator, parse_message
from .codecs.openai_request import abuild_request, build_request
from .codecs.openai_response import StreamAccumulator, parse_completion
from .errors import UserAgentRejectedError

if TYPE_CHECKING:
    from .neutral import BuiltRequest, Completion, StreamDelta
    from .transport import Transport

__all__ = [
    "ENV_PROTOCOL",
    "PROTOCOLS",
    "AsyncDeltaStream",
    "ChatCall",
    "DeltaStream",
    "forget_switches",
    "remembered_protocol",
    "resolve_protocol",
]

logger = logging.getLogger("kimi_coder_auth.routing")

PROTOCOLS = ("auto", "openai", "anthropic")
ENV_PROTOCOL = "KIMI_CODER_PROTOCOL"

# credential -> {base URL: route chosen after a gate rejection}; weak so a dropped credential
# (e.g. a per-test api key) takes its memory with it.
_SWITCHED: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def resolve_protocol(protocol: str | None) -> str:
    """The effective setting: the argument, then ``$KIMI_CODER_PROTOCOL``, then ``"auto"``."""
    value = protocol or os.environ.get(ENV_PROTOCOL) or "auto"
    if value in PROTOCOLS:
        return value
    value = value.strip().lower()
    if value not in PROTOCOLS:
        where = "protocol=" if protocol else f"{ENV_PROTOCOL}="
        raise ValueError(f"{where}{value!r} is not a protocol; use one of {', '.join(PROTOCOLS)}.")
    return value


def remembered_protocol(transport: Transport) -> str | None:
    """The route ``auto`` switched to for this transport's credential and base URL, if any."""
    if not _SWITCHED:  # no switch in this process (the usual case): no weak-key lookup
        return None
    try:
        per_url = _SWITCHED.get(getattr(transport, "credential", None))
    except TypeError:
        return None
    return per_url.get(transport.base_url) if per_url else None


def forget_switches() -> None:
    """Forget every remembered ``auto`` switch (tests; a fresh process forgets them anyway)."""
    with _LOCK:
        _SWITCHED.clear()


def _remember(transport: Transport, protocol: str) -> None:
    with _LOCK:
        try:
            per_url = _SWITCHED.setdefault(transport.credential, {})
        except TypeError:
            return
        first = transport.base_url not in per_url
        per_url[transport.base_url] = protocol
    if first:
        logger.info(
            "The OpenAI route of %s rejected this client's User-Agent (403); using the Anthropic "
            "Messages route for this login from now on (set protocol= or %s to pin one).",
            transport.base_url, ENV_PROTOCOL,
        )


def _listed_protocol(transport: Transport, model: str) -> str | None:
    """``protocol`` of ``model``'s entry in an already loaded ``/models`` list (no request)."""
    global _MODELS_CACHE
    cache = _MODELS_CACHE
    if cache is None:  # imported lazily: importing an adapter must not import httpx
        from .transport_endpoints import _models_cache

        cache = _MODELS_CACHE = _models_cache
    if not cache:
        return None
    try:
        per_url = cache.get(getattr(transport, "credential", None))
    except TypeError:
        return None
    hit = per_url.get(transport.base_url) if per_url else None
    if not hit:
        return None
    for entry in hit[1]:
        if entry.get("id") == model:
            value = entry.get("protocol")
            return value if value in ("openai", "anthropic") else None
    return None


_MODELS_CACHE: Any = None




@dataclass
class ChatCall:
    """A neutral request, built for the route it will take first.

    ``built`` is that route's body and warnings; ``auto`` says whether a gate rejection may move
    it to the Anthropic route (the request is rebuilt there from the same messages and options).
    """

    transport: Transport
    model: str
    messages: Sequence[Mapping[str, Any]]
    options: dict[str, Any]
    protocol: str
    auto: bool
    built: BuiltRequest
    trace_id: str | None = None
    request_id: str | None = None
    raw: Any = None  # the non-streamed answer body, once received
    extra_warnings: list[str] = field(default_factory=list)

    @classmethod
    def _choose(cls, transport: Transport, model: str, protocol: str | None) -> tuple[str, bool]:
        setting = resolve_protocol(protocol)
        if setting != "auto":
            return setting, False
        chosen = remembered_protocol(transport) or _listed_protocol(transport, model) or "openai"
        return chosen, chosen == "openai"

    @classmethod
    def prepare(
        cls,
        transport: Transport,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        protocol: str | None = None,
        model_info: ModelInfo | None = None,
        options: dict[str, Any] | None = None,
        **more: Any,
    ) -> ChatCall:
        """Choose the route and build its body (raises ``ValueError`` for a bad request).

        The request options are keyword arguments of the codecs' builders, given one by one or
        as an ``options`` dict (taken over, not copied: the adapters build one per call)."""
        chosen, auto = cls._choose(transport, model, protocol)
        if options is None:
            options = more
        elif more:
            options.update(more)
        options["model_info"] = model_info
        builder = build_messages_request if chosen == "anthropic" else build_request
        return cls(transport, model, messages, options, chosen, auto, builder(model, messages, **options))

    @classmethod
    async def aprepare(
        cls,
        transport: Transport,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        protocol: str | None = None,
        model_info: ModelInfo | None = None,
        options: dict[str, Any] | None = None,
        **more: Any,
    ) -> ChatCall:
        """Async :meth:`prepare` (remote images fetched off the event loop)."""
        chosen, auto = cls._choose(transport, model, protocol)
        if options is None:
            options = more
        elif more:
            options.update(more)
        options["model_info"] = model_info
        builder = abuild_messages_request if chosen == "anthropic" else abuild_request
        built = await builder(model, messages, **options)
        return cls(transport, model, messages, options, chosen, auto, built)

    # ------------------------------------------------------------------ switching

    def _switch(self, exc: UserAgentRejectedError) -> bool:
        """After a gate rejection: move to the Anthropic route if allowed (True), else False."""
        if not self.auto or self.protocol != "openai":
            return False
        logger.debug("OpenAI route rejected the User-Agent (%s); resending on /messages", exc)
        built = build_messages_request(self.model, self.messages, **self.options)
        self._adopt(built)
        return True

    async def _aswitch(self, exc: UserAgentRejectedError) -> bool:
        if not self.auto or self.protocol != "openai":
            return False
        built = await abuild_messages_request(self.model, self.messages, **self.options)
        self._adopt(built)
        return True

    def _adopt(self, built: BuiltRequest) -> None:
        new = [w for w in built.warnings if w not in self.built.warnings]
        for text in new:
            warnings.warn(text, UserWarning, stacklevel=4)
        self.extra_warnings = new
        self.built = built
        self.protocol = "anthropic"
        self.auto = False
        _remember(self.transport, "anthropic")

    # ------------------------------------------------------------------ calls

    def _finish(self, result: Any) -> Completion:
        self.trace_id = result.trace_id
        self.request_id = getattr(result, "request_id", None)
        self.raw = result.data
        if self.protocol == "anthropic":
            return parse_message(result.data)
        return parse_completion(result.data)

    def complete(self) -> Completion:
        """Send without streaming; the neutral completion (``.protocol`` says which route)."""
        while True:
            try:
                if self.protocol == "anthropic":
                    return self._finish(self.transport.messages(self.built.body))
                return self._finish(self.transport.chat(self.built.body))
            except UserAgentRejectedError as exc:
                if not self._switch(exc):
                    raise

    async def acomplete(self) -> Completion:
        """Async :meth:`complete`."""
        while True:
            try:
                if self.protocol == "anthropic":
                    return self._finish(await self.transport.amessages(self.built.body))
                return self._finish(await self.transport.achat(self.built.body))
            except UserAgentRejectedError as exc:
                if not await self._aswitch(exc):
                    raise

    def stream(self) -> DeltaStream:
        """A lazy stream of neutral deltas (sent on first iteration)."""
        return DeltaStream(self)

    def astream(self) -> AsyncDeltaStream:
        """A lazy async stream of neutral deltas."""
        return AsyncDeltaStream(self)

    @property
    def include_usage(self) -> bool:
        """Whether usage is reported on streams (always on the Anthropic route)."""
        return self.protocol == "anthropic" or "stream_options" in self.built.body


def _accumulator(protocol: str) -> StreamAccumulator | MessagesAccumulator:
    return MessagesAccumulator() if protocol == "anthropic" else StreamAccumulator()


class DeltaStream:
    """Iterator of :class:`StreamDelta` for one call; ``accumulator`` holds the turn so far.

    A gate rejection on the first read moves an ``auto`` call to the Anthropic route before any
    delta was produced. ``result()`` is the accumulated :class:`Completion`.
    """

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self.accumulator: StreamAccumulator | MessagesAccumulator = (
            MessagesAccumulator() if call.protocol == "anthropic" else StreamAccumulator()
        )
        self._stream: Any = None
        self._events: Iterator[Any] | None = None
        self._closed = False
        self.last_event: Any = None  # the raw chunk / event behind the latest delta

    @property
    def protocol(self) -> str:
        """The route this stream is (or will be) read from."""
        return self.call.protocol

    @property
    def trace_id(self) -> str | None:
        """The answer's trace id (``x-trace-id`` / ``X-Msh-Trace-Id``) once open."""
        return getattr(self._stream, "trace_id", None)

    @property
    def request_id(self) -> str | None:
        """The answer's request id (``x-request-id`` / ``Msh-Request-Id``) once open."""
        return getattr(self._stream, "request_id", None)

    def _open(self) -> Iterator[Any]:
        call = self.call
        while True:
            transport = call.transport
            if call.protocol == "anthropic":
                stream = transport.stream_messages(call.built.body)
            else:
                stream = transport.stream_chat(call.built.body)
            self._stream = stream
            try:
                opener = getattr(stream, "open", None)
                if opener is not None:
                    opener()
            except UserAgentRejectedError as exc:
                stream.close()
                if not call._switch(exc):
                    raise
                self.accumulator = _accumulator(call.protocol)
                continue
            return iter(stream)

    def __iter__(self) -> DeltaStream:
        return self

    def __next__(self) -> StreamDelta:
        events = self._events
        if events is None:
            if self._closed:
                raise StopIteration
            try:
                events = self._events = self._open()
            except BaseException:
                self._closed = True
                raise
        event = self.last_event = next(events)
        return self.accumulator.feed(event)

    def result(self) -> Completion:
        """The turn accumulated so far (the whole turn once iteration ended)."""
        return self.accumulator.result()

    def close(self) -> None:
        """Release the connection."""
        self._closed = True
        stream = self._stream
        if stream is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> DeltaStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncDeltaStream:
    """Async :class:`DeltaStream`."""

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self.accumulator: StreamAccumulator | MessagesAccumulator = (
            MessagesAccumulator() if call.protocol == "anthropic" else StreamAccumulator()
        )
        self._stream: Any = None
        self._events: AsyncIterator[Any] | None = None
        self._closed = False
        self.last_event: Any = None  # the raw chunk / event behind the latest delta

    @property
    def protocol(self) -> str:
        """The route this stream is (or will be) read from."""
        return self.call.protocol

    @property
    def trace_id(self) -> str | None:
        """The answer's trace id (``x-trace-id`` / ``X-Msh-Trace-Id``) once open."""
        return getattr(self._stream, "trace_id", None)

    @property
    def request_id(self) -> str | None:
        """The answer's request id (``x-request-id`` / ``Msh-Request-Id``) once open."""
        return getattr(self._stream, "request_id", None)

    async def _open(self) -> AsyncIterator[Any]:
        call = self.call
        while True:
            transport = call.transport
            if call.protocol == "anthropic":
                stream = transport.astream_messages(call.built.body)
            else:
                stream = transport.astream_chat(call.built.body)
            self._stream = stream
            try:
                opener = getattr(stream, "aopen", None)
                if opener is not None:
                    await opener()
            except UserAgentRejectedError as exc:
                await stream.aclose()
                if not await call._aswitch(exc):
                    raise
                self.accumulator = _accumulator(call.protocol)
                continue
            return stream.__aiter__()

    def __aiter__(self) -> AsyncDeltaStream:
        return self

    async def __anext__(self) -> StreamDelta:
        events = self._events
        if events is None:
            if self._closed:
                raise StopAsyncIteration
            try:
                events = self._events = await self._open()
            except BaseException:
                self._closed = True
                raise
        event = self.last_event = await events.__anext__()
        return self.accumulator.feed(event)

    def result(self) -> Completion:
        """The turn accumulated so far."""
        return self.accumulator.result()

    async def aclose(self) -> None:
        """Release the connection."""
        self._closed = True
        stream = self._stream
        if stream is not None:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> AsyncDeltaStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
