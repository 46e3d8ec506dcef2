"""The embedded PostgreSQL: starts in the given directory, serves a socket URL, stops cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


PROBE = """
import sys, psycopg
from reconciler.providers.postgres import EmbeddedPostgres
with EmbeddedPostgres(sys.argv[1]) as server:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("create table t (id int)")
    with psycopg.connect(server.url) as holder:
        holder.execute("lock table t in access exclusive mode")
        try:
            with psycopg.connect(server.url, autocommit=True, options="-c lock_timeout=200") as conn:
                conn.execute("select * from t")
        except psycopg.errors.LockNotAvailable:
            print("lock timeout fired")
"""


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs the faketime command")
@pytest.mark.skipif("faketime" in os.environ.get("LD_PRELOAD", ""),
                    reason="the suite already runs under faketime: every lock test here shows it")
def test_a_server_started_under_faketime_still_ends_lock_waits(tmp_path: Path) -> None:
    """libfaketime stops PostgreSQL's timers; the server must start without it (the suite runs under faketime)."""
    base = Path(tempfile.mkdtemp(prefix="reconciler-test-faketime-"))
    try:
        done = subprocess.run(["faketime", "2026-12-05 12:00:00", sys.executable, "-c", PROBE, str(base / "pg")],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lock timeout fired" in done.stdout.splitlines()
