"""Benchmark: ``reconciler drift`` / ``plan`` as fresh processes against the raw ``migra`` CLI (issue 12).

For 20, 200 and 1000 tables of a schema with foreign keys, check constraints, indexes, views and
functions, this makes on an embedded PostgreSQL

* a live database holding the schema (what ``staging`` runs), and a second database holding the
  same schema for migra to compare it with;
* a desired-state repository with one environment (``staging``) and one ``Database`` whose schema
  folder is that SQL, and a ``reconciler.toml`` (registry platform, SQLite state store);

then times, alternating one run of each so both see the same machine, whole processes:

* ``migra --unsafe --with-privileges LIVE DECLARED`` (inspects both databases, diffs);
* ``reconciler drift staging`` and ``reconciler plan staging`` (no changes: exit 0), each
  **cold** — the declared schema never seen by any process: the persistent schema cache
  (``<data_dir>/cache/schemas``) is emptied before each run, so the SQL files are loaded into a
  scratch database and inspected — and **warm** — the cache holds the declared schema from an
  earlier process — in two cases: *live changed* (a catalog change that is no drift, ``ALTER
  TABLE ... SET STATISTICS``, made right before the run, so the live database is inspected and
  diffed) and *live unchanged* (the catalogs are as an earlier process saw them: its diff is reused);
* and, like for like with a cold run, ``createdb``, ``psql -f`` of the same SQL, ``migra``, ``dropdb``
  in one shell: what a migra user does with a schema seen for the first time.

Each figure is the median over ``--runs`` pairs of the wall-clock time, and of the per-pair ratio
ours / migra. Goals (issue 12): cold <= 1.0x, warm <= 0.5x. Run with::

    .venv/bin/python bench/cold_cli.py [--sizes 20,200,1000] [--runs 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pgserver  # type: ignore[import-untyped]
import psycopg
from benchkit import (
    CLI,
    ROOT,
    argument_parser,
    code_version,
    embedded_postgres,
    load_average,
    machine,
    median,
    reproduce,
    write_section,
)

from reconciler.providers.postgres import EmbeddedPostgres
from reconciler.providers.postgres.urls import sqlalchemy_url, with_database
from reconciler.source import workspace
from tests.daemon_support import to_toml

HEADING = "## Cold and warm CLI drift and plan against migra"
MIGRA = ROOT / ".venv" / "bin" / "migra"


def schema_sql(tables: int) -> str:
    """Tables in chains of ten linked by foreign keys, each with a check, two indexes and a default
    calling a function; a view over every pair of neighbours, a SQL function per ten tables."""
    parts = ["create function next_code(prefix text) returns text language sql stable as "
             "$$ select prefix || '-' || to_char(now(), 'YYYYMMDD') $$;\n"]
    for n in range(tables):
        parent = f"    parent_id bigint references t{n - 1:04d} (id),\n" if n % 10 else ""
        parts.append(
            f"create table t{n:04d} (\n"
            f"    id bigint generated always as identity primary key,\n{parent}"
            f"    name text not null,\n"
            f"    code text not null default next_code('t{n:04d}'),\n"
            f"    status text not null default 'open' check (status in ('open', 'closed')),\n"
            f"    amount numeric(12,2) default 0 check (amount >= 0),\n"
            f"    created_at timestamptz not null default now()\n"
            f");\n"
            f"create index t{n:04d}_name_idx on t{n:04d} (name);\n"
            f"create unique index t{n:04d}_code_key on t{n:04d} (code);\n"
        )
        if n % 10:
            parts.append(f"create view v{n:04d} as select c.id, c.name, p.name as parent_name, c.amount "
                         f"from t{n:04d} c join t{n - 1:04d} p on p.id = c.parent_id where c.status = 'open';\n")
        if n % 10 == 0:
            parts.append(f"create function total_{n:04d}(since timestamptz) returns numeric language sql stable as "
                         f"$$ select coalesce(sum(amount), 0) from t{n:04d} where created_at >= since $$;\n")
    return "".join(parts)


@dataclass
class Setup:
    size: int
    config: Path
    cache: Path
    live: str
    declared: str
    sql: Path  # the declared schema in one file, for migra's own cold run (psql -f)
    server: str  # the server's URL (its socket), where migra's own cold run makes its database


def prepare(base: Path, server: EmbeddedPostgres, size: int) -> Setup:
    sql = schema_sql(size)
    names = {"live": f"cold_live_{size}_{base.name.replace('-', '_')}",
             "declared": f"cold_declared_{size}_{base.name.replace('-', '_')}"}
    with psycopg.connect(server.url, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f"drop database if exists {name} with (force)".encode())
            conn.execute(f"create database {name}".encode())
    urls = {k: server.database_url(v) for k, v in names.items()}
    for url in urls.values():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())
    root = base / f"size-{size}"
    desired = root / "repo" / "desired-state"
    (desired / "environments").mkdir(parents=True)
    (desired / "databases" / "crm").mkdir(parents=True)
    (desired / "reconciler.yaml").write_text("version: 1\nenvironments: [staging]\n")
    (desired / "environments" / "staging.yaml").write_text(
        "kind: Environment\nname: staging\ntrack: {branch: main}\nsync: {destructive_changes: allow}\n")
    (desired / "databases" / "crm.yaml").write_text(
        "kind: Database\nname: crm\nschema: databases/crm\nmanaged_schemas: [public]\n"
        "environments:\n  staging: {url: \"${secret:BENCH_CRM_URL}\"}\n")
    (desired / "databases" / "crm" / "001_schema.sql").write_text(sql)
    (root / "schema.sql").write_text(sql)
    workspace.init(root / "repo")
    workspace.commit_all(root / "repo", "schema")
    config = root / "reconciler.toml"
    config.write_text(to_toml({"data_dir": str(root / "data"), "source": {"url": str(root / "repo")},
                               "secrets": {"backends": ["env"]}, "log": {"level": "warning"}}))
    os.environ["BENCH_CRM_URL"] = urls["live"]
    # The registry gets its environment once, so what follows is a no-change drift check and plan.
    run([str(CLI), "apply", "staging", "--config", str(config)])
    return Setup(size, config, root / "data" / "cache" / "schemas", urls["live"], urls["declared"], root / "schema.sql",
                 server.url)


def run(args: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args[:3])} exited {done.returncode}: {done.stderr[-3000:]}")
    return elapsed


@dataclass
class Figure:
    size: int
    command: str
    mode: str
    ours: float
    migra: float
    ratio: float
    server: str = "durable"


MODES = ("cold", "cold, migra loads too", "warm, live changed", "warm, live unchanged")
GOALS = {"cold": 1.0, "cold, migra loads too": 1.0, "warm, live changed": 0.5, "warm, live unchanged": 0.5}
BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"  # the embedded server's createdb, psql, dropdb


def migra_cold(setup: Setup) -> list[str]:
    """What a migra user does with a declared schema seen for the first time: make a database, load the
    file into it (psql -f), diff, drop it; one shell, so one process tree is timed as ours is."""
    parts = urlsplit(setup.server)
    host = parse_qs(parts.query)["host"][0]
    name = "cold_migra_" + secrets.token_hex(4)
    conn = f"-h {shlex.quote(host)} -U postgres"
    declared = sqlalchemy_url(with_database(setup.server, name))
    script = (
        f"{BIN}/createdb {conn} {name} && "
        f"{BIN}/psql -q -X -v ON_ERROR_STOP=1 {conn} -d {name} -f {shlex.quote(str(setup.sql))} >/dev/null && "
        f"{MIGRA} --unsafe --with-privileges {shlex.quote(sqlalchemy_url(setup.live))} {shlex.quote(declared)}; "
        f"rc=$?; {BIN}/dropdb {conn} {name}; exit $rc"
    )
    return ["sh", "-c", script]


def touch(url: str, n: int) -> None:
    """A catalog change that is no drift: the next plan must inspect the live database again."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter table t0000 alter column name set statistics {100 + n % 2}".encode())


