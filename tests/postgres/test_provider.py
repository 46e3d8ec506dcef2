"""The postgres provider against real servers: plan, apply, verify, drift, failures.

Core behaviours run on both the embedded server (pgserver, PostgreSQL 16) and the system
PostgreSQL 15 where its binaries exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import psycopg
import pytest

from reconciler.core import gates
from reconciler.core.changes import Phase, Risk
from reconciler.desired.models import Environment
from reconciler.errors import ProviderError, SchemaError
from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.diffing import Inspection, MigraEngine, SchemaDiff
from tests.postgres.support import converge, fetch, scalar

NewDatabase = Callable[[str], str]

BASE = """
create type ticket_status as enum ('open', 'closed');
create table customers (id int primary key, email text, legacy_notes text);
create table tickets (id int primary key, customer_id int, status ticket_status not null default 'open');
"""
CHANGED = """
create type ticket_status as enum ('open', 'pending', 'closed');
create table customers (id int primary key, email text, phone text);
create index idx_customers_email on customers (email);
create table tickets (id int primary key, customer_id int, status ticket_status not null default 'open');
create view open_tickets as select id, customer_id from tickets where status = 'open';
create function ticket_count(cid int) returns bigint language sql stable
    as $$ select count(*) from tickets where customer_id = cid $$;
"""


def files(sql: str) -> list[tuple[str, str]]:
    return [("databases/crm/001_schema.sql", sql)]


def test_create_from_empty(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = new_database("")
    converge(provider, "crm", url, files(BASE), "rev-1", ["public"])
    tables = fetch(url, "select table_name from information_schema.tables "
                        "where table_schema = 'public' order by table_name")
    assert tables == [("customers",), ("tickets",)]


def test_create_from_empty_plans_creates_only(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = new_database("")
    items = provider.plan("crm", url, files(BASE), "rev-1", ["public"])
    assert [i.id for i in items] == [
        "crm:create-type:public.ticket_status",
        "crm:create-table:public.customers",
        "crm:create-table:public.tickets",
        "crm:create-index:public.customers_pkey",
        "crm:create-index:public.tickets_pkey",
        "crm:add-constraint:public.customers.customers_pkey",
        "crm:add-constraint:public.tickets.tickets_pkey",
    ]


def _changed(provider: PostgresProvider, new_database: NewDatabase) -> str:
    url = new_database(BASE)
    converge(provider, "crm", url, files(CHANGED), "rev-2", ["public"])
    return url


def test_add_column_is_in_the_catalog(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert fetch(url, "select data_type from information_schema.columns "
                      "where table_name = 'customers' and column_name = 'phone'") == [("text",)]


def test_add_index_is_in_the_catalog_and_valid(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert fetch(url, "select i.indisvalid, pg_get_indexdef(i.indexrelid) from pg_index i "
                      "where i.indexrelid = 'public.idx_customers_email'::regclass") == [
        (True, "CREATE INDEX idx_customers_email ON public.customers USING btree (email)"),
    ]


def test_add_view_is_in_the_catalog(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert fetch(url, "select table_name from information_schema.views where table_schema = 'public'") == [
        ("open_tickets",),
    ]


def test_add_function_is_in_the_catalog(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert fetch(url, "select pg_get_function_identity_arguments('public.ticket_count'::regproc), "
                      "provolatile from pg_proc where proname = 'ticket_count'") == [("cid integer", "s")]


def test_add_enum_value_is_in_the_catalog_in_order(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert fetch(url, "select enumlabel from pg_enum where enumtypid = 'public.ticket_status'::regtype "
                      "order by enumsortorder") == [("open",), ("pending",), ("closed",)]


def test_verify_after_apply_finds_no_drift(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = _changed(provider, new_database)
    assert provider.plan("crm", url, files(CHANGED), "rev-2", ["public"]) == []


def test_destructive_statements_are_classified_destructive_with_stable_ids(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE)
    first = provider.plan("crm", url, files(CHANGED), "rev-2", ["public"])
    second = PostgresProvider().plan("crm", url, files(CHANGED), "rev-2", ["public"])
    destructive = [(i.id, i.phase) for i in first if i.risk == Risk.DESTRUCTIVE]
    assert destructive == [("crm:drop-column:public.customers.legacy_notes", Phase.SCHEMA_DESTRUCTIVE)]
    assert [i.id for i in first] == [i.id for i in second]


def test_destructive_changes_are_refused_without_approval_and_nothing_is_applied(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    """The provider plans; the core's destructive gate refuses the plan, and nothing is applied."""
    url = new_database(BASE)
    plan = provider.plan("crm", url, files(CHANGED), "rev-2", ["public"])
    spec = Environment.model_validate({"kind": "Environment", "name": "production", "track": {"branch": "main"},
                                       "sync": {"destructive_changes": "require-approval"}})
    gate = gates.check_destructive(spec, [i for i in plan if i.risk == Risk.DESTRUCTIVE], [])
    assert not gate.allowed
    assert re.search(r"crm:drop-column:public\.customers\.legacy_notes", gate.reason)
    assert scalar(url, "select count(*) from information_schema.columns where column_name in "
                       "('legacy_notes', 'phone')") == 1


