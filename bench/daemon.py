"""Benchmark: the daemon (issue 4) — commit → Synced latency, idle cost, and a burst of webhooks.

A real ``reconciler run`` process on loopback (started as the end-to-end tests start it), the
example desired state with a third environment, ``development`` (tracks the branch ``develop``,
has its own CRM database), three databases on an embedded PostgreSQL, the built-in registry.

* **latency**: ``--commits`` config-only commits on ``main`` (the value of ``SUPPORT_EMAIL``
  changes), each timed from the moment the commit's ref is written to the moment
  ``GET /api/v1/environments/staging`` reports ``Synced`` at that commit (polled every
  ``--poll-ms``). Twice: with a local watch (``source.url`` = the repository's path; watchfiles on
  its refs), and with a webhook (``source.url`` = ``file://...``, ``poll_interval = "1h"``,
  ``webhook_secret`` set; a signed ``POST /hooks/github`` right after each commit). A short pause
  separates commits so each one starts from an idle daemon.
* **idle**: the local-watch daemon with its three environments Synced, left alone for
  ``--idle-seconds``: CPU from ``/proc/<pid>/stat`` (utime + stime) over the window, RSS
  (``VmRSS``) at its end and the peak (``VmHWM``). Scheduled drift checks (every minute for staging
  and development) run inside the window, as they would in production.
* **burst**: ``--burst`` signed webhooks sent at once by ``--senders`` threads to the webhook
  daemon, first with nothing new in Git (duplicate deliveries), then right after a commit. Counted:
  responses by status, ``reconciler_fetches_total`` and ``reconciler_runs_total`` deltas from
  ``/metrics``, the time until every response arrived and until the daemon was quiet again.

Goals: median commit → Synced under 1 s; idle under 1 % of a core and 120 MB. Run with::

    .venv/bin/python bench/daemon.py [--commits 20] [--idle-seconds 60] [--burst 1000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pygit2
from benchkit import (
    ROOT,
    Example,
    argument_parser,
    code_version,
    conditions,
    cpu_seconds,
    embedded_postgres,
    github_signature,
    load_average,
    machine,
    make_example,
    median,
    metric_samples,
    metric_sum,
    ms,
    percentile,
    reproduce,
    rss_mb,
    set_config_value,
    verdict,
    write_section,
)

from reconciler.source import workspace
from tests.daemon_support import TEST_NOW, DaemonProcess, start_daemon

HEADING = "## Daemon: commit to Synced, idle cost, webhook bursts"
# The daemons' clock starts on a Wednesday morning: production (v1.0.0) must sync before anything is
# measured, and the example's Friday-evening deny window would otherwise hold it for 64 h.
# One clock for every daemon: their run records are on it, and SHIFT takes them back to wall time.
SINCE = time.time()
CLOCK = {"RECONCILER_NOW": TEST_NOW, "RECONCILER_NOW_SINCE": repr(SINCE)}
SHIFT = dt.datetime.fromisoformat(TEST_NOW).timestamp() - SINCE
LATENCY_GOAL = 1.0
CPU_GOAL = 1.0  # percent of one core
RSS_GOAL = 120.0  # MiB

DEVELOPMENT = """kind: Environment
name: development
description: Developers' sandbox, following the develop branch
color: "#00703C"
track:
  branch: develop
sync:
  automatic: true
  self_heal: true
  prune: true
  destructive_changes: allow
  drift_check_interval: 1m
access:
  edit: [platform-admins]
  use: [support-team, platform-admins]
