"""Risk rules, drift ids and safer rewrites of schema statements (pure: no database)."""

from __future__ import annotations

import pytest

from reconciler.core.changes import Change, Phase, Risk
from reconciler.errors import SchemaError
from reconciler.providers.postgres.classify import classify, type_change_risk
from reconciler.providers.postgres.diffing import SchemaDiff, SchemaFacts

CUSTOMERS = SchemaFacts(
    live_tables=frozenset({"public.customers"}),
    live_relations=frozenset({"public.customers"}),
    live_columns={"public.customers.legacy_notes": "text", "public.customers.n": "integer"},
    declared_columns={"public.customers.n": "bigint"},
)


def one(sql: str, facts: SchemaFacts = CUSTOMERS) -> tuple[str, Risk, Phase, bool, str]:
    [item] = classify("crm", SchemaDiff(statements=(sql,), facts=facts))
    return item.id, item.risk, item.phase, item.transactional, item.sql or ""


def test_drop_default_is_safe_although_it_says_drop() -> None:
    assert one('alter table "public"."customers" alter column "status" drop default;')[:3] == (
        "crm:drop-default:public.customers.status", Risk.SAFE, Phase.SCHEMA_ADDITIVE,
    )


def test_drop_column_is_destructive_with_a_stable_id() -> None:
    item_id, risk, phase, _, _ = one('alter table "public"."customers" drop column "legacy_notes";')
    assert (item_id, risk, phase) == (
        "crm:drop-column:public.customers.legacy_notes", Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE,
    )


def test_drop_column_item_shows_the_live_type_and_no_declared_value() -> None:
    [item] = classify("crm", SchemaDiff(
        statements=('alter table "public"."customers" drop column "legacy_notes";',), facts=CUSTOMERS))
    assert (item.kind, item.name, item.field, item.change, item.declared, item.live) == (
        "schema", "crm", "public.customers.legacy_notes", Change.DELETE, None, "text",
    )


@pytest.mark.parametrize(
    ("sql", "expected_id"),
    [
        ('drop table "public"."legacy";', "crm:drop-table:public.legacy"),
        ('drop view if exists "public"."v";', "crm:drop-view:public.v"),
        ('drop materialized view if exists "public"."mv";', "crm:drop-materialized-view:public.mv"),
        ('drop function if exists "public"."f"(a integer, b text);', "crm:drop-function:public.f(integer,text)"),
        ('drop type "public"."mood";', "crm:drop-type:public.mood"),
        ('drop schema if exists "app";', "crm:drop-schema:app"),
        ('drop sequence if exists "public"."s";', "crm:drop-sequence:public.s"),
        ('drop extension if exists "vector";', "crm:drop-extension:vector"),
    ],
)
def test_dropping_objects_apps_use_is_destructive(sql: str, expected_id: str) -> None:
    assert one(sql)[:3] == (expected_id, Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE)


@pytest.mark.parametrize(
    ("sql", "expected_id"),
    [
        ('drop index if exists "public"."idx_old";', "crm:drop-index:public.idx_old"),
        ('drop trigger if exists "trg" on "public"."customers";', "crm:drop-trigger:public.customers.trg"),
        ('drop policy "p" on "public"."customers";', "crm:drop-policy:public.customers.p"),
        ('alter table "public"."customers" drop constraint "c_check";',
         "crm:drop-constraint:public.customers.c_check"),
    ],
)
def test_dropping_objects_that_hold_no_data_is_safe(sql: str, expected_id: str) -> None:
    assert one(sql)[:2] == (expected_id, Risk.SAFE)


def test_index_on_an_existing_table_is_built_concurrently_outside_the_transaction() -> None:
    item_id, risk, _, transactional, sql = one(
        "CREATE INDEX idx_customers_email ON public.customers USING btree (email);")
    assert (item_id, risk, transactional, sql) == (
        "crm:create-index:public.idx_customers_email", Risk.SAFE, False,
        "CREATE INDEX CONCURRENTLY idx_customers_email ON public.customers USING btree (email);",
    )


def test_index_on_a_table_created_in_the_same_plan_stays_in_the_transaction() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'create table "public"."tickets" ("id" integer);',
        "CREATE INDEX tickets_id_idx ON public.tickets USING btree (id);",
    ), facts=CUSTOMERS))
    assert [(i.id, i.risk, i.transactional, i.sql) for i in items][1] == (
        "crm:create-index:public.tickets_id_idx", Risk.SAFE, True,
        "CREATE INDEX tickets_id_idx ON public.tickets USING btree (id);",
    )


def test_unique_index_on_an_existing_table_is_data_dependent() -> None:
    assert one("CREATE UNIQUE INDEX u ON public.customers USING btree (email);")[1] == Risk.DATA_DEPENDENT


