"""K3's ``reasoning_details`` as the emulator sends them (shape observed on live K3 streams).

Streams carry summary fragments under ``index`` 0 beside ``reasoning_content`` and one opaque
``encrypted`` entry under ``index`` 1; non-streaming answers carry the merged entries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["completion_details", "sends_reasoning_details", "stream_details"]


def sends_reasoning_details(model: dict[str, Any]) -> bool:
    """Whether the model answers with ``reasoning_details`` (the K3 family)."""
    return str(model.get("id", "")).startswith("k3")


def _opaque(answer_id: str) -> str:
    return "enc_" + hashlib.sha256(answer_id.encode()).hexdigest()[:32]


def stream_details(parts: list[str], answer_id: str) -> list[bytes]:
    """Delta JSON objects: each reasoning piece with its summary fragment, then the encrypted
    entry."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    out = [
        dumps({"reasoning_content": p,
               "reasoning_details": [{"index": 0, "type": "summary", "summary": p}]}).encode()
        for p in parts
    ]
    out.append(dumps({"reasoning_details": [
        {"index": 1, "type": "encrypted", "encrypted": _opaque(answer_id)}]}).encode())
    return out


def completion_details(reasoning: str, answer_id: str) -> list[dict[str, Any]]:
    """The merged entries of a non-streaming answer."""
    return [
        {"type": "summary", "summary": reasoning},
        {"type": "encrypted", "encrypted": _opaque(answer_id)},
    ]
