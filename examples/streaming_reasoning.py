"""Stream an answer token by token, keeping Kimi's reasoning apart from the answer text.

Needs the `langchain` extra: `python -m pip install ".[langchain]"` (from a clone) or
`pip install "kimi-coder[langchain]"`.

Reasoning arrives in `chunk.additional_kwargs["reasoning_content"]` (and as standard `reasoning`
content blocks in `chunk.content_blocks`); the answer in `chunk.content`; usage on the last chunk.

    python examples/streaming_reasoning.py                      # offline emulator
    python examples/streaming_reasoning.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from langchain_kimi_coder import ChatKimiCoder

DIM, RESET = ("\x1b[2m", "\x1b[0m") if sys.stdout.isatty() else ("", "")


@contextlib.contextmanager
def make_model(base_url: str | None, api_key: str | None, thinking: bool) -> Iterator[ChatKimiCoder]:
    """The real API when a base URL is given, else a throwaway local emulator."""
    if base_url:
        yield ChatKimiCoder(base_url=base_url, api_key=api_key, thinking=thinking)
        return
    from kimi_coder_auth.emulator import Emulator

    with Emulator(api_keys=["demo-key"]) as emu:
        print(f"(offline: using the embedded emulator at {emu.base_url})\n")
        yield ChatKimiCoder(base_url=emu.base_url, api_key="demo-key", thinking=thinking)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="use this API instead of the offline emulator")
    parser.add_argument("--api-key", help="Kimi Code API key (default: your login)")
    parser.add_argument("--no-thinking", action="store_true", help="turn reasoning off")
    parser.add_argument("question", nargs="?", default="Why is the sky blue? Two sentences.")
    args = parser.parse_args()

    with make_model(args.base_url, args.api_key, not args.no_thinking) as model:
        section = None
        last = None
        for chunk in model.stream(args.question):
            reasoning = chunk.additional_kwargs.get("reasoning_content")
            if reasoning:
                if section != "thinking":
                    print(f"{DIM}thinking: ", end="")
                    section = "thinking"
                print(f"{DIM}{reasoning}{RESET}", end="", flush=True)
            if isinstance(chunk.content, str) and chunk.content:
                if section != "answer":
                    print("\nanswer: " if section else "answer: ", end="")
                    section = "answer"
                print(chunk.content, end="", flush=True)
            last = chunk
        print()
        if last is not None and last.usage_metadata:
            print("usage:", last.usage_metadata)


if __name__ == "__main__":
    main()
