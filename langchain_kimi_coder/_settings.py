"""Constructor arguments: OpenAI-style aliases mapped, unknown names moved to ``model_kwargs``."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel

from kimi_coder_auth.params import apply_aliases

from ._user_warnings import user_stacklevel

__all__ = ["collect_extra"]

_LC_NOT_APPLICABLE = {
    "context_window": "the context window is the model's (see .profile['max_input_tokens']); "
    "limit the output with max_tokens=.",
}


def _field_names(cls: type[BaseModel]) -> set[str]:
    """Field names and their aliases."""
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return names


def collect_extra(cls: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Map OpenAI-style aliases, and move unknown arguments to ``model_kwargs`` with a
    warning (as ``ChatOpenAI`` does), so nothing passed is silently dropped."""
    values = apply_aliases(dict(values), owner="ChatKimiCoder", not_applicable=_LC_NOT_APPLICABLE)
    known = _field_names(cls)
    extra = dict(values.get("model_kwargs") or {})
    for name in list(values):
        if name in known:
            continue
        if name in extra:
            raise ValueError(f"{name!r} is given both directly and in model_kwargs; pass it once.")
        warnings.warn(
            f"{name!r} is not a ChatKimiCoder parameter; it was moved to model_kwargs and "
            "is sent in every request body. Check its spelling if that is not intended.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        extra[name] = values.pop(name)
    clashing = sorted(known.intersection(extra))
    if clashing:
        hint = ""
        if isinstance(extra.get("thinking"), dict):
            hint = (
                " For the thinking object use thinking=True/False, effort=... and "
                "preserve_thinking=True (thinking.keep='all')."
            )
        raise ValueError(
            f"model_kwargs holds {', '.join(clashing)}, which ChatKimiCoder takes as "
            f"parameters; pass them directly instead.{hint}"
        )
    if extra or "model_kwargs" in values:
        values["model_kwargs"] = extra
    return values
