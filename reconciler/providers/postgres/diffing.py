"""The schema diff engine behind one small interface, and its migra implementation.

``PostgresProvider`` asks a ``SchemaDiffEngine`` for two things: an ``Inspection`` of a database
(restricted to the managed schemas) and the ``SchemaDiff`` that turns one inspection into
another: the SQL statements, in dependency order, plus the few facts about both sides that the
risk rules need (which tables exist live, column types, enum labels). migra is unmaintained, so
nothing outside this module imports migra or schemainspect; another engine only has to produce
the same two things.

``MigraEngine`` inspects with schemainspect over a SQLAlchemy 2 connection using psycopg 3 (not
sqlbag's helpers, which do not work with these), in a read-only transaction whose session carries
``lock_timeout`` and ``statement_timeout`` (``sessions.py``): a table another session holds
ACCESS EXCLUSIVE blocks schemainspect's catalog queries, and that wait must end in
``LockTimeoutError`` after ``lock_timeout``, not in a statement timeout minutes later. It diffs
with ``migra.Migration``, which accepts inspector objects, so a cached declared inspection is
diffed without touching the database it came from. On top of migra it compares comments on
tables, views, columns and functions, which migra ignores. Any failure to inspect or diff raises: a broken engine must
never look like "no drift".
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from reconciler import logs
from reconciler.errors import LockTimeoutError, ProviderError, SchemaError
from reconciler.providers.postgres import catalog, domains
from reconciler.providers.postgres.domains import Domain
from reconciler.providers.postgres.sessions import Timeouts, connect_args
from reconciler.providers.postgres.urls import safe_url, sqlalchemy_url

log = logs.get_logger(__name__)

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


# Columns an inheritance child has only because its parent has them (schemainspect cannot tell
# them from the child's own columns of the same name).
_INHERITED_COLUMNS_QUERY = """
select n.nspname as schema, c.relname as relation, a.attname as column
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid and c.relkind = 'r' and not c.relispartition
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where a.attnum > 0 and not a.attisdropped and a.attinhcount > 0 and not a.attislocal
  and n.nspname = any(:schemas)
"""

# Objects PostgreSQL derives on partitions from their partitioned parent: indexes attached to a
# parent index, cloned row triggers, constraints inherited from the parent's. They follow the
# parent by themselves, and migra would try to create them a second time.
_PARTITION_CLONES_QUERY = """
select 'index' as kind, n.nspname as schema, null as relation, c.relname as name
from pg_catalog.pg_inherits i
join pg_catalog.pg_class c on c.oid = i.inhrelid and c.relkind in ('i', 'I')
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(:schemas)
union all
select 'trigger', n.nspname, c.relname, t.tgname
from pg_catalog.pg_trigger t
join pg_catalog.pg_class c on c.oid = t.tgrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where t.tgparentid <> 0 and n.nspname = any(:schemas)
union all
select 'constraint', n.nspname, c.relname, con.conname
from pg_catalog.pg_constraint con
join pg_catalog.pg_class c on c.oid = con.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where con.conparentid <> 0 and n.nspname = any(:schemas)
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
    # ("schema", "table", "column") of inheritance children's columns that only the parent defines.
    inherited_columns: frozenset[tuple[str, str, str]] = field(default_factory=frozenset, compare=False)
    # "schema.name" -> the domain; migra does not read domains.
    domains: Mapping[str, Domain] = field(default_factory=dict, compare=False)
    # The catalogs' fingerprint in the inspection's snapshot (catalog.py); "" when not read.
    catalog: str = field(default="", compare=False)


