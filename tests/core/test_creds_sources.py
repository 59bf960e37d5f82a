"""Credential discovery: precedence, pins, laziness, error listing, sharing."""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth import sources
from kimi_coder_auth.errors import (
    CredentialError,
    CredentialFileCorrupt,
    CredentialsUnavailable,
    ReauthRequired,
)
from kimi_coder_auth.refresh import OAuthCredential
from kimi_coder_auth.secret import Secret
from kimi_coder_auth.sources import (
    DiscoveredCredential,
    StaticCredential,
    default_credential,
    resolve_credential,
)
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    sources.clear_credential_cache()
    yield
    sources.clear_credential_cache()


def write_login(path: Path, at: str, rt: str = "RT-x", left: float = 800, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "access_token": at,
        "refresh_token": rt,
        "expires_at": time.time() + left,
        "scope": "kimi-code",
        "token_type": "Bearer",
        "expires_in": 900.0,
        **extra,
    }
    path.write_text(json.dumps(data))


@pytest.fixture
def cli_file(isolated_home: Path) -> Path:
    return isolated_home / ".kimi" / "credentials" / "kimi-code.json"


@pytest.fixture
def code_file(isolated_home: Path) -> Path:
    return isolated_home / ".kimi-code" / "credentials" / "kimi-code.json"


# ---------------------------------------------------------------------------- precedence


