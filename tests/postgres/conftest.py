"""Real PostgreSQL servers for the postgres provider's tests.

One embedded server (pgserver) per test session (per xdist worker), and, where the machine has them, one server from
the system binaries (Debian's PostgreSQL 15). Tests get a fresh database each and drop it after;
the servers are shared.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from reconciler.providers.postgres import EmbeddedPostgres, PostgresProvider, SystemPostgres
from reconciler.providers.postgres.embedded import system_postgres_bin
from tests.fakeclock import on_the_real_clock
from tests.postgres.support import CORPUS_ROLE, FAST

Server = EmbeddedPostgres | SystemPostgres


def _prepare(server: Server) -> None:
    with psycopg.connect(server.url, autocommit=True) as conn:
        # Test data is thrown away: skip the disk flushes that make CREATE/DROP DATABASE slow.
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"alter system set {setting} = off".encode())
        conn.execute("select pg_reload_conf()")
        conn.execute(
            f"do $$ begin create role {CORPUS_ROLE}; exception when duplicate_object then null; end $$"
        )


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's tmp_path: pytest resets /tmp/pytest-of-<user> to mode 0700 whenever a
    # pytest session starts, which locks the server's own system user out of its data directory.
    base = Path(tempfile.mkdtemp(prefix="reconciler-test-pg-"))
    try:
        with on_the_real_clock():
            server = EmbeddedPostgres(base / "data").start()
        try:
            _prepare(server)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def system_server() -> Iterator[SystemPostgres]:
    if system_postgres_bin() is None:
        pytest.skip("no system PostgreSQL binaries (initdb, pg_ctl) on this machine")
    with on_the_real_clock():
        server = SystemPostgres().start()
    try:
        _prepare(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["embedded", "system"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each test using this runs once on the embedded server and once on the system server."""
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


def _database_factory(server: Server) -> Iterator[Callable[[str], str]]:
    created: list[str] = []

    def create(sql: str = "") -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            # A file copy of the empty template: quicker than the default (WAL_LOG) without flushes.
            conn.execute(f'create database "{name}" strategy file_copy'.encode())
        created.append(name)
        url = server.database_url(name)
        if sql.strip():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.encode())
        return url

    yield create
    with psycopg.connect(server.url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)'.encode())


@pytest.fixture
def new_database(server: Server) -> Iterator[Callable[[str], str]]:
    """Create a database (optionally running ``sql`` in it) on the parametrized server."""
    yield from _database_factory(server)


@pytest.fixture
def embedded_database(embedded_server: EmbeddedPostgres) -> Iterator[Callable[[str], str]]:
    """Create a database on the embedded server only."""
    yield from _database_factory(embedded_server)


@pytest.fixture
def provider() -> PostgresProvider:
    return PostgresProvider(settings=FAST)
