"""Compact display of drift values shared by every report format."""

from __future__ import annotations

import json
from typing import Any

MAX_CELL = 80


def show(value: Any, limit: int = MAX_CELL) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_cell(value: Any, limit: int = MAX_CELL) -> str:
    text = show(value, limit).replace("|", "\\|")
    return f"`{text}`" if text != "-" else "-"