def throwaway(server: EmbeddedPostgres) -> None:
    """Configure the server as the test suite does for data it throws away (no disk flushes)."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"alter system set {setting} = off".encode())
        conn.execute(b"select pg_reload_conf()")


def measure(setup: Setup, runs: int, server: str) -> list[Figure]:
    migra = [str(MIGRA), "--unsafe", "--with-privileges", sqlalchemy_url(setup.live), sqlalchemy_url(setup.declared)]
    figures = []
    touches = 0
    for command in ("drift", "plan"):
        ours = [str(CLI), command, "staging", "--config", str(setup.config)]
        run(ours)  # warm-up: the state store exists, the page cache holds the interpreter
        run(migra)
        for mode in MODES:
            pairs = []
            for _ in range(runs):
                if mode.startswith("cold"):
                    shutil.rmtree(setup.cache, ignore_errors=True)
                else:
                    run(ours)  # the declared schema is seen before by another process
                if mode == "warm, live changed":
                    touches += 1
                    touch(setup.live, touches)
                a = run(ours)
                b = run(migra_cold(setup) if mode == "cold, migra loads too" else migra)
                pairs.append((a, b))
            figure = Figure(setup.size, command, mode, median([a for a, _ in pairs]), median([b for _, b in pairs]),
                            median([a / b for a, b in pairs]), server)
            figures.append(figure)
            print(f"{server} server, {setup.size:>5} tables {command:5} {mode}: ours {figure.ours:.2f}s, "
                  f"migra {figure.migra:.2f}s, ratio {figure.ratio:.2f}x", flush=True)
    return figures


def section(figures: list[Figure], command: str, load: str) -> str:
    rows = "\n".join(
        f"| {f.server} | {f.size} | `{f.command}` | {f.mode} | {f.ours:.2f} s | {f.migra:.2f} s | {f.ratio:.2f}x | "
        f"≤ {GOALS[f.mode]:.1f}x: {'met' if f.ratio <= GOALS[f.mode] else '**missed**'} |"
        for f in figures
    )
    return f"""{HEADING}