@dataclass(frozen=True)
class SchemaFacts:
    """What the risk rules need to know about both sides. Names are unquoted ``schema.name``."""

    # The live server's major version (0: unknown); some safer rewrites need a recent server.
    server_version: int = 0
    # Tables and materialized views that exist live (an index on them is an index on data).
    live_tables: frozenset[str] = frozenset()
    partitioned_tables: frozenset[str] = frozenset()
    # Every live relation (tables, views, materialized views) and function ("schema.name").
    live_relations: frozenset[str] = frozenset()
    live_functions: frozenset[str] = frozenset()
    # Live views and materialized views -> the relations they depend on, directly or not.
    live_dependencies: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # "schema.table.column" -> type as PostgreSQL prints it ("character varying(50)").
    live_columns: Mapping[str, str] = field(default_factory=dict)
    declared_columns: Mapping[str, str] = field(default_factory=dict)
    # "schema.enum" -> labels in order.
    live_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    declared_enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Declared views and materialized views -> the relations they depend on, directly or not.
    declared_dependencies: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Live inheritance children -> their parent (partitions are not listed).
    live_parents: Mapping[str, str] = field(default_factory=dict)
    # Live indexes -> the table they are on.
    live_index_tables: Mapping[str, str] = field(default_factory=dict)
    # "schema.domain" -> its base type, on each side.
    live_domains: Mapping[str, str] = field(default_factory=dict)
    declared_domains: Mapping[str, str] = field(default_factory=dict)
    # Functions that differ between the sides ("schema.name") -> the tables and views whose
    # defaults, constraints, indexes, triggers or definitions call them, on either side.
    function_users: Mapping[str, frozenset[str]] = field(default_factory=dict)


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


def _drop_partition_clones(inspector: Any, clones: set[tuple[str, str, str | None, str]]) -> None:
    inspector.indexes = {
        k: v for k, v in inspector.indexes.items() if ("index", v.schema, None, v.name) not in clones
    }
    inspector.triggers = {
        k: v for k, v in inspector.triggers.items()
        if ("trigger", v.schema, v.table_name, v.name) not in clones
    }
    inspector.constraints = {
        k: v for k, v in inspector.constraints.items()
        if ("constraint", v.schema, v.table_name, v.name) not in clones
    }


def _literal(text: str | None) -> str:
    # standard_conforming_strings is on (the default since PostgreSQL 9.1): only quotes need doubling.
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


_CREATE_INDEX = re.compile(r"^\s*create\s+(unique\s+)?index\s", re.IGNORECASE)
_QUOTED_PUBLIC = re.compile(r'^((?:grant|revoke)\s.*\s(?:to|from))\s+"PUBLIC";$', re.IGNORECASE | re.DOTALL)
_ON_ONLY = re.compile(r"\sON\s+ONLY\s", re.IGNORECASE)

# migra's statements around a recreated enum (schemainspect's change_enum_statement and friends).
_RECAST = re.compile(r'^alter table (?P<table>"(?:[^"]|"")+"\."(?:[^"]|"")+") alter column .* using .*::text::',
                     re.IGNORECASE | re.DOTALL)
_ENUM_RENAME = re.compile(r'^alter type .* rename to ".*__old_version_to_be_dropped";$', re.IGNORECASE)
_OLD_ENUM_DROP = re.compile(r'^drop type .*__old_version_to_be_dropped";$', re.IGNORECASE)

# What migra creates first, which a domain may build on; and the drops of schemas it ends with.
_GROUNDWORK = re.compile(r"^(set |create schema|create extension|alter extension|create collation|create type)",
                         re.IGNORECASE)
_DROP_SCHEMA = re.compile(r"^drop schema", re.IGNORECASE)

_RELATION_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "c": "type"}


