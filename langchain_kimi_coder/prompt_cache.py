"""``prompt_cache_key="auto"``: carry a LangGraph run's ``thread_id`` to the request's cache key."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables.config import var_child_runnable_config

from kimi_coder_auth.request_policy import resolve_prompt_cache_key

__all__ = ["pop_prompt_cache_key", "thread_kwarg"]

# The run config's ``configurable.thread_id`` reaches ``_generate`` only through the public entry
# points (LangChain passes callbacks and metadata down, not ``configurable``), so each hands it on
# under this private call kwarg.
_THREAD_KWARG = "_kimi_thread_id"


def thread_kwarg(config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus the config's ``configurable.thread_id`` under a private key (if any)."""
    if isinstance(config, dict):
        tid = (config.get("configurable") or {}).get("thread_id")
        if tid is not None and _THREAD_KWARG not in kwargs:
            return {**kwargs, _THREAD_KWARG: tid}
    return kwargs


def _thread_id(run_manager: Any) -> Any:
    """The LangGraph ``thread_id`` of the current run: ``configurable.thread_id`` of the run
    config in context, else the run's metadata (LangGraph copies it there); None outside one."""
    config = var_child_runnable_config.get()
    if config:
        tid = (config.get("configurable") or {}).get("thread_id")
        if tid is not None:
            return tid
    metadata = getattr(run_manager, "metadata", None)
    if isinstance(metadata, dict):
        return metadata.get("thread_id")
    return None


def pop_prompt_cache_key(kw: dict[str, Any], default: str | None, run_manager: Any) -> str | None:
    """Pop the call's ``prompt_cache_key`` and private thread id from ``kw``; the key to send."""
    cache_setting = kw.pop("prompt_cache_key", default)
    thread = kw.pop(_THREAD_KWARG, None)
    if cache_setting == "auto" and thread is None:
        thread = _thread_id(run_manager)
    return resolve_prompt_cache_key(cache_setting, thread if cache_setting == "auto" else None)
