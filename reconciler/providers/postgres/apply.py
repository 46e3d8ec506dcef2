"""Running one database's schema items: one guarded transaction, then the non-transactional rest.

``PostgresProvider.apply`` calls ``apply_items`` with the items of one database for one phase, in
plan order. The session carries ``lock_timeout`` and ``statement_timeout`` from its first
statement (``sessions.py``). The transactional items run in a single transaction; a lock timeout
(or a deadlock) rolls the whole transaction back and it is tried again after an exponential
backoff, up to ``attempts`` times, then ``LockTimeoutError`` is raised with nothing applied,
naming the relation and the session holding it (``locks.py``). The items that cannot run in a transaction (CREATE INDEX
CONCURRENTLY, VALIDATE CONSTRAINT after a NOT VALID add, ...) run after the commit, one at a time,
each with the same timeouts and retries; an index build that fails is dropped again so an invalid
index never passes for the declared one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import psycopg
import psycopg.sql
from psycopg import errors as pgerrors

from reconciler import logs
from reconciler.core.changes import DriftItem
from reconciler.errors import LockTimeoutError, ProviderError, SchemaError
from reconciler.providers.postgres import locks
from reconciler.providers.postgres.sessions import ApplySettings, connect
from reconciler.providers.postgres.urls import database_name, safe_url

__all__ = ["ApplySettings", "apply_items"]  # ApplySettings is defined in sessions.py, import it from there

log = logs.get_logger(__name__)

# Errors that mean "someone else holds what we need": worth waiting and trying again.
_LOCK_ERRORS = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected, pgerrors.SerializationFailure)


def apply_items(
    url: str,
    items: Sequence[DriftItem],
    settings: ApplySettings = ApplySettings(),
    *,
    database: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Apply ``items`` to the database at ``url``; return the ids applied, in order.

    ``database`` (the Database document's name) names the database in errors; without it, the
    name in the URL does. Never the URL itself.
    """
    for item in items:
        if item.sql is None:
            raise SchemaError(f"{item.id} carries no SQL; only schema items can be applied here")
    in_txn = [i for i in items if i.transactional]
    after = [i for i in items if not i.transactional]
    where = safe_url(url)
    name = database or database_name(url)
    try:
        conn = connect(url, settings.timeouts)
    except psycopg.Error as exc:
        raise ProviderError(f"cannot connect to {where}: {_message(exc)}") from exc
    applied: list[str] = []
    with conn:
        if in_txn:
            _retrying(lambda: _transaction(conn, in_txn), conn, name, settings, sleep, where)
            applied += [i.id for i in in_txn]
            log.info("schema transaction committed", database=where, statements=len(in_txn))
        for item in after:
            try:
                _retrying(partial(_single, conn, item), conn, name, settings, sleep, where)
            except (LockTimeoutError, ProviderError, SchemaError) as exc:
                log.error("non-transactional schema statement failed", database=where, id=item.id,
                          applied=applied, error=str(exc))
                raise
            applied.append(item.id)
            log.info("schema statement applied", database=where, id=item.id)
    return applied


class _Failed(Exception):
    """Which item a database error came from (internal to this module)."""

    def __init__(self, item: DriftItem, error: psycopg.Error) -> None:
        super().__init__(item.id)
        self.item = item
        self.error = error


def _transaction(conn: psycopg.Connection[tuple[object, ...]], items: Sequence[DriftItem]) -> None:
    with conn.transaction():
        # Function bodies may refer to objects created later in the same plan.
        conn.execute(b"SET LOCAL check_function_bodies = off")
        for item in items:
            try:
                conn.execute((item.sql or "").encode())
            except psycopg.Error as exc:
                raise _Failed(item, exc) from exc


def _single(conn: psycopg.Connection[tuple[object, ...]], item: DriftItem) -> None:
    detail = item.detail or {}
    try:
        # An item with steps runs them one transaction each (a long validation scan, then a short
        # lock); every step is safe to run again when a retry starts over.
        for statement in detail.get("steps") or [item.sql or ""]:
            conn.execute(str(statement).encode())
    except psycopg.Error as exc:
        if detail.get("action") == "create-index" and item.field:
            _drop_invalid_index(conn, item.field)
        elif detail.get("on_failure") and not isinstance(exc, _LOCK_ERRORS):
            _clean_up(conn, item, str(detail["on_failure"]))
        raise _Failed(item, exc) from exc


def _clean_up(conn: psycopg.Connection[tuple[object, ...]], item: DriftItem, statement: str) -> None:
    # What the item's earlier half left behind (the NOT VALID check of a SET NOT NULL that found
    # NULLs) goes, so the next plan starts from the declared schema, not from a helper object.
    try:
        conn.execute(statement.encode())
        log.warning("cleaned up after a failed schema statement", id=item.id)
    except psycopg.Error as exc:
        log.warning("could not clean up after a failed schema statement", id=item.id, error=_message(exc))


def _drop_invalid_index(conn: psycopg.Connection[tuple[object, ...]], qualified: str) -> None:
    # A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind that inspection would
    # take for the declared one; remove it so the next plan proposes the index again.
    schema, _, name = qualified.partition(".")
    try:
        row = conn.execute(
            "select not i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
            (schema, name),
        ).fetchone()
        if row and row[0]:
            ident = psycopg.sql.Identifier(schema, name)
            conn.execute(psycopg.sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(ident))
            log.warning("invalid index dropped after a failed build", index=qualified)
    except psycopg.Error as exc:
        log.warning("invalid index could not be dropped", index=qualified, error=_message(exc))


def _retrying(
    run: Callable[[], None],
    conn: psycopg.Connection[tuple[object, ...]],
    database: str,
    settings: ApplySettings,
    sleep: Callable[[float], None],
    where: str,
) -> None:
    for attempt in range(1, settings.attempts + 1):
        try:
            run()
            return
        except _Failed as failed:
            exc, item = failed.error, failed.item
            if isinstance(exc, _LOCK_ERRORS):
                if attempt < settings.attempts:
                    delay = settings.delay(attempt)
                    log.warning("schema change waited too long for a lock; retrying", database=where,
                                id=item.id, attempt=attempt, retry_in=delay, error=type(exc).__name__)
                    sleep(delay)
                    continue
                raise LockTimeoutError(
                    f"{_who(conn, database, item)}; {item.id} could not take its lock ({settings.gave_up()}); "
                    "nothing of this step was applied",
                    delay=settings.max_backoff,
                ) from exc
            if isinstance(exc, pgerrors.QueryCanceled):
                raise ProviderError(
                    f"{item.id}: exceeded the statement timeout of {settings.statement_timeout:g}s; "
                    "nothing of this step was applied"
                ) from exc
            if isinstance(exc, psycopg.OperationalError):
                raise ProviderError(f"{item.id}: the connection to {where} failed: {_message(exc)}") from exc
            raise SchemaError(f"{item.id} failed: {_message(exc)}; nothing of this step was applied") from exc
        except psycopg.OperationalError as exc:
            raise ProviderError(f"the connection to {where} failed: {_message(exc)}") from exc


def _who(conn: psycopg.Connection[tuple[object, ...]], database: str, item: DriftItem) -> str:
    """Which session holds what ``item`` waited for (the transaction rolled back: ``conn`` is free)."""
    try:
        found = locks.holders(conn, relations=locks.relations_named(item.sql or ""), modes=[locks.ACCESS_EXCLUSIVE])
    except psycopg.Error as exc:
        log.warning("lock holders not found", error=type(exc).__name__)
        found = []
    return locks.describe(database, found)


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    text = primary or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