class MigraEngine:
    """``SchemaDiffEngine`` on migra + schemainspect (SQLAlchemy 2, psycopg 3)."""

    name = "migra"
    libraries = ("migra", "schemainspect")
    # Bumped whenever ``Inspection`` or what ``inspect`` puts in it changes, so inspections cached
    # on disk by an older reconciler are not read back.
    inspection_format = 4

    def __init__(self, timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()

    def inspect(self, url: str, managed_schemas: Sequence[str]) -> Inspection:
        import sqlalchemy as sa
        from psycopg import errors as pgerrors
        from sqlalchemy.pool import NullPool

        where = safe_url(url)
        schemas = tuple(managed_schemas)
        engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool,
                                  connect_args=connect_args(url, self.timeouts))
        try:
            try:
                conn = engine.connect()
            except sa.exc.OperationalError as exc:
                raise ProviderError(f"cannot connect to {where}: {_first_line(exc.orig)}") from exc
            try:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    fingerprint = catalog.fingerprint(
                        lambda sql, params: list(conn.exec_driver_sql(sql, params)))
                    inspector = _schemainspect(conn)
                    rows = conn.execute(sa.text(_COLUMN_COMMENTS_QUERY), {"schemas": list(schemas)})
                    comments = {(r.schema, r.relation, r.column): r.description for r in rows}
                    clones = conn.execute(sa.text(_PARTITION_CLONES_QUERY), {"schemas": list(schemas)})
                    clone_keys = {(r.kind, r.schema, r.relation, r.name) for r in clones}
                    rows = conn.execute(sa.text(_INHERITED_COLUMNS_QUERY), {"schemas": list(schemas)})
                    inherited = frozenset((r.schema, r.relation, r.column) for r in rows)
                    rows = conn.execute(sa.text(domains.QUERY), {"schemas": list(schemas)})
                    found_domains = domains.read(dict(r._mapping) for r in rows)
            except sa.exc.OperationalError as exc:
                if isinstance(exc.orig, pgerrors.LockNotAvailable):
                    raise LockTimeoutError(f"inspecting {where} waited longer than lock_timeout "
                                           f"{self.timeouts.lock_timeout:g}s for a lock") from exc
                if isinstance(exc.orig, pgerrors.QueryCanceled):
                    raise ProviderError(f"inspecting {where} took longer than statement_timeout "
                                        f"{self.timeouts.statement_timeout:g}s") from exc
                raise ProviderError(f"inspecting {where} failed: {_first_line(exc.orig)}") from exc
            except sa.exc.DBAPIError as exc:
                raise SchemaError(f"inspecting {where} failed: {_first_line(exc.orig)}") from exc
            finally:
                conn.close()
        finally:
            engine.dispose()
        _restrict(inspector, schemas)
        _drop_partition_clones(inspector, clone_keys)
        # The connection is closed; drop it so a cached inspection holds no driver objects (and
        # can be stored on disk: SQLAlchemy's engine and dialect do not pickle).
        inspector.c = None
        inspector.engine, inspector.dialect = None, "postgresql"
        return Inspection(
            engine=self.name,
            schemas=schemas,
            server_version=int(inspector.pg_version),
            raw=inspector,
            column_comments=comments,
            inherited_columns=inherited,
            domains=found_domains,
            catalog=fingerprint,
        )

    def diff(self, live: Inspection, declared: Inspection) -> SchemaDiff:
        with _IMPORTING:
            _offer_resource_stream()
            from migra import Migration

        if live.engine != self.name or declared.engine != self.name:
            raise SchemaError("cannot diff inspections made by another schema engine")
        try:
            migration = Migration(live.raw, declared.raw)
            migration.set_safety(False)
            migration.add_all_changes(privileges=True)
            statements = [s.strip() for s in migration.statements if s and s.strip()]
            # schemainspect quotes the grantee, and "PUBLIC" quoted is a role that cannot exist.
            statements = [_QUOTED_PUBLIC.sub(r"\1 public;", s) for s in statements]
            statements = self._drop_before_return_type_change(statements, live, declared)
            statements = self._recreate_changed_generated_columns(statements, live, declared)
            statements = self._inherited_columns(statements, live, declared)
            statements = self._recreate_views_over_recast_columns(statements, live, declared)
            # Child indexes are left out of the inspections, so the parent index must build them:
            # CREATE INDEX ... ON ONLY would leave it invalid.
            statements = [_ON_ONLY.sub(" ON ", s, count=1) if _CREATE_INDEX.match(s) else s
                          for s in statements]
            statements = self._domain_changes(statements, live, declared)
            statements += self._comment_changes(live, declared)
            facts = _facts(live.raw, declared.raw)
            facts = replace(facts,
                            live_domains={k: d.data_type for k, d in live.domains.items()},
                            declared_domains={k: d.data_type for k, d in declared.domains.items()})
        except SchemaError:
            raise
        except Exception as exc:
            # migra signals failure with bare ValueError/AttributeError/KeyError; none of them may
            # be mistaken for an empty diff.
            raise SchemaError(f"the migra schema diff failed: {type(exc).__name__}: {exc}") from exc
        return SchemaDiff(statements=tuple(statements), facts=facts)

    @staticmethod
    def _drop_before_return_type_change(statements: list[str], live: Inspection,
                                        declared: Inspection) -> list[str]:
        # migra replaces a function whose return type changed with CREATE OR REPLACE, which
        # PostgreSQL refuses; the function has to be dropped first.
        live_fn = live.raw.functions
        drops: dict[str, str] = {}
        for key, fn in declared.raw.functions.items():
            before = live_fn.get(key)
            if before is not None and before.result_string != fn.result_string:
                drops[fn.create_statement.strip()] = before.drop_statement
        out: list[str] = []
        for statement in statements:
            if statement in drops:
                out.append(drops[statement])
            out.append(statement)
        return out

    @staticmethod
    def _recreate_changed_generated_columns(statements: list[str], live: Inspection,
                                            declared: Inspection) -> list[str]:
        # migra tries ``SET DEFAULT`` on a generated column whose expression changed, which
        # PostgreSQL refuses (before 17); the column has to be dropped and added again.
        replacements: dict[str, list[str]] = {}
        for key, table in declared.raw.tables.items():
            before = live.raw.tables.get(key)
            if before is None:
                continue
            for name, column in table.columns.items():
                old = before.columns.get(name)
                if (old is not None and column.is_generated and old.is_generated
                        and column.default != old.default):
                    set_default = table.alter_table_statement(column.alter_default_clause_or_generated(old))
                    replacements[set_default.strip()] = [
                        table.alter_table_statement(old.drop_column_clause),
                        table.alter_table_statement(column.add_column_clause),
                    ]
        out: list[str] = []
        for statement in statements:
            out += replacements.get(statement, [statement])
        return out

    @staticmethod
    def _inherited_columns(statements: list[str], live: Inspection, declared: Inspection) -> list[str]:
        """Columns added to or dropped from an inheritance parent, and columns moving between a
        parent and its children, in statements PostgreSQL accepts, keeping data where it can.

        migra treats a child's inherited columns as its own: it adds them to the child after the
        parent's ``ADD COLUMN`` already did (``already exists``) and drops them from the child
        after the parent's ``DROP COLUMN`` already did (``does not exist``). And a column that
        moves between parent and child is dropped on one side and added on the other, which
        loses its values or fails. So:

        * a column added to the parent is not added to the children again; a child's own column
          of the same definition is merged by the parent's ``ADD COLUMN`` (its values stay), one
          of another definition is dropped first;
        * a column dropped from the parent is not dropped from children that only inherit it;
          when a child keeps it, the parent drops it with ``ALTER TABLE ONLY``, which leaves the
          children their copies as their own columns (values kept), and children that do not
          keep it drop it after that.
        """
        out = list(statements)
        tables, declared_tables = live.raw.tables, declared.raw.tables
        children_of: dict[str, list[Any]] = {}
        for table in tables.values():
            if table.is_inheritance_child_table:
                children_of.setdefault(table.parent_table, []).append(table)
        for key, children in children_of.items():
            parent, declared_parent = tables.get(key), declared_tables.get(key)
            if parent is None or declared_parent is None:
                continue
            pairs = [(c, declared_tables[c.quoted_full_name]) for c in children
                     if c.quoted_full_name in declared_tables]
            for name, column in declared_parent.columns.items():
                add = declared_parent.alter_table_statement(column.add_column_clause)
                if name in parent.columns or add not in out:
                    continue
                for child, declared_child in pairs:
                    target, kept = declared_child.columns.get(name), child.columns.get(name)
                    if target is not None:
                        _discard(out, declared_child.alter_table_statement(target.add_column_clause))
                    if kept is None:
                        continue
                    drop = declared_child.alter_table_statement(kept.drop_column_clause)
                    if drop in out:
                        out.remove(drop)
                        if target is None or not _same_column(kept, target):
                            out.insert(out.index(add), drop)
            for name, column in parent.columns.items():
                drop = declared_parent.alter_table_statement(column.drop_column_clause)
                if name in declared_parent.columns or drop not in out:
                    continue
                keepers = [(c, d) for c, d in pairs if name in d.columns]
                after: list[str] = []
                for child, declared_child in pairs:
                    kept, target = child.columns.get(name), declared_child.columns.get(name)
                    if kept is None:
                        continue
                    child_drop = declared_child.alter_table_statement(kept.drop_column_clause)
                    only_inherited = (child.schema, child.name, name) in live.inherited_columns
                    _discard(out, child_drop)
                    if target is None:
                        if keepers or not only_inherited:
                            after.append(child_drop)  # a copy of its own is left: drop it too
                        continue
                    _discard(out, declared_child.alter_table_statement(target.add_column_clause))
                    after += [s.strip() for s in target.alter_table_statements(kept, declared_child.quoted_full_name)]
                position = out.index(drop)
                if keepers:
                    out[position] = drop.replace("alter table ", "alter table only ", 1)
                out[position + 1:position + 1] = after
        return out

    @staticmethod
    def _recreate_views_over_recast_columns(statements: list[str], live: Inspection,
                                            declared: Inspection) -> list[str]:
        """Views in the way of a column recast to a recreated enum, or of a view migra drops.

        migra recreates an enum whose labels were removed or reordered and recasts every column
        using it, but does not drop the views that use those tables (PostgreSQL refuses to
        change the type of a column a view uses), nor the views that depend on a view it drops
        for that reason. They are dropped before and created again, as declared, after.
        """
        present = set(statements)
        recast = {m["table"] for s in statements if (m := _RECAST.match(s))}
        dropped_views = {
            key for key, view in live.raw.selectables.items()
            if view.relationtype in ("v", "m") and view.drop_statement.strip() in present
        }
        rebuilt = recast | dropped_views
        if not rebuilt:
            return statements
        declared_views = declared.raw.selectables
        in_the_way = [
            view for key, view in live.raw.selectables.items()
            if view.relationtype in ("v", "m") and key not in dropped_views
            and set(view.dependent_on_all) & rebuilt
            and key in declared_views and declared_views[key].relationtype == view.relationtype
        ]
        if not in_the_way:
            return statements
        drops = [v.drop_statement.strip() for v in sorted(in_the_way, key=lambda v: -len(v.dependent_on_all))]
        creates = [declared_views[v.signature].create_statement.strip()
                   for v in sorted(in_the_way, key=lambda v: len(declared_views[v.signature].dependent_on_all))]
        view_drops = {live.raw.selectables[k].drop_statement.strip() for k in dropped_views}
        view_creates = {declared_views[k].create_statement.strip() for k in dropped_views if k in declared_views}
        starts = [i for i, s in enumerate(statements) if _RECAST.match(s) or _ENUM_RENAME.match(s) or s in view_drops]
        ends = [i for i, s in enumerate(statements) if _RECAST.match(s) or _OLD_ENUM_DROP.match(s) or s in view_creates]
        if not starts or not ends:
            return statements
        first, last = min(starts), max(ends)
        return statements[:first] + drops + statements[first:last + 1] + creates + statements[last + 1:]

    @staticmethod
    def _domain_changes(statements: list[str], live: Inspection, declared: Inspection) -> list[str]:
        """migra ignores domains: creations go after the schemas, extensions and types they may
        build on and before anything that uses them, alterations with them, drops at the end
        (before schemas are dropped), after columns moved off them."""
        creates, alters, drops = domains.changes(live.domains, declared.domains)
        if not (creates or alters or drops):
            return statements
        head = 0
        while head < len(statements) and _GROUNDWORK.match(statements[head]):
            head += 1
        tail = len(statements)
        while tail > head and _DROP_SCHEMA.match(statements[tail - 1]):
            tail -= 1
        return statements[:head] + creates + alters + statements[head:tail] + drops + statements[tail:]

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


