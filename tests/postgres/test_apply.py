"""Applying schema items: lock timeouts, retries, atomicity, non-transactional statements."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from reconciler.core.changes import Change, DriftItem, Phase
from reconciler.errors import LockTimeoutError, SchemaError
from reconciler.providers.postgres import ApplySettings, PostgresProvider
from reconciler.providers.postgres.apply import apply_items
from tests.postgres.support import FAST, fetch, scalar

NewDatabase = Callable[[str], str]

BASE = "create table customers (id int primary key, email text);"
DECLARED = """
create table customers (id int primary key, email text, phone text);
create index idx_customers_email on customers (email);
create table tickets (id int primary key);
"""


def files(sql: str) -> list[tuple[str, str]]:
    return [("schema.sql", sql)]


def test_a_held_lock_times_out_retries_then_fails_with_nothing_applied(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE)
    items = provider.plan("crm", url, files(DECLARED), "k", ["public"])
    waits: list[float] = []
    with psycopg.connect(url) as blocker:
        blocker.execute("lock table customers in access exclusive mode")
        with pytest.raises(LockTimeoutError) as raised:
            apply_items(url, items, FAST, database="crm", sleep=waits.append)
        pid = blocker.info.backend_pid
        blocker.rollback()
    assert str(raised.value) == (
        f"crm: table public.customers is locked by another session (pid {pid}, idle in transaction, "
        "AccessExclusiveLock); crm:add-column:public.customers.phone could not take its lock "
        "(lock_timeout 0.2s, 3 attempts); nothing of this step was applied"
    )
    assert waits == [0.01, 0.02]
    assert fetch(url, "select table_name from information_schema.tables where table_schema = 'public'") == [
        ("customers",),
    ]
    assert scalar(url, "select count(*) from information_schema.columns where column_name = 'phone'") == 0


def test_a_lock_released_before_the_last_attempt_lets_the_apply_succeed(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE)
    items = provider.plan("crm", url, files(DECLARED), "k", ["public"])
    blocker = psycopg.connect(url)
    blocker.execute("lock table customers in access exclusive mode")

    def release_on_first_wait(delay: float) -> None:
        blocker.rollback()

    try:
        applied = apply_items(url, items, FAST, sleep=release_on_first_wait)
    finally:
        blocker.close()
    assert applied == [i.id for i in items if i.transactional] + [i.id for i in items if not i.transactional]
    assert provider.plan("crm", url, files(DECLARED), "k", ["public"]) == []


def test_non_transactional_statements_run_after_the_transaction(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE)
    items = provider.plan("crm", url, files(DECLARED), "k", ["public"])
    applied = provider.apply("crm", url, items)
    assert applied == [
        "crm:create-table:public.tickets",
        "crm:add-column:public.customers.phone",
        "crm:create-index:public.tickets_pkey",
        "crm:add-constraint:public.tickets.tickets_pkey",
        "crm:create-index:public.idx_customers_email",
    ]


def test_a_failing_statement_rolls_the_whole_transaction_back(new_database: NewDatabase) -> None:
    url = new_database(BASE)
    items = [
        DriftItem(id="crm:create-table:public.a", kind="schema", name="crm", field="public.a", change=Change.CREATE,
                  declared="table", live=None, phase=Phase.SCHEMA_ADDITIVE, sql="create table a (id int);"),
        DriftItem(id="crm:add-column:public.customers.x", kind="schema", name="crm", field="public.customers.x",
                  change=Change.CREATE, declared="int", live=None, phase=Phase.SCHEMA_ADDITIVE,
                  sql="alter table customers add column x nosuchtype;"),
    ]
    with pytest.raises(SchemaError) as raised:
        apply_items(url, items, FAST)
    assert str(raised.value) == (
        'crm:add-column:public.customers.x failed: type "nosuchtype" does not exist; '
        "nothing of this step was applied"
    )
    assert scalar(url, "select count(*) from information_schema.tables where table_name = 'a'") == 0


def test_a_failed_concurrent_index_build_leaves_no_invalid_index(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE + "insert into customers values (1, 'a@x'), (2, 'a@x');")
    declared = BASE + "create unique index idx_customers_email on customers (email);"
    items = provider.plan("crm", url, files(declared), "k", ["public"])
    with pytest.raises(SchemaError, match="could not create unique index"):
        provider.apply("crm", url, items)
    assert scalar(url, "select count(*) from pg_class where relname = 'idx_customers_email'") == 0


def test_statement_timeout_and_lock_timeout_are_set_in_the_transaction(new_database: NewDatabase) -> None:
    url = new_database("create table settings_seen (lock_timeout text, statement_timeout text);")
    item = DriftItem(
        id="crm:probe", kind="schema", name="crm", field=None, change=Change.UPDATE, declared=None, live=None,
        sql="insert into settings_seen select current_setting('lock_timeout'), "
            "current_setting('statement_timeout');",
    )
    apply_items(url, [item], ApplySettings())
    assert fetch(url, "select * from settings_seen") == [("5s", "5min")]