"""


def add_development(example: Example) -> None:
    """Give the example a third environment, ``development``, tracking a new branch ``develop``."""
    desired = example.desired
    root = desired / "reconciler.yaml"
    root.write_text(root.read_text().replace("[staging, production]", "[development, staging, production]"))
    (desired / "environments" / "development.yaml").write_text(DEVELOPMENT)
    variables = desired / "config" / "variables.yaml"
    variables.write_text(variables.read_text().replace(
        '  staging: "${secret:SEGMENT_STAGING_KEY}"',
        '  development: "${secret:SEGMENT_DEVELOPMENT_KEY}"\n  staging: "${secret:SEGMENT_STAGING_KEY}"'))
    database = desired / "databases" / "crm.yaml"
    database.write_text(database.read_text().replace(
        "  staging:", '  development: {url: "${secret:CRM_DB_DEVELOPMENT_ADMIN_URL}"}\n  staging:'))
    example.secrets["SEGMENT_DEVELOPMENT_KEY"] = "bench-segment-development"
    head = example.commit("Add a development environment")
    repo = pygit2.Repository(str(example.repo))
    repo.branches.local.create("develop", repo.get(head))  # type: ignore[arg-type]


# -- latency ----------------------------------------------------------------------------------------------


@dataclass
class Latency:
    mode: str
    totals: list[float] = field(default_factory=list)
    to_run: list[float] = field(default_factory=list)  # commit → run record written (detect + plan)
    runs: list[float] = field(default_factory=list)  # the run's own duration

    def row(self) -> str:
        m, slowest = median(self.totals), max(self.totals)
        return (f"| {self.mode} | {len(self.totals)} | {ms(m)} | {ms(percentile(self.totals, 95))} | "
                f"{ms(slowest)} (#{self.totals.index(slowest) + 1}) | {ms(median(self.to_run))} | "
                f"{ms(median(self.runs))} | median < 1 s: {verdict(m, LATENCY_GOAL)}; "
                f"p95 and #1 < 1 s: {verdict(max(percentile(self.totals, 95), self.totals[0]), LATENCY_GOAL)} |")


def measure_latency(example: Example, daemon: DaemonProcess, mode: str, commits: int, poll: float,
                    webhook: bool) -> Latency:
    result = Latency(mode)
    secret = example.secrets["WEBHOOK_SECRET"]
    with daemon.client() as client:
        for n in range(commits):
            old = _support_email(example)
            new = f"support-staging-{mode.split()[0]}-{n}@example.com"
            set_config_value(example.desired, old, new)
            commit = example.commit(f"Support address {new}")
            start, wall = time.perf_counter(), time.time()
            if webhook:
                body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
                response = client.post("/hooks/github", content=body, headers={
                    "X-Hub-Signature-256": github_signature(secret, body), "X-GitHub-Event": "push",
                    "Content-Type": "application/json"})
                if response.status_code != 202:
                    raise SystemExit(f"webhook refused: {response.status_code} {response.text}")
            deadline = start + 30
            while True:
                env = client.get("/api/v1/environments/staging").json()
                if env["state"] == "Synced" and env["applied_revision"] == commit:
                    break
                if time.perf_counter() > deadline:
                    raise SystemExit(f"staging did not reach {commit[:12]}: {env}\n{daemon.logs()[-3000:]}")
                time.sleep(poll)
            result.totals.append(time.perf_counter() - start)
            run = client.get(f"/api/v1/environments/staging/runs/{env['last_run_id']}").json() \
                if env.get("last_run_id") else env["last_run"]
            started = dt.datetime.fromisoformat(run["started_at"]).timestamp() - SHIFT
            result.to_run.append(started - wall)
            result.runs.append(run["duration_seconds"] or 0.0)
            print(f"  {mode} commit {n + 1:>2}: {ms(result.totals[-1])} (to run record {ms(result.to_run[-1])}, "
                  f"run {run['result']} {ms(result.runs[-1])})", flush=True)
            time.sleep(0.3)
    return result


def _support_email(example: Example) -> str:
    text = (example.desired / "config" / "variables.yaml").read_text()
    start = text.index("support-staging")
    return text[start:text.index("@example.com", start) + len("@example.com")]


# -- idle --------------------------------------------------------------------------------------------------


@dataclass
class Idle:
    seconds: float
    cpu_percent: float
    rss_start: float
    rss_end: float
    rss_peak: float
    drift_checked: int  # environments whose drift was checked inside the window

    def rows(self) -> str:
        return (f"| CPU over {self.seconds:.0f} s idle | {self.cpu_percent:.2f} % of a core | < 1 %: "
                f"{verdict(self.cpu_percent, CPU_GOAL)} |\n"
                f"| RSS at the end of the window (start: {self.rss_start:.0f} MB) | {self.rss_end:.0f} MB | "
                f"< 120 MB: {verdict(self.rss_end, RSS_GOAL)} |\n"
                f"| peak RSS of the process so far (VmHWM) | {self.rss_peak:.0f} MB | "
                f"< 120 MB: {verdict(self.rss_peak, RSS_GOAL)} |\n"
                f"| environments drift-checked inside the window | {self.drift_checked} of 3 | |")


def measure_idle(daemon: DaemonProcess, envs: list[str], seconds: float) -> Idle:
    pid = daemon.proc.pid
    time.sleep(5)  # let the last run's follow-ups (promotion checks, lease release) finish
    checked = {env: daemon.env(env)["last_checked_at"] for env in envs}
    cpu0, rss0, t0 = cpu_seconds(pid), rss_mb(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    drift_checked = sum(daemon.env(env)["last_checked_at"] != checked[env] for env in envs)
    idle = Idle(t1 - t0, 100 * (cpu1 - cpu0) / (t1 - t0), rss0, rss_mb(pid), rss_mb(pid, "VmHWM"), drift_checked)
    print(f"  idle {idle.seconds:.0f} s: CPU {idle.cpu_percent:.2f} % of a core, RSS {idle.rss_end:.0f} MB "
          f"(peak {idle.rss_peak:.0f} MB), {idle.drift_checked} environments drift-checked", flush=True)
    return idle


# -- bursts ---------------------------------------------------------------------------------------------


@dataclass
class Burst:
    label: str
    sent: int
    statuses: Counter[int]
    fetches: float
    runs: float
    responses_s: float
    quiet_s: float
    runs_by: dict[str, float]

    def row(self) -> str:
        codes = ", ".join(f"{n} x {code}" for code, n in sorted(self.statuses.items()))
        results: Counter[str] = Counter()
        for labels, n in self.runs_by.items():
            results[labels.split('result="')[1].split('"')[0] if 'result="' in labels else labels] += int(n)
        detail = f" ({', '.join(f'{n} {r}' for r, n in sorted(results.items()))})" if results else ""
        return (f"| {self.label} | {self.sent} | {codes} | {self.fetches:.0f} | {self.runs:.0f}{detail} | "
                f"{self.responses_s:.2f} s | {self.quiet_s:.2f} s |")


def burst(example: Example, daemon: DaemonProcess, label: str, count: int, senders: int,
          commit: str | None) -> Burst:
    secret = example.secrets["WEBHOOK_SECRET"]
    # GitHub's push event: the branch and the commit it now points at (nothing new: the head the daemon
    # has, as when a hook is redelivered or several integrations send the same push).
    after = commit or daemon.env("staging")["applied_revision"]
    body = json.dumps({"ref": "refs/heads/main", "after": after}).encode()
    headers = {"X-Hub-Signature-256": github_signature(secret, body), "X-GitHub-Event": "push",
               "Content-Type": "application/json"}
    metrics = httpx.Client(timeout=10)
    fetches0 = metric_sum(daemon.url, "reconciler_fetches_total", metrics)
    runs0 = metric_sum(daemon.url, "reconciler_runs_total", metrics)
    by_label0 = metric_samples(daemon.url, "reconciler_runs_total", metrics)
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    with httpx.Client(base_url=daemon.url, timeout=60, limits=limits) as client:

        def send(_n: int) -> None:
            code = client.post("/hooks/github", content=body, headers=headers).status_code
            with lock:
                statuses[code] += 1

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            list(pool.map(send, range(count)))
        responses = time.perf_counter() - start

    # Quiet = the fetch and run counters unchanged for 2 s (and staging at the commit, when there is one).
    last_change, seen = time.perf_counter(), (fetches0, runs0)
    while time.perf_counter() - last_change < 2.0:
        now = (metric_sum(daemon.url, "reconciler_fetches_total", metrics),
               metric_sum(daemon.url, "reconciler_runs_total", metrics))
        synced = commit is None or daemon.env("staging")["applied_revision"] == commit
        if now != seen or not synced:
            seen, last_change = now, time.perf_counter()
        if time.perf_counter() - start > 120:
            raise SystemExit(f"{label}: the daemon did not settle within 120 s")
        time.sleep(0.02)
    by_label = metric_samples(daemon.url, "reconciler_runs_total", metrics)
    metrics.close()
    runs_by = {k: v - by_label0.get(k, 0) for k, v in by_label.items() if v != by_label0.get(k, 0)}
    result = Burst(label, count, statuses, seen[0] - fetches0, seen[1] - runs0, responses, last_change - start,
                   runs_by)
    print(f"  burst {label}: {dict(statuses)}, {result.fetches:.0f} fetches, {result.runs:.0f} runs, responses in "
          f"{responses:.2f} s, quiet after {result.quiet_s:.2f} s; runs {runs_by}", flush=True)
    return result


# -- the whole benchmark --------------------------------------------------------------------------------


def wait_all_synced(daemon: DaemonProcess, envs: list[str]) -> None:
    for env in envs:
        daemon.wait_env(env, timeout=120, state="Synced")


def run(args: argparse.Namespace) -> tuple[list[Latency], Idle | None, list[Burst]]:
    base = Path(tempfile.mkdtemp(prefix="reconciler-bench-daemon-"))
    envs = ["development", "staging", "production"]
    latencies: list[Latency] = []
    bursts: list[Burst] = []
    idle = None
    daemon: DaemonProcess | None = None
    try:
        with embedded_postgres(base) as pg:
            example = make_example(base, pg, envs)
            add_development(example)
            workspace.tag(example.repo, "v1.0.0", "Release 1.0.0")
            poll = args.poll_ms / 1000

            print("local watch (source.url = the repository's path)", flush=True)
            daemon = start_daemon(example.config, example.data_dir, env={**example.secrets, **CLOCK},
                                  name="daemon-watch")
            wait_all_synced(daemon, envs)
            latencies.append(measure_latency(example, daemon, "local watch", args.commits, poll, webhook=False))
            if args.idle_seconds > 0:
                idle = measure_idle(daemon, envs, args.idle_seconds)
            daemon.terminate()

            print("webhook (source.url = file://..., poll_interval = 1h)", flush=True)
            example.configure(source={"url": f"file://{example.repo}", "branches": ["main", "develop"],
                                      "poll_interval": "1h", "webhook_secret": "${secret:WEBHOOK_SECRET}"})
            daemon = start_daemon(example.config, example.data_dir, env={**example.secrets, **CLOCK},
                                  name="daemon-webhook")
            wait_all_synced(daemon, envs)
            latencies.append(measure_latency(example, daemon, "webhook", args.commits, poll, webhook=True))
            if args.burst > 0:
                time.sleep(1)
                bursts.append(burst(example, daemon, "nothing new in Git", args.burst, args.senders, None))
                old = _support_email(example)
                set_config_value(example.desired, old, "support-staging-burst@example.com")
                commit = example.commit("Support address for the burst")
                bursts.append(burst(example, daemon, "right after a commit", args.burst, args.senders, commit))
            daemon.terminate()
            daemon = None
    finally:
        if daemon is not None:
            daemon.kill()
        shutil.rmtree(base, ignore_errors=True)
    return latencies, idle, bursts


def section(latencies: list[Latency], idle: Idle | None, bursts: list[Burst], args: argparse.Namespace,
            command: str, load: str) -> str:
    latency_rows = "\n".join(r.row() for r in latencies)
    idle_rows = idle.rows() if idle else "| (not measured) | | |"
    burst_rows = "\n".join(b.row() for b in bursts) or "| (not measured) | | | | | | |"
    return f"""{HEADING}