def _offer_resource_stream() -> None:
    """Give schemainspect the one ``pkg_resources`` function it imports, without ``pkg_resources``.

    ``schemainspect.misc`` imports ``pkg_resources.resource_stream`` to read its bundled SQL files.
    ``pkg_resources`` is deprecated (setuptools is removing it), scans every installed
    distribution when imported (≈0.4 s) and stays resident (≈4 MB in the daemon). Nothing else in
    this process uses it, so when it is not loaded yet, a module offering ``resource_stream``
    stands in for it.
    """
    with _IMPORTING:
        _offer_resource_stream_once()


# Two threads (the live and the declared inspection) may import schemainspect at the same time.
_IMPORTING = threading.RLock()


@contextmanager
def engine_imports() -> Iterator[None]:
    """Hold while importing migra or schemainspect, or unpickling what holds their objects: the
    import is prepared once (``_offer_resource_stream``) and never raced by another thread."""
    with _IMPORTING:
        _offer_resource_stream()
        yield


def _offer_resource_stream_once() -> None:
    if "pkg_resources" not in sys.modules:
        def resource_stream(module_name: str, resource: str) -> Any:
            # As pkg_resources does: relative to the folder of the named module (or package).
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            return (Path(module.__file__ or "").parent / resource).open("rb")

        shim = types.ModuleType("pkg_resources", "stand-in offering resource_stream (see diffing.py)")
        shim.resource_stream = resource_stream  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    _name_the_caller()