def test_index_on_an_existing_partitioned_table_is_a_lock_risk_in_the_transaction() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.m"}), partitioned_tables=frozenset({"public.m"}))
    assert one("CREATE INDEX i ON public.m USING btree (x);", facts)[1:4] == (
        Risk.LOCK_RISK, Phase.SCHEMA_ADDITIVE, True,
    )


def test_foreign_key_on_an_existing_table_is_added_not_valid_then_validated_after_the_transaction() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'alter table "public"."customers" add constraint "fk" FOREIGN KEY (org_id) REFERENCES orgs(id);',
    ), facts=CUSTOMERS))
    assert [(i.id, i.risk, i.transactional, i.sql) for i in items] == [
        ("crm:add-constraint:public.customers.fk", Risk.SAFE, True,
         'alter table "public"."customers" add constraint "fk" FOREIGN KEY (org_id) REFERENCES orgs(id) '
         "not valid;"),
        ("crm:validate-constraint:public.customers.fk", Risk.DATA_DEPENDENT, False,
         'alter table "public"."customers" validate constraint "fk";'),
    ]


def test_check_on_a_new_table_is_validated_in_the_same_item() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'create table "public"."t" ("a" integer);',
        'alter table "public"."t" add constraint "a_pos" CHECK ((a > 0)) not valid;',
        'alter table "public"."t" validate constraint "a_pos";',
    ), facts=CUSTOMERS))
    assert [(i.id, i.transactional) for i in items] == [
        ("crm:create-table:public.t", True), ("crm:add-constraint:public.t.a_pos", True),
    ]
    assert items[1].sql == ('alter table "public"."t" add constraint "a_pos" CHECK ((a > 0)) not valid;\n'
                            'alter table "public"."t" validate constraint "a_pos";')


def test_set_not_null_is_a_lock_risk() -> None:
    assert one('alter table "public"."customers" alter column "email" set not null;')[:2] == (
        "crm:set-not-null:public.customers.email", Risk.LOCK_RISK,
    )


def test_adding_a_not_null_column_without_default_is_data_dependent() -> None:
    assert one('alter table "public"."customers" add column "k" integer not null;')[1] == Risk.DATA_DEPENDENT


@pytest.mark.parametrize("default", ["gen_random_uuid()", "clock_timestamp()", "random()", "my_func()"])
def test_adding_a_column_with_a_volatile_default_is_a_lock_risk(default: str) -> None:
    sql = f'alter table "public"."customers" add column "x" text default {default};'
    assert one(sql)[1] == Risk.LOCK_RISK


@pytest.mark.parametrize("default", ["now()", "'active'::text", "0", "lower('X')"])
def test_adding_a_column_with_a_non_volatile_default_is_safe(default: str) -> None:
    sql = f'alter table "public"."customers" add column "x" text default {default};'
    assert one(sql)[1] == Risk.SAFE


def test_column_type_change_item_shows_both_types() -> None:
    [item] = classify("crm", SchemaDiff(statements=(
        'alter table "public"."customers" alter column "n" set data type bigint using "n"::bigint;',),
        facts=CUSTOMERS))
    assert (item.id, item.risk, item.declared, item.live) == (
        "crm:alter-column-type:public.customers.n", Risk.LOCK_RISK, "bigint", "integer",
    )


@pytest.mark.parametrize(
    ("old", "new", "risk"),
    [
        ("character varying(10)", "character varying(50)", Risk.SAFE),
        ("character varying(10)", "text", Risk.SAFE),
        ("numeric(10,2)", "numeric(14,2)", Risk.SAFE),
        ("integer", "bigint", Risk.LOCK_RISK),
        ("date", "timestamp with time zone", Risk.LOCK_RISK),
        ("integer", "text", Risk.LOCK_RISK),
        ("character varying(50)", "character varying(10)", Risk.DESTRUCTIVE),
        ("text", "character varying(20)", Risk.DESTRUCTIVE),
        ("bigint", "integer", Risk.DESTRUCTIVE),
        ("text", "integer", Risk.DESTRUCTIVE),
        ("numeric(14,2)", "numeric(10,2)", Risk.DESTRUCTIVE),
        ("timestamp with time zone", "date", Risk.DESTRUCTIVE),
    ],
)
def test_type_change_risk(old: str, new: str, risk: Risk) -> None:
    assert type_change_risk(old, new) == risk


ENUMS = SchemaFacts(
    live_tables=frozenset({"public.t"}),
    live_enums={"public.mood": ("sad", "ok")},
    declared_enums={"public.mood": ("sad", "meh", "ok", "happy")},
)
MIGRA_ENUM_RECREATION = (
    'alter table "public"."t" alter column "m" drop default;',
    'alter type "public"."mood" rename to "mood__old_version_to_be_dropped";',
    "create type \"public\".\"mood\" as enum ('sad', 'meh', 'ok', 'happy');",
    'alter table "public"."t" alter column m type "public"."mood" using m::text::"public"."mood";',
    "alter table \"public\".\"t\" alter column \"m\" set default 'ok'::mood;",
    'drop type "public"."mood__old_version_to_be_dropped";',
)


