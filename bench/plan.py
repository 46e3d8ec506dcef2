"""Benchmark: ``plan`` of the example desired state, and ``validate`` of a 500-document folder (issue 2).

``plan`` — the example in ``desired-state/`` committed to a fresh repository, its two CRM databases
on an embedded PostgreSQL, the built-in registry as the platform. Timed: ``Reconciler.plan("staging")``

* **warm**: one ``Reconciler`` reused, second and later calls (the desired state of the revision
  and the declared schema are cached; one read of the registry and one live schema inspection);
* **cold**: the first call in a new process (the declared-schema cache is per process): builds the
  ``Reconciler``, loads the tree, loads the SQL files into a scratch database and inspects it;
* **CLI**: the ``reconciler plan staging`` process (always cold: interpreter start and imports too);

each for a fresh staging (everything to create) and after ``apply`` (no changes).

``validate`` — a generated folder of 500 valid documents (2 environments, resources with
per-environment options, plain and secret config variables, groups, apps with a source folder each
that reference resources, config variables and groups). Timed: ``loader.load(DirectoryTree(...))``
in-process, the same folder committed to Git and loaded from the Git tree, and the
``reconciler validate PATH`` process.

Goals: warm ``plan`` well under 1 s; ``validate`` of 500 documents under 2 s. Run with::

    .venv/bin/python bench/plan.py [--runs 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchkit import (
    CLI,
    PYTHON,
    Example,
    argument_parser,
    code_version,
    conditions,
    embedded_postgres,
    load_average,
    machine,
    make_example,
    median,
    ms,
    percentile,
    quiet_logs,
    reproduce,
    verdict,
    write_section,
)

from reconciler.app.wiring import build_reconciler
from reconciler.config import load_settings
from reconciler.desired import loader
from reconciler.errors import ValidationError
from reconciler.source import workspace
from reconciler.source.repository import Repository
from reconciler.source.trees import DirectoryTree

HEADING = "## Plan and validate"
PLAN_GOAL = 1.0
VALIDATE_GOAL = 2.0


@dataclass
class Row:
    what: str
    runs: int
    median: float
    p95: float
    goal: float | None = None
    judged_on: str = "median"

    def line(self) -> str:
        value = self.p95 if self.judged_on == "p95" else self.median
        goal = "context"
        if self.goal is not None:
            goal = f"{self.judged_on} < {self.goal:g} s: {verdict(value, self.goal)}"
        return f"| {self.what} | {self.runs} | {ms(self.median)} | {ms(self.p95)} | {goal} |"


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def row(what: str, times: list[float], goal: float | None = None, judged_on: str = "median") -> Row:
    result = Row(what, len(times), median(times), percentile(times, 95), goal, judged_on)
    print(f"{what:<58} median {ms(result.median):>8}  p95 {ms(result.p95):>8}", flush=True)
    return result


def cli_times(args: list[str], runs: int, ok: tuple[int, ...]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([str(CLI), *args], capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode not in ok:
            raise SystemExit(f"reconciler {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return times


def cold_first_plan(config: Path) -> float:
    """The first ``plan`` of a new process, after the imports the CLI does before it (``--child-cold``)."""
    done = subprocess.run([str(PYTHON), __file__, "--child-cold", str(config)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"cold plan failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def child_cold(config: Path) -> None:
    quiet_logs()
    settings = load_settings(config)
    start = time.perf_counter()
    reconciler = build_reconciler(settings)
    reconciler.plan("staging")
    print(time.perf_counter() - start)
    reconciler.close()


# -- plan ---------------------------------------------------------------------------------------------------


def bench_plan(example: Example, runs: int, cli_runs: int) -> list[Row]:
    settings = load_settings(example.config)
    rows: list[Row] = []
    for phase in ("fresh staging, everything to create", "after apply, no changes"):
        expect_changes = phase.startswith("fresh")
        cold = [cold_first_plan(example.config) for _ in range(3)]
        reconciler = build_reconciler(settings)
        plan = reconciler.plan("staging")
        if bool(plan.items) != expect_changes:
            raise SystemExit(f"{phase}: plan has {len(plan.items)} items")
        warm = timed(lambda r=reconciler: r.plan("staging"), runs)  # type: ignore[misc]
        cli = cli_times(["plan", "staging", "--config", str(example.config)], cli_runs, (0, 2))
        rows += [
            row(f"`plan staging`, {phase}, {len(plan.items)} items: warm", warm, PLAN_GOAL, "p95"),
            row(f"`plan staging`, {phase}: cold (first call of a process)", cold),
            row(f"`plan staging`, {phase}: CLI process", cli),
        ]
        if expect_changes:
            outcome = reconciler.reconcile("staging")
            if outcome.result != "Succeeded":
                raise SystemExit(f"apply staging: {outcome.result}: {outcome.reason}")
        reconciler.close()
    return rows


# -- validate ----------------------------------------------------------------------------------------------


def generate(folder: Path, resources: int = 150, config: int = 200, groups: int = 48, apps: int = 100) -> int:
    """Write a valid desired-state folder of ``2 + resources + config + groups + apps`` documents."""
    envs = ["staging", "production"]
    (folder / "environments").mkdir(parents=True)
    (folder / "reconciler.yaml").write_text(f"version: 1\nenvironments: [{', '.join(envs)}]\n")
    for env in envs:
        track = "  branch: main\n"
        if env == "production":
            track = "  tag: \"v*\"\n  from_branch: main\n  promoted_from: staging\n"
        (folder / "environments" / f"{env}.yaml").write_text(
            f"kind: Environment\nname: {env}\ndescription: The {env} environment\ntrack:\n{track}"
            f"sync:\n  automatic: true\n  drift_check_interval: 5m\naccess:\n  edit: [group-000]\n  use: [group-001]\n")
    (folder / "resources").mkdir()
    for n in range(resources):
        (folder / "resources" / f"res-{n:03d}.yaml").write_text(f"""kind: Resource
