"""Benchmark: load (issue 7) — 50 environments x ~400 platform objects, and a flood of bad webhooks.

One repository whose desired state declares ``--envs`` environments (all tracking ``main``) and,
rendered into each of them, ~400 platform objects: 50 resources (options with config references
and a secret), 110 config variables (10 secret, some with per-environment values), 20 groups,
40 apps with a source folder each, the folders they sit in, and 180 permissions (environment
access on every resource, app access on every app). No Database kind, so no PostgreSQL. The
built-in registry (SQLite) is the platform, the state store is SQLite.

Applied once (``Reconciler.reconcile`` per environment, timed for context), then, in a fresh
process so its memory is the process's own:

* **no-op pass**: ``Reconciler.reconcile(env)`` for every environment with nothing to change —
  the first pass on a new ``Reconciler`` (loads and validates the desired state once) and a second
  one (cached); wall time, then the process's peak RSS (``VmHWM``) and, in a third pass under
  ``tracemalloc``, the Python heap's peak during a pass;
* **drift checks at once**: ``Reconciler.drift(env)`` for every environment from a thread pool —
  as wide as the number of environments, and 4 wide (the daemon's run workers).

Then a real ``reconciler run`` on the same data (``source.url = file://...``, ``poll_interval =
"1h"``, ``webhook_secret`` set): ``--webhooks`` ``POST /hooks/github`` with bad or missing
signatures from ``--senders`` threads, while one more thread times ``GET /healthz`` every 10 ms
on its own connection. Counted: responses by status (all must be 401), fetches caused (must be
0), the rate, and the p50/p99/max ``/healthz`` latency before and during the flood.

Goals: the no-op pass under 5 s and 200 MB. Run with::

    .venv/bin/python bench/load.py [--envs 50] [--webhooks 10000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchkit import (
    PYTHON,
    argument_parser,
    code_version,
    conditions,
    load_average,
    machine,
    median,
    metric_samples,
    metric_sum,
    ms,
    percentile,
    quiet_logs,
    reproduce,
    rss_mb,
    verdict,
    write_section,
)

from reconciler.app.wiring import build_reconciler
from reconciler.config import load_settings
from reconciler.source import workspace
from tests.daemon_support import DaemonProcess, start_daemon, to_toml, wait_for

HEADING = "## Load: 50 environments x 400 objects"
PASS_GOAL = 5.0
MEMORY_GOAL = 200.0  # MiB
SECRETS = {"LOAD_SECRET_TOKEN": "load-token-value", "WEBHOOK_SECRET": "load-webhook-secret"}

RESOURCES, CONFIG, SECRET_CONFIG, GROUPS, APPS = 50, 100, 10, 20, 40


# -- the desired state ---------------------------------------------------------------------------------------


def generate(folder: Path, envs: list[str]) -> None:
    """Write the desired state: ``envs`` environments, each rendering ~400 platform objects."""
    for sub in ("environments", "resources", "config", "apps"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(f"version: 1\nenvironments: [{', '.join(envs)}]\n")
    for env in envs:
        (folder / "environments" / f"{env}.yaml").write_text(f"""kind: Environment
name: {env}
description: Load environment {env}
track:
  branch: main
sync:
  automatic: true
  self_heal: false
  prune: true
  drift_check_interval: 30m
access:
  edit: [admins]
  use: [users]
""")
    (folder / "groups.yaml").write_text("---\n".join(
        f"kind: Group\nname: {name}\ndescription: Group {name}\n"
        for name in ["admins", "users", *(f"team-{n:02d}" for n in range(GROUPS - 2))]))
    for n in range(RESOURCES):
        (folder / "resources" / f"res-{n:02d}.yaml").write_text(f"""kind: Resource
name: res-{n:02d}
type: {"postgresql" if n % 2 else "restapi"}
description: Load resource {n}
folder: folder-{n % 4}
options:
  port: {5000 + n}
  ssl: true
  base_url: "${{config:CV_{n:03d}}}"
  token: "${{secret:LOAD_SECRET_TOKEN}}"
