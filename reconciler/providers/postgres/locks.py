"""Who holds the lock a session of ours gave up waiting for, said in one sentence.

When inspection or a schema change runs out of ``lock_timeout`` on every attempt, ``provider.py``
and ``apply.py`` ask ``holders`` which other sessions hold locks on the relations concerned, read
from ``pg_locks`` and ``pg_stat_activity`` on a fresh connection (our waiting statement is gone by
then, so ``pg_blocking_pids`` cannot be asked), and ``describe`` turns that into the start of the
error: ``crm: table public.customers is locked by another session (pid 4242, idle in transaction,
AccessExclusiveLock)``. The Database is named by its document name, never by its URL. Which
relations: for a statement, the ones it names (parsed with pglast); for inspection, which needs
only ACCESS SHARE, those locked ACCESS EXCLUSIVE in the managed schemas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor

from reconciler import logs
from reconciler.providers.postgres.sessions import Timeouts, connect

log = logs.get_logger(__name__)

ACCESS_EXCLUSIVE = "AccessExclusiveLock"

_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "S": "sequence",
          "f": "foreign table", "c": "type"}

# Granted relation locks of other sessions in this database (indexes left out: a session that
# locks an index locks its table too, and the table is what a person recognises).
_HOLDERS = """
select n.nspname as schema, c.relname as name, c.relkind as kind, l.mode, l.pid, a.state
from pg_catalog.pg_locks l
join pg_catalog.pg_class c on c.oid = l.relation
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_stat_activity a on a.pid = l.pid
where l.locktype = 'relation' and l.granted and l.pid <> pg_catalog.pg_backend_pid()
  and l.database = (select oid from pg_catalog.pg_database where datname = pg_catalog.current_database())
  and c.relkind not in ('i', 'I')
  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
order by n.nspname, c.relname, l.pid
"""


@dataclass(frozen=True)
class Holder:
    """One lock another session holds: on which relation, in which mode, by which backend."""

    relation: str  # schema.name
    kind: str  # table, view, ...
    mode: str
    pid: int
    state: str | None  # pg_stat_activity.state; None when we may not see the other role's sessions


def holders(
    conn: psycopg.Connection[tuple[Any, ...]],
    *,
    relations: Iterable[str] = (),
    schemas: Iterable[str] = (),
    modes: Iterable[str] = (),
) -> list[Holder]:
    """Locks other sessions hold on ``relations`` (any mode); when there are none, their locks in
    ``modes`` on relations in ``schemas`` (an empty filter lets everything through)."""
    wanted, in_schemas, in_modes = set(relations), set(schemas), set(modes)
    found = [
        Holder(f"{schema}.{name}", _KINDS.get(str(kind), "relation"), str(mode), int(pid), state)
        for schema, name, kind, mode, pid, state in conn.execute(_HOLDERS).fetchall()
    ]
    named = [h for h in found if h.relation in wanted]
    if named:
        return named
    return [h for h in found if (not in_schemas or h.relation.partition(".")[0] in in_schemas)
            and (not in_modes or h.mode in in_modes)]


def holders_at(
    url: str, timeouts: Timeouts, *, relations: Iterable[str] = (), schemas: Iterable[str] = (),
    modes: Iterable[str] = (),
) -> list[Holder]:
    """``holders`` on a connection of its own; an empty list when even that fails (it only explains)."""
    try:
        with connect(url, timeouts) as conn:
            return holders(conn, relations=relations, schemas=schemas, modes=modes)
    except psycopg.Error as exc:
        log.warning("lock holders not found", error=type(exc).__name__)
        return []


def describe(database: str, found: Sequence[Holder]) -> str:
    """``crm: table public.customers is locked by another session (pid 4242, idle in transaction, ...)``."""
    if not found:
        return f"{database}: a lock could not be taken (the session that held it has let go since)"
    by_relation: dict[str, list[Holder]] = {}
    for holder in found:
        by_relation.setdefault(holder.relation, []).append(holder)
    parts = []
    for relation, held in by_relation.items():
        pids = sorted({h.pid for h in held})
        sessions = "another session" if len(pids) == 1 else f"{len(pids)} other sessions"
        strongest: dict[int, Holder] = {}  # one line per session, with its strongest lock
        for h in held:
            if h.pid not in strongest or _strength(h.mode) > _strength(strongest[h.pid].mode):
                strongest[h.pid] = h
        who = "; ".join(f"pid {pid}" + (f", {strongest[pid].state}" if strongest[pid].state else "")
                        + f", {strongest[pid].mode}" for pid in pids)
        parts.append(f"{held[0].kind} {relation} is locked by {sessions} ({who})")
    return f"{database}: " + "; ".join(parts)


_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
          "ShareRowExclusiveLock", "ExclusiveLock", ACCESS_EXCLUSIVE)


def _strength(mode: str) -> int:
    return _MODES.index(mode) if mode in _MODES else -1


class _Relations(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_RangeVar(self, _ancestors: Any, node: Any) -> None:
        self.names.append(f"{node.schemaname or 'public'}.{node.relname}")


def relations_named(sql: str) -> list[str]:
    """The relations a statement names (``schema.name``; unqualified names taken as ``public``)."""
    try:
        tree = parse_sql(sql)
    except ParseError:
        return []
    visitor = _Relations()
    visitor(tree)
    return list(dict.fromkeys(visitor.names))