def test_explicit_key_beats_everything(
    monkeypatch: pytest.MonkeyPatch, cli_file: Path, code_file: Path
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", "sk-env")
    write_login(cli_file, "AT-cli")
    write_login(code_file, "AT-code")
    cred = resolve_credential(api_key="sk-explicit")
    assert cred.source == "explicit" and cred.get_token() == Secret("sk-explicit")
    assert resolve_credential(api_key=Secret("sk-s")).get_token() == Secret("sk-s")


def test_env_beats_files_and_files_are_never_read(
    monkeypatch: pytest.MonkeyPatch, cli_file: Path, code_file: Path
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", "sk-env")
    write_login(cli_file, "AT-cli")

    def forbidden(self: object) -> None:
        raise AssertionError("a lower source was read")

    monkeypatch.setattr(KimiCliStore, "read", forbidden)
    monkeypatch.setattr(KimiCodeStore, "read", forbidden)
    cred = resolve_credential()
    assert cred.get_token() == Secret("sk-env")
    assert cred.source == "env"
    assert cred.on_unauthorized(Secret("sk-env")) is None


def test_empty_env_counts_as_unset(monkeypatch: pytest.MonkeyPatch, cli_file: Path) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", "")
    write_login(cli_file, "AT-cli")
    cred = resolve_credential()
    assert cred.get_token() == Secret("AT-cli") and cred.source == "kimi-cli"


def test_kimi_cli_beats_kimi_code_which_is_never_read(
    monkeypatch: pytest.MonkeyPatch, cli_file: Path, code_file: Path
) -> None:
    write_login(cli_file, "AT-cli")
    write_login(code_file, "AT-code")

    def forbidden(self: object) -> None:
        raise AssertionError("Kimi Code's file was read")

    monkeypatch.setattr(KimiCodeStore, "read", forbidden)
    assert resolve_credential().get_token() == Secret("AT-cli")


def test_kimi_code_used_when_nothing_above(code_file: Path) -> None:
    write_login(code_file, "AT-code")
    cred = resolve_credential()
    assert cred.get_token() == Secret("AT-code") and cred.source == "kimi-code"


def test_corrupt_higher_source_is_skipped_and_left_alone(cli_file: Path, code_file: Path) -> None:
    cli_file.parent.mkdir(parents=True)
    cli_file.write_bytes(b"{")
    write_login(code_file, "AT-code")
    assert resolve_credential().get_token() == Secret("AT-code")
    assert cli_file.read_bytes() == b"{"


# ---------------------------------------------------------------------------- pins


def test_pin_kimi_code_skips_kimi_cli(cli_file: Path, code_file: Path) -> None:
    write_login(cli_file, "AT-cli")
    write_login(code_file, "AT-code")
    assert resolve_credential(credentials="kimi-code").get_token() == Secret("AT-code")


def test_pin_by_env(monkeypatch: pytest.MonkeyPatch, cli_file: Path, code_file: Path) -> None:
    write_login(cli_file, "AT-cli")
    write_login(code_file, "AT-code")
    monkeypatch.setenv("KIMI_CODER_CREDENTIALS", "kimi-code")
    assert resolve_credential().get_token() == Secret("AT-code")
    assert resolve_credential(credentials="kimi-cli").get_token() == Secret(
        "AT-cli"
    )  # argument wins


def test_pinned_env_missing_fails_loudly(monkeypatch: pytest.MonkeyPatch, cli_file: Path) -> None:
    write_login(cli_file, "AT-cli")
    with pytest.raises(CredentialsUnavailable) as info:
        resolve_credential(credentials="env").get_token()
    assert "KIMI_CODER_API_KEY" in str(info.value) and "kimi-cli" not in str(info.value)


def test_pinned_missing_file_fails_loudly_not_falls_through(code_file: Path) -> None:
    write_login(code_file, "AT-code")
    with pytest.raises(CredentialsUnavailable) as info:
        resolve_credential(credentials="kimi-cli").get_token()
    assert [a.source for a in info.value.attempts] == ["kimi-cli"]
    assert "missing" in str(info.value) and "kimi-coder login" in str(info.value)


def test_pinned_corrupt_raises_corrupt(cli_file: Path) -> None:
    cli_file.parent.mkdir(parents=True)
    cli_file.write_text("[]")
    with pytest.raises(CredentialFileCorrupt):
        resolve_credential(credentials="kimi-cli").get_token()


def test_pinned_tombstone_raises_reauth(code_file: Path) -> None:
    code_file.parent.mkdir(parents=True)
    code_file.write_text(
        json.dumps(
            {
                "access_token": "",
                "refresh_token": "",
                "expires_at": 0,
                "scope": "kimi-code",
                "token_type": "Bearer",
                "expires_in": 0,
            },
            indent=2,
        )
        + "\n"
    )
    with pytest.raises(ReauthRequired):
        resolve_credential(credentials="kimi-code").get_token()


def test_unknown_pin_is_a_clear_error() -> None:
    with pytest.raises(CredentialError, match="Unknown credential source 'keyring'") as info:
        resolve_credential(credentials="keyring")
    assert "kimi-cli" in str(info.value)


# ---------------------------------------------------------------------------- nothing usable


def test_nothing_usable_lists_every_source_with_reason(
    monkeypatch: pytest.MonkeyPatch, cli_file: Path, code_file: Path
) -> None:
    monkeypatch.setenv("KIMI_CODER_API_KEY", "")
    cli_file.parent.mkdir(parents=True)
    cli_file.write_text('{"access_token": "AT-CANARY-1", "refresh_token": 7}')
    code_file.parent.mkdir(parents=True)
    code_file.write_text(
        json.dumps(
            {
                "access_token": "",
                "refresh_token": "",
                "expires_at": 0,
                "scope": "kimi-code",
                "token_type": "Bearer",
                "expires_in": 0,
            }
        )
    )
    with pytest.raises(CredentialsUnavailable) as info:
        resolve_credential().get_token()
    reasons = {a.source: a.reason for a in info.value.attempts}
    assert reasons["env"] == "set but empty"
    assert reasons["kimi-cli"].startswith("corrupt") and "refresh_token" in reasons["kimi-cli"]
    assert reasons["kimi-code"].startswith("revoked")
    text = str(info.value)
    assert str(cli_file) in text and str(code_file) in text
    assert "kimi-coder login" in text and "CANARY" not in text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "missing"),
        ({"access_token": "AT-x", "refresh_token": "", "expires_at": 1.0}, "no refresh token"),
        ({"access_token": "", "refresh_token": ""}, "empty login"),
    ],
)
def test_reasons(cli_file: Path, content: dict | None, reason: str) -> None:
    if content is not None:
        cli_file.parent.mkdir(parents=True)
        cli_file.write_text(json.dumps(content))
    with pytest.raises(CredentialsUnavailable) as info:
        resolve_credential().get_token()
    assert reason in {a.source: a.reason for a in info.value.attempts}["kimi-cli"]


