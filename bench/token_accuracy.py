"""How close `kimi_coder_auth.tokens.count_tokens` is to real BPE tokenizers, offline.

Needs a tokenizer with bundled vocabularies: `pip install bpe-openai` (ships o200k_base and
cl100k_base; no download at run time). Kimi's own tokenizer is not loadable offline, so
o200k_base (the estimate was fitted to it) and cl100k_base stand in. Prints a markdown table.
The "fitted" samples were used to choose the constants; the "held out" ones were not.
"""

from __future__ import annotations

import sys

from kimi_coder_auth.tokens import count_tokens

FITTED = {
    "English prose": (
        "The quick brown fox jumps over the lazy dog. Python's global interpreter lock (GIL) is "
        "a mutex that protects access to Python objects, preventing multiple threads from "
        "executing Python bytecodes at once. This lock is necessary mainly because CPython's "
        "memory management is not thread-safe. However, since the GIL exists, other features "
        "have grown to depend on the guarantees that it enforces."
    ),
    "Python code": (
        'def fibonacci(n: int) -> list[int]:\n    """Return the first n Fibonacci numbers."""\n'
        "    result = [0, 1]\n    while len(result) < n:\n"
        "        result.append(result[-1] + result[-2])\n    return result[:n]\n\n\n"
        "class Cache(dict):\n    def __missing__(self, key):\n"
        "        value = self[key] = compute(key) * 2 + 0x1F\n        return value\n\n"
        'if __name__ == "__main__":\n    for i, x in enumerate(fibonacci(20)):\n'
        '        print(f"{i:>3}: {x}")\n'
    ),
    "Chinese prose": (
        "Python 的全局解释器锁（GIL）是一个互斥锁，用于保护对 Python 对象的访问，防止多个线程同时执行 "
        "Python 字节码。这个锁之所以必要，主要是因为 CPython 的内存管理不是线程安全的。然而，由于 GIL "
        "的存在，其他功能也逐渐依赖于它所提供的保证。月之暗面发布了新的编程模型，支持超长上下文。"
    ),
    "JSON": (
        '{"model": "kimi-for-coding", "messages": [{"role": "user", "content": "hello"}], '
        '"max_completion_tokens": 32768, "stream": true, "stream_options": {"include_usage": '
        'true}, "tools": [{"type": "function", "function": {"name": "read_file", "parameters": '
        '{"type": "object", "properties": {"path": {"type": "string"}}}}}]}'
    ),
    "Chinese + code": (
        "请帮我修复这个 bug：`TypeError: unsupported operand type(s) for +: 'int' and 'str'` "
        "出现在 utils.py 第 42 行。我试过 str(x) + y 但还是不行，谢谢！"
    ),
    "JavaScript": (
        "export async function fetchUser(id) {\n"
        '  const res = await fetch(`/api/users/${id}`, { headers: { Accept: "application/json" } });\n'
        "  if (!res.ok) throw new Error(`HTTP ${res.status}`);\n"
        "  return (await res.json()).data ?? null;\n}\n"
    ),
}

HELD_OUT = {
    "English (docs)": (
        "To configure the client, create a settings file in your home directory. The file "
        "contains the base URL, an optional proxy, and the request timeout in seconds. When the "
        "server answers with HTTP 429, the client waits for the interval given in the "
        "Retry-After header before it tries again, up to three times."
    ),
    "Python (tests)": (
        "import pytest\n\n\n@pytest.mark.parametrize(\"value, expected\", [(1, 2), (2, 4), (10, 20)])\n"
        "def test_double(value: int, expected: int) -> None:\n"
        "    assert double(value) == expected\n\n\n"
        "def test_rejects_strings() -> None:\n"
        "    with pytest.raises(TypeError, match=\"must be int\"):\n"
        "        double(\"3\")  # type: ignore[arg-type]\n"
    ),
    "Chinese (news)": (
        "今年秋天，这座城市新建的图书馆正式对外开放。馆内藏书超过两百万册，并设有儿童阅读区、"
        "数字媒体室和二十四小时自习空间。市民只需携带身份证即可免费办理借书卡，每次最多可借十本书。"
    ),
    "Chinese question about code": (
        "为什么我的 React 组件在 useEffect 里调用 setState 之后会无限循环渲染？依赖数组我写的是 [data]，"
        "data 是从 props 传进来的对象。"
    ),
    "Rust": (
        "fn parse(input: &str) -> Result<Vec<u32>, ParseIntError> {\n"
        "    input.split(',').map(|s| s.trim().parse::<u32>()).collect()\n}\n\n"
        "impl Display for Point {\n    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {\n"
        "        write!(f, \"({}, {})\", self.x, self.y)\n    }\n}\n"
    ),
    "Log lines": (
        "2026-12-03T12:11:27.482Z INFO  http: GET /coding/v1/models 200 in 143ms\n"
        "2026-12-03T12:11:28.019Z WARN  retry: 429 rate_limit_reached_error, waiting 2.0s (1/3)\n"
        "2026-12-03T12:11:30.551Z ERROR stream: connection closed after 17 chunks\n"
    ),
}


def main() -> int:
    """Print the accuracy table; exit 1 when no offline tokenizer is installed."""
    try:
        import bpe_openai
    except ImportError:
        print("needs `pip install bpe-openai` (bundled o200k_base / cl100k_base)", file=sys.stderr)
        return 1
    encodings = {name: bpe_openai.get_encoding(name) for name in ("o200k_base", "cl100k_base")}
    print("| sample | set | chars | estimate | o200k_base | error | cl100k_base | error |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    worst = {name: 0.0 for name in encodings}
    for label, samples in (("fitted", FITTED), ("held out", HELD_OUT)):
        for name, text in samples.items():
            est = count_tokens(text)
            cells = []
            for enc_name, enc in encodings.items():
                real = len(enc.encode(text))
                err = (est - real) / real
                worst[enc_name] = max(worst[enc_name], abs(err))
                cells += [str(real), f"{err:+.0%}"]
            print(f"| {name} | {label} | {len(text)} | {est} | " + " | ".join(cells) + " |")
    print("\nworst |error|: " + ", ".join(f"{k} {v:.0%}" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
