"""``ApiError``: an HTTP error answer, ``{"error": ..., "detail": ...}`` with its status code.

Raised by the API's routes and the dashboard's; ``api/app.py`` turns it into the JSON answer.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        self.status = status
        self.error = error
        self.detail = detail
