"""Bring a state database made by an older version up to today's tables (called by ``Store`` on open).

One migration so far: **workspaces**. Tables made before workspaces have no ``workspace`` column
and are keyed by environment (or tag, lease, fingerprint, ...) alone; today every key starts with
the workspace. Each such table is rebuilt: its rows are copied aside, the table is made again with
today's columns, keys and indexes, and the rows come back as the ``default`` workspace's (which is
the workspace of a configuration without ``[[workspaces]]``, so nothing changes for it). Columns
that no version reads any more (``environment_status.tracked_ref``, ``desired_revision``,
``desired_ref``) are not copied.

The whole migration is one transaction (PostgreSQL's DDL is transactional; SQLite's is too once the
transaction is begun explicitly), so a crash leaves the old tables as they were, and it runs under
a lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) so that two daemons
starting together migrate once. Stop daemons of the older version before starting this one on a
shared state database: they cannot read the new keys.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler import logs
from reconciler.store import tables as t

log = logs.get_logger(__name__)

ADVISORY_LOCK = 0x5EC0_1C1E  # "reconcile", near enough: the key of the migration's PostgreSQL lock
ASIDE_SUFFIX = "__pre_workspaces"


def _unmigrated(conn: Connection) -> list[sa.Table]:
    """Tables of ours that exist without their ``workspace`` column, in the metadata's order."""
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    out = []
    for table in t.metadata.sorted_tables:
        if "workspace" not in table.c or table.name not in present:
            continue
        if "workspace" not in {column["name"] for column in inspector.get_columns(table.name)}:
            out.append(table)
    return out


def _rebuild(conn: Connection, table: sa.Table) -> int:
    """Make ``table`` again with today's shape; its rows come back as the default workspace's."""
    preparer = conn.dialect.identifier_preparer
    name = preparer.quote(table.name)
    aside = preparer.quote(table.name + ASIDE_SUFFIX)
    old = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
    kept = [column.name for column in table.columns if column.name in old]
    columns = ", ".join(preparer.quote(c) for c in kept)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {aside}")
    # Names are our own tables' and columns', quoted by the dialect: nothing here comes from outside.
    conn.exec_driver_sql(f"CREATE TABLE {aside} AS SELECT * FROM {name}")  # noqa: S608
    conn.exec_driver_sql(f"DROP TABLE {name}")  # and its indexes, whose names the new table may reuse
    table.create(conn)
    copied = conn.exec_driver_sql(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {aside}").rowcount  # noqa: S608
    conn.exec_driver_sql(f"DROP TABLE {aside}")
    return int(copied or 0)


def migrate(engine: Engine) -> list[str]:
    """Migrate what needs it; return the names of the tables migrated (none, usually)."""
    with engine.connect() as probe:
        if not _unmigrated(probe):
            return []
    if engine.dialect.name == "sqlite":
        # pysqlite would commit before each DDL statement; autocommit mode and an explicit BEGIN
        # make the whole rebuild one transaction, and IMMEDIATE keeps other processes out meanwhile.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                done = _migrate_all(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return done
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        return _migrate_all(conn)


def _migrate_all(conn: Connection) -> list[str]:
    done = []
    for table in _unmigrated(conn):  # looked at again under the lock: another process may have done it
        rows = _rebuild(conn, table)
        log.info("store.migrated", table=table.name, rows=rows, to="workspaces")
        done.append(table.name)
    return done