def _name_the_caller() -> None:
    """Load ``schemainspect.misc`` first and tell it who reads its SQL files.

    To find the package a bundled SQL file belongs to, ``schemainspect.misc.resource_stream``
    walks ``inspect.stack()`` (resolving the module of every frame) for each of the 18 files
    ``schemainspect.pg.obj`` reads when it is imported: about a second of CPU in every process
    that inspects a schema, longer than the inspection itself on small schemas. The only caller is
    ``schemainspect.pg.obj``, so the module is loaded ahead of its package and answers that.
    """
    if "schemainspect.misc" in sys.modules:
        return
    package = importlib.util.find_spec("schemainspect")
    if package is None or package.origin is None:
        return
    spec = importlib.util.spec_from_file_location("schemainspect.misc", Path(package.origin).parent / "misc.py")
    if spec is None or spec.loader is None:
        return
    misc = importlib.util.module_from_spec(spec)
    sys.modules["schemainspect.misc"] = misc
    try:
        spec.loader.exec_module(misc)
    except BaseException:
        del sys.modules["schemainspect.misc"]
        raise
    misc.external_caller = lambda: "schemainspect.pg.obj"  # type: ignore[attr-defined]
    import schemainspect

    schemainspect.misc = misc  # type: ignore[attr-defined]  # as importing it the usual way would (migra reads it)