def test_added_enum_values_become_alter_type_add_value() -> None:
    [item] = classify("crm", SchemaDiff(statements=MIGRA_ENUM_RECREATION, facts=ENUMS))
    assert (item.id, item.risk, item.sql) == (
        "crm:add-enum-value:public.mood.meh,happy", Risk.SAFE,
        "alter type \"public\".\"mood\" add value 'meh' before 'ok';\n"
        "alter type \"public\".\"mood\" add value 'happy';",
    )


def test_reordered_enum_values_keep_the_recreation_in_one_lock_risk_item() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.t"}), live_enums={"public.mood": ("sad", "ok", "meh")},
                        declared_enums={"public.mood": ("sad", "meh", "ok", "happy")})
    [item] = classify("crm", SchemaDiff(statements=MIGRA_ENUM_RECREATION, facts=facts))
    assert (item.id, item.risk, item.phase) == (
        "crm:alter-enum:public.mood", Risk.LOCK_RISK, Phase.SCHEMA_ADDITIVE,
    )
    assert item.sql == "\n".join(MIGRA_ENUM_RECREATION)


def test_enum_value_removal_is_destructive() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.t"}), live_enums={"public.mood": ("sad", "ok", "angry")},
                        declared_enums={"public.mood": ("sad", "meh", "ok", "happy")})
    [item] = classify("crm", SchemaDiff(statements=MIGRA_ENUM_RECREATION, facts=facts))
    assert (item.id, item.risk, item.phase) == (
        "crm:drop-enum-value:public.mood.angry", Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE,
    )


def test_view_dropped_and_created_again_is_a_safe_replacement() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'drop view if exists "public"."v";',
        'create or replace view "public"."v" as  SELECT 1 AS one;',
    ), facts=SchemaFacts(live_relations=frozenset({"public.v"}))))
    assert [(i.id, i.risk, i.change) for i in items] == [
        ("crm:drop-view:public.v", Risk.SAFE, Change.UPDATE),
        ("crm:create-view:public.v", Risk.SAFE, Change.UPDATE),
    ]


def test_migra_session_setting_is_not_a_drift_item() -> None:
    items = classify("crm", SchemaDiff(statements=(
        "set check_function_bodies = off;",
        "CREATE OR REPLACE FUNCTION public.f(a integer) RETURNS integer LANGUAGE sql AS $$ select a $$;",
    ), facts=SchemaFacts()))
    assert [(i.id, i.change) for i in items] == [("crm:create-function:public.f(integer)", Change.CREATE)]


def test_grants_and_revokes_name_object_privilege_and_role() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'grant select on table "public"."customers" to "support";',
        'revoke update on table "public"."customers" from "PUBLIC";',
    ), facts=CUSTOMERS))
    assert [(i.id, i.risk) for i in items] == [
        ("crm:grant:public.customers/select/support", Risk.SAFE),
        ("crm:revoke:public.customers/update/PUBLIC", Risk.SAFE),
    ]


def test_ids_are_the_same_on_every_run() -> None:
    first = classify("crm", SchemaDiff(statements=MIGRA_ENUM_RECREATION, facts=ENUMS))
    second = classify("crm", SchemaDiff(statements=MIGRA_ENUM_RECREATION, facts=ENUMS))
    assert [i.id for i in first] == [i.id for i in second]


def test_sql_the_parser_rejects_is_an_error() -> None:
    with pytest.raises(SchemaError, match="does not parse"):
        classify("crm", SchemaDiff(statements=("alter tabel x;",), facts=SchemaFacts()))


def test_a_view_recreated_around_a_destructive_change_waits_for_the_destructive_step() -> None:
    facts = SchemaFacts(
        live_tables=frozenset({"public.orders"}), live_relations=frozenset({"public.orders", "public.big"}),
        live_columns={"public.orders.amount": "bigint"}, declared_columns={"public.orders.amount": "integer"},
        live_dependencies={"public.big": frozenset({"public.orders"})},
    )
    items = classify("crm", SchemaDiff(statements=(
        'drop view if exists "public"."big";',
        'alter table "public"."orders" alter column "amount" set data type integer using "amount"::integer;',
        'create or replace view "public"."big" as  SELECT id, amount FROM orders;',
    ), facts=facts))
    assert [(i.id, i.risk, i.phase) for i in items] == [
        ("crm:drop-view:public.big", Risk.SAFE, Phase.SCHEMA_DESTRUCTIVE),
        ("crm:alter-column-type:public.orders.amount", Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE),
        ("crm:create-view:public.big", Risk.SAFE, Phase.SCHEMA_DESTRUCTIVE),
    ]
