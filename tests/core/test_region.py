"""Regions and per-host login slots, with real files in the layouts Kimi Code and kimi-cli write.

Kimi Code home layout (region.ts / managed-kimi-code.ts @d723cc47): `<home>/credentials/<slot>.json`
(pretty JSON + newline, integer expiry), `<home>/oauth/<slot>` + `<slot>.lock` (proper-lockfile),
`<home>/region` (install marker), `<home>/config.toml` with `[providers."managed:kimi-code"]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimi_coder_auth import refresh as refresh_mod
from kimi_coder_auth.clock import FakeClock, use_clock
from kimi_coder_auth.device import login_target
from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import CredentialsUnavailable, RegionError
from kimi_coder_auth.region import kimi_code_slot, normalize_region, resolve_endpoint
from kimi_coder_auth.sources import clear_credential_cache, resolve_credential
from kimi_coder_auth.stores import KimiCliStore, KimiCodeStore
from kimi_coder_auth.transport import Transport

GLOBAL_SLOT = "kimi-code-env-0e4f99c69cc27850"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    clear_credential_cache()
    refresh_mod._rejected.clear()
    yield
    clear_credential_cache()
    refresh_mod._rejected.clear()


def code_home(home: Path) -> Path:
    return home / ".kimi-code"


def write_kimi_code_login(home: Path, slot: str, at: str, rt: str, expires_at: int) -> Path:
    """A login exactly as Kimi Code's FileTokenStorage.save writes it (2-space JSON + newline)."""
    path = code_home(home) / "credentials" / f"{slot}.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    wire = {"access_token": at, "refresh_token": rt, "expires_at": expires_at,
            "scope": "kimi-code", "token_type": "Bearer", "expires_in": 900}
    path.write_text(json.dumps(wire, indent=2) + "\n")
    path.chmod(0o600)
    (code_home(home) / "oauth").mkdir(exist_ok=True)
    (code_home(home) / "oauth" / slot).touch()  # proper-lockfile's sentinel
    return path


def write_global_config(home: Path, slot: str = GLOBAL_SLOT) -> Path:
    """config.toml after a global-region login in Kimi Code (managedOAuthRef with oauthHost)."""
    path = code_home(home) / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        'default_model = "kimi-code/kimi-for-coding"\n\n'
        '[providers."managed:kimi-code"]\n'
        'type = "kimi"\n'
        'base_url = "https://api.kimi.ai/coding/v1"\n'
        'api_key = ""\n'
        f'oauth = {{storage="file", key="oauth/{slot}", oauthHost="https://auth.kimi.ai"}}\n'
    )
    return path


def write_kimi_cli_login(home: Path, at: str, rt: str, expires_at: float) -> Path:
    """kimi-cli's file exactly as `kimi login` writes it (compact JSON, float expiry, no newline)."""
    path = home / ".kimi" / "credentials" / "kimi-code.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"access_token": at, "refresh_token": rt, "expires_at": expires_at,
                                "scope": "kimi-code", "token_type": "Bearer", "expires_in": 900.0}))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- names and values


def test_global_slot_name_is_kimi_codes() -> None:
    assert kimi_code_slot("https://auth.kimi.ai", "https://api.kimi.ai/coding/v1") == GLOBAL_SLOT
    assert kimi_code_slot(" https://auth.kimi.ai/ ", "https://api.kimi.ai/coding/v1/") == GLOBAL_SLOT
    assert kimi_code_slot("https://auth.kimi.com", "https://api.kimi.com/coding/v1") == "kimi-code"
    ep = resolve_endpoint("global")
    assert (ep.region, ep.oauth_host, ep.base_url, ep.slot) == (
        "global", "https://auth.kimi.ai", "https://api.kimi.ai/coding/v1", GLOBAL_SLOT)
    assert resolve_endpoint().slot == "kimi-code" and resolve_endpoint().is_default


@pytest.mark.parametrize("alias,name", [("cn", "mainland-cn"), ("Mainland-CN", "mainland-cn"),
                                        ("intl", "global"), (" GLOBAL ", "global")])
def test_region_aliases(alias: str, name: str) -> None:
    assert normalize_region(alias) == name