Issue 12's cold-cost goals, on {machine()}; load average {load}; code: {code_version()}.

Whole processes, side by side on the same two databases of an embedded PostgreSQL: `reconciler
drift staging` / `reconciler plan staging` (no changes, exit 0; registry platform, SQLite state
store) against `migra --unsafe --with-privileges LIVE DECLARED`. The schema has, per table, an
identity primary key, a foreign key to the previous table (chains of ten), two checks, a default
calling a SQL function, a plain and a unique index, plus a view joining each table to its parent and
a SQL function per ten tables. *Cold*: no process has seen this declared schema (the persistent
cache in `<data_dir>/cache/schemas` is emptied before each run): the SQL files are loaded into a
scratch database and inspected, while the live database is inspected in parallel. *Warm*: an
earlier process saw the declared schema, which comes from that cache; *live changed*: right before
the run the live catalogs change without drift (`ALTER TABLE ... SET STATISTICS`), so the live
database is inspected and diffed; *live unchanged*: the catalogs are as the earlier process saw
them, so its diff is reused after a fingerprint of the catalogs (one query) says so. migra is
handed an already loaded second database, so its figure contains no SQL loading, except in *cold,
migra loads too*: there the migra side does what a migra user seeing the schema for the first time
does, in one shell (`createdb`, `psql -f` of the same SQL, `migra`, `dropdb`), which is the
like-for-like comparison of a cold run. Runs alternate one of each; medians of the times and of the
per-pair ratio. *Durable* is the embedded server as it
starts (`fsync` on); *throw-away* is the same server with `fsync`, `full_page_writes` and
`synchronous_commit` off, as the test suite runs it.

| server | tables | command | mode | ours | migra | ours / migra | goal |
|---|---:|---|---|---:|---:|---:|---|
{rows}

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", default="20,200,1000")
    parser.add_argument("--runs", type=int, default=5, help="pairs of runs per figure")
    parser.add_argument("--servers", default="durable", help="durable and/or throw-away, comma-separated")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    before = load_average()
    base = Path(tempfile.mkdtemp(prefix="reconciler-cold-"))
    figures: list[Figure] = []
    try:
        with embedded_postgres(base) as server:
            for kind in args.servers.split(","):
                if kind == "throw-away":
                    throwaway(server)
                for size in (int(s) for s in args.sizes.split(",")):
                    figures += measure(prepare(base / kind, server, size), args.runs, kind)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.write:
        command = (f".venv/bin/python bench/cold_cli.py --sizes {args.sizes} --runs {args.runs} "
                   f"--servers {args.servers} --write {args.write}")
        write_section(args.write, HEADING, section(figures, command, f"{before} before, {load_average()} after"))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
