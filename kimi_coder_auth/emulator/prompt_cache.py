"""The emulator's prompt cache: ``cached_tokens`` for a prefix repeated under one ``prompt_cache_key``.

Kimi caches prompts per key; a request without a key is never a cache read here, so tests can
show that sending the key (and only that) produces cache hits. The prefix is counted in whole
messages (plus the leading ``tools``), with the emulator's 4-characters-per-token estimate.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

__all__ = ["PromptCache"]


def _units(body: dict[str, Any]) -> list[str]:
    """The cacheable units of a request, in order: the tool list, then each message."""
    dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
    units = [dumps(body.get("tools") or [])]
    for m in body.get("messages") or []:
        units.append(dumps(m))
    return units


class PromptCache:
    """Per-key memory of the last prompts seen; answers how many prompt tokens were a cache read."""

    def __init__(self, max_keys: int = 256, per_key: int = 8) -> None:
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, list[list[str]]] = OrderedDict()
        self._max_keys = max_keys
        self._per_key = per_key

    def lookup_and_store(self, body: dict[str, Any], prompt_tokens: int) -> int:
        """Cached tokens for ``body`` (0 without a ``prompt_cache_key``), then remember it."""
        key = body.get("prompt_cache_key")
        if not isinstance(key, str) or not key:
            return 0
        units = _units(body)
        with self._lock:
            seen = self._keys.get(key)
            best = 0
            for prev in seen or ():
                n = 0
                for a, b in zip(prev, units, strict=False):
                    if a != b:
                        break
                    n += 1
                best = max(best, n)
            if seen is None:
                seen = self._keys[key] = []
                while len(self._keys) > self._max_keys:
                    self._keys.popitem(last=False)
            else:
                self._keys.move_to_end(key)
            seen.append(units)
            del seen[: -self._per_key]
        if best <= 1:  # nothing, or only the tool list, matched
            return 0
        chars = sum(len(u) for u in units[:best])
        return min(prompt_tokens, max(1, (chars + 3) // 4))

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._keys.clear()
