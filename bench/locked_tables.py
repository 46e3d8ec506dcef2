"""Benchmark: how long plan, drift and apply take to give up on a table another session holds locked.

The example desired state on an embedded PostgreSQL; staging applied once, then a commit adding a
column to ``customers`` (so apply has a schema change to make). For each ``[databases]`` setting
(``--configs``: ``lock_timeout/lock_retries`` pairs) a second session holds a lock on
``customers`` in an open transaction while one command runs as a real process
(``python -m reconciler CMD staging --config ...``), timed from start to exit:

* ``plan``, ``drift`` and ``apply`` while the table is held ACCESS EXCLUSIVE (reading the live
  schema must wait for it);
* ``apply`` while it is held ACCESS SHARE (an open read transaction: reading passes, the ALTER
  TABLE of the apply transaction waits).

The exit code and the first line of stderr are recorded, and the column is checked absent after
each command. ``--python PATH`` runs the commands with another interpreter, e.g. the virtualenv of
a checkout of the code before the fix (``git archive`` + ``pip install -e``). Goal: each command
ends within about ``lock_timeout x (lock_retries + 1)`` plus the backoff and a few seconds. Run with::

    .venv/bin/python bench/locked_tables.py [--configs 1s/2,5s/3] [--python OTHER/.venv/bin/python]

and copy the Markdown table it prints into docs/reliability.md ("Locked tables").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import Example, code_version, embedded_postgres, machine, make_example

CASES = (("plan", "access exclusive"), ("drift", "access exclusive"), ("apply", "access exclusive"),
         ("apply", "access share"))


@contextmanager
def holding(url: str, mode: str) -> Iterator[None]:
    with psycopg.connect(url) as conn:
        conn.execute(f"lock table customers in {mode} mode".encode())
        yield
        conn.rollback()


def run(example: Example, python: str, *args: str) -> tuple[float, int, str]:
    started = time.monotonic()
    # Not from this checkout's folder: 'python -m' would import the reconciler package found there.
    done = subprocess.run([python, "-m", "reconciler", *args, "--config", str(example.config)], cwd=example.root,
                          capture_output=True, text=True, check=False, timeout=900)
    seconds = time.monotonic() - started
    first = (done.stderr.strip().splitlines() or [""])[0]
    return seconds, done.returncode, first[:300]


def columns(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(b"select column_name from information_schema.columns where table_name = 'customers'")
        return [str(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="1s/2,5s/3", help="lock_timeout/lock_retries pairs")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose reconciler is measured")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-locks-") as tmp, embedded_postgres(Path(tmp)) as pg:
        example = make_example(Path(tmp), pg)
        setup = run(example, sys.executable, "apply", "staging")
        if setup[1] != 0:
            raise SystemExit(f"staging did not apply: {setup}")
        (example.desired / "databases/crm/004_region.sql").write_text("alter table customers add column region text;\n")
        example.commit("Add customers.region")
        url = example.databases["staging"]
        for pair in args.configs.split(","):
            timeout, retries = pair.split("/")
            example.configure(databases={"lock_timeout": timeout, "lock_retries": int(retries)})
            for command, mode in CASES:
                with holding(url, mode):
                    seconds, code, first = run(example, args.python, command, "staging")
                assert "region" not in columns(url), "a change was applied under a held lock"
                rows.append((pair, command, mode, seconds, code, first))
                print(f"{pair:8} {command:6} {mode:17} {seconds:7.1f} s  exit {code}  {first}", flush=True)
    print(f"\ninterpreter {args.python} (this checkout: {code_version()}); {machine()}\n")
    print("| lock_timeout/retries | command | lock held | seconds to fail | exit | first line of stderr |")
    print("|---|---|---|---|---|---|")
    for pair, command, mode, seconds, code, first in rows:
        print(f"| {pair} | {command} | {mode.upper()} | {seconds:.1f} | {code} | {first.replace('|', '/')} |")


if __name__ == "__main__":
    main()
