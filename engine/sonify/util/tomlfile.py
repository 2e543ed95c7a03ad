"""Reading the TOML of configs and scenes without a traceback on hostile input.

``tomllib`` parses nested arrays and inline tables recursively, so a file of a few thousand
``[`` raises RecursionError; and a file saved in Latin-1 or UTF-16 fails to decode. Both are
turned into errors that say what is wrong and where, and nesting deeper than ``MAX_DEPTH``
levels (no config or scene needs more than a handful) is refused even when it parses.
"""

from __future__ import annotations

import tomllib
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of tables and arrays accepted (the top-level table is depth 1)."""


class TomlContentError(ValueError):
    """A TOML text that cannot be used although it may be valid TOML (too deep, not UTF-8)."""


def decode(raw: bytes) -> str:
    """The UTF-8 text of a file's bytes; TomlContentError naming the line and byte otherwise."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TomlContentError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line}, column {column} is "
            "not valid UTF-8 (the file was saved in another encoding, such as Latin-1 or "
            "UTF-16): save it as UTF-8") from None


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, raising ``tomllib.TOMLDecodeError`` for a syntax error as it
    does, and TomlContentError for nesting deeper than MAX_DEPTH (never RecursionError)."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise TomlContentError(f"arrays or tables are nested too deeply to read (at most "
                               f"{MAX_DEPTH} levels)") from None
    path = _too_deep(data)
    if path is not None:
        shown = ".".join(path[:8]) + (".…" if len(path) > 8 else "")
        raise TomlContentError(f"arrays or tables are nested more than {MAX_DEPTH} levels deep "
                               f"(under {shown})")
    return data


def _too_deep(data: dict[str, Any]) -> list[str] | None:
    """The key path to a value nested deeper than MAX_DEPTH, or None (iterative: no recursion
    on any input)."""
    stack: list[tuple[Any, int, list[str]]] = [(data, 1, [])]
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(node, dict):
            stack.extend((v, depth + 1, [*path, str(k)]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, depth + 1, [*path, f"[{i}]"]) for i, v in enumerate(node))
    return None
