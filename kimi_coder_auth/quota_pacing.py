"""Quota pacing: wait for a used-up window to reset instead of failing (``on_quota="wait"``).

One `QuotaGate` per (credential, base URL), shared by every thread and event loop of the
process. A quota answer records a block until the window's reset time: from the error (body or
``Retry-After``), else from one ``GET /usages`` (asked only when someone is waiting: a request
with ``on_quota="wait"`` or a `QuotaPacer` rate limiter). Waiters sleep on the injectable clock
until the reset; then exactly one of them is the probe, and the others wait for its outcome: a
success opens the gate and wakes them all, another quota answer blocks again. No stampede.

`QuotaPacer` is the same waiting as a rate limiter (``acquire`` / ``aacquire``), for LangChain's
``rate_limiter=``; it paces the requests after a quota answer, while ``on_quota="wait"`` also
resumes the request that got it.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import clock
from .errors import QuotaExceededError

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["DEFAULT_MAX_QUOTA_WAIT", "ON_QUOTA", "QuotaGate", "QuotaPacer", "gate_for", "reset_gates"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ON_QUOTA = ("raise", "wait")
#: longest total wait per request: covers any 5-hour window, not a weekly or monthly reset
DEFAULT_MAX_QUOTA_WAIT = 6 * 3600.0
_PROBE_STALE = 600.0  # clock seconds after the reset: a probe still silent is presumed lost
_RECHECK = 30.0  # real seconds a waiter sleeps on the probe's event before re-checking
_USAGES_TTL = 60.0  # one /usages lookup serves every quota answer within this many seconds


def _utc(ts: float) -> str:
    return f"{_dt.datetime.fromtimestamp(ts, _dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _copy(err: QuotaExceededError, note: str | None = None) -> QuotaExceededError:
    """A fresh error like ``err`` (one instance is never raised in two threads at once)."""
    hint = err.hint + (f" {note}" if note else "")
    return QuotaExceededError(
        err.message, retry_after=err.retry_after, window=err.window, reset_at=err.reset_at,
        status=err.status, error_type=err.error_type, trace_id=err.trace_id,
        request_id=err.request_id, hint=hint,
    )


class _Budget:
    """How long one request may still wait for quota in total."""

    __slots__ = ("left", "waited")

    def __init__(self, max_wait: float | None) -> None:
        self.left = float("inf") if max_wait is None else float(max_wait)
        self.waited = 0.0


class QuotaGate:
    """The known quota block of one account and base URL, its probe and its waiters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blocked_until: float | None = None  # epoch seconds; None = open or reset unknown
        self.error: QuotaExceededError | None = None  # the quota answer behind the block
        self.probing = False  # one waiter sleeps until the reset and probes; the others wait
        self._wake: list[Callable[[], None]] = []
        self._warned: float | None = None
        self._usage: tuple[float, Any] | None = None
        self._lookup_lock = threading.Lock()
        self._transport: weakref.ref[Transport] | None = None  # asks /usages for unknown resets
        self._unknown: QuotaExceededError | None = None  # the answer /usages had no reset for

    # ------------------------------------------------------------------ reporting

    def _wake_all(self) -> list[Callable[[], None]]:
        wake, self._wake = self._wake, []
        return wake

    def record(self, err: QuotaExceededError) -> None:
        """A quota answer arrived: block until its reset (if known); a probe's failure frees its role."""
        with self._lock:
            old, now = self.blocked_until, clock.now()
            if self.error is None or old is None or now >= old:
                self.probing = False  # sent after the reset: that was the probe, and it failed
            elif err.reset_at is None and self.error.window == err.window:
                err.reset_at = old  # an answer to a request sent before the block: nothing new
            self.error = err
            self.blocked_until = err.reset_at
            wake = self._wake_all()
        for fn in wake:
            fn()

    def succeeded(self) -> None:
        """A request got through: if it was sent after the reset, the gate opens for everyone."""
        if self.error is None:
            return
        with self._lock:
            until = self.blocked_until
            if until is not None and clock.now() < until:
                return  # sent before the block was known: says nothing about the reset
            self.blocked_until = None
            self.error = None
            self.probing = False
            wake = self._wake_all()
        for fn in wake:
            fn()

    def abandon_probe(self) -> None:
        """The probe (or the sleeper who would probe) ended without an answer: elect another."""
        with self._lock:
            self.probing = False
            wake = self._wake_all()
        for fn in wake:
            fn()

    # ------------------------------------------------------------------ reset lookup

    def _reset_from_usage(self, usage: Any, window: str | None) -> float | None:
        def reset(name: str, *, only_exhausted: bool = False) -> float | None:
            w = usage.window(name)
            if w is None or w.reset_at is None or (only_exhausted and not w.exhausted):
                return None
            return float(w.reset_at)

        if window == "5h-or-month":  # reference §1.3: the 5-hour reset if that window is the one
            return reset("5h", only_exhausted=True) or reset("month", only_exhausted=True) or reset("5h")
        return reset(window) if window else None

    def _need_lookup(self) -> QuotaExceededError | None:
        """The error whose reset must be asked for, or None (known, or a recent answer has it)."""
        with self._lock:
            err = self.error
            if err is None or self.blocked_until is not None:
                return None
            cached = self._usage
        if cached is not None and clock.monotonic() - cached[0] < _USAGES_TTL:
            reset = self._reset_from_usage(cached[1], err.window) if cached[1] is not None else None
            if reset is not None and reset > clock.now():
                self._apply(err, cached[1])
                return None
        return err

    def _apply(self, err: QuotaExceededError, usage: Any) -> None:
        reset = self._reset_from_usage(usage, err.window) if usage is not None else None
        with self._lock:
            self._usage = (clock.monotonic(), usage)
            fresh = reset is not None and reset > clock.now()
            self._unknown = None if fresh else err
            if self.error is err and self.blocked_until is None and fresh:
                err.reset_at = reset
                self.blocked_until = reset

    def _lookup_transport(self, transport: Transport | None) -> Transport | None:
        if transport is None and self._transport is not None:
            transport = self._transport()
        return transport

    def lookup(self, transport: Transport | None = None) -> None:
        """Fill an unknown reset time from one ``GET /usages`` (shared by concurrent waiters)."""
        transport = self._lookup_transport(transport)
        if self._need_lookup() is None:
            return
        if transport is None:
            self._apply(self.error, None)  # type: ignore[arg-type]
            return
        with self._lookup_lock:
            err = self._need_lookup()
            if err is None:
                return
            from .usage import parse_usages

            try:
                usage = parse_usages(transport.get_usages())
            except Exception as exc:
                logger.debug("GET /usages for the quota reset failed: %s", type(exc).__name__)
                usage = None
            self._apply(err, usage)

    async def alookup(self, transport: Transport | None = None) -> None:
        """Async `lookup` (polls the lookup lock, so a cancelled waiter never leaves it held)."""
        transport = self._lookup_transport(transport)
        if self._need_lookup() is None:
            return
        if transport is None:
            self._apply(self.error, None)  # type: ignore[arg-type]
            return
        while not self._lookup_lock.acquire(blocking=False):  # never hold a thread lock while
            await asyncio.sleep(0.01)  # cancellable: another waiter's lookup is in flight
        try:
            err = self._need_lookup()
            if err is None:
                return
            from .usage import parse_usages

            try:
                usage = parse_usages(await transport.aget_usages())
            except Exception as exc:
                logger.debug("GET /usages for the quota reset failed: %s", type(exc).__name__)
                usage = None
            self._apply(err, usage)
        finally:
            self._lookup_lock.release()

    # ------------------------------------------------------------------ waiting

    def _step(
        self, budget: _Budget, max_wait: float | None, sleeper: bool,
        waker: Callable[[], tuple[Callable[[], None], Any]],
    ) -> tuple[str, Any]:
        """One decision under the lock: ("go", is_probe), ("sleep", seconds) as the one sleeper
        who probes at the reset, ("wait", handle) for the probe's outcome, or ("raise", error)."""
        with self._lock:
            err = self.error
            if err is None:
                return "go", False
            until = self.blocked_until
            if until is None and self._unknown is not err:
                return "again", None  # a newer answer arrived since the lookup: look it up
            if until is None:  # blocked, reset unknown even after asking /usages
                if sleeper:
                    self.probing = False
                return "raise", _copy(err, "Its reset time is unknown (neither the answer nor "
                                      "/usages gave one), so on_quota=\"wait\" cannot wait for it.")
            now = clock.now()
            delay = until - now
            if delay > budget.left:
                if sleeper:
                    self.probing = False
                    for fn in self._wake_all():  # someone with a longer max_quota_wait may take over
                        fn()
                return "raise", _copy(err, f"It resets at {_utc(until)}, in {delay:.0f} s: beyond "
                                      f"max_quota_wait={max_wait} s, so the request was not kept waiting.")
            if self.probing and not sleeper and now < until + _PROBE_STALE:
                wake, handle = waker()
                self._wake.append(wake)
                return "wait", handle
            self.probing = True
            if delay <= 0:
                return "go", True
            if self._warned != until:
                self._warned = until
                logger.warning(
                    "Kimi quota used up (%s): waiting %.0f s until %s, as on_quota=\"wait\" asks; "
                    "`kimi-coder usage` shows the windows.",
                    err.window_label or err.window or "quota", delay, _utc(until),
                )
            return "sleep", delay

    def wait(self, budget: _Budget, max_wait: float | None, transport: Transport | None = None) -> bool:
        """Block the calling thread until a request may go; True = it is the probe."""
        sleeper = False

        def waker() -> tuple[Callable[[], None], Any]:
            event = threading.Event()
            return event.set, event

        while True:
            self.lookup(transport)
            action, value = self._step(budget, max_wait, sleeper, waker)
            if action == "go":
                return bool(value)
            if action == "raise":
                raise value
            if action == "again":
                continue
            before = clock.now()
            if action == "sleep":
                sleeper = True
                try:
                    clock.sleep(value)
                except BaseException:
                    self.abandon_probe()
                    raise
            else:
                value.wait(_RECHECK)
            spent = max(0.0, clock.now() - before)
            budget.left -= spent
            budget.waited += spent

    async def await_turn(self, budget: _Budget, max_wait: float | None, transport: Transport | None = None) -> bool:
        """Async `wait`: the sleeper sleeps on the clock, the others wait on a future of their loop."""
        loop = asyncio.get_running_loop()
        sleeper = False

        def waker() -> tuple[Callable[[], None], Any]:
            fut: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                try:
                    loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(None))
                except RuntimeError:  # that loop is closed
                    pass

            return wake, fut

        while True:
            await self.alookup(transport)
            action, value = self._step(budget, max_wait, sleeper, waker)
            if action == "go":
                return bool(value)
            if action == "raise":
                raise value
            if action == "again":
                continue
            before = clock.now()
            if action == "sleep":
                sleeper = True
                try:
                    await clock.asleep(value)
                except BaseException:
                    self.abandon_probe()
                    raise
            else:
                try:
                    await asyncio.wait_for(value, _RECHECK)
                except asyncio.TimeoutError:
                    pass
            spent = max(0.0, clock.now() - before)
            budget.left -= spent
            budget.waited += spent


