"""Helpers shared by the postgres provider's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from reconciler.providers.postgres import ApplySettings

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
