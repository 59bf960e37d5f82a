"""Send an image to Kimi with ChatKimiCoder.

Needs the `langchain` extra: `python -m pip install ".[langchain]"` (from a clone) or
`pip install "kimi-coder[langchain]"`.

Any LangChain image form works (OpenAI `image_url`, v1 `image` blocks with base64 or a URL);
ChatKimiCoder sends every image as a base64 data URL, fetching remote URLs itself, since the
Coding API rejects plain image URLs.

    python examples/images.py                                   # offline emulator, built-in image
    python examples/images.py --image photo.png --base-url https://api.kimi.com/coding/v1
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from langchain_core.messages import HumanMessage

from langchain_kimi_coder import ChatKimiCoder


def tiny_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (220, 40, 40)) -> bytes:
    """A solid-colour PNG, built in memory so the example needs no files."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


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
    parser.add_argument("--image", type=Path, help="a PNG/JPEG file (default: a generated red square)")
    args = parser.parse_args()
    data = args.image.read_bytes() if args.image else tiny_png()
    mime = "image/jpeg" if args.image and args.image.suffix.lower() in (".jpg", ".jpeg") else "image/png"

    with make_model(args.base_url, args.api_key) as model:
        # v1 standard content block with base64 data
        message = HumanMessage(content=[
            {"type": "text", "text": "What colour is this image? One word."},
            {"type": "image", "base64": base64.b64encode(data).decode(), "mime_type": mime},
        ])
        print("v1 block:  ", model.invoke([message]).content)

        # OpenAI-style image_url part with a data URL
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        message = HumanMessage(content=[
            {"type": "text", "text": "Describe this image in five words."},
            {"type": "image_url", "image_url": {"url": url}},
        ])
        print("image_url: ", model.invoke([message]).content)


if __name__ == "__main__":
    main()
