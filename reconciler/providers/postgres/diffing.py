"""The schema diff engine behind one small interface, and its migra implementation.

``PostgresProvider`` asks a ``SchemaDiffEngine`` for two things: an ``Inspection`` of a database
(restricted to the managed schemas) and the ``SchemaDiff`` that turns one inspection into
another: the SQL statements, in dependency order, plus the few facts about both sides that the
risk rules need (which tables exist live, column types, enum labels). migra is unmaintained, so
nothing outside this module imports migra or schemainspect; another engine only has to produce
the same two things.

``MigraEngine`` inspects with schemainspect over a SQLAlchemy 2 connection using psycopg 3 (not
sqlbag's helpers, which do not work with these), and diffs with ``migra.Migration``, which
accepts inspector objects, so a cached declared inspection is diffed without touching the
database it came from. On top of migra it compares comments on tables, views, columns and
functions, which migra ignores. Any failure to inspect or diff raises: a broken engine must
never look like "no drift".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from reconciler.errors import ProviderError, SchemaError
from reconciler.providers.postgres.urls import safe_url, sqlalchemy_url

log = structlog.get_logger(__name__)

# The inspector attributes that carry per-schema objects (schemainspect's own PROPS list).
_SCHEMA_SCOPED = (
    "schemas", "relations", "tables", "views", "materialized_views", "composite_types", "functions",
    "selectables", "sequences", "constraints", "indexes", "enums", "extensions", "privileges",
    "collations", "triggers", "rlspolicies",
)

_COLUMN_COMMENTS_QUERY = """
select n.nspname as schema, c.relname as relation, a.attname as column, d.description
from pg_catalog.pg_description d
join pg_catalog.pg_class c on c.oid = d.objoid and d.classoid = 'pg_catalog.pg_class'::regclass
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = d.objsubid
where d.objsubid > 0 and n.nspname = any(:schemas)
"""


@dataclass(frozen=True)
class Inspection:
    """One database's schema as an engine read it. ``raw`` is engine-specific and opaque."""

    engine: str
    schemas: tuple[str, ...]
    server_version: int
    raw: Any = field(compare=False, repr=False)
    # ("schema", "relation", "column") -> comment; migra does not read column comments.
    column_comments: Mapping[tuple[str, str, str], str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SchemaFacts:
    """What the risk rules need to know about both sides. Names are unquoted ``schema.name``."""

    # Tables and materialized views that exist live (an index on them is an index on data).
    live_tables: frozenset[str] = frozenset()
    partitioned_tables: frozenset[str] = frozenset()
    # Every live relation (tables, views, materialized views) and function ("schema.name").
    live_relations: frozenset[str] = frozenset()
    live_functions: frozenset[str] = frozenset()
    # "schema.table.column" -> type as PostgreSQL prints it ("character varying(50)").
    live_columns: Mapping[str, str] = field(default_factory=dict)
    declared_columns: Mapping[str, str] = field(default_factory=dict)
    # "schema.enum" -> labels in order.
    live_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    declared_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemaDiff:
    """The statements that turn live into declared, in the engine's dependency order."""

    statements: tuple[str, ...]
    facts: SchemaFacts


class SchemaDiffEngine(Protocol):
    """What the provider needs from a schema diff engine; swap migra by implementing this."""

    name: str

    def inspect(self, url: str, managed_schemas: Sequence[str]) -> Inspection:
        """Read the schema of the database at ``url``, restricted to ``managed_schemas``."""
        ...

    def diff(self, live: Inspection, declared: Inspection) -> SchemaDiff:
        """Return what turns ``live`` into ``declared``. Must not modify either inspection."""
        ...


def _restrict(inspector: Any, schemas: Iterable[str]) -> None:
    keep = set(schemas)
    for prop in _SCHEMA_SCOPED:
        objects = getattr(inspector, prop, None)
        if objects is not None:
            setattr(inspector, prop, {k: v for k, v in objects.items() if v.schema in keep})


def _literal(text: str | None) -> str:
    # standard_conforming_strings is on (the default since PostgreSQL 9.1): only quotes need doubling.
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_RELATION_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "c": "type"}


