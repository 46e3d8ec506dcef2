"""Helpers shared by the postgres provider's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from reconciler.core.changes import Phase
from reconciler.errors import SchemaError
from reconciler.providers.postgres import ApplySettings, PostgresProvider

CORPUS = Path(__file__).parent / "corpus"
CORPUS_ROLE = "corpus_reader"

# Short timeouts and backoff so lock tests finish quickly; the defaults are 5 s and 5 min.
FAST = ApplySettings(lock_timeout=0.2, statement_timeout=30, attempts=3, backoff=0.01, max_backoff=0.05)


def fetch(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode(), params or None).fetchall()


def scalar(url: str, sql: str, *params: object) -> object:
    rows = fetch(url, sql, *params)
    assert len(rows) == 1, rows
    return rows[0][0]


def scratch_databases(server_url: str) -> list[str]:
    rows = fetch(server_url, "select datname from pg_database where datname like 'reconciler_scratch_%'")
    return [str(r[0]) for r in rows]


def converge(provider: PostgresProvider, database: str, url: str, files: list[tuple[str, str]], content_key: str,
             schemas: list[str]) -> list[str]:
    """Bring ``url`` to the declared schema the way a run does: one plan (what the gates see,
    destructive ids approved), then each phase planned again and applied, refusing any id the first
    plan did not hold, then verify zero drift (``SchemaError`` naming what still differs)."""
    planned = {i.id for i in provider.plan(database, url, files, content_key, schemas)}
    applied: list[str] = []
    for phase in (Phase.SCHEMA_ADDITIVE, Phase.SCHEMA_DESTRUCTIVE):
        items = [i for i in provider.plan(database, url, files, content_key, schemas) if i.phase == phase]
        unplanned = [i.id for i in items if i.id not in planned]
        if unplanned:
            raise SchemaError(f"{phase.name} planned again holds ids the plan did not: {', '.join(unplanned)}")
        if items:
            applied += provider.apply(database, url, items)
    remaining = provider.plan(database, url, files, content_key, schemas)
    if remaining:
        raise SchemaError(f"the schema of {database} still differs after apply: {', '.join(i.id for i in remaining)}")
    return applied
