"""The smallest ChatKimiCoder program: one question, one answer (with its reasoning and usage).

Needs the `langchain` extra: `python -m pip install ".[langchain]"` (from a clone) or
`pip install "kimi-coder[langchain]"`.

Runs offline against the embedded Kimi Coding API emulator by default:

    python examples/invoke.py

Against the real API (uses your `kimi-coder login` / `kimi login`, or KIMI_CODER_API_KEY):

    python examples/invoke.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from langchain_kimi_coder import ChatKimiCoder


@contextlib.contextmanager
def make_model(base_url: str | None, api_key: str | None) -> Iterator[ChatKimiCoder]:
    """The real API when a base URL is given, else a throwaway local emulator."""
    if base_url:
        yield ChatKimiCoder(base_url=base_url, api_key=api_key)
        return
    from kimi_coder_auth.emulator import Emulator

    with Emulator(api_keys=["demo-key"]) as emu:
        print(f"(offline: using the embedded emulator at {emu.base_url})\n")
        yield ChatKimiCoder(base_url=emu.base_url, api_key="demo-key")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="use this API instead of the offline emulator")
    parser.add_argument("--api-key", help="Kimi Code API key (default: your login)")
    parser.add_argument("question", nargs="?", default="In one sentence: what is a Python generator?")
    args = parser.parse_args()

    with make_model(args.base_url, args.api_key) as model:
        reply = model.invoke(args.question)
        print("reasoning:", reply.additional_kwargs.get("reasoning_content"))
        print("answer:   ", reply.content)
        print("usage:    ", reply.usage_metadata)
        print("model:    ", reply.response_metadata.get("model_name"))


if __name__ == "__main__":
    main()
