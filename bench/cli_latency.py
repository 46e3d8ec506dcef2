"""Benchmark: how long a fresh ``reconciler`` process takes for everyday commands (issue 12, part 3).

On the example in ``desired-state/`` (12 documents, committed to a fresh repository, its two CRM
databases on an embedded PostgreSQL, the built-in registry and an SQLite state store; staging
applied once, so what follows changes nothing), this times whole processes, as a user types them:

* ``reconciler status``;
* ``reconciler validate desired-state`` (no configuration, no database);
* ``reconciler plan staging`` on a registry-only copy of the example (the ``Database`` removed):
  no schema involved;
* for context, ``reconciler plan staging`` and ``reconciler drift staging`` on the example itself
  (one Database; the declared schema and the live catalogs are as an earlier process saw them).

Each figure is the median over ``--runs`` runs after one warm-up, of the wall-clock time and of the
CPU time (user + system) of the process, which is what the wall-clock time would be on an idle
machine with a free core. The import cost of the libraries every command needs is measured the
same way (``python -c 'import X'``) to show the floor. Goals: ``status`` < 0.3 s, ``validate`` <
0.5 s, registry-only ``plan`` < 0.5 s (wall-clock, fresh process, idle machine).

    .venv/bin/python bench/cli_latency.py [--runs 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import (
    CLI,
    EXAMPLE,
    PYTHON,
    argument_parser,
    code_version,
    embedded_postgres,
    load_average,
    machine,
    make_example,
    median,
    reproduce,
    write_section,
)

from reconciler.source import workspace
from tests.daemon_support import to_toml

HEADING = "## CLI latency: a fresh process per command"
GOALS = {"status": 0.3, "validate": 0.5, "plan, registry only": 0.5}
LIBRARIES = ("typer", "pydantic", "pydantic_settings", "structlog", "sqlalchemy", "pygit2", "yaml", "pglast",
             "psycopg", "rich.console")
# What `status` imports on the example, together (its table is drawn with rich; the example's deny window is
# checked with APScheduler's cron parser); and the same without the two a store and configuration reader of
# our own could replace. The floor under the status goal.
STATUS_LIBRARIES = ("typer", "pydantic", "pydantic_settings", "sqlalchemy", "pygit2", "yaml", "pglast", "rich.table",
                    "apscheduler.triggers.cron")
WITHOUT = ("sqlalchemy", "pydantic_settings")


@dataclass
class Figure:
    name: str
    wall: float
    cpu: float


def timed(args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one process running ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args[:3])} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def figure(name: str, args: list[str], env: dict[str, str], runs: int) -> Figure:
    timed(args, env)  # warm-up: page cache, bytecode
    samples = [timed(args, env) for _ in range(runs)]
    result = Figure(name, median([w for w, _ in samples]), median([c for _, c in samples]))
    print(f"{name:32} wall {result.wall * 1000:6.0f} ms, cpu {result.cpu * 1000:6.0f} ms", flush=True)
    return result


def registry_only(base: Path) -> Path:
    """The example without its Database, committed to a repository of its own; returns its config."""
    repo = base / "registry-only"
    shutil.copytree(EXAMPLE, repo / "desired-state")
    for folder in ("databases", "checks"):  # the Database and the checks that query it
        shutil.rmtree(repo / "desired-state" / folder, ignore_errors=True)
    app = repo / "desired-state" / "apps" / "customer-support-dashboard.yaml"
    app.write_text("".join(line for line in app.read_text().splitlines(keepends=True)
                           if not line.startswith("databases:")))
    workspace.init(repo)
    workspace.commit_all(repo, "Registry only")
    config = base / "registry-only.toml"
    config.write_text(to_toml({"data_dir": str(base / "registry-only-data"), "source": {"url": str(repo)},
                               "secrets": {"backends": ["env"]}}))
    return config


def measure(base: Path, runs: int) -> tuple[list[Figure], list[Figure]]:
    env = {**os.environ, "RECONCILER_LOG_LEVEL": "error"}
    figures: list[Figure] = []
    with embedded_postgres(base) as server:
        example = make_example(base / "example", server)
        env.update(example.secrets)
        config = ["--config", str(example.config)]
        timed([str(CLI), "apply", "staging", *config], env)
        plain = registry_only(base)
        timed([str(CLI), "apply", "staging", "--config", str(plain)], env)
        figures.append(figure("status", [str(CLI), "status", *config], env, runs))
        figures.append(figure("validate", [str(CLI), "validate", str(example.desired)], env, runs))
        figures.append(figure("plan, registry only", [str(CLI), "plan", "staging", "--config", str(plain)], env, runs))
        figures.append(figure("plan, one Database", [str(CLI), "plan", "staging", *config], env, runs))
        figures.append(figure("drift, one Database", [str(CLI), "drift", "staging", *config], env, runs))
    floor = [figure("python (interpreter start)", [str(PYTHON), "-c", "pass"], env, runs)]
    floor += [figure(f"import {name}", [str(PYTHON), "-c", f"import {name}"], env, runs) for name in LIBRARIES]
    together = ", ".join(STATUS_LIBRARIES)
    floor.append(figure("status's libraries together", [str(PYTHON), "-c", f"import {together}"], env, runs))
    fewer = ", ".join(name for name in STATUS_LIBRARIES if name not in WITHOUT)
    floor.append(figure("the same less SQLAlchemy, pydantic-settings", [str(PYTHON), "-c", f"import {fewer}"], env,
                        runs))
    return figures, floor


def section(figures: list[Figure], floor: list[Figure], command: str, load: str) -> str:
    def goal(f: Figure) -> str:
        if f.name not in GOALS:
            return "context"
        limit = GOALS[f.name]
        wall = "met" if f.wall < limit else "**missed**"
        return f"< {limit:.1f} s: {wall} (CPU: {'met' if f.cpu < limit else 'missed'})"

    rows = "\n".join(f"| `{f.name}` | {f.wall * 1000:.0f} ms | {f.cpu * 1000:.0f} ms | {goal(f)} |" for f in figures)
    start = floor[0].cpu
    libraries = "\n".join(f"| `{f.name}` | {f.cpu * 1000:.0f} ms | {(f.cpu - start) * 1000:.0f} ms |" for f in floor)
    return f"""{HEADING}

