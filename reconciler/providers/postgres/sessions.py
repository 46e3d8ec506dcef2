"""The timeouts every session on a managed database carries, set when the connection is made.

Every connection the postgres provider opens on a managed database's server - live inspection
(plan, drift, verify), the apply transaction and the statements after it, the scratch database
that holds the declared schema, the look-up of who holds a lock - is made with ``connect_args``,
so the server applies ``lock_timeout`` and ``statement_timeout`` (from ``[databases]``) from the
session's first statement (libpq ``options``, like ``PGOPTIONS``). Without them a table another
session holds locked made schemainspect's catalog queries wait until the statement timeout, and
then fail with no word of a lock. ``apply.py``, ``diffing.py``, ``declared.py`` and ``locks.py``
connect through here. ``ApplySettings`` (the ``[databases]`` timeouts and retries) lives here too,
so that building a ``PostgresProvider`` imports no database driver: psycopg is imported when a
first connection is made (``reconciler status`` and registry-only plans never make one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


def milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@dataclass(frozen=True)
class Timeouts:
    """How long one session may wait for a lock, run one statement, and take to connect (seconds)."""

    lock_timeout: float = 5.0
    statement_timeout: float = 300.0
    connect_timeout: int = 10

    def options(self) -> str:
        return (f"-c lock_timeout={milliseconds(self.lock_timeout)} "
                f"-c statement_timeout={milliseconds(self.statement_timeout)}")


def connect_args(url: str, timeouts: Timeouts) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect(url, ...)`` (and SQLAlchemy's ``connect_args``).

    ``options`` given as a keyword replaces the URL's own, so the URL's (``?options=-c
    search_path=crm``) are kept, ours after them: the configured timeouts win over the URL's.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        own = conninfo_to_dict(url).get("options")
    except psycopg.Error:
        own = None  # a malformed URL: connecting reports it
    options = f"{own} {timeouts.options()}" if own else timeouts.options()
    return {"connect_timeout": timeouts.connect_timeout, "options": options}


def connect(url: str, timeouts: Timeouts, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A psycopg connection to ``url`` with ``timeouts`` in force (raises ``psycopg.Error``)."""
    import psycopg

    return psycopg.connect(url, autocommit=autocommit, **connect_args(url, timeouts))


@dataclass(frozen=True)
class ApplySettings:
    """Timeouts and retry policy for schema changes (durations in seconds)."""

    lock_timeout: float = 5.0
    statement_timeout: float = 300.0
    attempts: int = 4  # tries in all, the first included
    backoff: float = 0.5  # wait before the second try; doubles each time
    max_backoff: float = 10.0
    connect_timeout: int = 10

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))

    @property
    def timeouts(self) -> Timeouts:
        """What every session on a managed database carries (inspection's too, not only apply's)."""
        return Timeouts(self.lock_timeout, self.statement_timeout, self.connect_timeout)

    def gave_up(self) -> str:
        """How long a lock was waited for, as messages say it: ``lock_timeout 1s, 2 attempts``."""
        return f"lock_timeout {self.lock_timeout:g}s, {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
