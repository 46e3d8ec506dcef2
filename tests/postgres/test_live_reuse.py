"""A plan whose declared schema and live catalogs are both unchanged reuses the diff of an earlier one.

The live catalogs are fingerprinted (catalog.py) on every plan; the fingerprint must change with
every kind of schema change, or drift would go unseen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.catalog import fingerprint
from reconciler.providers.postgres.diffing import Inspection

NewDatabase = Callable[[str], str]
SCHEMA = [("databases/crm/001.sql",
           "create table customers (id int primary key, email text not null);\n"
           "create view emails as select email from customers;\n")]
LIVE = ("create table customers (id int primary key, email text not null);\n"
        "create view emails as select email from customers;\n")


def catalogs(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return fingerprint(lambda sql, params: conn.execute(sql.encode(), params).fetchall())


def run(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def no_inspection(url: str, managed_schemas: Any) -> Inspection:
    raise AssertionError("the live database was inspected")


def test_an_unchanged_live_database_is_not_inspected_again(tmp_path: Path, embedded_database: NewDatabase) -> None:
    url = embedded_database(LIVE + "alter table customers add column legacy text;")
    first = PostgresProvider(cache_dir=tmp_path)
    planned = first.plan("crm", url, SCHEMA, "tree-1", ["public"])
    assert "crm:drop-column:public.customers.legacy" in [i.id for i in planned]
    assert first.reused == 0
    # The declared schema and the diff, each in its own folder and bound.
    assert (len(list(tmp_path.glob("*.inspection"))), len(list((tmp_path / "diffs").glob("*.diff")))) == (1, 1)
    second = PostgresProvider(cache_dir=tmp_path)  # the next CLI command
    second.engine.inspect = no_inspection  # type: ignore[method-assign]
    assert second.plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned
    assert (second.reused, second.declared.loads, second.declared.stored) == (1, 0, 0)


def test_drift_that_appears_after_a_reused_plan_is_found(tmp_path: Path, embedded_database: NewDatabase) -> None:
    url = embedded_database(LIVE)
    provider = PostgresProvider(cache_dir=tmp_path)
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    assert provider.reused == 1
    run(url, "alter table customers add column legacy text")
    assert "crm:drop-column:public.customers.legacy" in [i.id for i in provider.plan("crm", url, SCHEMA, "tree-1",
                                                                                   ["public"])]
    run(url, "alter table customers drop column legacy")
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    assert provider.reused == 1  # a dropped column stays in the catalogs: not the catalogs of the first plan


def test_the_declared_schema_is_part_of_the_key(tmp_path: Path, embedded_database: NewDatabase) -> None:
    url = embedded_database(LIVE)
    provider = PostgresProvider(cache_dir=tmp_path)
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    changed = [(SCHEMA[0][0], SCHEMA[0][1] + "create table notes (id int);\n")]
    assert [i.id for i in provider.plan("crm", url, changed, "tree-2", ["public"])] == ["crm:create-table:public.notes"]
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public", "reporting"]) == []
    assert provider.reused == 0


def test_a_damaged_diff_is_not_trusted(tmp_path: Path, embedded_database: NewDatabase) -> None:
    url = embedded_database(LIVE + "alter table customers add column legacy text;")
    planned = PostgresProvider(cache_dir=tmp_path).plan("crm", url, SCHEMA, "tree-1", ["public"])
    [path] = (tmp_path / "diffs").glob("*.diff")
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    again = PostgresProvider(cache_dir=tmp_path)
    assert again.plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned
    assert again.reused == 0
    assert PostgresProvider(cache_dir=tmp_path).plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned


def test_without_a_cache_folder_nothing_is_fingerprinted(embedded_database: NewDatabase) -> None:
    url = embedded_database(LIVE)
    provider = PostgresProvider()
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    assert provider.plan("crm", url, SCHEMA, "tree-1", ["public"]) == []
    assert provider.reused == 0


BASE = """
create sequence counter;
create table customers (id int primary key, email text not null, code text default 'x');
create index customers_email on customers (email);
create view emails as select email from customers;
create function greet(name text) returns text language sql as $$ select 'hello ' || name $$;
create type mood as enum ('ok', 'sad');
create domain short_text as text check (length(value) < 10);
"""

CHANGES = {
    "comment on a table": "comment on table customers is 'people'",
    "comment on a column": "comment on column customers.email is 'where to write'",
    "a grant": "grant select on customers to public",
    "a column's type": "alter table customers alter column code type varchar(20)",
    "a column added": "alter table customers add column notes text",
    "a column dropped": "alter table customers drop column code",
    "a default": "alter table customers alter column code set default 'y'",
    "not null": "alter table customers alter column code set not null",
    "an index": "create index customers_code on customers (code)",
    "an index dropped": "drop index customers_email",
    "a view's query": "create or replace view emails as select email from customers where id > 0",
    "a function's body": ("create or replace function greet(name text) returns text language sql "
                          "as $$ select 'hi ' || name $$"),
    "a sequence's increment": "alter sequence counter increment by 2",
    "an enum label": "alter type mood add value 'glad'",
    "a domain's check": "alter domain short_text add constraint longer check (length(value) < 20)",
    "a rename": "alter table customers rename to clients",
    "a trigger": ("create function touch() returns trigger language plpgsql as $$ begin return new; end $$; "
                  "create trigger t before update on customers for each row execute function touch()"),
    "a policy": "alter table customers enable row level security",
    "an extension": ("do $$ begin if exists (select from pg_available_extensions where name = 'vector') "
                     "then create extension vector; else create extension pg_trgm; end if; end $$"),
    "the database's search_path": "alter database current set search_path = public, pg_catalog",
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
def test_every_kind_of_schema_change_changes_the_fingerprint(new_database: NewDatabase, change: str) -> None:
    url = new_database(BASE)
    before = catalogs(url)
    assert catalogs(url) == before  # reading changes nothing
    if "alter database current" in change:
        database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        change = change.replace("current", f'"{database}"')
    run(url, change)
    assert catalogs(url) != before


def test_a_renamed_owner_changes_the_fingerprint(new_database: NewDatabase) -> None:
    role = f"owner_{uuid.uuid4().hex[:8]}"
    url = new_database(f"create role {role}; create table t (id int); alter table t owner to {role};")
    try:
        before = catalogs(url)
        run(url, f"alter role {role} rename to {role}_new")
        assert catalogs(url) != before
    finally:
        run(url, f"drop owned by {role}_new; drop role {role}_new")


def test_data_statistics_and_other_databases_leave_the_fingerprint_alone(new_database: NewDatabase) -> None:
    url = new_database(BASE)
    before = catalogs(url)
    new_database("create table elsewhere (id int)")
    run(url, "insert into customers (id, email) select n, 'e' || n from generate_series(1, 2000) n")
    run(url, "select nextval('counter')")
    run(url, "analyze customers")
    assert catalogs(url) == before
