"""structlog configuration: JSON lines for machines, a readable renderer on a TTY.

Called once by the CLI (and the daemon) at start. Every log line carries the bound context
(``run_id``, ``environment``) of the code that emitted it. A last processor scrubs values that
look like credentials, as a safety net behind the rule that secrets are never logged.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_CREDENTIAL_URL = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)
_SENSITIVE_KEYS = {"password", "token", "secret", "authorization", "api_key", "value"}


def _scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SENSITIVE_KEYS and key != "event":
            event[key] = "(redacted)"
        elif isinstance(value, str) and "://" in value:
            event[key] = _CREDENTIAL_URL.sub(r"\1***@", value)
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    json_lines = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(
        colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info if json_lines else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
