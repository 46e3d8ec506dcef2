"""The timeouts every session on a managed database carries, set when the connection is made.

Every connection the postgres provider opens on a managed database's server - live inspection
(plan, drift, verify), the apply transaction and the statements after it, the scratch database
that holds the declared schema, the look-up of who holds a lock - is made with ``connect_args``,
so the server applies ``lock_timeout`` and ``statement_timeout`` (from ``[databases]``) from the
session's first statement (libpq ``options``, like ``PGOPTIONS``). Without them a table another
session holds locked made schemainspect's catalog queries wait until the statement timeout, and
then fail with no word of a lock. ``apply.py``, ``diffing.py``, ``declared.py`` and ``locks.py``
connect through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict


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
    try:
        own = conninfo_to_dict(url).get("options")
    except psycopg.Error:
        own = None  # a malformed URL: connecting reports it
    options = f"{own} {timeouts.options()}" if own else timeouts.options()
    return {"connect_timeout": timeouts.connect_timeout, "options": options}


def connect(url: str, timeouts: Timeouts, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    """A psycopg connection to ``url`` with ``timeouts`` in force (raises ``psycopg.Error``)."""
    return psycopg.connect(url, autocommit=autocommit, **connect_args(url, timeouts))
