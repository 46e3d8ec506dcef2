"""SET NOT NULL on an existing table goes through a validated check (PostgreSQL 12+): no scan
under ACCESS EXCLUSIVE, and nothing left behind when the column holds NULLs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.core.changes import Phase, Risk
from reconciler.errors import SchemaError
from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.classify import classify
from reconciler.providers.postgres.diffing import SchemaDiff, SchemaFacts
from tests.postgres.support import FAST, converge, fetch

NewDatabase = Callable[[str], str]
SET_NOT_NULL = 'alter table "public"."customers" alter column "email" set not null;'
CHECK = '"email_not_null_' + __import__("hashlib").sha256(b"public.customers.email").hexdigest()[:8] + '"'


def facts(version: int, **kw: object) -> SchemaFacts:
    return SchemaFacts(server_version=version, live_tables=frozenset({"public.customers"}), **kw)  # type: ignore[arg-type]


def test_set_not_null_is_added_as_a_not_valid_check_then_validated_set_and_dropped() -> None:
    items = classify("crm", SchemaDiff(statements=(SET_NOT_NULL,), facts=facts(16)))
    assert [(i.id, i.risk, i.phase, i.transactional) for i in items] == [
        ("crm:set-not-null:public.customers.email", Risk.SAFE, Phase.SCHEMA_ADDITIVE, True),
        ("crm:validate-not-null:public.customers.email", Risk.DATA_DEPENDENT, Phase.SCHEMA_ADDITIVE, False),
    ]
    assert items[0].sql == (f'alter table "public"."customers" add constraint {CHECK} '
                            'check ("email" is not null) not valid;')
    assert items[1].detail["steps"] == [
        f'alter table "public"."customers" validate constraint {CHECK};',
        'alter table "public"."customers" alter column "email" set not null;',
        f'alter table "public"."customers" drop constraint if exists {CHECK};',
    ]


@pytest.mark.parametrize("case", [
    pytest.param(facts(11), id="server-before-12"),
    pytest.param(SchemaFacts(server_version=16), id="table-created-in-the-plan"),
    pytest.param(facts(16, partitioned_tables=frozenset({"public.customers"})), id="partitioned-table"),
])
def test_where_the_check_cannot_help_set_not_null_stays_a_lock_risk(case: SchemaFacts) -> None:
    [item] = classify("crm", SchemaDiff(statements=(SET_NOT_NULL,), facts=case))
    assert (item.id, item.risk, item.sql) == ("crm:set-not-null:public.customers.email", Risk.LOCK_RISK, SET_NOT_NULL)


def test_the_column_becomes_not_null_and_the_check_is_gone(embedded_database: NewDatabase) -> None:
    url = embedded_database("create table customers (id int primary key, email text);"
                            "insert into customers values (1, 'a@example.com');")
    files = [("s.sql", "create table customers (id int primary key, email text not null);")]
    applied = converge(PostgresProvider(settings=FAST), "crm", url, files, "k", ["public"])
    assert applied == ["crm:set-not-null:public.customers.email", "crm:validate-not-null:public.customers.email"]
    assert fetch(url, "select attnotnull from pg_attribute where attrelid = 'customers'::regclass "
                      "and attname = 'email'") == [(True,)]
    assert fetch(url, "select conname from pg_constraint where conrelid = 'customers'::regclass "
                      "and contype = 'c'") == []


def test_nulls_fail_the_validation_and_leave_no_check_behind(embedded_database: NewDatabase) -> None:
    url = embedded_database("create table customers (id int primary key, email text);"
                            "insert into customers values (1, null);")
    files = [("s.sql", "create table customers (id int primary key, email text not null);")]
    provider = PostgresProvider(settings=FAST)
    with pytest.raises(SchemaError, match=r"crm:validate-not-null:public\.customers\.email failed: .*violated"):
        provider.apply("crm", url, provider.plan("crm", url, files, "k", ["public"]))
    assert fetch(url, "select conname from pg_constraint where conrelid = 'customers'::regclass "
                      "and contype = 'c'") == []
    assert [i.id for i in provider.plan("crm", url, files, "k", ["public"])] == [
        "crm:set-not-null:public.customers.email", "crm:validate-not-null:public.customers.email"]
