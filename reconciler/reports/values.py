"""How drift values, reasons and counts are shown, shared by every report format.

Values are shown whole (a cut would hide the part that differs), with control characters escaped
so a value cannot move the terminal's cursor or forge a line of the report; objects are shown one
field per line. Every value reaching here is redacted already.
"""

from __future__ import annotations

import json
import textwrap
from html import escape
from typing import Any

MAX_CELL = 80
WIDTH = 100  # text reports wrap long values at this column


def show(value: Any, limit: int = MAX_CELL) -> str:
    """A one-line form of ``value`` cut to ``limit`` characters (compact tables: the dashboard, history)."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_cell(value: Any, limit: int = MAX_CELL) -> str:
    text = show(value, limit).replace("|", "\\|")
    return f"`{text}`" if text != "-" else "-"


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 change', '2 changes'."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def clip_words(text: str | None, limit: int) -> str:
    """``text`` on one line, cut at a word boundary before ``limit`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def printable(text: str) -> str:
    """``text`` with control and invisible characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def display(value: Any) -> str:
    """The whole of one value on one logical line: text as it is (escaped), anything else as JSON."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(printable(v) for v in value) if value else "(none)"
    return printable(json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False))


def fields(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """An object's fields one per line as (dotted key, shown value); empty and unset fields are left out."""
    if not isinstance(value, dict):
        return [(prefix, display(value))] if prefix else [("", display(value))]
    out: list[tuple[str, str]] = []
    for key in sorted(value, key=str):
        item = value[key]
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            out.extend(fields(item, path))
        elif item is not None and item != "" and item != {}:
            out.append((printable(path), display(item)))
    return out


def differing(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and the common suffix of two texts (they never overlap)."""
    prefix = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, suffix


def wrap(text: str, indent: int, width: int = WIDTH) -> list[str]:
    """``text`` in lines of at most ``width - indent`` characters (long words broken), the first unindented."""
    room = max(20, width - indent)
    lines = textwrap.wrap(text, room, break_long_words=True, break_on_hyphens=False, drop_whitespace=False) or [""]
    lines = [line.rstrip() for line in lines[:-1]] + lines[-1:]
    return [lines[0]] + [" " * indent + line for line in lines[1:]]


def _md_escape(text: str, html: bool) -> str:
    return (escape(text) if html else text).replace("|", "\\|")


def md_code(text: str) -> str:
    """Inline code in a Markdown table cell, for any text (backticks and pipes inside included)."""
    if not text:
        return "-"
    if "`" in text:
        return f"<code>{_md_escape(text, True)}</code>"
    return f"`{_md_escape(text, False)}`"


def md_highlighted(text: str, other: str) -> str:
    """Inline code in a table cell with the part that differs from ``other`` in bold."""
    prefix, suffix = differing(other, text)
    middle = text[prefix: len(text) - suffix]
    if not middle:
        return md_code(text)
    head, tail = _md_escape(text[:prefix], True), _md_escape(text[len(text) - suffix:], True)
    return f"<code>{head}<b>{_md_escape(middle, True)}</b>{tail}</code>"


def excerpt(text: str, start: int, end: int, context: int = 16) -> str:
    """``text[start:end]`` with some context either side, '…' where the text goes on."""
    left, right = max(0, start - context), min(len(text), end + context)
    return ("…" if left else "") + text[left:right] + ("…" if right < len(text) else "")
