"""kimi-coder benchmark: our adapters vs raw httpx + json.loads vs ChatOpenAI / OpenAILike.

Everything runs against one loopback server in a subprocess (`bench/_server.py`, pre-serialised
Kimi-style SSE with exactly N chunks, so the server costs ~nothing and every client reads the
same bytes), in one run, and prints a markdown table with absolute times and ratios.

    python bench/bench.py            # full run (a few minutes on 2 cores)
    python bench/bench.py --quick    # tiny sizes, one repetition: a smoke run
    python bench/bench.py --profile  # also cProfile our adapters' 2000-chunk streams

Install the references with `pip install kimi-coder[bench]` (langchain-openai,
llama-index-llms-openai-like). Rows whose client cannot be imported are shown as n/a.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "kimi-for-coding"
API_KEY = "sk-kimi-bench"
perf = time.perf_counter


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is, and how many repetitions give the median."""

    stream_chunks: int = 2000
    ttft_runs: int = 200
    ttft_chunks: int = 20
    concurrency: int = 50
    concurrent_chunks: int = 500
    tool_frags: tuple[int, int] = (2000, 8000)
    repeats: int = 7
    async_repeats: int = 5
    tool_repeats: int = 3
    import_runs: int = 9


FULL = Sizes()
QUICK = Sizes(stream_chunks=40, ttft_runs=3, ttft_chunks=5, concurrency=3, concurrent_chunks=10,
              tool_frags=(20, 80), repeats=1, async_repeats=1, tool_repeats=1, import_runs=1)


# ----------------------------------------------------------------------------- server


@contextlib.contextmanager
def loopback_server(framing: str = "chunked") -> Iterator[str]:
    """Start bench/_server.py in a subprocess; yields its base URL."""
    proc = subprocess.Popen([sys.executable, str(HERE / "_server.py"), "--framing", framing], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}/coding/v1"
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def prompt(kind: str, n: int) -> str:
    """The user message that selects a stream on the bench server."""
    return f"bench:{kind}:{n}"


# ----------------------------------------------------------------------------- helpers


def _check(count: int, n: int, who: str) -> None:
    """Every client must deliver at least the answer-text chunks (references may drop reasoning)."""
    expected = n - n // 4
    if count < expected:
        raise RuntimeError(f"{who} saw {count} chunks, expected at least {expected}")


# ----------------------------------------------------------------------------- raw httpx