""")
    for chunk in range(0, CONFIG, 25):
        docs = []
        for n in range(chunk, chunk + 25):
            own = envs[(3 * n) % len(envs)]
            docs.append(f"kind: ConfigVariable\nname: CV_{n:03d}\ndescription: Variable {n}\nvalues:\n"
                        f"  default: https://service-{n}.example.com\n  {own}: https://{own}-{n}.example.com\n")
        (folder / "config" / f"vars-{chunk // 25}.yaml").write_text("---\n".join(docs))
    (folder / "config" / "secrets.yaml").write_text("---\n".join(
        f"kind: ConfigVariable\nname: SECRET_{n:02d}\nsecret: true\n"
        f"values:\n  default: \"${{secret:LOAD_SECRET_TOKEN}}\"\n" for n in range(SECRET_CONFIG)))
    for n in range(APPS):
        (folder / "apps" / f"app-{n:02d}").mkdir()
        (folder / "apps" / f"app-{n:02d}" / "app.json").write_text(
            json.dumps({"name": f"app-{n:02d}", "pages": [{"title": "Home", "widgets": list(range(30))}]}) + "\n")
        (folder / "apps" / f"app-{n:02d}.yaml").write_text(f"""kind: App
name: app-{n:02d}
description: Load app {n}
folder: folder-{n % 4}
source: apps/app-{n:02d}
resources: [res-{n % RESOURCES:02d}, res-{(n + 7) % RESOURCES:02d}]
config: [CV_{n:03d}, SECRET_{n % SECRET_CONFIG:02d}]
access: {{use: [team-{n % (GROUPS - 2):02d}], edit: [admins]}}
""")


def settings(base: Path, data_dir: Path | None = None, **source: str) -> dict[str, Any]:
    return {"data_dir": str(data_dir or base / "data"), "source": {"url": str(base / "repo"), **source},
            "secrets": {"backends": ["env"]}}


def setup(base: Path, envs: int) -> tuple[Path, list[str]]:
    """Generate, commit and write the configuration; return the config path and the environments."""
    names = [f"env-{n:02d}" for n in range(envs)]
    repo = base / "repo"
    generate(repo / "desired-state", names)
    workspace.init(repo)
    workspace.commit_all(repo, f"{envs} environments")
    config = base / "reconciler.toml"
    config.write_text(to_toml(settings(base)))
    os.environ.update(SECRETS)
    return config, names


# -- in-process measurements (run in a child process) ----------------------------------------------------------


@dataclass
class Passes:
    objects_per_env: int = 0
    apply_s: float = 0.0  # the initial apply, all environments
    cold_s: float = 0.0
    warm_s: float = 0.0
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    heap_peak_mb: float = 0.0
    drift_wide_s: float = 0.0
    drift_4_s: float = 0.0
    drift_items: int = 0
    peak_rss_after_drift_mb: float = 0.0
    results: dict[str, int] = field(default_factory=dict)


def initial_apply(config: Path, envs: list[str]) -> tuple[float, int]:
    reconciler = build_reconciler(load_settings(config))
    start = time.perf_counter()
    for env in envs:
        outcome = reconciler.reconcile(env, trigger="bench")
        if outcome.result != "Succeeded":
            raise SystemExit(f"initial apply of {env}: {outcome.result}: {outcome.reason}")
    took = time.perf_counter() - start
    objects = len(reconciler.compute(envs[0], reconciler.target(envs[0]).revision or "").desired.objects)
    reconciler.close()
    return took, objects


def passes(config: Path, envs: list[str]) -> Passes:
    """The no-op passes and the drift checks, on one new Reconciler (the caller is a fresh process)."""
    result = Passes()
    reconciler = build_reconciler(load_settings(config))

    def one_pass() -> float:
        start = time.perf_counter()
        for env in envs:
            outcome = reconciler.reconcile(env, trigger="bench", record_no_changes=False)
            result.results[outcome.result] = result.results.get(outcome.result, 0) + 1
            if outcome.result != "NoChanges":
                raise SystemExit(f"no-op pass: {env}: {outcome.result}: {outcome.reason}")
        return time.perf_counter() - start

    result.cold_s = one_pass()
    result.warm_s = one_pass()
    result.rss_after_mb = rss_mb(os.getpid())
    result.peak_rss_mb = rss_mb(os.getpid(), "VmHWM")
    tracemalloc.start()
    one_pass()
    result.heap_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    def drift_all(width: int) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=width) as pool:
            plans = list(pool.map(lambda env: reconciler.drift(env)[0], envs))
        result.drift_items = sum(len(p.drift) for p in plans)
        return time.perf_counter() - start

    result.drift_wide_s = drift_all(len(envs))
    result.drift_4_s = drift_all(4)
    result.peak_rss_after_drift_mb = rss_mb(os.getpid(), "VmHWM")
    reconciler.close()
    return result


def child(args: argparse.Namespace) -> None:
    """``--child``: one measurement in this process, its result as JSON on the last line of stdout."""
    quiet_logs()
    envs = json.loads(args.child_envs)
    if args.child == "apply":
        took, objects = initial_apply(args.config, envs)
        print(json.dumps({"apply_s": took, "objects_per_env": objects}))
    else:
        print(json.dumps(asdict(passes(args.config, envs))))


def in_child(kind: str, config: Path, envs: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(PYTHON), __file__, "--child", kind, "--config", str(config), "--child-envs", json.dumps(envs)],
        capture_output=True, text=True, check=False, env={**os.environ, **SECRETS})
    if done.returncode != 0:
        raise SystemExit(f"child {kind} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def apply_on_tmpfs(base: Path, config: Path, envs: list[str]) -> dict[str, Any]:
    """The initial apply, with the data directory on tmpfs when there is one, then copied to ``base/data``.

    The registry and the store commit once per applied object (progress is recorded step by step),
    so on a disk the first apply of ~20,000 objects waits for ~40,000 fsyncs; on tmpfs it takes a
    fraction of that. Only this setup runs there; every measurement uses the copy on disk.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return in_child("apply", config, envs)
    staging = Path(tempfile.mkdtemp(prefix="reconciler-bench-load-", dir=shm))
    try:
        tmpfs_config = staging / "reconciler.toml"
        tmpfs_config.write_text(to_toml(settings(base, staging / "data")))
        result = in_child("apply", tmpfs_config, envs)
        shutil.copytree(staging / "data", base / "data")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result["apply_on"] = "tmpfs"
    return result


