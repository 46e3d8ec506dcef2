"""Loading declared SQL files into a scratch database: errors with file:line, cleanup, cache."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reconciler.errors import SchemaError
from reconciler.providers.postgres import EmbeddedPostgres, PostgresProvider
from reconciler.providers.postgres.declared import DeclaredSchemas, content_hash
from reconciler.providers.postgres.diffing import MigraEngine
from tests.postgres.support import scratch_databases

NewDatabase = Callable[[str], str]


def test_a_syntax_error_names_the_file_and_line(embedded_database: NewDatabase) -> None:
    url = embedded_database("")
    sql = "create table customers (id int primary key);\n\n-- orders\ncreate tabel orders (id int);\n"
    with pytest.raises(SchemaError) as raised:
        PostgresProvider().plan("crm", url, [("databases/crm/002_orders.sql", sql)], "k", ["public"])
    assert str(raised.value) == 'databases/crm/002_orders.sql:4: syntax error at or near "tabel"'


def test_a_statement_the_server_rejects_names_the_file_and_line(embedded_database: NewDatabase) -> None:
    url = embedded_database("")
    files = [
        ("databases/crm/001_customers.sql", "create table customers (id int primary key);\n"),
        ("databases/crm/002_orders.sql",
         "create table orders (\n    id int primary key,\n    customer_id int references clients (id)\n);\n"),
    ]
    with pytest.raises(SchemaError) as raised:
        PostgresProvider().plan("crm", url, files, "k", ["public"])
    assert str(raised.value) == 'databases/crm/002_orders.sql:1: relation "clients" does not exist'


def test_an_error_position_inside_a_statement_maps_to_its_line(embedded_database: NewDatabase) -> None:
    url = embedded_database("")
    sql = "create table t (\n    id int,\n    n integer default 'x'::nosuchtype\n);\n"
    with pytest.raises(SchemaError) as raised:
        PostgresProvider().plan("crm", url, [("schema.sql", sql)], "k", ["public"])
    assert str(raised.value) == 'schema.sql:3: type "nosuchtype" does not exist'


def test_files_load_in_lexical_order(embedded_database: NewDatabase) -> None:
    url = embedded_database("")
    files = [
        ("b/002_orders.sql", "create table orders (id int primary key, customer_id int references customers);"),
        ("b/001_customers.sql", "create table customers (id int primary key);"),
    ]
    items = PostgresProvider().plan("crm", url, files, "k", ["public"])
    assert [i.id for i in items if ":create-table:" in i.id] == [
        "crm:create-table:public.customers", "crm:create-table:public.orders",
    ]


def test_the_scratch_database_is_dropped_after_a_load(
    embedded_server: EmbeddedPostgres, embedded_database: NewDatabase
) -> None:
    url = embedded_database("")
    before = scratch_databases(embedded_server.url)
    PostgresProvider().plan("crm", url, [("a.sql", "create table t (id int);")], "k", ["public"])
    assert scratch_databases(embedded_server.url) == before


def test_the_scratch_database_is_dropped_when_the_sql_fails(
    embedded_server: EmbeddedPostgres, embedded_database: NewDatabase
) -> None:
    url = embedded_database("")
    before = scratch_databases(embedded_server.url)
    with pytest.raises(SchemaError):
        PostgresProvider().plan("crm", url, [("a.sql", "create table t (id nosuchtype);")], "k", ["public"])
    assert scratch_databases(embedded_server.url) == before


def test_a_shadow_server_holds_the_scratch_database(
    embedded_server: EmbeddedPostgres, embedded_database: NewDatabase
) -> None:
    target = embedded_database("")
    shadow = embedded_database("")
    declared = DeclaredSchemas(MigraEngine(), shadow_url=shadow)
    inspection = declared.get(target, [("a.sql", "create table t (id int);")], "k", ["public"])
    assert list(inspection.raw.tables) == ['"public"."t"']


def test_without_a_content_key_the_files_hash_is_the_key() -> None:
    files = [("a.sql", "create table t (id int);")]
    assert content_hash(files) == content_hash(list(files))
    assert content_hash(files) != content_hash([("a.sql", "create table t (id bigint);")])