class MigraEngine:
    """``SchemaDiffEngine`` on migra + schemainspect (SQLAlchemy 2, psycopg 3)."""

    name = "migra"

    def __init__(self, *, connect_timeout: int = 10, statement_timeout_ms: int = 120_000) -> None:
        self.connect_timeout = connect_timeout
        self.statement_timeout_ms = statement_timeout_ms

    def inspect(self, url: str, managed_schemas: Sequence[str]) -> Inspection:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        where = safe_url(url)
        schemas = tuple(managed_schemas)
        engine = sa.create_engine(
            sqlalchemy_url(url),
            poolclass=NullPool,
            connect_args={"connect_timeout": self.connect_timeout},
        )
        try:
            try:
                conn = engine.connect()
            except sa.exc.OperationalError as exc:
                raise ProviderError(f"cannot connect to {where}: {_first_line(exc.orig)}") from exc
            try:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
                    inspector = _schemainspect(conn)
                    rows = conn.execute(sa.text(_COLUMN_COMMENTS_QUERY), {"schemas": list(schemas)})
                    comments = {(r.schema, r.relation, r.column): r.description for r in rows}
            except sa.exc.OperationalError as exc:
                raise ProviderError(f"inspecting {where} failed: {_first_line(exc.orig)}") from exc
            except sa.exc.DBAPIError as exc:
                raise SchemaError(f"inspecting {where} failed: {_first_line(exc.orig)}") from exc
            finally:
                conn.close()
        finally:
            engine.dispose()
        _restrict(inspector, schemas)
        # The connection is closed; drop it so a cached inspection holds no driver objects.
        inspector.c = None
        return Inspection(
            engine=self.name,
            schemas=schemas,
            server_version=int(inspector.pg_version),
            raw=inspector,
            column_comments=comments,
        )

    def diff(self, live: Inspection, declared: Inspection) -> SchemaDiff:
        from migra import Migration

        if live.engine != self.name or declared.engine != self.name:
            raise SchemaError("cannot diff inspections made by another schema engine")
        try:
            migration = Migration(live.raw, declared.raw)
            migration.set_safety(False)
            migration.add_all_changes(privileges=True)
            statements = [s.strip() for s in migration.statements if s and s.strip()]
            statements += self._comment_changes(live, declared)
            facts = _facts(live.raw, declared.raw)
        except SchemaError:
            raise
        except Exception as exc:
            # migra signals failure with bare ValueError/AttributeError/KeyError; none of them may
            # be mistaken for an empty diff.
            raise SchemaError(f"the migra schema diff failed: {type(exc).__name__}: {exc}") from exc
        return SchemaDiff(statements=tuple(statements), facts=facts)

    @staticmethod
    def _comment_changes(live: Inspection, declared: Inspection) -> list[str]:
        out: list[str] = []
        live_rel, decl_rel = live.raw.relations, declared.raw.relations
        for key, rel in decl_rel.items():
            kind = _RELATION_KINDS.get(rel.relationtype)
            before = live_rel[key].comment if key in live_rel else None
            if kind and rel.comment != before:
                out.append(f"comment on {kind} {rel.quoted_full_name} is {_literal(rel.comment)};")
        live_fn, decl_fn = live.raw.functions, declared.raw.functions
        for key, fn in decl_fn.items():
            before = live_fn[key].comment if key in live_fn else None
            if fn.comment != before:
                kind = "procedure" if getattr(fn, "kind", "f") == "p" else "function"
                out.append(f"comment on {kind} {fn.quoted_full_name}({fn.identity_arguments}) "
                           f"is {_literal(fn.comment)};")
        for (schema, relation, column), text in sorted(declared.column_comments.items()):
            if live.column_comments.get((schema, relation, column)) != text:
                out.append(f"comment on column {_quote(schema)}.{_quote(relation)}.{_quote(column)} "
                           f"is {_literal(text)};")
        for (schema, relation, column) in sorted(live.column_comments):
            key = f"{_quote(schema)}.{_quote(relation)}"
            still_there = key in decl_rel and column in decl_rel[key].columns
            if (schema, relation, column) not in declared.column_comments and still_there:
                out.append(f"comment on column {key}.{_quote(column)} is NULL;")
        return out


def _schemainspect(conn: Any) -> Any:
    from schemainspect.pg import PostgreSQL

    return PostgreSQL(conn)


def _facts(live: Any, declared: Any) -> SchemaFacts:
    def columns(inspector: Any) -> dict[str, str]:
        return {
            f"{t.schema}.{t.name}.{name}": col.dbtypestr
            for t in inspector.tables.values()
            for name, col in t.columns.items()
        }

    def enums(inspector: Any) -> dict[str, tuple[str, ...]]:
        return {f"{e.schema}.{e.name}": tuple(e.elements) for e in inspector.enums.values()}

    storage = [*live.tables.values(), *live.materialized_views.values()]
    return SchemaFacts(
        live_tables=frozenset(f"{t.schema}.{t.name}" for t in storage),
        partitioned_tables=frozenset(
            f"{t.schema}.{t.name}" for t in live.tables.values() if t.relationtype == "p"
        ),
        live_relations=frozenset(f"{r.schema}.{r.name}" for r in live.relations.values()),
        live_functions=frozenset(f"{f.schema}.{f.name}" for f in live.functions.values()),
        live_columns=columns(live),
        declared_columns=columns(declared),
        live_enums=enums(live),
        declared_enums=enums(declared),
    )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__