class Raw:
    """The baseline: httpx + json.loads over the same SSE stream (what any client must do)."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.url = base_url + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        self.client = httpx.Client(timeout=60)
        self.aclient: Any = None
        self._httpx = httpx

    def _body(self, text: str) -> bytes:
        return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": text}],
                           "stream": True, "stream_options": {"include_usage": True}}).encode()

    def stream(self, text: str) -> int:
        loads = json.loads
        n = 0
        with self.client.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            r.raise_for_status()
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    data = line[6:]
                    if data == "[DONE]":
                        for _ in lines:  # read to the end, so the connection is reused (bench/README.md)
                            pass
                        break
                    obj = loads(data)
                    if obj["choices"]:
                        delta = obj["choices"][0]["delta"]
                        if delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
                            n += 1
        return n

    def ttft(self, text: str) -> float:
        loads = json.loads
        t0 = perf()
        dt = -1.0
        with self.client.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: ") and line[6:] != "[DONE]":
                    delta = loads(line[6:])["choices"][0]["delta"]
                    if delta.get("content") or delta.get("reasoning_content"):
                        dt = perf() - t0
                        break
            for _ in lines:
                pass
        return dt

    def tool(self, text: str) -> dict[str, Any]:
        loads = json.loads
        frags: list[str] = []
        name = ""
        with self.client.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    data = line[6:]
                    if data == "[DONE]":
                        for _ in lines:  # read to the end, so the connection is reused
                            pass
                        break
                    obj = loads(data)
                    if obj["choices"]:
                        for tc in obj["choices"][0]["delta"].get("tool_calls") or ():
                            fn = tc.get("function") or {}
                            name = fn.get("name") or name
                            if fn.get("arguments"):
                                frags.append(fn["arguments"])
        return {"name": name, "args": loads("".join(frags))}

    #: read each stream to its end after [DONE], so the connection goes back to the pool
    drain = True

    def _new_aclient(self) -> Any:
        """The same pool limits as kimi-coder, so both sides keep the same connections (README)."""
        from kimi_coder_auth.transport import LIMITS

        return self._httpx.AsyncClient(timeout=60, limits=LIMITS)

    async def astream(self, text: str) -> int:
        if self.aclient is None:
            self.aclient = self._new_aclient()
        loads = json.loads
        n = 0
        async with self.aclient.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            r.raise_for_status()
            lines = r.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    data = line[6:]
                    if data == "[DONE]":
                        if self.drain:
                            async for _ in lines:
                                pass
                        break
                    obj = loads(data)
                    if obj["choices"]:
                        delta = obj["choices"][0]["delta"]
                        if delta.get("content") or delta.get("reasoning_content"):
                            n += 1
        return n


class RawMessages(Raw):
    """The Anthropic-route baseline: httpx + json.loads over the same Messages event stream."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.url = base_url + "/messages"
        self.headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01",
                        "Content-Type": "application/json"}

    def _body(self, text: str) -> bytes:
        return json.dumps({"model": MODEL, "max_tokens": 32768, "stream": True,
                           "messages": [{"role": "user", "content": text}]}).encode()

    def stream(self, text: str) -> int:
        loads = json.loads
        n = 0
        with self.client.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            r.raise_for_status()
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    obj = loads(line[5:])
                    kind = obj["type"]
                    if kind == "message_stop":
                        for _ in lines:  # read to the end, so the connection is reused
                            pass
                        break
                    if kind == "content_block_delta" and obj["delta"]["type"] in ("text_delta", "thinking_delta"):
                        n += 1
        return n

    def ttft(self, text: str) -> float:
        loads = json.loads
        t0 = perf()
        dt = -1.0
        with self.client.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    obj = loads(line[5:])
                    if obj["type"] == "content_block_delta" and obj["delta"]["type"] in ("text_delta", "thinking_delta"):
                        dt = perf() - t0
                        break
            for _ in lines:
                pass
        return dt

    async def astream(self, text: str) -> int:
        if self.aclient is None:
            self.aclient = self._new_aclient()
        loads = json.loads
        n = 0
        async with self.aclient.stream("POST", self.url, content=self._body(text), headers=self.headers) as r:
            r.raise_for_status()
            lines = r.aiter_lines()
            async for line in lines:
                if line.startswith("data:"):
                    obj = loads(line[5:])
                    kind = obj["type"]
                    if kind == "message_stop":
                        async for _ in lines:
                            pass
                        break
                    if kind == "content_block_delta" and obj["delta"]["type"] in ("text_delta", "thinking_delta"):
                        n += 1
        return n


class RawReconnecting(Raw):
    """The async baseline as first published: it stops reading at ``[DONE]``, so httpx closes
    the connection and every request opens a new one (its pool limits do not matter then). On
    loopback that is cheaper than httpcore's bookkeeping for 50 pooled idle connections, whose
    pool scans every connection for each idle one on each request and release
    (``httpcore/_async/connection_pool.py``, ``_assign_requests_to_connections``); on the real
    service each reconnect is a TLS handshake. Shown for information only."""

    drain = False

    def _new_aclient(self) -> Any:
        return self._httpx.AsyncClient(timeout=60, limits=self._httpx.Limits(max_connections=200))


# ----------------------------------------------------------------------------- LangChain clients


def _lc_has_text(chunk: Any) -> bool:
    return bool(chunk.content or chunk.additional_kwargs.get("reasoning_content"))


