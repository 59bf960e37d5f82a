"""Fault probes on credential storage (issue 12): hostile files, unwritable stores, killed writers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth import sources
from kimi_coder_auth.errors import CredentialFileCorrupt
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.token import OAuthToken

STORES = [KimiCliStore, KimiCodeStore]


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    sources.clear_credential_cache()
    yield
    sources.clear_credential_cache()


def login_dict(at: str = "AT-CANARY-f", rt: str = "RT-CANARY-f", left: float = 800) -> dict:
    return {
        "access_token": at,
        "refresh_token": rt,
        "expires_at": time.time() + left,
        "scope": "kimi-code",
        "token_type": "Bearer",
        "expires_in": 900.0,
    }


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# ---------------------------------------------------------------------------- item 2: hostile files

_AT = '"access_token": "AT-CANARY-h", "refresh_token": "RT-CANARY-h"'
HOSTILE = {
    "nested 1000 deep": b"[" * 1000 + b"]" * 1000,
    "nested field 1000 deep": (
        '{' + _AT + ', "x": ' + "[" * 1000 + "]" * 1000 + "}"
    ).encode(),
    "400-digit expires_at": ("{" + _AT + ', "expires_at": ' + "9" * 400 + "}").encode(),
    "400-digit expires_in": ("{" + _AT + ', "expires_in": ' + "9" * 400 + "}").encode(),
    "5000-digit expires_at": ("{" + _AT + ', "expires_at": ' + "9" * 5000 + "}").encode(),
}


@pytest.mark.parametrize("store_cls", STORES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_corrupt_naming_the_file_and_left_alone(
    isolated_home: Path, store_cls: type, name: str
) -> None:
    store = store_cls()
    put(store.path, HOSTILE[name])
    with pytest.raises(CredentialFileCorrupt) as info:
        store.read()
    text = str(info.value)
    assert str(store.path) in text
    assert "CANARY" not in text and "9999" not in text
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert store.path.read_bytes() == HOSTILE[name]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_discovery_goes_on_past_a_hostile_file(isolated_home: Path, name: str) -> None:
    cli, code = KimiCliStore(), KimiCodeStore()
    put(cli.path, HOSTILE[name])
    put(code.path, json.dumps(login_dict(at="AT-CODE")).encode())
    cred = sources.resolve_credential()
    assert cred.get_token() == Secret("AT-CODE")
    assert cred.source == "kimi-code"
    assert cli.path.read_bytes() == HOSTILE[name]


@pytest.mark.parametrize("store_cls", STORES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_new_login_replaces_a_hostile_file(isolated_home: Path, store_cls: type, name: str) -> None:
    store = store_cls()
    put(store.path, HOSTILE[name])
    store.write(OAuthToken.from_file_dict(login_dict(at="AT-NEW")))
    assert store.read().access_token == Secret("AT-NEW")  # type: ignore[union-attr]


def test_hostile_logout_marker_does_not_crash_kimi_code_reads(isolated_home: Path) -> None:
    store = KimiCodeStore()
    put(store.path, json.dumps(login_dict(at="AT-CODE")).encode())
    put(store.path.parent / "kimi-code.removed", b"[" * 1000 + b"]" * 1000)
    assert store.read().access_token == Secret("AT-CODE")  # type: ignore[union-attr]
