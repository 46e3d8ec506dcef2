"""A fingerprint of a live database's catalogs: changes whenever its schema may have changed.

``MigraEngine.inspect`` reads it inside the inspection's own snapshot, and ``PostgresProvider.plan``
reads it first, on one short connection, before deciding whether to inspect at all: a schema diff
is a function of the declared schema and the live catalogs, so when both are what they were at an
earlier plan (by any process), that plan's diff is still the answer and the live database need not
be inspected again (``cache.py`` keeps diffs on disk). A fingerprint that differs only costs a full
inspection; one that stayed the same while the schema changed would hide drift, so it errs on
the side of changing:

* every row of every catalog table of the database the session may read, by its row version:
  PostgreSQL writes a new row version, with a new ``xmin`` and ``ctid``, for every catalog change a
  DDL statement makes, and removes the rows of dropped objects. Only planner statistics and large
  objects (data, not schema; ANALYZE rewrites them all the time) are left out;
* of the catalogs the server's databases share, what concerns this one: its own ``pg_database``
  row, the settings of this database and of every database (``pg_db_role_setting``), role
  memberships and tablespaces; not the rows other databases write (creating a database elsewhere
  on the server changes nothing here);
* the catalog fields PostgreSQL changes in place, without a new row version, that an inspection can
  see: an index's valid, ready and live flags (CREATE INDEX CONCURRENTLY);
* role names (privileges and owners are printed by name; ``pg_authid`` itself is not readable),
  the settings that change how definitions are printed (``search_path``, date, interval, float
  and bytea output), the server's exact version, and which database and server this is.

Who reads it: ``diffing.py`` (in the inspection's transaction) and ``provider.py`` (fast path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

# Catalogs that change without a schema change (statistics, large objects' data): left out.
EXCLUDED = ("pg_statistic", "pg_statistic_ext_data", "pg_largeobject", "pg_largeobject_metadata")

# Settings that change how PostgreSQL prints defaults, view and function definitions, constants.
PRINTING_SETTINGS = (
    "search_path", "DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits", "bytea_output",
    "standard_conforming_strings", "quote_all_identifiers", "lc_monetary", "lc_numeric", "xmloption",
)

CATALOGS_QUERY = """
select c.relname from pg_catalog.pg_class c
where c.relnamespace = 'pg_catalog'::regnamespace and c.relkind = 'r' and not c.relisshared
  and pg_catalog.has_table_privilege(c.oid, 'select') and c.relname <> all(%(excluded)s)
order by c.relname
"""

_IDENTITY = """
select 'identity', concat_ws(' ', current_database(),
    (select d.oid from pg_catalog.pg_database d where d.datname = current_database()),
    current_setting('server_version_num'), current_user,
    case when pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'execute')
         then (select s.system_identifier::text from pg_catalog.pg_control_system() s) end)
union all
select 'database', (select d.ctid::text || d.xmin::text from pg_catalog.pg_database d
                    where d.datname = current_database())
union all
select 'database-settings', md5(coalesce(string_agg(s.ctid::text || s.xmin::text, ','), ''))
from pg_catalog.pg_db_role_setting s
where s.setdatabase in (0, (select d.oid from pg_catalog.pg_database d where d.datname = current_database()))
union all
select 'memberships', md5(coalesce(string_agg(m.ctid::text || m.xmin::text, ','), ''))
from pg_catalog.pg_auth_members m
union all
select 'tablespaces', md5(coalesce(string_agg(t.ctid::text || t.xmin::text, ','), ''))
from pg_catalog.pg_tablespace t
union all
select 'index-flags', md5(coalesce(string_agg(i.indexrelid::text || ':' || i.indisvalid::text || i.indisready::text
                                               || i.indislive::text, ',' order by i.indexrelid), ''))
from pg_catalog.pg_index i
union all
select 'roles', md5(coalesce(string_agg(r.oid::text || '=' || r.rolname, ',' order by r.oid), ''))
from pg_catalog.pg_roles r
union all
select 'settings', coalesce(string_agg(s.name || '=' || s.setting, ',' order by s.name), '')
from pg_catalog.pg_settings s where s.name = any(%(settings)s)
"""


def fingerprint_query(catalogs: Sequence[str]) -> str:
    """One query returning ``(part, digest)`` rows for ``catalogs`` and the in-place fields."""
    parts = [_IDENTITY]
    for name in catalogs:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a catalog name: {name!r}")
        # In scan order, unsorted: sorting costs more than the rest, and another order only
        # makes a different fingerprint (a full inspection), never a wrong one.
        parts.append(f"select '{name}', md5(coalesce(string_agg(t.ctid::text || t.xmin::text, ','), '')) "  # noqa: S608
                     f"from pg_catalog.{name} t")  # a catalog's name from pg_class, checked above
    return "\nunion all\n".join(parts)


def fingerprint(execute: Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]) -> str:
    """The fingerprint of the database ``execute`` runs on (psycopg-style ``%(name)s`` parameters).

    Run it in the transaction that reads the schema, so both see the same snapshot.
    """
    catalogs = [str(row[0]) for row in execute(CATALOGS_QUERY, {"excluded": list(EXCLUDED)})]
    rows = execute(fingerprint_query(catalogs), {"settings": list(PRINTING_SETTINGS)})
    digest = hashlib.sha256()
    for part, value in sorted((str(p), str(v)) for p, v in rows):
        digest.update(f"{part}\0{value}\0".encode())
    return "catalog:" + digest.hexdigest()