Issue 12's CLI latency goals, on {machine()}; load average {load}; code: {code_version()}.

Whole `reconciler` processes, each the median of several runs after a warm-up, on the example in
`desired-state/` (12 documents; its CRM databases on an embedded PostgreSQL, the registry and the
state store in SQLite; staging applied, so nothing changes). *Registry only* is the same example
without its Database. *Wall* is the wall-clock time, *CPU* the process's user + system time: on a
shared machine the wall-clock time includes waiting for a core, and the CPU time is what the
command would take on an idle one. The goals are on the wall-clock time of an idle machine.

| command | wall | CPU | goal |
|---|---:|---:|---|
{rows}

What every process pays before it does anything: `python -c 'import X'`, CPU time, and the same
less the interpreter's own start. A command imports most of these (`status`: typer, pydantic and
pydantic-settings for the configuration, SQLAlchemy for the state store, pygit2, PyYAML and pglast
for the desired state, rich for its table); psycopg only when a Database is involved, structlog only
when a line is logged at the configured level (none is, by these commands, at the CLI's default
`error`). The last two rows import `status`'s libraries in one process ({", ".join(STATUS_LIBRARIES)}),
then the same without SQLAlchemy and pydantic-settings: the floor under the `status` goal with the
chosen libraries, and with a state store and configuration reader of our own.

| import | CPU | less the interpreter |
|---|---:|---:|
{libraries}

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    before = load_average()
    base = Path(tempfile.mkdtemp(prefix="reconciler-cli-latency-"))
    try:
        figures, floor = measure(base, args.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.write:
        command = f".venv/bin/python bench/cli_latency.py --runs {args.runs} --write {args.write}"
        write_section(args.write, HEADING, section(figures, floor, command, f"{before} before, {load_average()} after"))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