Issue 4's speed goals, measured on a real `reconciler run` process on loopback, on {machine()};
{load}.

The example desired state plus a third environment, `development` (tracks the branch `develop`,
its own CRM database): three databases on an embedded PostgreSQL, the built-in registry (SQLite),
the state store in SQLite, logs at the default level (`info`, JSON lines to a file).

**Commit → staging `Synced`** for a config-only change (the value of `SUPPORT_EMAIL` in
`config/variables.yaml`), {args.commits} commits per mode, each from an idle daemon. Timed from the
moment the commit's ref is written to the moment `GET /api/v1/environments/staging` (polled every
{args.poll_ms} ms) reports `Synced` at that commit. *Local watch*: `source.url` is the repository's
path, watchfiles sees the ref change. *Webhook*: `source.url = "file://..."`, `poll_interval = "1h"`,
`webhook_secret` set, a signed `POST /hooks/github` sent right after the commit (its round trip is
inside the figure). *To run record* is the commit → the run's `started_at` (detect, fetch, resolve,
plan); *run* is the run's own duration (apply one config variable, verify with a fresh plan, which
includes a live schema inspection of the CRM database). *Max* names the slowest commit; #1 is the
first run of that daemon process, which pays one-time costs (lazy imports of the schema toolchain,
the first load of the declared schema) when the daemon had nothing to apply at start.

