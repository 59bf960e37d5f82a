"""The one clock and sleep that the whole package uses, so tests can replace time.

`now()` is wall-clock epoch seconds (token expiry is absolute epoch time, as the credential
files store it); `monotonic()` measures durations; `sleep()`/`asleep()` wait. Tests install a
`FakeClock` with `use_clock()`; nothing else in the package calls `time` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["Clock", "FakeClock", "SystemClock", "asleep", "get_clock", "monotonic", "now", "sleep", "use_clock"]


class Clock:
    """Interface of a clock: wall time, monotonic time and sleeping."""

    def now(self) -> float:
        raise NotImplementedError

    def monotonic(self) -> float:
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def asleep(self, seconds: float) -> None:
        raise NotImplementedError


class SystemClock(Clock):
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock(Clock):
    """A clock for tests: sleeping advances time instantly and is recorded in `sleeps`."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward without recording a sleep."""
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


_clock: Clock = SystemClock()

#: Monotonic seconds from the clock in force. Rebound by `use_clock` rather than looked up per
#: call: streams read it for their deadlines on every network read (the real clock's is
#: ``time.monotonic`` itself, no Python frame).
monotonic: Callable[[], float] = time.monotonic


def get_clock() -> Clock:
    """The clock currently in force."""
    return _clock


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Install `clock` for the duration of a `with` block (tests)."""
    global _clock, monotonic
    previous, previous_mono = _clock, monotonic
    _clock, monotonic = clock, clock.monotonic
    try:
        yield clock
    finally:
        _clock, monotonic = previous, previous_mono


def now() -> float:
    """Wall-clock epoch seconds from the clock in force."""
    return _clock.now()


def sleep(seconds: float) -> None:
    """Sleep with the clock in force."""
    _clock.sleep(seconds)


async def asleep(seconds: float) -> None:
    """Sleep asynchronously with the clock in force."""
    await _clock.asleep(seconds)
