"""Domains of the managed schemas: read from the catalogs and diffed, since migra ignores them.

``MigraEngine.inspect`` reads them with ``QUERY`` into ``Domain``s (kept on the ``Inspection``) and
``MigraEngine.diff`` adds ``changes(live, declared)``'s statements to migra's: creations first
(columns may use the domain), alterations next, drops last (after columns stopped using it).
``classify`` gives them ids and risks like every other statement.

A domain is compared by its base type, collation, default, NOT NULL and named CHECK constraints
(with whether each is validated). A domain whose base type or collation changes cannot be altered:
it is dropped and created again, which PostgreSQL refuses while a column uses it (see
docs/schema-engine-limits.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Domains of the managed schemas that no extension owns, with their CHECK constraints (a domain's
# NOT NULL is typnotnull; PostgreSQL 17 also lists it in pg_constraint as contype 'n').
QUERY = """
select n.nspname as schema, t.typname as name,
       pg_catalog.format_type(t.typbasetype, t.typtypmod) as data_type,
       case when t.typcollation <> bt.typcollation then
           (select pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(c.collname)
            from pg_catalog.pg_collation c join pg_catalog.pg_namespace cn on cn.oid = c.collnamespace
            where c.oid = t.typcollation) end as collation,
       t.typdefault as "default", t.typnotnull as not_null,
       coalesce((select json_agg(json_build_array(con.conname, pg_catalog.pg_get_constraintdef(con.oid, true),
                                                  con.convalidated) order by con.conname)
                 from pg_catalog.pg_constraint con where con.contypid = t.oid and con.contype = 'c')::text,
                '[]') as checks
from pg_catalog.pg_type t
join pg_catalog.pg_namespace n on n.oid = t.typnamespace
join pg_catalog.pg_type bt on bt.oid = t.typbasetype
where t.typtype = 'd' and n.nspname = any(:schemas)
  and not exists (select 1 from pg_catalog.pg_depend d
                  where d.classid = 'pg_catalog.pg_type'::regclass and d.objid = t.oid and d.deptype = 'e')
"""


@dataclass(frozen=True)
class Domain:
    schema: str
    name: str
    data_type: str
    collation: str | None
    default: str | None
    not_null: bool
    checks: tuple[tuple[str, str, bool], ...]  # (name, definition, validated), by name

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"

    @staticmethod
    def from_row(row: Mapping[str, object]) -> Domain:
        checks = json.loads(str(row["checks"] or "[]"))
        return Domain(
            schema=str(row["schema"]), name=str(row["name"]), data_type=str(row["data_type"]),
            collation=str(row["collation"]) if row["collation"] else None,
            default=str(row["default"]) if row["default"] is not None else None,
            not_null=bool(row["not_null"]),
            checks=tuple((str(n), str(d), bool(v)) for n, d, v in checks),
        )

    def create(self) -> str:
        parts = [f"create domain {self.quoted} as {self.data_type}"]
        if self.collation:
            parts.append(f"collate {self.collation}")
        if self.default is not None:
            parts.append(f"default {self.default}")
        if self.not_null:
            parts.append("not null")
        parts += [f"constraint {_ident(name)} {definition}" for name, definition, _ in self.checks]
        return " ".join(parts) + ";"


def read(rows: Iterable[Mapping[str, object]]) -> dict[str, Domain]:
    domains = (Domain.from_row(row) for row in rows)
    return {d.key: d for d in domains}


def changes(live: Mapping[str, Domain], declared: Mapping[str, Domain]) -> tuple[list[str], list[str], list[str]]:
    """Statements turning the live domains into the declared ones: (creations, alterations, drops)."""
    creates: list[str] = []
    alters: list[str] = []
    drops: list[str] = []
    for key, want in sorted(declared.items()):
        have = live.get(key)
        if have is None:
            creates.append(want.create())
        elif (have.data_type, have.collation) != (want.data_type, want.collation):
            # Not alterable: replaced (refused by PostgreSQL while a column uses it).
            drops_first = f"drop domain {have.quoted};"
            creates += [drops_first, want.create()]
        else:
            alters += _alterations(have, want)
    for key, have in sorted(live.items()):
        if key not in declared:
            drops.append(f"drop domain {have.quoted};")
    return creates, alters, drops


def _alterations(have: Domain, want: Domain) -> list[str]:
    out: list[str] = []
    target = f"alter domain {want.quoted}"
    if have.default != want.default:
        out.append(f"{target} drop default;" if want.default is None else f"{target} set default {want.default};")
    if have.not_null != want.not_null:
        out.append(f"{target} {'set' if want.not_null else 'drop'} not null;")
    had = {name: (definition, valid) for name, definition, valid in have.checks}
    wanted = {name: definition for name, definition, _ in want.checks}
    for name, (definition, _) in sorted(had.items()):
        if wanted.get(name) != definition:
            out.append(f"{target} drop constraint {_ident(name)};")
    for name, definition in sorted(wanted.items()):
        before = had.get(name)
        if before is None or before[0] != definition:
            out.append(f"{target} add constraint {_ident(name)} {definition};")
        elif not before[1]:
            out.append(f"{target} validate constraint {_ident(name)};")
    return out


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