# -- the webhook flood ----------------------------------------------------------------------------------------


@dataclass
class Flood:
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    fetches: float = 0.0
    rejected: float = 0.0
    health_idle: list[float] = field(default_factory=list)
    health_flood: list[float] = field(default_factory=list)
    health_errors: int = 0
    daemon_rss_mb: float = 0.0
    daemon_peak_mb: float = 0.0


def probe(url: str, stop: threading.Event, out: list[float], errors: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            out.append(time.perf_counter() - start)
            if not ok:
                errors.append(1)
            time.sleep(0.01)


def flood(base: Path, count: int, senders: int) -> Flood:
    config = base / "daemon.toml"
    config.write_text(to_toml(settings(base, url=f"file://{base / 'repo'}", poll_interval="1h",
                                       webhook_secret="${secret:WEBHOOK_SECRET}")))
    daemon: DaemonProcess = start_daemon(config, base / "data", env=SECRETS, timeout=120, name="daemon-load")
    result = Flood(sent=count)
    try:
        wait_for(lambda: all(e["state"] == "Synced" for e in daemon.get("/api/v1/environments")["environments"]),
                 timeout=300, interval=0.5, message="every environment Synced")
        time.sleep(2)
        fetches0 = metric_sum(daemon.url, "reconciler_fetches_total")
        rejected0 = metric_samples(daemon.url, "reconciler_webhooks_total").get(
            '{outcome="rejected",source="github"}', 0.0)
        stop, errors = threading.Event(), list[int]()
        prober = threading.Thread(target=probe, args=(daemon.url, stop, result.health_idle, errors))
        prober.start()
        time.sleep(3)
        stop.set()
        prober.join()

        body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
        bad = [{}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, {"X-Hub-Signature-256": "sha256=zz"},
               {"X-Hub-Signature-256": "md5=abc"}]
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(daemon.url, stop, result.health_flood, errors))
        with httpx.Client(base_url=daemon.url, timeout=60, limits=limits) as client:

            def send(n: int) -> None:
                headers = {"Content-Type": "application/json", "X-GitHub-Event": "push", **bad[n % len(bad)]}
                try:
                    code = client.post("/hooks/github", content=body, headers=headers).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    statuses[code] += 1

            prober.start()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=senders) as pool:
                list(pool.map(send, range(count)))
            result.seconds = time.perf_counter() - start
        stop.set()
        prober.join()
        result.statuses = dict(statuses)
        result.health_errors = len(errors)
        time.sleep(1)
        result.fetches = metric_sum(daemon.url, "reconciler_fetches_total") - fetches0
        result.rejected = metric_samples(daemon.url, "reconciler_webhooks_total").get(
            '{outcome="rejected",source="github"}', 0.0) - rejected0
        result.daemon_rss_mb = rss_mb(daemon.proc.pid)
        result.daemon_peak_mb = rss_mb(daemon.proc.pid, "VmHWM")
        if daemon.terminate() != 0:
            raise SystemExit("the daemon did not exit cleanly after the flood")
    finally:
        daemon.kill()
    return result