def _schemainspect(conn: Any) -> Any:
    with _IMPORTING:
        _offer_resource_stream()
        from schemainspect.pg import PostgreSQL

    return PostgreSQL(conn)


def _discard(statements: list[str], statement: str) -> None:
    if statement in statements:
        statements.remove(statement)


def _same_column(a: Any, b: Any) -> bool:
    """Whether two schemainspect columns have the same definition (inheritance aside)."""
    def shape(c: Any) -> tuple[Any, ...]:
        return (c.dbtypestr, c.default, c.not_null, c.collation, c.is_identity, c.is_identity_always,
                c.is_generated)
    return shape(a) == shape(b)


def _function_users(live: Any, declared: Any) -> dict[str, frozenset[str]]:
    """Functions that differ between the sides -> tables and views whose definitions call them.

    Found by name in the definitions' text (defaults, constraints, indexes, triggers, views), which
    may over-report (a column named like the function) but never misses a call; it only orders
    statements, so over-reporting costs nothing. Only changed functions are searched for.
    """
    changed: dict[str, set[str]] = {}
    for key in set(live.functions) | set(declared.functions):
        before, after = live.functions.get(key), declared.functions.get(key)
        if before is None or after is None or before != after:
            fn = before or after
            changed.setdefault(fn.name.lower(), set()).add(f"{fn.schema}.{fn.name}")
    if not changed:
        return {}
    calls = re.compile(r'(?<![\w$])"?(' + "|".join(re.escape(n) for n in changed) + r')"?\s*\(', re.IGNORECASE)
    users: dict[str, set[str]] = {}

    def note(text: str | None, relation: str) -> None:
        for name in {m.lower() for m in calls.findall(text or "")}:
            for function in changed.get(name, ()):
                users.setdefault(function, set()).add(relation)

    for inspector in (live, declared):
        for table in inspector.tables.values():
            for column in table.columns.values():
                note(column.default, f"{table.schema}.{table.name}")
        for group in (inspector.constraints, inspector.indexes):
            for obj in group.values():
                note(obj.definition, f"{obj.schema}.{obj.table_name}")
        for trigger in inspector.triggers.values():
            note(trigger.full_definition, f"{trigger.schema}.{trigger.table_name}")
        for view in inspector.selectables.values():
            if view.relationtype in ("v", "m"):
                note(view.definition, f"{view.schema}.{view.name}")
    return {k: frozenset(v) for k, v in users.items()}


