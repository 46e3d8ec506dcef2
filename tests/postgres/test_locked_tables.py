"""A table another session holds locked: plan, drift and apply give up after lock_timeout times attempts.

SPEC §5: every connection the reconciler opens on a managed database carries ``lock_timeout`` and
``statement_timeout`` from ``[databases]``. A held lock ends the command with exit 1 and a message
naming the Database (its document name, never its URL), the locked table and the session holding
it; nothing is applied. How long that takes is measured in docs/reliability.md ("Locked tables"),
not asserted here: these tests only make it short (lock_timeout 1s, one retry) so they end quickly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from reconciler.config import load_settings
from reconciler.errors import LockTimeoutError
from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.sessions import connect
from reconciler.store import tables
from tests.conftest import World, cli
from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.postgres.support import FAST, scalar

LOCKED = "crm: table public.customers is locked by another session"


NewDatabase = Callable[[str], str]
CUSTOMERS = "create table customers (id int primary key, email text);"


# -- the provider ------------------------------------------------------------------------------------


def test_reading_a_locked_table_gives_up_after_the_configured_attempts(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(CUSTOMERS)
    with psycopg.connect(url) as blocker:
        blocker.execute("lock table customers in access exclusive mode")
        with pytest.raises(LockTimeoutError) as raised:
            provider.plan("crm", url, [("schema.sql", CUSTOMERS)], "k", ["public"])
        pid = blocker.info.backend_pid
        blocker.rollback()
    assert str(raised.value) == (
        f"crm: table public.customers is locked by another session (pid {pid}, idle in transaction, "
        "AccessExclusiveLock); the live schema could not be read (lock_timeout 0.2s, 3 attempts)"
    )
    assert provider.plan("crm", url, [("schema.sql", CUSTOMERS)], "k", ["public"]) == []


def test_the_declared_schema_loads_with_the_configured_timeouts(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    """The scratch database's session carries them too (FAST: lock_timeout 0.2s, statement_timeout 30s)."""
    url = new_database("")
    probe = """
    do $$ begin
      if current_setting('lock_timeout') <> '200ms' or current_setting('statement_timeout') <> '30s' then
        raise exception 'scratch session has lock_timeout %, statement_timeout %',
          current_setting('lock_timeout'), current_setting('statement_timeout');
      end if;
    end $$;
    """
    assert provider.plan("crm", url, [("schema.sql", probe)], "k", ["public"]) == []


def test_a_url_with_options_of_its_own_keeps_them_and_gets_the_timeouts(new_database: NewDatabase) -> None:
    url = new_database("create schema crm;")
    url += ("&" if "?" in url else "?") + "options=-c%20search_path%3Dcrm"
    with connect(url, FAST.timeouts) as conn:
        shown = [conn.execute(f"show {name}".encode()).fetchone() for name in
                 ("search_path", "lock_timeout", "statement_timeout")]
    assert shown == [("crm",), ("200ms",), ("30s",)]
    assert scalar(url, "show search_path") == "crm"


# -- the CLI and the daemon --------------------------------------------------------------------------


@pytest.fixture
def world(pyworld: World) -> World:
    """staging applied once (its tables exist), then short lock timeouts so a held lock ends fast."""
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.configure(databases={"lock_timeout": "1s", "lock_retries": 1})
    return pyworld


@contextmanager
def holding(world: World, mode: str, env: str = "staging", table: str = "customers") -> Iterator[int]:
    """Another session holds ``LOCK TABLE table IN mode MODE`` in an open transaction; yields its pid."""
    with psycopg.connect(world.databases[env]) as conn:
        conn.execute(f"lock table {table} in {mode} mode".encode())
        yield conn.info.backend_pid
        conn.rollback()


def add_region(world: World) -> str:
    world.write("databases/crm/004_region.sql", "alter table customers add column region text;\n")
    return world.commit("Add customers.region")


def status(world: World, env: str) -> dict[str, Any]:
    rows = json.loads(cli(world, "status", "--format", "json").stdout)["environments"]
    return next(r for r in rows if r["name"] == env)


