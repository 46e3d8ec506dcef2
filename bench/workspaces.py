"""Benchmark: many workspaces on one daemon (issue 13) — idle cost, and a commit in one workspace.

One real ``reconciler run`` process on loopback serving ``--workspaces`` workspaces, each with its
own local Git repository (watched), three branch-tracked environments (``development``,
``staging``, ``production``, all following ``main``) and ``--objects`` platform objects per
environment (one group and configuration variables with a value per environment) on its own
built-in registry (SQLite); the state store is one SQLite file, or with ``--state postgres`` a
database on an embedded PostgreSQL (then every workspace also polls its replica leases once a
second, and the idle figure adds the server's CPU: its postmaster and every backend).

* **start**: from process start to every environment of every workspace ``Synced``.
* **idle**: everything ``Synced``, left alone for ``--idle-seconds``: CPU from ``/proc/<pid>/stat``
  over the window (percent of one core), ``VmRSS`` at its end and the peak ``VmHWM``.
* **commit**: ``--commits`` commits in the first workspace (one variable's value changes in every
  environment), each timed from the ref being written to ``staging`` of that workspace reporting
  ``Synced`` at the commit. Meanwhile the other workspaces' runs and fetches are counted from
  ``/metrics`` (``reconciler_runs_total`` / ``reconciler_fetches_total`` by ``workspace``): they
  must not move.

Goals (issue 13): idle CPU < 1 % of a core, RSS < 150 MB, commit → Synced median < 1 s, others idle.
Run small first, then the full figure::

    .venv/bin/python bench/workspaces.py --workspaces 3 --objects 10 --idle-seconds 10 --commits 3
    .venv/bin/python bench/workspaces.py --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from benchkit import (
    ROOT,
    argument_parser,
    code_version,
    conditions,
    cpu_seconds,
    embedded_postgres,
    load_average,
    machine,
    median,
    metric_samples,
    ms,
    percentile,
    reproduce,
    rss_mb,
    verdict,
    write_section,
)

from reconciler.source import workspace as gitwork
from tests.daemon_support import DaemonProcess, start_daemon

HEADING = "## Workspaces: many teams on one daemon"
HEADINGS = {"sqlite": HEADING, "postgres": HEADING + ", on a PostgreSQL state store"}
ENVIRONMENTS = ("development", "staging", "production")
CPU_GOAL = 1.0  # percent of one core
RSS_GOAL = 150.0  # MiB
LATENCY_GOAL = 1.0  # seconds


def write_workspace(repo: Path, objects: int, version: int) -> str:
    """The desired state of one workspace; ``version`` changes one variable's value. Returns the commit."""
    desired = repo / "desired-state"
    (desired / "environments").mkdir(parents=True, exist_ok=True)
    (desired / "reconciler.yaml").write_text(f"version: 1\nenvironments: [{', '.join(ENVIRONMENTS)}]\n")
    for env in ENVIRONMENTS:
        (desired / "environments" / f"{env}.yaml").write_text(
            f"kind: Environment\nname: {env}\ntrack: {{branch: main}}\n"
            "sync: {automatic: true, prune: true, drift_check_interval: 30m}\n"
            "access: {edit: [admins], use: [admins]}\n")
    (desired / "groups.yaml").write_text("kind: Group\nname: admins\n")
    docs = []
    for n in range(objects - 1):
        value = f"v{version}" if n == 0 else "fixed"
        docs.append(f"kind: ConfigVariable\nname: VAR_{n:03d}\nsecret: false\nvalues:\n"
                    + "".join(f"  {env}: {env}-{n}-{value}\n" for env in ENVIRONMENTS))
    (desired / "variables.yaml").write_text("---\n".join(docs))
    if not (repo / ".git").exists():
        gitwork.init(repo)
    return gitwork.commit_all(repo, f"version {version}")


def names(count: int) -> list[str]:
    return [f"team-{n:02d}" for n in range(count)]


def all_synced(client: httpx.Client, workspaces: list[str]) -> bool:
    for ws in workspaces:
        envs = client.get(f"/api/v1/workspaces/{ws}/environments").json()["environments"]
        if len(envs) != len(ENVIRONMENTS) or any(env["state"] != "Synced" for env in envs):
            return False
    return True


