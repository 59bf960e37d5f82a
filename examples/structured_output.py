"""Structured output with ChatKimiCoder: a Pydantic object back, two ways.

Needs the `langchain` extra: `python -m pip install ".[langchain]"` (from a clone) or
`pip install "kimi-coder[langchain]"`.

With no `method`, ChatKimiCoder picks what the model honours: `json_schema` (a native
`response_format`, thinking stays on) while the model thinks, a forced tool call
(`function_calling`) when thinking is off. An explicit `method` is kept; `function_calling` with
thinking on sends that one request with thinking disabled where the model allows it (Kimi rejects
a forced tool choice while thinking) and warns on models that always think, as every current
Coding Plan model does, so this example leaves `method` unset. `include_raw=True` also returns
the raw message.

    python examples/structured_output.py                        # offline emulator
    python examples/structured_output.py --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from pydantic import BaseModel, Field

from langchain_kimi_coder import ChatKimiCoder


class Bug(BaseModel):
    """A bug report extracted from free text."""

    title: str = Field(description="a short title")
    severity: int = Field(description="1 (cosmetic) to 5 (data loss)")
    component: str = Field(description="the affected component")


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
    args = parser.parse_args()
    text = ("Title: 'Save drops last line'. Saving a file silently drops its last line; "
            "severity 4; component: 'editor'.")

    with make_model(args.base_url, args.api_key) as model:
        bug = model.with_structured_output(Bug).invoke(f"Extract the bug report: {text}")
        print("default (json_schema while thinking):", bug)


        raw = model.with_structured_output(Bug, include_raw=True).invoke(
            f"Extract the bug report as JSON: {text}"
        )
        print("include_raw:                         ", raw["parsed"], "| parsing_error:",
              raw["parsing_error"])


if __name__ == "__main__":
    main()