_gates: weakref.WeakKeyDictionary[Any, dict[str, QuotaGate]] = weakref.WeakKeyDictionary()
_gates_lock = threading.Lock()
_generation = 0  # bumped by reset_gates(): transports drop their cached gate
_fallback: dict[tuple[str, str], QuotaGate] = {}  # API keys by sha256, and odd credentials


def gate_for(transport: Transport) -> QuotaGate:
    """The process-wide gate of the transport's credential and base URL."""
    key = transport.base_url
    cached = transport._quota_gate
    if cached is not None and cached[0] == key and cached[1] == _generation:
        return cached[2]
    gate = _gate(transport, key)
    if gate._transport is None:
        gate._transport = weakref.ref(transport)
    transport._quota_gate = (key, _generation, gate)
    return gate


def _gate(transport: Transport, key: str) -> QuotaGate:
    credential = transport.credential
    from .sources import StaticCredential

    if isinstance(credential, StaticCredential):  # one account per key, however many objects
        digest = hashlib.sha256(credential.get_token().reveal().encode()).hexdigest()
        with _gates_lock:
            return _fallback.setdefault((digest, key), QuotaGate())
    with _gates_lock:
        try:
            per_url = _gates.setdefault(credential, {})
        except TypeError:  # not weak-referenceable
            return _fallback.setdefault((str(id(credential)), key), QuotaGate())
        gate = per_url.get(key)
        if gate is None:
            gate = per_url[key] = QuotaGate()
        return gate


