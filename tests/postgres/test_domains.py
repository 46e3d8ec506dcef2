"""Domains, which migra ignores: diffed from the catalogs, classified, ordered around their users."""

from __future__ import annotations

from reconciler.core.changes import Phase, Risk
from reconciler.providers.postgres import domains
from reconciler.providers.postgres.classify import classify
from reconciler.providers.postgres.diffing import SchemaDiff, SchemaFacts
from reconciler.providers.postgres.domains import Domain


def domain(name: str = "amount", data_type: str = "numeric(12,2)", default: str | None = None,
           not_null: bool = False, checks: tuple[tuple[str, str, bool], ...] = ()) -> Domain:
    return Domain("public", name, data_type, None, default, not_null, checks)


def test_a_new_domain_is_created_whole() -> None:
    want = domain(default="0", not_null=True, checks=(("positive", "CHECK (VALUE >= 0::numeric)", True),))
    assert domains.changes({}, {"public.amount": want}) == ([
        'create domain "public"."amount" as numeric(12,2) default 0 not null '
        'constraint "positive" CHECK (VALUE >= 0::numeric);'], [], [])


def test_a_changed_domain_is_altered_part_by_part() -> None:
    have = domain(default="1", checks=(("old", "CHECK (VALUE > 1::numeric)", True),
                                       ("kept", "CHECK (VALUE < 100::numeric)", False)))
    want = domain(not_null=True, checks=(("kept", "CHECK (VALUE < 100::numeric)", True),
                                         ("new", "CHECK (VALUE >= 0::numeric)", True)))
    assert domains.changes({"public.amount": have}, {"public.amount": want}) == ([], [
        'alter domain "public"."amount" drop default;',
        'alter domain "public"."amount" set not null;',
        'alter domain "public"."amount" drop constraint "old";',
        'alter domain "public"."amount" validate constraint "kept";',
        'alter domain "public"."amount" add constraint "new" CHECK (VALUE >= 0::numeric);',
    ], [])


def test_an_undeclared_domain_is_dropped_and_a_retyped_one_replaced() -> None:
    assert domains.changes({"public.amount": domain()}, {}) == ([], [], ['drop domain "public"."amount";'])
    assert domains.changes({"public.amount": domain()}, {"public.amount": domain(data_type="bigint")}) == (
        ['drop domain "public"."amount";', 'create domain "public"."amount" as bigint;'], [], [])


def test_domain_statements_get_ids_risks_and_a_validation_after_the_transaction() -> None:
    items = classify("crm", SchemaDiff(statements=(
        'alter domain "public"."amount" set not null;',
        'alter domain "public"."amount" add constraint "positive" CHECK (VALUE >= 0::numeric);',
        'drop domain "public"."old_amount";',
    ), facts=SchemaFacts()))
    assert [(i.id, i.risk, i.phase, i.transactional) for i in items] == [
        ("crm:set-domain-not-null:public.amount", Risk.DATA_DEPENDENT, Phase.SCHEMA_ADDITIVE, True),
        ("crm:add-domain-constraint:public.amount.positive", Risk.SAFE, Phase.SCHEMA_ADDITIVE, True),
        ("crm:validate-domain-constraint:public.amount.positive", Risk.DATA_DEPENDENT, Phase.SCHEMA_ADDITIVE, False),
        ("crm:drop-domain:public.old_amount", Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE, True),
    ]
    assert items[1].sql.endswith("not valid;")


def test_a_column_moving_onto_a_domain_over_its_type_is_a_lock_risk_and_waits_for_the_domain() -> None:
    facts = SchemaFacts(live_tables=frozenset({"public.customers"}),
                        live_columns={"public.customers.email": "text"},
                        declared_columns={"public.customers.email": "email_address"},
                        declared_domains={"public.email_address": "text"})
    items = classify("crm", SchemaDiff(statements=(
        'alter table "public"."customers" alter column "email" set data type email_address '
        'using "email"::email_address;',
        'create domain "public"."email_address" as text CHECK (VALUE ~~ \'%@%\'::text);',
    ), facts=facts))
    assert [(i.id, i.risk) for i in items] == [
        ("crm:create-domain:public.email_address", Risk.SAFE),
        ("crm:alter-column-type:public.customers.email", Risk.LOCK_RISK),
    ]
