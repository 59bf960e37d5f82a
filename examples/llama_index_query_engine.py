"""A LlamaIndex query engine over local documents, answered by Kimi (no embedding model needed).

Needs the `llama-index` extra: `python -m pip install ".[llama-index]"` (from a clone) or
`pip install "kimi-coder[llama-index]"`.

Runs offline against the embedded Kimi Coding API emulator by default:

    python examples/llama_index_query_engine.py

Against the real API (uses your `kimi login` / `kimi-coder login`, or KIMI_CODER_API_KEY):

    python examples/llama_index_query_engine.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.embeddings import MockEmbedding

from llama_index_kimi_coder import KimiCoderLLM

DOCS = [
    "kimi-coder lets LangChain and LlamaIndex apps use the Kimi Coding Plan.",
    "It reuses the login of the official Kimi CLIs, refreshing tokens safely across processes.",
    "Reasoning is replayed on tool-call turns, so agents work with thinking on.",
]


@contextlib.contextmanager
def make_llm(base_url: str | None) -> Iterator[KimiCoderLLM]:
    """The real API when a base URL is given, else a throwaway local emulator."""
    if base_url:
        yield KimiCoderLLM(base_url=base_url)
        return
    from kimi_coder_auth.emulator import Emulator

    with Emulator(api_keys=["demo-key"]) as emu:
        print(f"(offline: using the embedded emulator at {emu.base_url})\n")
        yield KimiCoderLLM(api_key="demo-key", base_url=emu.base_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="use this API base URL instead of the local emulator")
    parser.add_argument("--question", default="Why do agents work with thinking on?")
    args = parser.parse_args()

    # A SummaryIndex sends every node to the LLM, so no embeddings are computed; the mock only
    # stops LlamaIndex from reaching for its OpenAI default.
    Settings.embed_model = MockEmbedding(embed_dim=8)
    with make_llm(args.base_url) as llm:
        index = SummaryIndex.from_documents([Document(text=t) for t in DOCS])
        engine = index.as_query_engine(llm=llm, streaming=True)
        response = engine.query(args.question)
        for delta in response.response_gen:
            print(delta, end="", flush=True)
        print(f"\n\n({len(response.source_nodes)} source nodes)")


if __name__ == "__main__":
    main()
