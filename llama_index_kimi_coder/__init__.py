"""LlamaIndex integration for the Kimi Coding Plan: `KimiCoderLLM`.

```python
from llama_index_kimi_coder import KimiCoderLLM

llm = KimiCoderLLM()  # uses the Kimi CLI / Kimi Code login, or KIMI_CODER_API_KEY
```
"""

from __future__ import annotations

from kimi_coder_auth._version import __version__

from .llm import KimiCoderLLM

__all__ = ["KimiCoderLLM", "__version__"]
