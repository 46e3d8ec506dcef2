"""Dependency-safe phases: statements that depend on each other keep their order across the split.

Pure tests of ``classify`` + ``phases.arrange`` on migra's statements as it writes them; the
corpus (``test_corpus.py``) runs the same classes of change on a real server.
"""

from __future__ import annotations

from reconciler.core.changes import Phase, Risk
from reconciler.providers.postgres.classify import classify
from reconciler.providers.postgres.diffing import SchemaDiff, SchemaFacts
from reconciler.providers.postgres.phases import Statement, arrange


def plan(*statements: str, facts: SchemaFacts) -> list[tuple[str, Phase, str | None]]:
    items = classify("crm", SchemaDiff(statements=statements, facts=facts))
    return [(i.id, i.phase, i.detail.get("group")) for i in items]


def test_a_table_replaced_by_a_view_of_its_name_moves_to_the_destructive_step_as_one_group() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.data"}), live_relations=frozenset({"public.data"}),
                        live_index_tables={"public.data_pkey": "public.data"})
    group = "crm:drop-table:public.data"
    assert plan(
        'alter table "public"."data" drop constraint "data_pkey";',
        'drop index if exists "public"."data_pkey";',
        'drop table "public"."data";',
        'create or replace view "public"."data" as  SELECT id, kind AS payload FROM events;',
        facts=facts,
    ) == [
        ("crm:drop-constraint:public.data.data_pkey", Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:drop-index:public.data_pkey", Phase.SCHEMA_DESTRUCTIVE, group),
        (group, Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:create-view:public.data", Phase.SCHEMA_DESTRUCTIVE, group),
    ]


def test_a_view_replaced_by_a_table_takes_the_tables_index_and_key_along() -> None:
    facts = SchemaFacts(live_relations=frozenset({"public.data"}))
    group = "crm:drop-view:public.data"
    assert plan(
        'drop view if exists "public"."data";',
        'create table "public"."data" ("id" integer not null, "payload" text);',
        'CREATE UNIQUE INDEX data_pkey ON public.data USING btree (id);',
        'alter table "public"."data" add constraint "data_pkey" PRIMARY KEY using index "data_pkey";',
        facts=facts,
    ) == [
        (group, Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:create-table:public.data", Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:create-index:public.data_pkey", Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:add-constraint:public.data.data_pkey", Phase.SCHEMA_DESTRUCTIVE, group),
    ]


def test_a_function_is_created_before_the_default_that_calls_it_and_the_old_one_dropped_after() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.codes"}), live_functions=frozenset({"public.next_code"}),
                        function_users={"public.next_code": frozenset({"public.codes"})})
    # migra's order: the drop first (it fails while the default calls it), the default before the function.
    assert plan(
        'drop function if exists "public"."next_code"();',
        'alter table "public"."codes" alter column "code" set default next_code(\'B\'::text);',
        "CREATE OR REPLACE FUNCTION public.next_code(prefix text DEFAULT 'B'::text) RETURNS text "
        "LANGUAGE sql AS $function$ select prefix $function$;",
        facts=facts,
    ) == [
        ("crm:create-function:public.next_code(text)", Phase.SCHEMA_ADDITIVE, None),
        ("crm:set-default:public.codes.code", Phase.SCHEMA_ADDITIVE, None),
        ("crm:drop-function:public.next_code()", Phase.SCHEMA_DESTRUCTIVE, None),
    ]


def test_a_column_added_to_an_inheritance_parent_waits_for_the_childs_copy_to_go() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.vehicles", "public.cars"}),
                        live_parents={"public.cars": "public.vehicles"})
    group = "crm:drop-column:public.cars.seats"
    assert plan(
        'alter table "public"."vehicles" add column "seats" integer;',
        'alter table "public"."cars" drop column "seats";',
        facts=facts,
    ) == [
        (group, Phase.SCHEMA_DESTRUCTIVE, group),
        ("crm:add-column:public.vehicles.seats", Phase.SCHEMA_DESTRUCTIVE, group),
    ]


def test_unrelated_additive_statements_stay_before_the_apps() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.data", "public.orders"}),
                        live_relations=frozenset({"public.data", "public.orders"}))
    items = plan(
        'drop table "public"."data";',
        'alter table "public"."orders" add column "note" text;',
        'create table "public"."audit" ("id" integer);',
        facts=facts,
    )
    assert items == [
        ("crm:drop-table:public.data", Phase.SCHEMA_DESTRUCTIVE, None),
        ("crm:add-column:public.orders.note", Phase.SCHEMA_ADDITIVE, None),
        ("crm:create-table:public.audit", Phase.SCHEMA_ADDITIVE, None),
    ]


def test_a_group_is_named_by_its_first_destructive_statement_and_keeps_risks() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.orders"}),
                        live_relations=frozenset({"public.orders", "public.refs"}),
                        live_columns={"public.orders.reference": "text"},
                        declared_columns={"public.orders.reference": "integer"},
                        live_dependencies={"public.refs": frozenset({"public.orders"})})
    items = classify("crm", SchemaDiff(statements=(
        'drop view if exists "public"."refs";',
        'alter table "public"."orders" alter column "reference" set data type integer using "reference"::integer;',
        'create or replace view "public"."refs" as  SELECT id, reference FROM orders;',
    ), facts=facts))
    assert [(i.id, i.risk, i.detail["group"]) for i in items] == [
        ("crm:drop-view:public.refs", Risk.SAFE, "crm:alter-column-type:public.orders.reference"),
        ("crm:alter-column-type:public.orders.reference", Risk.DESTRUCTIVE,
         "crm:alter-column-type:public.orders.reference"),
        ("crm:create-view:public.refs", Risk.SAFE, "crm:alter-column-type:public.orders.reference"),
    ]


def test_a_cycle_of_links_falls_back_to_the_engine_order() -> None:
    def statement(action: str, obj: str, sql: str, destructive: bool = False) -> Statement:
        return Statement(action=action, obj=obj, sql=sql, destructive=destructive, touches=frozenset({"public.t"}))

    # The function's replacement is dropped first, created after; a default on a table calling it
    # links both ways (create before the default, the default before the drop).
    facts = SchemaFacts(function_users={"public.f": frozenset({"public.t"})})
    arrangement = arrange([
        Statement(action="drop-function", obj="public.f()", sql="drop function f();", destructive=False,
                  touches=frozenset(), identity=("function", "public.f()"), drop=True),
        Statement(action="create-function", obj="public.f()", sql="create function f() ...", destructive=False,
                  touches=frozenset(), identity=("function", "public.f()")),
        statement("set-default", "public.t.c", "alter table t alter column c set default f();"),
    ], facts)
    assert sorted(arrangement.order) == [0, 1, 2]
    assert arrangement.order[0] == 0
    assert arrangement.late == frozenset()