def reset_gates() -> None:
    """Forget every known quota block (tests; a process that switched accounts)."""
    global _generation
    with _gates_lock:
        _generation += 1
        _gates.clear()
        _fallback.clear()


def all_gates() -> list[QuotaGate]:
    """Every gate of the process (for a pacer not tied to one model)."""
    with _gates_lock:
        return [g for per_url in list(_gates.values()) for g in per_url.values()] + list(_fallback.values())


# --------------------------------------------------------------------------- transport hooks


def observe(transport: Transport, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``call(*args, **kwargs)`` (one request) under ``on_quota="raise"``, telling the gate
    what the service answered."""
    try:
        result = call(*args, **kwargs)
    except QuotaExceededError as err:
        if err.window is not None:
            gate_for(transport).record(err)
        raise
    except BaseException:
        gate = gate_for(transport)
        if gate.error is not None:
            gate.abandon_probe()
        raise
    gate = gate_for(transport)
    if gate.error is not None:
        gate.succeeded()
    return result


async def aobserve(
    transport: Transport, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> T:
    """Async `observe`."""
    try:
        result = await call(*args, **kwargs)
    except QuotaExceededError as err:
        if err.window is not None:
            gate_for(transport).record(err)
        raise
    except BaseException:
        gate = gate_for(transport)
        if gate.error is not None:
            gate.abandon_probe()
        raise
    gate = gate_for(transport)
    if gate.error is not None:
        gate.succeeded()
    return result


def send(transport: Transport, call: Callable[[float], T]) -> T:
    """Run one request under ``on_quota="wait"``: wait out known blocks, retry after a reset."""
    gate = gate_for(transport)
    budget = _Budget(transport.max_quota_wait)
    while True:
        probe = gate.wait(budget, transport.max_quota_wait, transport)
        try:
            result = call(budget.waited)
        except QuotaExceededError as err:
            if err.window is None:  # a balance or membership answer: waiting cannot help
                if probe:
                    gate.abandon_probe()
                raise
            gate.record(err)
            continue  # the next wait() looks the reset up, sleeps or raises
        except BaseException:
            if probe:
                gate.abandon_probe()
            raise
        gate.succeeded()
        return result


async def asend(transport: Transport, call: Callable[[float], Awaitable[T]]) -> T:
    """Async `send`."""
    gate = gate_for(transport)
    budget = _Budget(transport.max_quota_wait)
    while True:
        probe = await gate.await_turn(budget, transport.max_quota_wait, transport)
        try:
            result = await call(budget.waited)
        except QuotaExceededError as err:
            if err.window is None:
                if probe:
                    gate.abandon_probe()
                raise
            gate.record(err)
            continue
        except BaseException:
            if probe:
                gate.abandon_probe()
            raise
        gate.succeeded()
        return result


# --------------------------------------------------------------------------- rate limiter


class QuotaPacer:
    """Rate-limiter-shaped pacing: ``acquire()`` waits while a quota window is known to be used up.

    ``transport``: pace that model's account (None = every account this process has seen).
    ``max_quota_wait``: longest wait per acquire (None = no limit); beyond it the quota error
    is raised. ``acquire(blocking=False)`` returns False instead of waiting.
    """

    def __init__(self, transport: Transport | None = None, *, max_quota_wait: float | None = DEFAULT_MAX_QUOTA_WAIT) -> None:
        self._transport = transport
        self.max_quota_wait = max_quota_wait

    def _gates(self) -> list[QuotaGate]:
        return [gate_for(self._transport)] if self._transport is not None else all_gates()

    def _clear(self) -> bool:
        now = clock.now()
        return all(g.error is None or (g.blocked_until is not None and g.blocked_until <= now and not g.probing)
                   for g in self._gates())

    def acquire(self, *, blocking: bool = True) -> bool:
        """Wait until no known quota block stands (True), or return False at once if not blocking."""
        if not blocking:
            return self._clear()
        for gate in self._gates():
            budget = _Budget(self.max_quota_wait)
            gate.wait(budget, self.max_quota_wait)  # a probe's outcome is reported by the transport
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Async `acquire`."""
        if not blocking:
            return self._clear()
        for gate in self._gates():
            budget = _Budget(self.max_quota_wait)
            await gate.await_turn(budget, self.max_quota_wait)
        return True
