"""The embedded PostgreSQL: starts in the given directory, serves a socket URL, stops cleanly."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from reconciler.errors import ProviderError
from reconciler.providers.postgres import EmbeddedPostgres


def test_embedded_server_keeps_its_data_across_a_restart() -> None:
    base = Path(tempfile.mkdtemp(prefix="reconciler-test-restart-"))
    try:
        with EmbeddedPostgres(base / "pg") as server:
            assert server.url == f"postgresql://postgres@/postgres?host={base / 'pg'}"
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute("create database kept")
        with EmbeddedPostgres(base / "pg") as server, psycopg.connect(server.url) as conn:
            assert conn.execute("select datname from pg_database where datname = 'kept'").fetchall() == [
                ("kept",),
            ]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_stopped_server_has_no_url() -> None:
    server = EmbeddedPostgres("/nonexistent/never-started")
    server.stop()
    with pytest.raises(ProviderError, match="not running"):
        _ = server.url