# -- report ---------------------------------------------------------------------------------------------------


def section(p: dict[str, Any], f: Flood | None, args: argparse.Namespace, command: str, load: str) -> str:
    envs = args.envs
    flood_rows = "| (not measured) | | |"
    if f is not None:
        codes = ", ".join(f"{n} x {code}" for code, n in sorted(f.statuses.items()))
        flood_rows = "\n".join([
            f"| responses to {f.sent} bad-signature webhooks | {codes} | all 401: "
            f"{'met' if f.statuses == {401: f.sent} else '**missed**'} |",
            f"| fetches caused | {f.fetches:.0f} | 0: {'met' if f.fetches == 0 else '**missed**'} |",
            f"| rejected webhooks counted in `/metrics` | {f.rejected:.0f} | |",
            f"| flood duration, rate | {f.seconds:.1f} s, {f.sent / f.seconds:.0f} requests/s | |",
            f"| `/healthz` idle: p50 / p99 / max ({len(f.health_idle)} probes) | {ms(median(f.health_idle))} / "
            f"{ms(percentile(f.health_idle, 99))} / {ms(max(f.health_idle))} | |",
            f"| `/healthz` during the flood: p50 / p99 / max ({len(f.health_flood)} probes, {f.health_errors} "
            f"failed) | {ms(median(f.health_flood))} / {ms(percentile(f.health_flood, 99))} / "
            f"{ms(max(f.health_flood))} | responsive: {'met' if f.health_errors == 0 else '**missed**'} |",
            f"| daemon RSS after the flood (peak) | {f.daemon_rss_mb:.0f} MB ({f.daemon_peak_mb:.0f} MB) | |",
        ])
    seconds, megabytes = f"< {PASS_GOAL:g} s", f"< {MEMORY_GOAL:g} MB"
    apply_on = " with the data directory on tmpfs, then copied to disk" if p.get("apply_on") else ""
    pass_rows = "\n".join([
        f"| no-op pass, first on a new `Reconciler` (`reconcile` x {envs}, loads the desired state once) | "
        f"{p['cold_s']:.2f} s | {seconds}: {verdict(p['cold_s'], PASS_GOAL)} |",
        f"| no-op pass, second (desired state cached) | {p['warm_s']:.2f} s | "
        f"{seconds}: {verdict(p['warm_s'], PASS_GOAL)} |",
        f"| process RSS after both passes (peak, VmHWM) | {p['rss_after_mb']:.0f} MB ({p['peak_rss_mb']:.0f} MB) | "
        f"{megabytes}: {verdict(p['peak_rss_mb'], MEMORY_GOAL)} |",
        f"| Python heap peak during a pass (tracemalloc, third pass) | {p['heap_peak_mb']:.0f} MB | |",
        f"| drift checks of all {envs} environments at once ({envs} threads) | {p['drift_wide_s']:.2f} s | |",
        f"| drift checks of all {envs} environments, 4 threads (the daemon's run workers) | "
        f"{p['drift_4_s']:.2f} s | |",
        f"| drift items found (must be 0) | {p['drift_items']} | |",
        f"| process peak RSS after the drift checks | {p['peak_rss_after_drift_mb']:.0f} MB | "
        f"{megabytes}: {verdict(p['peak_rss_after_drift_mb'], MEMORY_GOAL)} |",
    ])
    return f"""{HEADING}

Issue 7's load figures, on {machine()}; {load}.

One repository: {envs} environments, all tracking `main`, each rendering {p['objects_per_env']} platform
objects (50 resources with config and secret references, 110 config variables of which 10 secret,
20 groups, 40 apps with a source folder each, their 4 folders, 180 permissions), so
{envs * p['objects_per_env']:,} objects live in the registry. No databases. Registry and state store
in SQLite. Applied once first ({p['apply_s']:.0f} s for all {envs} environments{apply_on}, for context).
The passes run in a fresh process, so its memory is the process's own (interpreter and imports
included).

| measurement | value | goal |
|---|---:|---|
{pass_rows}

**Bad webhooks**: a real `reconciler run` on the same data (`source.url = "file://..."`,
`poll_interval = "1h"`, `webhook_secret` set), every environment `Synced`. {args.webhooks} `POST
/hooks/github` from {args.senders} threads over keep-alive connections, cycling through four bad
signatures (none, a wrong HMAC, non-hex, another algorithm); meanwhile one more thread sends `GET
/healthz` every 10 ms on its own connection (latency = the client's round trip).

| measurement | value | goal |
|---|---:|---|
{flood_rows}

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--envs", type=int, default=50)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--write", type=Path, help="update this Markdown file's 'Load' section")
    parser.add_argument("--child", choices=["apply", "passes"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-envs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    load_before, code = load_average(), code_version()
    base = Path(tempfile.mkdtemp(prefix="reconciler-bench-load-"))
    try:
        config, envs = setup(base, args.envs)
        print(f"generated {args.envs} environments; applying once", flush=True)
        p = apply_on_tmpfs(base, config, envs)
        print(f"  applied {p['objects_per_env']} objects x {args.envs} environments in {p['apply_s']:.1f} s",
              flush=True)
        p.update({k: v for k, v in in_child("passes", config, envs).items() if k != "apply_s"} | {
            "apply_s": p["apply_s"], "objects_per_env": p["objects_per_env"], "apply_on": p.get("apply_on")})
        print(f"  no-op pass: cold {p['cold_s']:.2f} s, warm {p['warm_s']:.2f} s, peak RSS {p['peak_rss_mb']:.0f} MB, "
              f"heap peak {p['heap_peak_mb']:.0f} MB", flush=True)
        print(f"  drift checks: {args.envs} threads {p['drift_wide_s']:.2f} s, 4 threads {p['drift_4_s']:.2f} s, "
              f"{p['drift_items']} items, peak RSS {p['peak_rss_after_drift_mb']:.0f} MB", flush=True)
        f = None
        if args.webhooks > 0:
            f = flood(base, args.webhooks, args.senders)
            print(f"  flood: {f.statuses} in {f.seconds:.1f} s, {f.fetches:.0f} fetches; /healthz p99 idle "
                  f"{ms(percentile(f.health_idle, 99))}, during {ms(percentile(f.health_flood, 99))} "
                  f"(max {ms(max(f.health_flood))}), {f.health_errors} failed", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    load = conditions(load_before, code)
    print(load)
    if args.write:
        command = (f".venv/bin/python bench/load.py --envs {args.envs} --webhooks {args.webhooks} "
                   f"--senders {args.senders} --write {args.write}")
        write_section(args.write, HEADING, section(p, f, args, command, load))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