def by_workspace(samples: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples.items():
        ws = labels.split('workspace="', 1)[1].split('"', 1)[0] if 'workspace="' in labels else "?"
        out[ws] = out.get(ws, 0.0) + value
    return out


@dataclass
class Figures:
    workspaces: int
    environments: int
    objects: int
    start: float = 0.0
    idle_cpu: float = 0.0
    rss: float = 0.0
    peak: float = 0.0
    latencies: list[float] = field(default_factory=list)
    others_runs: float = 0.0
    others_fetches: float = 0.0
    own_runs: float = 0.0
    state: str = "sqlite"
    idle_server_cpu: float | None = None  # the PostgreSQL state store's processes, percent of one core


def server_pids(data_dir: Path) -> list[int]:
    """The postmaster serving ``data_dir`` and its children (the backends and workers)."""
    postmaster = None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and str(data_dir).encode() in argv:
            postmaster = int(proc.name)
    if postmaster is None:
        raise SystemExit(f"no postmaster found for {data_dir}")
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *(int(pid) for pid in children)]


def server_cpu(data_dir: Path) -> float:
    """CPU seconds so far of the server's processes (backends that exit meanwhile are not counted)."""
    total = 0.0
    for pid in server_pids(data_dir):
        with contextlib.suppress(OSError):  # a backend that ended between listing and reading
            total += cpu_seconds(pid)
    return total


def run(args: argparse.Namespace) -> Figures:
    base = Path(tempfile.mkdtemp(prefix="bench-workspaces-"))
    try:
        if args.state == "postgres":
            with embedded_postgres(base) as server:
                with psycopg.connect(server.url, autocommit=True) as conn:
                    conn.execute(b"create database reconciler_state")
                url = server.database_url("reconciler_state").replace("postgresql://", "postgresql+psycopg://", 1)
                return measure(args, base, url, server.data_dir)
        return measure(args, base, f"sqlite:///{base / 'state.db'}", None)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def measure(args: argparse.Namespace, base: Path, state_url: str, server_dir: Path | None) -> Figures:
    spaces = names(args.workspaces)
    figures = Figures(len(spaces), len(spaces) * len(ENVIRONMENTS), args.objects, state=args.state)
    lines = [f'data_dir = "{base / "data"}"', "", "[state]", f'url = "{state_url}"']
    for ws in spaces:
        write_workspace(base / ws, args.objects, 0)
        lines += ["", "[[workspaces]]", f'name = "{ws}"', "[workspaces.source]", f'url = "{base / ws}"',
                  'poll_interval = "1h"']
    config = base / "reconciler.toml"
    config.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    daemon: DaemonProcess = start_daemon(config, base / "data")
    try:
        with daemon.client() as client:
            deadline = time.perf_counter() + args.start_timeout
            while not all_synced(client, spaces):
                if time.perf_counter() > deadline or daemon.proc.poll() is not None:
                    raise SystemExit(f"not all Synced in {args.start_timeout}s\n{daemon.logs()[-3000:]}")
                time.sleep(0.5)
            figures.start = time.perf_counter() - started
            print(f"all {figures.environments} environments Synced after {figures.start:.1f} s", flush=True)
            time.sleep(2)  # the last runs' follow-ups (promotion checks, memory trim) settle

            cpu0, t0 = cpu_seconds(daemon.proc.pid), time.perf_counter()
            server0 = server_cpu(server_dir) if server_dir is not None else 0.0
            time.sleep(args.idle_seconds)
            elapsed = time.perf_counter() - t0
            figures.idle_cpu = 100 * (cpu_seconds(daemon.proc.pid) - cpu0) / elapsed
            if server_dir is not None:
                figures.idle_server_cpu = 100 * (server_cpu(server_dir) - server0) / elapsed
                print(f"idle: the state store's server {figures.idle_server_cpu:.2f} % CPU", flush=True)
            figures.rss, figures.peak = rss_mb(daemon.proc.pid), rss_mb(daemon.proc.pid, "VmHWM")
            print(f"idle: {figures.idle_cpu:.2f} % CPU, RSS {figures.rss:.1f} MiB (peak {figures.peak:.1f})",
                  flush=True)

            target = spaces[0]
            runs0 = by_workspace(metric_samples(daemon.url, "reconciler_runs_total", client))
            fetches0 = by_workspace(metric_samples(daemon.url, "reconciler_fetches_total", client))
            for n in range(1, args.commits + 1):
                commit = write_workspace(base / target, args.objects, n)
                t = time.perf_counter()
                deadline = t + 60
                while True:
                    env = client.get(f"/api/v1/workspaces/{target}/environments/staging").json()
                    if env["state"] == "Synced" and env["applied_revision"] == commit:
                        break
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"{target}/staging did not reach {commit[:12]}: {env}")
                    time.sleep(args.poll_ms / 1000)
                figures.latencies.append(time.perf_counter() - t)
                print(f"  commit {n:>2}: {ms(figures.latencies[-1])}", flush=True)
                time.sleep(0.5)
            time.sleep(2)
            runs1 = by_workspace(metric_samples(daemon.url, "reconciler_runs_total", client))
            fetches1 = by_workspace(metric_samples(daemon.url, "reconciler_fetches_total", client))
            figures.own_runs = runs1.get(target, 0) - runs0.get(target, 0)
            figures.others_runs = sum(runs1.get(ws, 0) - runs0.get(ws, 0) for ws in spaces[1:])
            figures.others_fetches = sum(fetches1.get(ws, 0) - fetches0.get(ws, 0) for ws in spaces[1:])
            print(f"runs in {target}: {figures.own_runs:g}; in the others: {figures.others_runs:g} runs, "
                  f"{figures.others_fetches:g} fetches", flush=True)
    finally:
        daemon.terminate()
    return figures