def test_out_of_band_drift_is_detected_and_names_the_object(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database("")
    converge(provider, "crm", url, files(BASE), "rev-1", ["public"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table customers add column shadow_flag boolean")
        conn.execute("create index idx_manual on tickets (customer_id)")
    drift = provider.plan("crm", url, files(BASE), "rev-1", ["public"])
    assert [(i.id, i.risk) for i in drift] == [
        ("crm:drop-index:public.idx_manual", Risk.SAFE),
        ("crm:drop-column:public.customers.shadow_flag", Risk.DESTRUCTIVE),
    ]


def test_drift_check_of_an_unchanged_revision_does_not_load_the_sql_again(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    url = new_database(BASE)
    for _ in range(3):
        provider.plan("crm", url, files(BASE), "rev-1", ["public"])
    assert provider.declared.loads == 1


def test_a_new_content_key_loads_the_sql_again(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = new_database(BASE)
    provider.plan("crm", url, files(BASE), "rev-1", ["public"])
    provider.plan("crm", url, files(CHANGED), "rev-2", ["public"])
    assert provider.declared.loads == 2


def test_unreachable_database_is_a_provider_error_without_the_password(provider: PostgresProvider) -> None:
    url = "postgresql://admin:hunter2@/crm?host=/nonexistent-socket-dir"
    with pytest.raises(ProviderError) as raised:
        provider.engine.inspect(url, ["public"])
    assert "hunter2" not in str(raised.value)
    assert "postgresql://admin@/crm?host=/nonexistent-socket-dir" in str(raised.value)


class BrokenDiff(MigraEngine):
    def diff(self, live: Inspection, declared: Inspection) -> SchemaDiff:
        import migra

        original = migra.Migration.add_all_changes

        def explode(self: object, privileges: bool = False) -> None:
            raise ValueError("cannot resolve dependencies")

        migra.Migration.add_all_changes = explode  # type: ignore[method-assign]
        try:
            return super().diff(live, declared)
        finally:
            migra.Migration.add_all_changes = original  # type: ignore[method-assign]


def test_a_diff_crash_is_an_error_not_an_empty_plan(new_database: NewDatabase) -> None:
    url = new_database(BASE)
    with pytest.raises(SchemaError, match="the migra schema diff failed: ValueError: cannot resolve"):
        PostgresProvider(engine=BrokenDiff()).plan("crm", url, files(CHANGED), "rev-2", ["public"])


class BrokenInspection(MigraEngine):
    def inspect(self, url: str, managed_schemas: Sequence[str]) -> Inspection:
        # A catalog query that fails the way a broken inspector would (bad SQL on the server).
        import schemainspect.pg.obj as obj

        original = obj.PostgreSQL.load_schemas

        def broken(inspector: object) -> None:
            inspector.execute(__import__("sqlalchemy").text("select * from no_such_catalog"))  # type: ignore[attr-defined]

        obj.PostgreSQL.load_schemas = broken  # type: ignore[method-assign]
        try:
            return super().inspect(url, managed_schemas)
        finally:
            obj.PostgreSQL.load_schemas = original  # type: ignore[method-assign]


def test_an_inspection_crash_is_an_error_not_an_empty_plan(new_database: NewDatabase) -> None:
    url = new_database(BASE)
    with pytest.raises(SchemaError, match=r'inspecting .* failed: relation "no_such_catalog" does not exist'):
        PostgresProvider(engine=BrokenInspection()).plan("crm", url, files(BASE), "rev-1", ["public"])


class StuckEngine(MigraEngine):
    """Proposes one statement forever, like a diff engine that cannot see its own change."""

    def diff(self, live: Inspection, declared: Inspection) -> SchemaDiff:
        found = super().diff(live, declared)
        # Schema privileges are invisible to migra: applying this never makes it go away.
        return SchemaDiff(statements=(*found.statements, 'grant usage on schema "public" to public;'),
                          facts=found.facts)


def test_a_change_the_engine_cannot_converge_on_is_an_error_not_a_loop(new_database: NewDatabase) -> None:
    url = new_database(BASE)
    provider = PostgresProvider(engine=StuckEngine())
    with pytest.raises(SchemaError, match=r"does not converge: crm:grant:public/usage/PUBLIC were applied"):
        converge(provider, "crm", url, files(BASE), "rev-1", ["public"])


def test_other_schemas_are_not_managed(provider: PostgresProvider, new_database: NewDatabase) -> None:
    url = new_database("create schema ops; create table ops.jobs (id int);")
    converge(provider, "crm", url, files(BASE), "rev-1", ["public"])
    assert fetch(url, "select table_schema, table_name from information_schema.tables "
                      "where table_schema = 'ops'") == [("ops", "jobs")]


def test_applying_phase_by_phase_from_fresh_plans_converges(
    provider: PostgresProvider, new_database: NewDatabase
) -> None:
    """The engine's way: plan again before each step and run only that step's items."""
    url = new_database("create table orders (id int primary key, amount bigint);"
                       "create view big_orders as select id, amount from orders where amount > 100;")
    declared = files("create table orders (id int primary key, amount integer, note text);"
                     "create view big_orders as select id, amount from orders where amount > 100;")
    for phase in (Phase.SCHEMA_ADDITIVE, Phase.SCHEMA_DESTRUCTIVE):
        fresh = provider.plan("crm", url, declared, "rev-3", ["public"])
        provider.apply("crm", url, [i for i in fresh if i.phase == phase])
    assert provider.plan("crm", url, declared, "rev-3", ["public"]) == []