def test_failure_is_not_cached_a_later_login_works(cli_file: Path) -> None:
    cred = resolve_credential()
    with pytest.raises(CredentialsUnavailable):
        cred.get_token()
    write_login(cli_file, "AT-later")
    assert cred.get_token() == Secret("AT-later")


# ---------------------------------------------------------------------------- laziness, sharing


def test_constructors_do_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_io(*args: object, **kwargs: object) -> None:
        raise AssertionError("I/O in a constructor")

    monkeypatch.setattr(builtins, "open", no_io)
    monkeypatch.setattr(os, "open", no_io)
    monkeypatch.setattr(os, "stat", no_io)
    monkeypatch.setattr(os, "listdir", no_io)
    monkeypatch.setattr(Path, "exists", no_io)
    monkeypatch.setattr(Path, "is_file", no_io)
    resolve_credential()
    resolve_credential(credentials="kimi-code")
    resolve_credential(api_key="sk-x")
    default_credential()
    OAuthCredential(KimiCliStore())
    OAuthCredential(KimiCodeStore())
    DiscoveredCredential()
    StaticCredential("sk-y")


def test_shared_instance_per_pin_and_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = resolve_credential()
    assert resolve_credential() is a and default_credential() is a
    assert resolve_credential(credentials="kimi-cli") is not a
    monkeypatch.setenv("KIMI_SHARE_DIR", str(tmp_path / "other"))
    assert resolve_credential() is not a


def test_discovered_file_credentials_share_one_cache(cli_file: Path) -> None:
    write_login(cli_file, "AT-cli")
    a = resolve_credential()
    b = resolve_credential(credentials="kimi-cli")
    a.get_token()
    b.get_token()
    assert a.resolve() is b.resolve()  # type: ignore[attr-defined]


async def test_async_discovery(cli_file: Path) -> None:
    write_login(cli_file, "AT-async")
    cred = resolve_credential()
    assert await cred.aget_token() == Secret("AT-async")


def test_static_credential() -> None:
    cred = StaticCredential("sk-CANARY-static")
    assert "CANARY" not in repr(cred)
    assert cred.on_unauthorized(Secret("sk-CANARY-static")) is None
    assert cred.describe().refreshable is False
    with pytest.raises(CredentialError, match="empty"):
        StaticCredential("  ")


def test_describe_before_and_after(cli_file: Path) -> None:
    cred = resolve_credential()
    assert cred.source == "auto"
    status = cred.describe()
    assert status.source == "none" and "missing" in status.detail
    write_login(cli_file, "AT-CANARY-d")
    sources.clear_credential_cache()
    cred = resolve_credential()
    status = cred.describe()
    assert status.source == "kimi-cli" and status.refreshable and "CANARY" not in repr(status)
    assert [s.source for s in cred.describe_all()] == ["env", "kimi-cli", "kimi-code"]  # type: ignore[attr-defined]


def test_credentials_survive_copy_and_deepcopy_as_the_same_shared_object(cli_file: Path) -> None:
    import copy

    write_login(cli_file, "AT-copy")
    disc = resolve_credential()
    disc.get_token()
    for cred in (disc, disc.resolve(), StaticCredential("sk-copy")):  # type: ignore[attr-defined]
        assert copy.copy(cred) is cred
        assert copy.deepcopy({"c": cred})["c"] is cred