name: res-{n:03d}
type: {"postgresql" if n % 2 else "restapi"}
description: Generated resource number {n}
folder: folder-{n % 10}
options:
  port: {5000 + n}
  ssl: true
  base_url: "${{config:VAR_{n % config:03d}}}"
environments:
  staging:
    options: {{host: res-{n}.staging.internal, password: "${{secret:BENCH_SECRET_STAGING}}"}}
  production:
    options: {{host: res-{n}.internal, password: "${{secret:BENCH_SECRET_PRODUCTION}}"}}
""")
    (folder / "config").mkdir()
    for chunk in range(0, config, 20):
        docs = []
        for n in range(chunk, min(chunk + 20, config)):
            if n % 10 == 9:
                docs.append(f"kind: ConfigVariable\nname: VAR_{n:03d}\ndescription: Secret {n}\nsecret: true\n"
                            f"values:\n  staging: \"${{secret:BENCH_SECRET_STAGING}}\"\n"
                            f"  production: \"${{secret:BENCH_SECRET_PRODUCTION}}\"\n")
            else:
                docs.append(f"kind: ConfigVariable\nname: VAR_{n:03d}\ndescription: Variable {n}\nvalues:\n"
                            f"  default: https://staging-{n}.example.com\n  production: https://{n}.example.com\n")
        (folder / "config" / f"vars-{chunk // 20:02d}.yaml").write_text("---\n".join(docs))
    (folder / "groups.yaml").write_text("---\n".join(
        f"kind: Group\nname: group-{n:03d}\ndescription: Group {n}\n" for n in range(groups)))
    (folder / "apps").mkdir()
    for n in range(apps):
        (folder / "apps" / f"app-{n:03d}").mkdir()
        (folder / "apps" / f"app-{n:03d}" / "app.json").write_text(
            f'{{"name": "app-{n:03d}", "pages": [{{"title": "Home", "widgets": {list(range(20))}}}]}}\n')
        (folder / "apps" / f"app-{n:03d}.yaml").write_text(f"""kind: App
