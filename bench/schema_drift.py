"""Benchmark: a no-change schema drift check, ours against the raw migra CLI, side by side.

For 20, 200 and 1000 tables this creates a live database and a copy holding the same schema on an
embedded PostgreSQL, then times

* ``migra``: the raw CLI (``.venv/bin/migra --unsafe --with-privileges LIVE DECLARED``), a new
  process each time, inspecting both databases;
* ``ours (cached)``: ``PostgresProvider.plan`` with the declared side already cached for the
  content key, i.e. a drift check of an unchanged revision: one live inspection, the diff, the
  classification;
* ``ours (cold)``: the first ``plan`` for a content key, which also loads the SQL files into a
  scratch database and inspects it.

Each figure is the median of ``--repeat`` runs. Run with::

    .venv/bin/python bench/schema_drift.py [--sizes 20,200,1000] [--repeat 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchkit import reproduce, write_section  # noqa: E402

from reconciler.providers.postgres import EmbeddedPostgres, PostgresProvider  # noqa: E402
from reconciler.providers.postgres.urls import sqlalchemy_url  # noqa: E402

HEADING = "## Schema drift check"


def schema_sql(tables: int) -> str:
    parts = []
    for n in range(tables):
        parts.append(
            f"create table t{n:04d} (\n"
            f"    id bigint generated always as identity primary key,\n"
            f"    name text not null,\n"
            f"    amount numeric(12,2) default 0,\n"
            f"    created_at timestamptz not null default now()\n"
            f");\n"
            f"create index t{n:04d}_name_idx on t{n:04d} (name);\n"
        )
    return "".join(parts)


def median_time(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_size(server: EmbeddedPostgres, migra: Path, size: int, repeat: int) -> tuple[int, float, float, float]:
    sql = schema_sql(size)
    with psycopg.connect(server.url, autocommit=True) as conn:
        for name in (f"live_{size}", f"declared_{size}"):
            conn.execute(f"drop database if exists {name} with (force)".encode())
            conn.execute(f"create database {name}".encode())
    live, declared = server.database_url(f"live_{size}"), server.database_url(f"declared_{size}")
    for url in (live, declared):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.encode())

    def raw_migra() -> None:
        done = subprocess.run(
            [str(migra), "--unsafe", "--with-privileges", sqlalchemy_url(live), sqlalchemy_url(declared)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"migra found changes or failed ({done.returncode}): {done.stderr[:500]}")

    files = [("schema.sql", sql)]
    provider = PostgresProvider()
    keys = iter(range(1_000_000))

    def cold() -> None:
        assert provider.plan("bench", live, files, f"cold-{next(keys)}", ["public"]) == []

    def cached() -> None:
        assert provider.plan("bench", live, files, "rev", ["public"]) == []

    cached()  # fill the cache for the unchanged revision
    return size, median_time(raw_migra, repeat), median_time(cached, repeat), median_time(cold, max(1, repeat // 2))


def bench(sizes: list[int], repeat: int) -> list[tuple[int, float, float, float]]:
    migra = ROOT / ".venv" / "bin" / "migra"
    if not migra.exists():
        migra = Path(shutil.which("migra") or "migra")
    base = Path(tempfile.mkdtemp(prefix="reconciler-bench-"))
    results = []
    try:
        with EmbeddedPostgres(base / "pg") as server:
            for size in sizes:
                results.append(bench_size(server, migra, size, repeat))
                _, raw, cached, cold = results[-1]
                print(f"{size:>5} tables: migra {raw:.2f}s, ours cached {cached:.2f}s, ours cold {cold:.2f}s",
                      flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def section(results: list[tuple[int, float, float, float]], command: str) -> str:
    rows = "\n".join(
        f"| {size} | {migra:.2f} s | {cached:.2f} s | {cached / migra:.2f}x | {cold:.2f} s |"
        for size, migra, cached, cold in results
    )
    return f"""{HEADING}

A no-change drift check of a live database against its declared schema (every table: identity
primary key, three more columns with defaults, one index), on the embedded PostgreSQL, on
{platform.machine()} with {platform.python_implementation()} {platform.python_version()}. Median of
several runs; wall-clock time.

* **migra**: the raw CLI, `migra --unsafe --with-privileges LIVE DECLARED`, a new process per run,
  inspecting both databases.
* **ours (cached)**: `PostgresProvider.plan` for a revision whose declared side is cached (a drift
  check of an unchanged revision): inspects only the live database, diffs, classifies.
* **ours (cold)**: the first `plan` of a revision: also loads the SQL files into a scratch
  database, inspects it and drops it.

Not like for like: *ours* runs inside a process that has already imported everything, *migra* is a
new process each time, and these tables have no foreign keys, views or functions. Whole processes
side by side, on a richer schema, are in
[Cold and warm CLI drift and plan against migra](#cold-and-warm-cli-drift-and-plan-against-migra).

| tables | migra | ours (cached) | ours / migra | ours (cold) |
|---:|---:|---:|---:|---:|
{rows}

{reproduce(command)}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,1000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path, help="update this Markdown file's 'Schema drift check' section")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = bench([int(s) for s in args.sizes.split(",")], args.repeat)
    if args.write:
        command = f".venv/bin/python bench/schema_drift.py --sizes {args.sizes} --repeat {args.repeat}"
        write_section(args.write, HEADING, section(results, command + f" --write {args.write}"))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