def _facts(live: Any, declared: Any) -> SchemaFacts:
    def columns(inspector: Any) -> dict[str, str]:
        return {
            f"{t.schema}.{t.name}.{name}": col.dbtypestr
            for t in inspector.tables.values()
            for name, col in t.columns.items()
        }

    def enums(inspector: Any) -> dict[str, tuple[str, ...]]:
        return {f"{e.schema}.{e.name}": tuple(e.elements) for e in inspector.enums.values()}

    def dependencies(inspector: Any) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {}
        for view in inspector.selectables.values():
            if view.relationtype in ("v", "m"):
                found = (inspector.selectables.get(sig) for sig in view.dependent_on_all)
                out[f"{view.schema}.{view.name}"] = frozenset(f"{d.schema}.{d.name}" for d in found if d)
        return out

    storage = [*live.tables.values(), *live.materialized_views.values()]
    return SchemaFacts(
        server_version=int(getattr(live, "pg_version", 0) or 0),
        live_tables=frozenset(f"{t.schema}.{t.name}" for t in storage),
        partitioned_tables=frozenset(
            f"{t.schema}.{t.name}" for t in live.tables.values() if t.relationtype == "p"
        ),
        live_relations=frozenset(f"{r.schema}.{r.name}" for r in live.relations.values()),
        live_functions=frozenset(f"{f.schema}.{f.name}" for f in live.functions.values()),
        live_dependencies=dependencies(live),
        live_columns=columns(live),
        declared_columns=columns(declared),
        live_enums=enums(live),
        declared_enums=enums(declared),
        declared_dependencies=dependencies(declared),
        live_parents={
            f"{t.schema}.{t.name}": f"{live.tables[t.parent_table].schema}.{live.tables[t.parent_table].name}"
            for t in live.tables.values() if t.is_inheritance_child_table and t.parent_table in live.tables
        },
        live_index_tables={f"{i.schema}.{i.name}": f"{i.schema}.{i.table_name}" for i in live.indexes.values()},
        function_users=_function_users(live, declared),
    )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warm_up() -> None:
    """Import migra and schemainspect now (about a second, mostly schemainspect's own start-up), so
    the first plan a daemon makes after start is not the one that pays for it."""
    with _IMPORTING:
        _offer_resource_stream()
        import migra  # noqa: F401
        import schemainspect.pg  # noqa: F401