name: app-{n:03d}
description: Generated app number {n}
folder: apps-{n % 5}
source: apps/app-{n:03d}
resources: [res-{n % resources:03d}, res-{(n + 1) % resources:03d}]
config: [VAR_{(2 * n) % config:03d}]
access: {{use: [group-{n % groups:03d}], edit: [group-000]}}
""")
    return 2 + resources + config + groups + apps


def bench_validate(base: Path, runs: int, cli_runs: int) -> list[Row]:
    repo = base / "validate-repo"
    folder = repo / "desired-state"
    count = generate(folder)
    try:
        state = loader.load(DirectoryTree(folder))
    except ValidationError as exc:
        raise SystemExit(f"the generated folder is invalid: {exc.problems[:5]}") from None
    if state.document_count() != count:
        raise SystemExit(f"generated {count} documents, loaded {state.document_count()}")
    workspace.init(repo)
    head = workspace.commit_all(repo, "500 documents")
    repository = Repository(str(repo))
    rows = [
        row(f"`validate`, {count} documents: `loader.load(DirectoryTree)`",
            timed(lambda: loader.load(DirectoryTree(folder)), runs), VALIDATE_GOAL),
        row(f"`validate`, {count} documents: `reconciler validate` process",
            cli_times(["validate", str(folder)], cli_runs, (0,)), VALIDATE_GOAL),
        row(f"load of the same {count} documents from the Git tree (a new revision in the daemon)",
            timed(lambda: loader.load(repository.tree(head, "desired-state")), runs)),
    ]
    return rows


def section(plan_rows: list[Row], validate_rows: list[Row], command: str, load: str) -> str:
    table = "\n".join(r.line() for r in [*plan_rows, *validate_rows])
    return f"""{HEADING}

Issue 2's speed goals: `plan` of the example on a warm cache well under 1 s (judged on the p95),
`validate` of 500 documents under 2 s (judged on the median). Wall-clock times on {machine()};
{load}.

* **plan**: the example in `desired-state/` committed to a fresh repository, its two CRM databases on
  an embedded PostgreSQL, the built-in registry (SQLite) as the platform. *Warm* = one `Reconciler`
  reused, second and later calls of `Reconciler.plan("staging")` (the desired state and the declared
  schema are cached; each call still reads the registry and inspects the live database). *Cold* = the
  first call in a new process, after the imports the CLI does first: builds the `Reconciler`, loads
  the tree, imports the schema toolchain, loads the SQL into a scratch database. *CLI* = the whole
  `reconciler plan staging` process (interpreter start and imports too). Measured on a fresh staging (every
  object and table to create) and again after `apply` (no changes).
* **validate**: a generated folder of 500 valid documents: 2 environments, 150 resources with
  per-environment options and secret references, 200 config variables (one in ten secret), 48
  groups, 100 apps each with a source folder and references to resources, config and groups.

| measurement | runs | median | p95 | goal |
|---|---:|---:|---:|---|
{table}

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=30, help="in-process runs per measurement")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI process")
    parser.add_argument("--write", type=Path, help="update this Markdown file's 'Plan and validate' section")
    parser.add_argument("--child-cold", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_cold:
        child_cold(args.child_cold)
        return
    quiet_logs()
    load_before, code = load_average(), code_version()
    base = Path(tempfile.mkdtemp(prefix="reconciler-bench-plan-"))
    try:
        with embedded_postgres(base) as pg:
            plan_rows = bench_plan(make_example(base, pg), args.runs, args.cli_runs)
        validate_rows = bench_validate(base, args.runs, args.cli_runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.write:
        command = f".venv/bin/python bench/plan.py --runs {args.runs} --cli-runs {args.cli_runs} --write {args.write}"
        load = conditions(load_before, code)
        write_section(args.write, HEADING, section(plan_rows, validate_rows, command, load))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