def test_unknown_region_names_the_setting_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RegionError, match=r"region=") as info:
        resolve_credential(region="mars")
    assert "mainland-cn" in str(info.value) and "global" in str(info.value)
    with pytest.raises(RegionError, match="--region"):
        resolve_endpoint("mars", via="--region")
    monkeypatch.setenv("KIMI_CODER_REGION", "eu")
    with pytest.raises(RegionError, match="KIMI_CODER_REGION"):
        resolve_credential()


def test_region_contradicting_the_oauth_host_variable_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", "http://127.0.0.1:9")
    with pytest.raises(RegionError) as info:
        resolve_credential(region="global")
    assert "KIMI_CODE_OAUTH_HOST" in str(info.value) and "region=" in str(info.value)
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", "https://auth.kimi.ai/")  # the same host: fine
    assert resolve_endpoint("global").slot == GLOBAL_SLOT


# --------------------------------------------------------------------------- Kimi Code's files


def test_global_layout_is_found_without_any_setting(isolated_home: Path) -> None:
    """config.toml says global: the global slot is used, a stale mainland file and kimi-cli's
    default-host file are not."""
    now = int(time.time())
    config = write_global_config(isolated_home)
    write_kimi_code_login(isolated_home, GLOBAL_SLOT, "AT-global", "RT-global", now + 900)
    write_kimi_code_login(isolated_home, "kimi-code", "AT-stale-cn", "RT-stale-cn", now + 900)
    write_kimi_cli_login(isolated_home, "AT-cli", "RT-cli", now + 900.0)

    ep = resolve_endpoint()
    assert (ep.region, ep.slot, ep.oauth_host) == ("global", GLOBAL_SLOT, "https://auth.kimi.ai")
    assert ep.reason == f"oauthHost in {config}"
    cred = resolve_credential()
    assert cred.get_token().reveal() == "AT-global"
    status = cred.describe()
    assert (status.source, status.region, status.slot) == ("kimi-code", "global", GLOBAL_SLOT)
    assert status.location == str(code_home(isolated_home) / "credentials" / f"{GLOBAL_SLOT}.json")
    kimi_cli = next(s for s in cred.describe_all() if s.source == "kimi-cli")  # type: ignore[attr-defined]
    assert "not used for https://auth.kimi.ai" in kimi_cli.detail
    # chat goes to the global API host (no request is made here)
    assert Transport(credential=cred).base_url == "https://api.kimi.ai/coding/v1"


def test_config_key_of_the_default_slot_means_mainland_even_with_a_global_marker(
    isolated_home: Path,
) -> None:
    home = code_home(isolated_home)
    home.mkdir()
    (home / "region").write_text("global\n")
    (home / "config.toml").write_text(
        '[providers."managed:kimi-code"]\nbase_url = "https://api.kimi.com/coding/v1"\n'
        'oauth = { storage = "file", key = "oauth/kimi-code" }\n'
    )
    ep = resolve_endpoint()
    assert (ep.region, ep.slot) == ("mainland-cn", "kimi-code")
    assert "oauth/kimi-code" in ep.reason


def test_region_marker_is_read_before_the_first_login(isolated_home: Path) -> None:
    home = code_home(isolated_home)
    home.mkdir()
    (home / "region").write_text("global\n")  # what the install script writes
    ep = resolve_endpoint()
    assert (ep.region, ep.slot, ep.reason) == ("global", GLOBAL_SLOT, f"region file {home / 'region'}")
    assert login_target()[0].path == home / "credentials" / f"{GLOBAL_SLOT}.json"
    clear_credential_cache()
    (home / "region").write_text("atlantis\n")
    ep = resolve_endpoint()
    assert ep.region == "mainland-cn" and "unrecognised" in ep.reason