class LC:
    """A LangChain chat model (ours or ChatOpenAI) driven the way applications drive it."""

    def __init__(self, model: Any) -> None:
        from langchain_core.messages import HumanMessage

        self.model = model
        self._human = HumanMessage

    def stream(self, text: str) -> int:
        n = 0
        for chunk in self.model.stream([self._human(text)]):
            if _lc_has_text(chunk):
                n += 1
        return n

    def ttft(self, text: str) -> float:
        t0 = perf()
        dt = -1.0
        it = iter(self.model.stream([self._human(text)]))
        for chunk in it:
            if _lc_has_text(chunk):
                dt = perf() - t0
                break
        for _ in it:
            pass
        return dt

    def tool_stream_fold(self, text: str) -> dict[str, Any]:
        """stream() + the standard chunk merge (`first + rest`), then the parsed tool call."""
        chunks = list(self.model.stream([self._human(text)]))
        full = chunks[0] + chunks[1:] if len(chunks) > 1 else chunks[0]
        call = full.tool_calls[0]
        return {"name": call["name"], "args": call["args"]}

    def tool_invoke(self, text: str) -> dict[str, Any]:
        """invoke() on a streaming model: the path a LangGraph agent node takes."""
        msg = self.model.invoke([self._human(text)])
        call = msg.tool_calls[0]
        return {"name": call["name"], "args": call["args"]}

    async def astream(self, text: str) -> int:
        n = 0
        async for chunk in self.model.astream([self._human(text)]):
            if _lc_has_text(chunk):
                n += 1
        return n


def make_floor_lc(base_url: str) -> LC:
    """The LangChain floor: a bare BaseChatModel whose _stream is raw httpx + json.loads.
    Whatever it costs beyond raw is LangChain's own per-call and per-chunk machinery."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    raw = Raw(base_url)

    class FloorChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "bench-floor"

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            loads = json.loads
            text = messages[-1].content
            with raw.client.stream("POST", raw.url, content=raw._body(text), headers=raw.headers) as r:
                lines = r.iter_lines()
                for line in lines:
                    if line.startswith("data: "):
                        data = line[6:]
                        if data == "[DONE]":
                            for _ in lines:  # read to the end, so the connection is reused
                                pass
                            break
                        obj = loads(data)
                        if obj["choices"]:
                            d = obj["choices"][0]["delta"]
                            yield ChatGenerationChunk(message=AIMessageChunk(
                                content=d.get("content") or "",
                                additional_kwargs={"reasoning_content": d["reasoning_content"]}
                                if "reasoning_content" in d else {}))

    return LC(FloorChatModel())


def make_ours_lc(base_url: str) -> LC:
    from langchain_kimi_coder import ChatKimiCoder

    return LC(ChatKimiCoder(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60))


def make_ours_lc_messages(base_url: str) -> LC:
    """ChatKimiCoder pinned to the Anthropic Messages route."""
    from langchain_kimi_coder import ChatKimiCoder

    return LC(ChatKimiCoder(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60,
                            protocol="anthropic"))


def make_ours_lc_streaming(base_url: str) -> LC | None:
    """ChatKimiCoder with `streaming=True`, so invoke() streams (None when unsupported)."""
    from langchain_kimi_coder import ChatKimiCoder

    if "streaming" not in ChatKimiCoder.model_fields:
        return None
    return LC(ChatKimiCoder(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60,
                            streaming=True))


def make_chatopenai(base_url: str, *, streaming: bool = False) -> LC:
    from langchain_openai import ChatOpenAI

    extra = {"streaming": True} if streaming else {}  # an explicit streaming=False disables stream()
    return LC(ChatOpenAI(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60, **extra))


# ----------------------------------------------------------------------------- LlamaIndex clients


class LI:
    """A LlamaIndex LLM (ours or OpenAILike)."""

    def __init__(self, llm: Any) -> None:
        from llama_index.core.llms import ChatMessage

        self.llm = llm
        self._msg = ChatMessage

    def _has_text(self, r: Any) -> bool:
        return bool(r.delta or r.additional_kwargs.get("thinking_delta"))

    def stream(self, text: str) -> int:
        n = 0
        for r in self.llm.stream_chat([self._msg(role="user", content=text)]):
            if self._has_text(r):
                n += 1
        return n

    def ttft(self, text: str) -> float:
        t0 = perf()
        dt = -1.0
        it = iter(self.llm.stream_chat([self._msg(role="user", content=text)]))
        for r in it:
            if self._has_text(r):
                dt = perf() - t0
                break
        for _ in it:
            pass
        return dt

    async def astream(self, text: str) -> int:
        n = 0
        gen = await self.llm.astream_chat([self._msg(role="user", content=text)])
        async for r in gen:
            if self._has_text(r):
                n += 1
        return n


def make_ours_li(base_url: str) -> LI:
    from llama_index_kimi_coder import KimiCoderLLM

    return LI(KimiCoderLLM(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60))


def make_ours_li_messages(base_url: str) -> LI:
    """KimiCoderLLM pinned to the Anthropic Messages route."""
    from llama_index_kimi_coder import KimiCoderLLM

    return LI(KimiCoderLLM(model=MODEL, base_url=base_url, api_key=API_KEY, max_retries=0, timeout=60,
                           protocol="anthropic"))


def make_openailike(base_url: str) -> LI:
    from llama_index.llms.openai_like import OpenAILike

    return LI(OpenAILike(model=MODEL, api_base=base_url, api_key=API_KEY, is_chat_model=True,
                         is_function_calling_model=True, context_window=262144, max_retries=0, timeout=60))


# ----------------------------------------------------------------------------- import timing

_IMPORT_PROBE = r"""
import json, sys, time
def rss():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == 'darwin' else r * 1024
before = rss()
t0 = time.perf_counter()
exec(sys.argv[1])
dt = time.perf_counter() - t0
print(json.dumps({"t": dt, "rss": rss(), "rss_before": before}))
"""


def import_probe(statement: str) -> dict[str, float]:
    """Import `statement` in a fresh interpreter; its import time and RSS after import."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, statement], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "import failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_imports(ours: str, base: str, runs: int) -> dict[str, float]:
    """Interleaved fresh-process imports (after one warm-up each, so .pyc files exist); medians."""
    import_probe(ours)
    import_probe(base)
    o: list[dict[str, float]] = []
    b: list[dict[str, float]] = []
    for _ in range(runs):
        o.append(import_probe(ours))
        b.append(import_probe(base))
    return {
        "ours_t": statistics.median(x["t"] for x in o), "base_t": statistics.median(x["t"] for x in b),
        "ours_rss": statistics.median(x["rss"] for x in o), "base_rss": statistics.median(x["rss"] for x in b),
    }


