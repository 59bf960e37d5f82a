"""Argument names both adapters accept: OpenAI-style aliases, and names that cannot apply.

Users of ``ChatOpenAI`` / ``OpenAILike`` type ``max_completion_tokens``, ``reasoning_effort``,
``api_base`` or ``openai_api_key``; each adapter maps them onto its own field through
:func:`apply_aliases` (construction and call time alike) so none is silently dropped, and a
name that cannot apply to the Kimi Coding API gets a :class:`ParameterError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import ParameterError

__all__ = ["ALIASES", "NOT_APPLICABLE", "apply_aliases"]

#: alias -> canonical field name (the adapters' own names).
ALIASES: Mapping[str, str] = {
    "max_completion_tokens": "max_tokens",
    "reasoning_effort": "effort",
    "api_base": "base_url",
    "openai_api_base": "base_url",
    "openai_api_key": "api_key",
    "model_name": "model",
}

#: OpenAI-client settings that have no meaning here, with what to do instead.
NOT_APPLICABLE: Mapping[str, str] = {
    "organization": "Kimi Code has no organizations; drop it.",
    "openai_organization": "Kimi Code has no organizations; drop it.",
    "openai_proxy": "set HTTPS_PROXY in the environment instead (httpx reads it).",
    "http_client": "connections are pooled by kimi-coder itself; use timeout=, max_retries= "
    "or default_headers= instead.",
    "http_async_client": "connections are pooled by kimi-coder itself; use timeout=, "
    "max_retries= or default_headers= instead.",
}


def apply_aliases(
    values: MutableMapping[str, Any],
    *,
    owner: str,
    fields: Mapping[str, str] | None = None,
    not_applicable: Mapping[str, str] | None = None,
) -> MutableMapping[str, Any]:
    """Rename aliases in ``values`` (in place) to the canonical names, and return it.

    ``fields`` maps canonical names to the owner's field names where they differ (e.g. a
    LangChain ``api_key``). A canonical name given twice with different values, or a name in
    ``NOT_APPLICABLE`` (plus ``not_applicable``), raises :class:`ParameterError` naming it.
    """
    if not values:  # the usual call: nothing passed, nothing to rename
        return values
    blocked = {**NOT_APPLICABLE, **(not_applicable or {})}
    for name in list(values):
        reason = blocked.get(name) or blocked.get(ALIASES.get(name, ""))
        if reason:
            raise ParameterError(f"{{{name}}} does not apply to {owner}: {reason}")
    for alias, canonical in ALIASES.items():
        if alias not in values:
            continue
        target = (fields or {}).get(canonical, canonical)
        value = values.pop(alias)
        if target in values and values[target] is not None and values[target] != value:
            raise ParameterError(
                f"{{{alias}}} and {{{target}}} are both given, with different values; "
                f"pass only {{{target}}}."
            )
        values[target] = value
    return values