| mode | commits | median | p95 | max | median to run record | median run | goal |
|---|---:|---:|---:|---:|---:|---:|---|
{latency_rows}

**Idle daemon** with the three environments `Synced` (local watch), left alone for
{args.idle_seconds} s after the latency runs: CPU from `/proc/<pid>/stat` (utime + stime) over the
window, `VmRSS` of the daemon process (the embedded PostgreSQL is a separate process, not counted).

| measurement | value | goal |
|---|---:|---|
{idle_rows}

**Webhook bursts** against the webhook daemon: {args.burst} signed `POST /hooks/github` from
{args.senders} threads over keep-alive connections, each GitHub's push event for `main` (its `ref` and
`after`): with nothing new, `after` is the head the daemon already has (a redelivered hook, or several
integrations sending the same push); right after a commit, the new commit. Goal (issue 12): at most 2
fetches per burst. Fetches and runs are the deltas of
`reconciler_fetches_total` and `reconciler_runs_total` from `/metrics`; *quiet after* is the time
from the first request until both counters stopped moving for 2 s (and, after a commit, staging
reached it).

| burst | webhooks | responses | fetches caused | runs caused | all responses in | quiet after |
|---|---:|---|---:|---:|---:|---:|
{burst_rows}

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--poll-ms", type=int, default=10, help="API polling interval while waiting for Synced")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=32, help="threads sending the burst")
    parser.add_argument("--write", type=Path, help="update this Markdown file's daemon section")
    args = parser.parse_args()
    load_before, code = load_average(), code_version()
    latencies, idle, bursts = run(args)
    if args.write:
        command = (f".venv/bin/python bench/daemon.py --commits {args.commits} --poll-ms {args.poll_ms} "
                   f"--idle-seconds {args.idle_seconds:g} --burst {args.burst} --senders {args.senders} "
                   f"--write {args.write}")
        load = conditions(load_before, code)
        write_section(args.write, HEADING, section(latencies, idle, bursts, args, command, load))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    print(f"(repository {ROOT})", flush=True)
    main()
