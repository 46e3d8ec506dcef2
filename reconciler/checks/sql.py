"""Run one SQL check: one statement in a READ ONLY transaction, within the check's timeout.

Called by ``runner.py`` with the URL and query already resolved. The resolved query is parsed
again first (one statement, no transaction control or COPY), so no resolved value can end the
read-only transaction. The session carries ``statement_timeout`` (the check's timeout) and
``lock_timeout`` from its first statement (``providers/postgres/sessions.py``), and the transaction
is opened READ ONLY, so a check that writes is refused by PostgreSQL itself. Nothing is ever
committed. psycopg's errors become ``CheckFailed`` here; the runner redacts their text.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import psycopg

from reconciler.checks.prepared import SqlProbe
from reconciler.desired.validation import check_query_problem
from reconciler.errors import CheckFailed
from reconciler.providers.postgres import sessions, urls

LOCK_SHARE = 0.9  # of the check's timeout


def run(probe: SqlProbe, url: str, query: str, timeout: float, redact: Callable[[str], str]) -> str:
    """Run ``query`` on ``url``; return what was seen ("1 row", "true") or raise ``CheckFailed``."""
    problem = urls.problem(url)
    if problem is not None:
        raise CheckFailed(f"the URL of database {probe.database} {problem} {urls.EXPECTED}")
    # Validation parsed the query with placeholders for its references; parsed again now that they are
    # resolved, a value holding "; commit; delete ..." cannot end the read-only transaction and write.
    problem = check_query_problem(query)
    if problem is not None and problem.startswith("the query does not parse"):
        # The template parsed at validation: a resolved value broke it. The parser's message quotes the
        # text near the error (maybe a secret, maybe cut through one), so it is not passed on.
        raise CheckFailed("the query does not parse once its references are resolved; check the values of its "
                          "${secret:...} and ${config:...} references")
    if problem is not None:
        raise CheckFailed(problem)
    # libpq counts connect_timeout in whole seconds and treats anything under 2 as 2.
    # A lock wait gives up a little before the statement would, so the message can say it was a lock.
    lock_timeout = timeout * LOCK_SHARE
    timeouts = sessions.Timeouts(lock_timeout=lock_timeout, statement_timeout=timeout,
                                 connect_timeout=max(2, math.ceil(timeout)))
    try:
        conn = sessions.connect(url, timeouts, autocommit=False)
    except psycopg.Error as exc:
        raise CheckFailed(f"cannot connect to database {probe.database}: {_message(exc)}") from None
    try:
        conn.read_only = True
        with conn.cursor() as cursor:
            # Takes the transaction's snapshot first: from here on PostgreSQL refuses to make it
            # read-write ("SET TRANSACTION READ WRITE" must come before any query).
            cursor.execute("select 1")
            cursor.execute(query.encode())  # bytes: no client-side placeholder parsing of '%'
            rows = cursor.fetchall() if cursor.description is not None else []
    except psycopg.errors.LockNotAvailable:
        raise CheckFailed(f"timed out after waiting {lock_timeout:.3g}s for a lock another session holds "
                          "(lock_timeout)") from None
    except psycopg.errors.QueryCanceled:
        raise CheckFailed(f"timed out after {timeout:g}s (statement_timeout)") from None
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise CheckFailed(f"refused: a check runs read-only and this one writes ({_message(exc)})") from None
    except psycopg.Error as exc:
        raise CheckFailed(f"the query failed: {_message(exc)}") from None
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
    return _judge(probe, rows, redact)


def _judge(probe: SqlProbe, rows: list[tuple[object, ...]], redact: Callable[[str], str]) -> str:
    count = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    if probe.expect_true:
        if not rows or not rows[0]:
            raise CheckFailed("returned no rows; expected one whose first column is true")
        first = rows[0][0]
        if first is not True:
            shown = "null" if first is None else redact(repr(first))[:60]  # redacted before it is cut
            raise CheckFailed(f"returned {shown}; expected true")
        return "true"
    if probe.exactly is not None and len(rows) != probe.exactly:
        raise CheckFailed(f"returned {count}; expected exactly {probe.exactly}")
    if probe.at_least is not None and len(rows) < probe.at_least:
        raise CheckFailed(f"returned {count}; expected at least {probe.at_least}")
    return count


def _message(exc: psycopg.Error) -> str:
    """PostgreSQL's own sentence without the echo of the query (``LINE 1: ...``); libpq's message for
    connection errors, which have no diagnostics; the error's type when there is neither."""
    text = (exc.diag.message_primary or str(exc)).strip()
    return text or type(exc).__name__