def section(f: Figures, args: argparse.Namespace, command: str, load: str) -> str:
    lat = f.latencies
    cpu = f"< {CPU_GOAL:g} % ({verdict(f.idle_cpu, CPU_GOAL)})"
    rss = f"< {RSS_GOAL:g} MiB ({verdict(f.rss, RSS_GOAL)})"
    latency = f"< 1 s ({verdict(median(lat), LATENCY_GOAL)})"
    own = f"{len(lat) * len(ENVIRONMENTS)} (3 environments per commit)"
    others = f"{f.others_runs:g} / {f.others_fetches:g}"
    store = ("one SQLite state store" if f.state == "sqlite" else
             "the state store a database of an embedded PostgreSQL, so every workspace also looks at its replica "
             "leases once a second (members, leader, news), the workspaces sharing one read of the store")
    server = ("" if f.idle_server_cpu is None else
              f"| idle CPU of the state store's server (postmaster and backends) | "
              f"{f.idle_server_cpu:.2f} % of a core | — |\n")
    return f"""{HEADINGS[f.state]}

Issue 13's scale figure, measured on a real `reconciler run` process on loopback, on {machine()};
{load}.

{f.workspaces} workspaces in one daemon, each with its own local Git repository (watched), three
environments following `main` ({f.environments} in all) and {f.objects} platform objects per
environment (a group and {f.objects - 1} configuration variables) on its own built-in registry
(SQLite); {store}; drift checks every 30 minutes; logs at `info`.

| measurement | value | goal |
|---|---:|---|
| start → all {f.environments} environments `Synced` | {f.start:.1f} s | — |
| idle CPU over {args.idle_seconds:g} s | {f.idle_cpu:.2f} % of a core | {cpu} |
{server}| idle RSS (`VmRSS`) | {f.rss:.1f} MiB | {rss} |
| peak RSS (`VmHWM`, includes the start) | {f.peak:.1f} MiB | — |
| commit in one workspace → its staging `Synced`, median of {len(lat)} | {ms(median(lat))} | {latency} |
| ... p95 / max | {ms(percentile(lat, 95))} / {ms(max(lat))} | — |
| runs in that workspace during the commits | {f.own_runs:g} | {own} |
| runs / fetches in the other {f.workspaces - 1} workspaces meanwhile | {others} | 0 / 0 |

Each commit changes one variable's value in every environment of the first workspace; the figure
is from the ref being written to `GET /api/v1/workspaces/team-00/environments/staging` (polled every
{args.poll_ms} ms) reporting `Synced` at that commit.

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--objects", type=int, default=100, help="platform objects per environment")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--poll-ms", type=int, default=10)
    parser.add_argument("--start-timeout", type=float, default=900)
    parser.add_argument("--state", choices=("sqlite", "postgres"), default="sqlite",
                        help="the state store: an SQLite file, or a database on an embedded PostgreSQL")
    parser.add_argument("--write", type=Path, help="update this Markdown file's workspaces section")
    args = parser.parse_args()
    load_before, code = load_average(), code_version()
    figures = run(args)
    if args.write:
        command = (f".venv/bin/python bench/workspaces.py --workspaces {args.workspaces} --objects {args.objects} "
                   f"--idle-seconds {args.idle_seconds:g} --commits {args.commits} --state {args.state} "
                   f"--write {args.write}")
        load = conditions(load_before, code)
        write_section(args.write, HEADINGS[args.state], section(figures, args, command, load))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    print(f"(repository {ROOT})", flush=True)
    main()
