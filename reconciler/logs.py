"""Logging: structlog, configured once, and loggers that cost nothing until they write a line.

Every module takes its logger from ``get_logger(__name__)``. The CLI and the daemon call
``configure()`` once at start: JSON lines for machines, a readable renderer on a TTY. Every log line
carries the context bound with ``bind_context``/``bound_context`` (``workspace``, ``environment``,
``run_id``) by the code around the call that emitted it. A last processor scrubs values that look
like credentials, as a safety net behind the rule that secrets are never logged.

structlog (with the rich renderer it imports) costs about a tenth of a second to import, more than a
``reconciler status`` should take as a whole; most CLI commands write no line at their level
(``error`` by default). So a logger here drops a line below the configured level itself, and
structlog is imported, and the pending configuration applied, only when a line is really written.
The bound context lives in a context variable of this module for the same reason: binding it must
not import structlog.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TextIO

_CREDENTIAL_URL = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)
_SENSITIVE_KEYS = {"password", "token", "secret", "authorization", "api_key", "value"}


_context: ContextVar[Mapping[str, Any]] = ContextVar("reconciler_log_context", default=MappingProxyType({}))


@dataclass(frozen=True)
class _Config:
    level: int
    fmt: str
    stream: TextIO


_pending: _Config | None = None  # configured, not yet handed to structlog (it is not imported yet)
_applying = threading.Lock()  # two threads writing their first lines at once: both wait for the one configuration
_level = 0  # lines below this level are dropped before structlog is involved; 0 until configure()


def _scrub(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SENSITIVE_KEYS and key != "event":
            event[key] = "(redacted)"
        elif isinstance(value, str) and "://" in value:
            event[key] = _CREDENTIAL_URL.sub(r"\1***@", value)
    return event


def _merge_context(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in _context.get().items():
        event.setdefault(key, value)
    return event


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Log at ``level`` and above to ``stream`` (stderr): JSON lines, or a console renderer on a TTY."""
    global _pending, _level
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    _pending = _Config(numeric, fmt, stream or sys.stderr)
    _level = numeric
    if "structlog" in sys.modules:  # already paid for: apply now, as a caller of structlog expects
        _apply()


def reset() -> None:
    """Forget the configuration (tests: an in-process CLI call must not set the next test's level)."""
    global _pending, _level
    _pending, _level = None, 0
    _context.set(MappingProxyType({}))


def _apply() -> None:
    global _pending
    with _applying:
        if _pending is not None:
            _configure_structlog(_pending)
            _pending = None


def _configure_structlog(config: _Config) -> None:
    import structlog

    json_lines = config.fmt == "json" or (config.fmt == "auto" and not config.stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(
        colors=config.stream.isatty())
    structlog.configure(
        processors=[
            _merge_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info if json_lines else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(config.level),
        logger_factory=structlog.PrintLoggerFactory(file=config.stream),
        cache_logger_on_first_use=False,
    )


class Logger:
    """A module's logger: structlog's, fetched (and structlog imported) at the first line written."""

    __slots__ = ("_name", "_target")

    def __init__(self, name: str) -> None:
        self._name = name
        self._target: Any = None

    def _write(self, level: int, method: str, event: str, fields: dict[str, Any]) -> None:
        if level < _level:
            return
        if _pending is not None:
            _apply()
        if self._target is None:
            import structlog

            self._target = structlog.get_logger(self._name)
        getattr(self._target, method)(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._write(logging.DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._write(logging.INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._write(logging.WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._write(logging.ERROR, "error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._write(logging.ERROR, "exception", event, fields)


def get_logger(name: str) -> Logger:
    return Logger(name)


def bind_context(**fields: Any) -> None:
    """Add ``fields`` to every line this thread (or task) logs from now on."""
    _context.set({**_context.get(), **fields})


def unbind_context(*keys: str) -> None:
    _context.set({k: v for k, v in _context.get().items() if k not in keys})


@contextmanager
def bound_context(**fields: Any) -> Iterator[None]:
    """``fields`` on every line logged inside the block; what was bound before comes back after it."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)
