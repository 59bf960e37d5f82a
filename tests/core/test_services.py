"""Side services (/search, /fetch, /files) through the core, against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimi_coder_auth.emulator import Emulator
from kimi_coder_auth.errors import APIError, KimiCoderError
from kimi_coder_auth.services import KimiServices, SearchResult, video_url_part

KEY = "sk-kimi-services-test"


@pytest.fixture
def emu():
    with Emulator(api_keys=[KEY]) as e:
        yield e


def _svc(emu: Emulator) -> KimiServices:
    return KimiServices.create(api_key=KEY, base_url=emu.base_url, max_retries=0)


def test_web_search_sends_text_query_and_types_results(emu: Emulator) -> None:
    results = _svc(emu).web_search("  python gil ")
    assert [type(r) for r in results] == [SearchResult, SearchResult]
    assert results[0].title == "python gil - overview" and results[0].url.startswith("https://")
    assert results[0].snippet == "An overview of python gil." and results[1].content == ""
    rec = emu.requests_to("/search")[-1]
    assert rec.body == {"text_query": "python gil"}
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    assert rec.headers["user-agent"].startswith("kimi-coder/")


async def test_async_search_fetch_upload(emu: Emulator) -> None:
    svc = _svc(emu)
    assert (await svc.aweb_search("rust"))[1].title == "rust (wiki)"
    assert "Extracted text of https://a.example/x" in await svc.afetch_url("https://a.example/x")
    url = await svc.aupload_video(b"\x00\x01video", filename="clip.mp4")
    assert url.startswith("ms://file-")


def test_fetch_asks_for_markdown_and_returns_text(emu: Emulator) -> None:
    text = _svc(emu).fetch_url("https://example.org/page")
    assert text.startswith("# Page at https://example.org/page")
    rec = emu.requests_to("/fetch")[-1]
    assert rec.body == {"url": "https://example.org/page"}
    assert rec.headers["accept"] == "text/markdown"


def test_fetch_failure_is_a_typed_error(emu: Emulator) -> None:
    with pytest.raises(KimiCoderError) as info:
        _svc(emu).fetch_url("https://example.org/missing")
    assert "404" in str(info.value) or getattr(info.value, "status", None) == 404


def test_upload_video_multipart_and_ms_url(emu: Emulator, tmp_path: Path) -> None:
    clip = tmp_path / "demo.webm"
    clip.write_bytes(b"webm-bytes" * 100)
    url = _svc(emu).upload_video(clip)
    file_id = url.removeprefix("ms://")
    assert url.startswith("ms://") and emu.uploads[file_id] == ("demo.webm", "video/webm", clip.read_bytes())
    assert video_url_part(url) == {"type": "video_url", "video_url": {"url": url}}
    assert emu.requests_to("/files")[-1].headers["content-type"].startswith("multipart/form-data; boundary=")


def test_upload_rejects_non_video_and_missing_files(emu: Emulator, tmp_path: Path) -> None:
    svc = _svc(emu)
    with pytest.raises(ValueError, match="video/"):
        svc.upload_video(b"abc", filename="notes.txt")
    with pytest.raises(ValueError, match="could not read"):
        svc.upload_video(tmp_path / "nope.mp4")
    assert emu.counts["files"] == 0  # nothing was sent


def test_bad_inputs_and_bad_answers(emu: Emulator) -> None:
    svc = _svc(emu)
    with pytest.raises(ValueError, match="query"):
        svc.web_search("  ")
    emu.inject("search", status=200, body={"unexpected": True})
    with pytest.raises(APIError, match="search_results"):
        svc.web_search("x")


def test_search_url_env_override(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIMI_WEB_SEARCH_BASE_URL", emu.base_url + "/search/")
    svc = KimiServices.create(api_key=KEY, base_url="http://127.0.0.1:9/unused", max_retries=0)
    assert svc.web_search("q")[0].title == "q - overview"


def test_a_service_key_from_the_environment_is_sent_instead_of_the_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kimi Code's KIMI_WEB_SEARCH_API_KEY / KIMI_WEB_FETCH_API_KEY: that service gets its own
    key, with the login's settings; chat, the other service and errors keep theirs."""
    import asyncio

    search_key, fetch_key = "sk-web-search-own-0001", "sk-web-fetch-own-0002"
    with Emulator(api_keys=[KEY, search_key, fetch_key]) as emu:
        svc = KimiServices.create(api_key=KEY, base_url=emu.base_url, max_retries=0,
                                  user_agent="kimi-coder-test/1")
        monkeypatch.setenv("KIMI_WEB_SEARCH_API_KEY", search_key)
        svc.web_search("a")
        svc.fetch_url("https://example.org/page")  # no fetch key yet: the login's
        monkeypatch.setenv("KIMI_WEB_FETCH_API_KEY", f"  {fetch_key} ")
        asyncio.run(svc.afetch_url("https://example.org/page"))
        svc.transport.list_models()
        monkeypatch.setenv("KIMI_WEB_SEARCH_API_KEY", "sk-web-search-wrong-0003")  # read per call
        with pytest.raises(APIError) as info:
            svc.web_search("b")
        monkeypatch.delenv("KIMI_WEB_SEARCH_API_KEY")
        svc.web_search("c")
        sent = [(r.path.rsplit("/", 1)[-1], r.headers["authorization"][-4:], r.headers["user-agent"])
                for r in emu.requests if r.path.rsplit("/", 1)[-1] in ("search", "fetch", "models")]
    assert sent == [("search", "0001", "kimi-coder-test/1"), ("fetch", "test", "kimi-coder-test/1"),
                    ("fetch", "0002", "kimi-coder-test/1"), ("models", "test", "kimi-coder-test/1"),
                    ("search", "0003", "kimi-coder-test/1"), ("search", "test", "kimi-coder-test/1")]
    assert info.value.status == 401 and "sk-web-search-wrong-0003" not in str(info.value)
    assert "Check KIMI_WEB_SEARCH_API_KEY" in str(info.value) and "kimi-coder login" not in str(info.value)