# ----------------------------------------------------------------------------- the table


@dataclass
class Row:
    """One measurement: our time vs the raw baseline (and a reference library when measured)."""

    name: str
    ours: float | None
    raw: float | None
    ref: float | None = None
    ref_name: str = ""
    unit: str = "ms"
    target: str = ""
    ok: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_t(v: float | None, unit: str = "ms") -> str:
    if v is None:
        return "n/a"
    if unit == "ms":
        return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.3f} s"
    if unit == "MiB":
        return f"{v / 2**20:.1f} MiB"
    return f"{v:.3g}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def table(rows: list[Row]) -> str:
    lines = [
        "| measurement | ours | raw / baseline | ours ÷ raw | reference | ref ÷ raw | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = f"{fmt_t(r.ref, r.unit)} ({r.ref_name})" if r.ref_name else "–"
        met = "n/a" if r.ok is None else ("yes" if r.ok else "**no**")
        note = f" {r.note}" if r.note else ""
        lines.append(
            f"| {r.name} | {fmt_t(r.ours, r.unit)} | {fmt_t(r.raw, r.unit)} | {ratio(r.ours, r.raw)} | "
            f"{ref} | {ratio(r.ref, r.raw) if r.ref_name else '–'} | {r.target}{note} | {met} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the run


def _try(label: str, fn: Callable[[], Any], errors: list[str]) -> Any:
    try:
        return fn()
    except Exception as exc:  # a missing/broken client becomes an n/a cell, not a crash
        errors.append(f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None


def paired(fns: dict[str, Callable[[], float]], repeats: int, errors: list[str], *, warmup: int = 1,
           limits: dict[str, int] | None = None) -> dict[str, float | None]:
    """Median of each measurement, taken in rotation (raw, ours, ref, raw, ours, ...) so load
    drift on a shared machine hits every contender alike. Each fn returns its own duration;
    one that raises is reported in `errors` and dropped. `limits` caps a contender's repeats."""
    live = dict(fns)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for name, fn in list(live.items()):
        try:
            for _ in range(warmup):
                fn()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            del live[name]
    for i in range(repeats):
        for name, fn in list(live.items()):
            if limits and i >= limits.get(name, repeats):
                continue
            gc.collect()
            try:
                times[name].append(fn())
            except Exception as exc:
                errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                del live[name]
    return {k: (statistics.median(v) if v and k in live else None) for k, v in times.items()}


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """Wrap fn so calling it returns its wall time."""
    def run_once() -> float:
        t0 = perf()
        fn()
        return perf() - t0
    return run_once


def run(sizes: Sizes, *, profile: bool = False, llama: bool = True, langchain: bool = True,
        imports: bool = True, references: bool = True, framing: str = "chunked",
        ) -> tuple[list[Row], list[str], str]:
    """Measure everything against one loopback server; returns (rows, errors, profile text)."""
    rows: list[Row] = []
    errors: list[str] = []
    prof_text = ""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with loopback_server(framing) as base_url:
        raw = Raw(base_url)
        raw_reconnecting = RawReconnecting(base_url)
        n = sizes.stream_chunks
        big = prompt("content", n)
        k, m = sizes.concurrency, sizes.concurrent_chunks
        conc = prompt("content", m)
        short = prompt("content", sizes.ttft_chunks)
        ref_cap = 3  # the references are slow: a few runs are enough for their column

        def conc_of(client: Any, who: str) -> Callable[[], float]:
            async def go() -> None:
                counts = await asyncio.gather(*(client.astream(conc) for _ in range(k)))
                _check(min(counts), m, who)
            return timed(lambda: loop.run_until_complete(go()))

        def stream_rows(ours: Any, ref: Any, ref_name: str, ref_claim: str, sync_label: str,
                        async_label: str, *, ttft: bool, floor: Any = None, raw: Any = raw,
                        reconnecting: bool = True) -> None:
            floor_name = "LangChain floor"
            fns = {"raw": timed(lambda: _check(raw.stream(big), n, "raw"))}
            if ours:
                fns[sync_label] = timed(lambda: _check(ours.stream(big), n, sync_label))
            if floor:
                fns[floor_name] = timed(lambda: _check(floor.stream(big), n, floor_name))
            if ref:
                fns[ref_name] = timed(lambda: _check(ref.stream(big), n, ref_name))
            res = paired(fns, sizes.repeats, errors, limits={ref_name: ref_cap})
            o, r, rf = res.get(sync_label), res["raw"], res.get(ref_name)
            rows.append(Row(f"{sync_label}: {n}-chunk stream", o, r, rf, ref_name,
                            target=f"<= 5x raw ({ref_name} ~{ref_claim})",
                            ok=None if o is None or r is None else o <= 5 * r))
            if res.get(floor_name) is not None:
                rows.append(Row(f"(floor) bare BaseChatModel over raw httpx: {n}-chunk stream",
                                res[floor_name], r, target="(info: LangChain's own per-chunk cost)"))
            if ttft:
                fns = {"raw": lambda: raw.ttft(short)}
                if ours:
                    fns[sync_label] = lambda: ours.ttft(short)
                if floor:
                    fns[floor_name] = lambda: floor.ttft(short)
                if ref:
                    fns[ref_name] = lambda: ref.ttft(short)
                res = paired(fns, sizes.ttft_runs, errors, warmup=3,
                             limits={ref_name: max(1, sizes.ttft_runs // 4)})
                o, r, rf = res.get(sync_label), res["raw"], res.get(ref_name)
                ok = None if o is None or r is None else (o - r) <= 0.3e-3
                rows.append(Row(f"{sync_label}: time to first token (warm)", o, r, rf, ref_name,
                                target="ours - raw <= 0.3 ms", ok=ok,
                                note="" if ok is None else f"(diff {(o - r) * 1e3:+.3f} ms)"))
                fl = res.get(floor_name)
                if fl is not None and r is not None:
                    rows.append(Row("(floor) bare BaseChatModel over raw httpx: time to first token", fl, r,
                                    target="(info: LangChain's own per-call cost)",
                                    note=f"(floor - raw {(fl - r) * 1e3:+.3f} ms"
                                         + ("" if o is None else f"; ours - floor {(o - fl) * 1e3:+.3f} ms") + ")"))
            recon = "raw, reconnecting"
            fns = {"raw": conc_of(raw, "raw async")}
            if reconnecting:
                fns[recon] = conc_of(raw_reconnecting, recon)
            if ours:
                fns[async_label] = conc_of(ours, async_label)
            if ref:
                fns[ref_name] = conc_of(ref, ref_name)
            res = paired(fns, sizes.async_repeats, errors, limits={ref_name: ref_cap})
            o, r, rf = res.get(async_label), res["raw"], res.get(ref_name)
            rows.append(Row(f"{async_label}: {k} concurrent x {m} chunks", o, r, rf, ref_name,
                            target="<= 6x raw async", ok=None if o is None or r is None else o <= 6 * r))
            rr = res.get(recon)
            if rr is not None and o is not None:
                rows.append(Row(f"(info) {async_label} vs raw that reconnects every request", o, rr,
                                target="(info: the first published baseline, stream left at [DONE]; see README)"))

        # ---------------- LangChain
        if langchain:
            ours_lc = _try("ChatKimiCoder", lambda: make_ours_lc(base_url), errors)
            ref_lc = _try("ChatOpenAI", lambda: make_chatopenai(base_url), errors) if references else None
            floor_lc = _try("LangChain floor", lambda: make_floor_lc(base_url), errors)
            stream_rows(ours_lc, ref_lc, "ChatOpenAI", "30x", "ChatKimiCoder.stream", "ChatKimiCoder.astream",
                        ttft=True, floor=floor_lc)
            # tool-call assembly: linear scaling
            small, large = sizes.tool_frags
            variants: dict[str, Callable[[str], Any]] = {}
            if ours_lc:
                variants["ChatKimiCoder.stream + chunk merge"] = ours_lc.tool_stream_fold
                ours_streaming = _try("ChatKimiCoder(streaming=True)", lambda: make_ours_lc_streaming(base_url), errors)
                if ours_streaming:
                    variants["ChatKimiCoder(streaming=True).invoke"] = ours_streaming.tool_invoke
            if ref_lc:
                variants["ChatOpenAI.stream + chunk merge (reference)"] = ref_lc.tool_stream_fold
            by_size: dict[int, dict[str, float | None]] = {}
            for f in (small, large):
                p = prompt("tool", f)
                fns = {"raw": timed(lambda p=p: raw.tool(p))}
                fns.update({label: timed(lambda fn=fn, p=p: fn(p)) for label, fn in variants.items()})
                by_size[f] = paired(fns, sizes.tool_repeats, errors)
            raw_small, raw_large = by_size[small]["raw"], by_size[large]["raw"]
            for label in variants:
                t_small, t_large = by_size[small].get(label), by_size[large].get(label)
                if t_small is None or t_large is None or raw_small is None or raw_large is None:
                    continue
                scale = t_large / t_small
                rows.append(Row(
                    f"{label}: tool call of {small} vs {large} fragments", t_large, raw_large,
                    unit="ms", target=f"linear: {large}/{small} = {large // small}x the time",
                    ok=None if "reference" in label else scale <= (large / small) * 1.35,
                    note=(f"({small} fragments: {fmt_t(t_small)} vs raw {fmt_t(raw_small)}; "
                          f"scaling {scale:.2f}x, raw {raw_large / raw_small:.2f}x)"),
                ))

        # ---------------- LlamaIndex
        if llama:
            ours_li = _try("KimiCoderLLM", lambda: make_ours_li(base_url), errors)
            ref_li = _try("OpenAILike", lambda: make_openailike(base_url), errors) if references else None
            stream_rows(ours_li, ref_li, "OpenAILike", "33x", "KimiCoderLLM.stream_chat",
                        "KimiCoderLLM.astream_chat", ttft=False)

        # ---------------- the Anthropic Messages route (same targets, its own raw baseline)
        raw_messages = RawMessages(base_url)
        if langchain:
            ours_lcm = _try("ChatKimiCoder(protocol='anthropic')", lambda: make_ours_lc_messages(base_url), errors)
            stream_rows(ours_lcm, None, "n/a", "-", "Messages route: ChatKimiCoder.stream",
                        "Messages route: ChatKimiCoder.astream", ttft=True, raw=raw_messages,
                        reconnecting=False)
        if llama:
            ours_lim = _try("KimiCoderLLM(protocol='anthropic')", lambda: make_ours_li_messages(base_url), errors)
            stream_rows(ours_lim, None, "n/a", "-", "Messages route: KimiCoderLLM.stream_chat",
                        "Messages route: KimiCoderLLM.astream_chat", ttft=False, raw=raw_messages,
                        reconnecting=False)

        if profile:
            prof_text = profile_ours(base_url, n, errors, langchain=langchain, llama=llama)
        for r in (raw, raw_reconnecting, raw_messages):
            if r.aclient is not None:
                loop.run_until_complete(r.aclient.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()

    # ---------------- imports (fresh processes)
    if imports:
        if langchain:
            res = _try("import LangChain", lambda: compare_imports(
                "from langchain_kimi_coder import ChatKimiCoder",
                "from langchain_core.language_models import BaseChatModel", sizes.import_runs), errors)
            if res:
                rows.append(Row("import ChatKimiCoder vs langchain_core BaseChatModel", res["ours_t"], res["base_t"],
                                target="within 15%", ok=res["ours_t"] <= 1.15 * res["base_t"]))
                d = res["ours_rss"] - res["base_rss"]
                rows.append(Row("RSS after import ChatKimiCoder vs BaseChatModel", res["ours_rss"], res["base_rss"],
                                unit="MiB", target="within 10 MiB", ok=d <= 10 * 2**20,
                                note=f"(diff {d / 2**20:+.1f} MiB)"))
        if llama:
            res = _try("import LlamaIndex", lambda: compare_imports(
                "from llama_index_kimi_coder import KimiCoderLLM",
                "from llama_index.core.llms.function_calling import FunctionCallingLLM", sizes.import_runs), errors)
            if res:
                rows.append(Row("import KimiCoderLLM vs llama_index FunctionCallingLLM", res["ours_t"], res["base_t"],
                                target="within 15%", ok=res["ours_t"] <= 1.15 * res["base_t"]))
                d = res["ours_rss"] - res["base_rss"]
                rows.append(Row("RSS after import KimiCoderLLM vs FunctionCallingLLM", res["ours_rss"], res["base_rss"],
                                unit="MiB", target="(info)", note=f"(diff {d / 2**20:+.1f} MiB)"))
    return rows, errors, prof_text


def profile_ours(base_url: str, n: int, errors: list[str], *, langchain: bool, llama: bool) -> str:
    """cProfile our adapters consuming an n-chunk stream; top functions by own time."""
    out = io.StringIO()
    targets: list[tuple[str, Callable[[], Any]]] = []
    if langchain:
        lc = _try("profile ChatKimiCoder", lambda: make_ours_lc(base_url), errors)
        if lc:
            targets.append(("ChatKimiCoder.stream", lambda: lc.stream(prompt("content", n))))
    if llama:
        li = _try("profile KimiCoderLLM", lambda: make_ours_li(base_url), errors)
        if li:
            targets.append(("KimiCoderLLM.stream_chat", lambda: li.stream(prompt("content", n))))
    for label, fn in targets:
        if _try(f"profile {label}", fn, errors) is None:
            continue
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(3):
            fn()
        prof.disable()
        out.write(f"\n### {label}: 3 x {n}-chunk stream, top 25 by own time\n\n```\n")
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        out.write("```\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (smoke run)")
    parser.add_argument("--profile", action="store_true", help="cProfile our adapters' streams")
    parser.add_argument("--no-llama", action="store_true", help="skip the LlamaIndex rows")
    parser.add_argument("--no-langchain", action="store_true", help="skip the LangChain rows")
    parser.add_argument("--no-imports", action="store_true", help="skip the fresh-process import rows")
    parser.add_argument("--no-references", action="store_true", help="skip ChatOpenAI / OpenAILike")
    parser.add_argument("--framing", choices=("chunked", "length"), default="chunked",
                        help="chunked: one HTTP chunk per SSE event, like the emulator and the real "
                             "service (default); length: one Content-Length body")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    t0 = perf()
    rows, errors, prof = run(sizes, profile=args.profile, llama=not args.no_llama,
                             langchain=not args.no_langchain, imports=not args.no_imports,
                             references=not args.no_references, framing=args.framing)
    import platform

    print(f"kimi-coder bench ({'quick' if args.quick else 'full'}, {args.framing} framing), Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {perf() - t0:.1f} s\n")
    print(table(rows))
    if errors:
        print("\nNot measured:")
        for e in errors:
            print(f"- {e}")
    if prof:
        print(prof)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