def assert_names_the_lock(world: World, text: str, pid: int) -> None:
    assert LOCKED in text, text
    assert f"pid {pid}" in text
    assert "lock_timeout 1s" in text and "2 attempts" in text
    assert "statement timeout" not in text
    assert world.databases["staging"] not in text and "postgresql://" not in text


def test_plan_with_a_table_locked_exclusively_fails_naming_the_table(world: World) -> None:
    add_region(world)
    with holding(world, "access exclusive") as pid:
        result = cli(world, "plan", "staging")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert_names_the_lock(world, result.stderr, pid)
    assert result.stdout == ""


def test_drift_with_a_table_locked_exclusively_fails_naming_the_table(world: World) -> None:
    # A catalog change that is no drift: the live schema must be read again (not reused).
    with psycopg.connect(world.databases["staging"], autocommit=True) as conn:
        conn.execute(b"alter table customers alter column id set statistics 10")
    with holding(world, "access exclusive") as pid:
        result = cli(world, "drift", "staging")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert_names_the_lock(world, result.stderr, pid)


def test_drift_of_unchanged_catalogs_does_not_wait_for_a_locked_table(world: World) -> None:
    """The catalogs are as the apply's verification saw them: its diff answers, nothing is inspected."""
    with holding(world, "access exclusive"):
        result = cli(world, "drift", "staging")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "no drift" in result.stdout


def test_apply_with_a_table_locked_exclusively_fails_and_applies_nothing(world: World) -> None:
    good = status(world, "staging")["applied_revision"]
    add_region(world)
    with holding(world, "access exclusive") as pid:
        result = cli(world, "apply", "staging")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert_names_the_lock(world, result.stderr, pid)
    assert "nothing was applied" in result.stderr
    assert "region" not in world.columns("staging", "customers")
    after = status(world, "staging")
    assert after["state"] == "Failed"
    assert LOCKED in after["reason"]
    assert after["applied_revision"] == good
    # Once the lock is gone the same revision applies.
    assert cli(world, "apply", "staging").exit_code == 0
    assert "region" in world.columns("staging", "customers")


def test_apply_waiting_behind_a_reader_fails_in_the_apply_transaction_and_applies_nothing(world: World) -> None:
    """ACCESS SHARE (an open read transaction) lets the live schema be read; ALTER TABLE must wait for it."""
    add_region(world)
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    world.commit("Add auditors")
    with holding(world, "access share") as pid:
        result = cli(world, "apply", "staging")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert_names_the_lock(world, result.stderr, pid)
    assert "region" not in world.columns("staging", "customers")
    runs = json.loads(cli(world, "history", "staging", "--format", "json").stdout)["runs"]
    assert runs[0]["result"] == "Failed"
    assert not [i for i in runs[0]["applied"] if i.startswith("crm:")]  # no schema change was recorded applied


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


def test_the_daemon_run_fails_with_the_lock_named_and_releases_its_lease(
    world: World, daemons: list[DaemonProcess]
) -> None:
    d = start_daemon(world.config, world.root / "data", env=world.secrets)
    daemons.append(d)
    d.wait_env("staging", timeout=60, state="Synced")
    with holding(world, "access exclusive") as pid:
        commit = add_region(world)

        def failed() -> dict[str, Any] | None:
            env = d.env("staging")
            return env if env["state"] == "Failed" and LOCKED in (env["reason"] or "") else None

        staging = wait_for(failed, timeout=60, message="staging Failed on the held lock")
        assert f"pid {pid}" in staging["reason"]
        assert "region" not in world.columns("staging", "customers")
        wait_for(lambda: not lease_rows(world, "staging"), timeout=30, message="the run's lease to be released")
    with d.client() as c:
        assert c.post("/api/v1/environments/staging/sync").status_code == 202
    d.wait_env("staging", timeout=60, state="Synced", applied_revision=commit)
    assert "region" in world.columns("staging", "customers")


def lease_rows(world: World, env: str) -> list[Any]:
    """The lease rows on ``env`` in the daemon's state store (a finished run deletes its row)."""
    engine = sa.create_engine(load_settings(world.config).state_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(tables.leases).where(tables.leases.c.environment == env)).fetchall())
    finally:
        engine.dispose()