def test_settings_beat_kimi_codes_files(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_global_config(isolated_home)
    assert resolve_endpoint("cn").slot == "kimi-code"  # region= argument
    monkeypatch.setenv("KIMI_CODER_REGION", "mainland-cn")
    assert resolve_endpoint().region == "mainland-cn"
    monkeypatch.delenv("KIMI_CODER_REGION")
    monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", "http://127.0.0.1:9")
    ep = resolve_endpoint()
    assert ep.region == "custom" and ep.slot == kimi_code_slot("http://127.0.0.1:9",
                                                               "https://api.kimi.com/coding/v1")


def test_unreadable_config_is_ignored_and_left_alone(isolated_home: Path) -> None:
    home = code_home(isolated_home)
    home.mkdir()
    (home / "config.toml").write_text("[providers\nnot toml")
    ep = resolve_endpoint()
    assert ep.region == "mainland-cn" and "unreadable" in ep.reason
    assert (home / "config.toml").read_text() == "[providers\nnot toml"


def test_a_key_that_is_not_a_slot_name_is_never_used_as_a_path(isolated_home: Path) -> None:
    write_global_config(isolated_home, slot="../../../etc/passwd")
    assert resolve_endpoint().slot == GLOBAL_SLOT  # computed, not taken from the file


# --------------------------------------------------------------------------- logins and refresh


def test_a_login_from_another_host_never_targets_kimi_clis_file(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ep = login_target(region="global")
    assert isinstance(store, KimiCodeStore) and store.path.name == f"{GLOBAL_SLOT}.json"
    assert ep.oauth_host == "https://auth.kimi.ai"
    with pytest.raises(RegionError, match='store="kimi-code"'):
        login_target("kimi-cli", region="global")
    with pytest.raises(RegionError):
        login_target(KimiCliStore(), oauth_host="http://127.0.0.1:9")
    # an explicit KimiCodeStore without a slot is given the login's own slot
    store, _ = login_target(KimiCodeStore(), region="global")
    assert store.path.name == f"{GLOBAL_SLOT}.json"
    assert isinstance(login_target()[0], KimiCliStore)  # the default host: kimi-cli as before


def test_discovery_for_the_emulator_never_reads_kimi_clis_file(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real login's refresh token never travels to another server."""
    write_kimi_cli_login(isolated_home, "AT-real", "RT-real-CANARY", time.time() - 60)
    with Emulator() as emu:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", emu.oauth_host)
        with pytest.raises(CredentialsUnavailable) as info:
            resolve_credential().get_token()
        assert "kimi-cli keeps one login" in str(info.value)
        assert "kimi-code-env-" in str(info.value)  # names the slot a login would use
        assert not any("RT-real-CANARY" in json.dumps(r.body) for r in emu.requests)
        assert emu.counts["refresh"] == 0
        with pytest.raises(CredentialsUnavailable, match="kimi-cli keeps one login"):
            resolve_credential(credentials="kimi-cli").get_token()


def test_a_login_is_refreshed_only_against_its_own_host(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator() as ours, Emulator() as other, use_clock(FakeClock()) as fake:
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", ours.oauth_host)
        tok = ours.issue_token()
        slot = kimi_code_slot(ours.oauth_host, "https://api.kimi.com/coding/v1")
        write_kimi_code_login(isolated_home, slot, tok["access_token"], tok["refresh_token"],
                              int(fake.now()) + 900)
        cred = resolve_credential()
        assert cred.get_token().reveal() == tok["access_token"]
        monkeypatch.setenv("KIMI_CODE_OAUTH_HOST", other.oauth_host)  # the environment moves on
        fake.advance(600)  # inside the refresh window
        assert cred.get_token().reveal() != tok["access_token"]
        assert ours.counts["refresh"] == 1 and other.counts["refresh"] == 0


async def test_python_login_refuses_kimi_clis_file_for_another_host_before_any_request(
    isolated_home: Path,
) -> None:
    from kimi_coder_auth.device import alogin, login

    real = write_kimi_cli_login(isolated_home, "AT-real", "RT-real", time.time() + 800)
    before = real.read_bytes()
    with Emulator() as emu:
        with pytest.raises(RegionError, match='store="kimi-code"'):
            login(store="kimi-cli", oauth_host=emu.oauth_host, open_browser=False)
        with pytest.raises(RegionError):
            await alogin(store=KimiCliStore(), oauth_host=emu.oauth_host, open_browser=False)
        assert emu.counts["device_authorization"] == 0
        token = await alogin(oauth_host=emu.oauth_host, open_browser=False, prompt=lambda p: None)
        slot = kimi_code_slot(emu.oauth_host, "https://api.kimi.com/coding/v1")
        saved = KimiCodeStore(token_name=slot).read()
        assert saved is not None and saved.access_token == token.access_token
    assert real.read_bytes() == before
