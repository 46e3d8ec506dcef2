"""Benchmark: replicas sharing the work (issue 14) — 3 daemons x 30 environments on one PostgreSQL state store.

Real ``reconciler run`` processes, each in a UTS namespace of its own (``unshare --uts``, so needs
root) with its own host name, as pods are: a killed replica is then found only by its leases
expiring, never by this host's process table. One embedded PostgreSQL holds the state database
and the built-in registry (the platform every replica applies to). ``--envs`` environments all
track ``main`` of a ``file://`` repository the leader polls every ``--poll``; a commit adds one
group, which every environment applies.

* **commit → all Synced**: ``--commits`` commits, each timed from writing the ref to every
  environment's status being ``Synced`` at it (the state database polled every 20 ms). Then the
  run records of those commits: runs per replica, and duplicate applies (a second successful run
  of one revision in one environment; must be 0).
* **takeover, idle**: SIGKILL the leader, commit at once; time until another replica holds the
  leader lease, and until every environment is ``Synced`` at the new commit.
* **takeover, mid-run**: commit, SIGKILL the replica of the first run seen ``Progressing``; count
  runs recorded ``Interrupted`` and how often each was run again, and the time from the kill to
  every environment ``Synced``.

Bound: takeover within ``lease_ttl`` + one replica tick (1 s) + one poll. Run with::

    .venv/bin/python bench/replicas.py [--envs 30] [--commits 5] [--lease-ttl 10s] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import (
    argument_parser,
    code_version,
    conditions,
    embedded_postgres,
    load_average,
    machine,
    median,
    reproduce,
    write_section,
)

from reconciler.durations import parse_duration
from tests.daemon_support import DaemonProcess, wait_for
from tests.replica_support import Replicas, make_replicas

HEADING = "## Replicas: 3 daemons x 30 environments on one PostgreSQL state store"
PATIENCE = 600.0


@dataclass
class Figures:
    commit_s: list[float] = field(default_factory=list)
    runs_per_replica: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    leader_takeover_s: float = 0.0
    idle_synced_s: float = 0.0
    idle_runs_by_survivors: int = 0
    midrun_victim_was_leader: bool = False
    midrun_synced_s: float = 0.0
    interrupted: int = 0
    rerun_counts: list[int] = field(default_factory=list)
    midrun_duplicates: int = 0
    rolling_exit_codes: list[int] = field(default_factory=list)
    rolling_s: float = 0.0
    rolling_bad_runs: int = 0  # Failed or Interrupted runs of the commits made during the restart
    rolling_duplicates: int = 0


def synced(r: Replicas, revision: str, step: float = 0.02) -> float:
    start = time.monotonic()
    wait_for(lambda: r.all_synced(revision), PATIENCE, interval=step, message=f"{revision[:8]} everywhere")
    return time.monotonic() - start


def duplicates(r: Replicas, revisions: set[str]) -> int:
    counts = Counter((run.environment, run.revision) for run in r.runs()
                     if run.revision in revisions and run.result == "Succeeded")
    return sum(n - 1 for n in counts.values() if n > 1)


def see_each_other(r: Replicas, count: int) -> None:
    live = "select 1 from leases where environment like '@replica:%%' and expires_at > now()"
    wait_for(lambda: len(r._query(live)) == count and r.leader() is not None, PATIENCE,
             message=f"{count} replicas and a leader")


def kill(d: DaemonProcess) -> None:
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(30)


def run(args: argparse.Namespace) -> Figures:
    f = Figures()
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        base = Path(tmp)
        with embedded_postgres(base) as pg:
            r = make_replicas(base, pg, args.envs, lease_ttl=args.lease_ttl, poll_interval=args.poll)
            try:
                r.start(args.replicas, own_hosts=True)
                see_each_other(r, args.replicas)
                first = r.commit()
                synced(r, first)
                print("all replicas up, every environment Synced", flush=True)

                revisions = set()
                for _ in range(args.commits):
                    time.sleep(1.0)  # each commit from quiet replicas
                    start = time.monotonic()
                    rev = r.commit()
                    revisions.add(rev)
                    synced(r, rev)
                    f.commit_s.append(time.monotonic() - start)
                    print(f"commit → all Synced: {f.commit_s[-1]:.2f} s", flush=True)
                per = Counter(run.owner for run in r.runs() if run.revision in revisions and run.result == "Succeeded")
                f.runs_per_replica = {str(owner).split(":")[0]: n for owner, n in sorted(per.items())}
                f.duplicates = duplicates(r, revisions)

                leader = wait_for(r.leader, PATIENCE, message="a leader")
                killed = r.owner(leader)
                start = time.monotonic()
                kill(leader)
                rev = r.commit()
                wait_for(lambda: r.leader() is not None, PATIENCE, interval=0.02, message="a new leader")
                f.leader_takeover_s = time.monotonic() - start
                synced(r, rev)
                f.idle_synced_s = time.monotonic() - start
                f.idle_runs_by_survivors = sum(1 for run in r.runs() if run.revision == rev and run.owner != killed)
                f.duplicates += duplicates(r, {rev})
                print(f"idle takeover: leader {f.leader_takeover_s:.2f} s, all Synced {f.idle_synced_s:.2f} s",
                      flush=True)

                r.start(1, own_hosts=True)  # back to three
                see_each_other(r, args.replicas)
                time.sleep(1.0)
                leader = wait_for(r.leader, PATIENCE, message="a leader")
                rev = r.commit()
                by_owner = {r.owner(d): d for d in r.live()}
                victim_owner = wait_for(lambda: next((run.owner for run in r.runs() if run.revision == rev
                                                      and run.result == "Progressing"), None), PATIENCE,
                                        interval=0.005, message="a run in flight")
                start = time.monotonic()
                kill(by_owner[victim_owner])
                f.midrun_victim_was_leader = by_owner[victim_owner] is leader
                synced(r, rev)
                f.midrun_synced_s = time.monotonic() - start
                runs = [run for run in r.runs() if run.revision == rev]
                interrupted = {run.environment for run in runs if run.result == "Interrupted"}
                f.interrupted = sum(1 for run in runs if run.result == "Interrupted")
                f.rerun_counts = [sum(1 for run in runs if run.environment == env and run.result == "Succeeded")
                                  for env in sorted(interrupted)]
                f.midrun_duplicates = duplicates(r, {rev})
                print(f"mid-run takeover: {f.interrupted} interrupted, re-runs {f.rerun_counts}, "
                      f"all Synced {f.midrun_synced_s:.2f} s", flush=True)

                r.start(1, own_hosts=True)
                see_each_other(r, args.replicas)
                start, revisions = time.monotonic(), set()
                for d in list(r.live()):  # rolling restart: a commit, then SIGTERM one and start its successor
                    revisions.add(r.commit())
                    f.rolling_exit_codes.append(d.terminate())
                    r.start(1, own_hosts=True)
                    see_each_other(r, args.replicas)
                last = r.commit()
                revisions.add(last)
                synced(r, last)
                f.rolling_s = time.monotonic() - start
                f.rolling_bad_runs = sum(1 for run in r.runs() if run.revision in revisions
                                         and run.result in ("Failed", "Interrupted"))
                f.rolling_duplicates = duplicates(r, revisions)
                print(f"rolling restart: exit codes {f.rolling_exit_codes}, {f.rolling_bad_runs} bad runs, "
                      f"{f.rolling_duplicates} duplicates, {f.rolling_s:.2f} s", flush=True)
            finally:
                r.stop()
    return f


def section(f: Figures, args: argparse.Namespace, command: str, load: str) -> str:
    ttl = parse_duration(args.lease_ttl)
    bound = ttl + 1.0 + parse_duration(args.poll)
    spread = ", ".join(f"{host} {n}" for host, n in f.runs_per_replica.items())
    total = sum(f.runs_per_replica.values())
    most = max(f.runs_per_replica.values(), default=0)
    commits = f"median {median(f.commit_s):.2f} s, max {max(f.commit_s):.2f} s"
    idle = f"{f.idle_synced_s:.2f} s (lease_ttl + 1 s tick + poll = {bound:g} s, then the runs: see the first row)"
    victim = " (it was the leader)" if f.midrun_victim_was_leader else ""
    rolling = (f"exit codes {f.rolling_exit_codes}, {f.rolling_bad_runs} runs Failed or Interrupted, "
               f"{f.rolling_duplicates} duplicate applies, all `Synced` at the last commit {f.rolling_s:.1f} s "
               "after the first")
    return f"""{HEADING}

Issue 14's work sharing, measured with real processes on {machine()};
{load}.

{args.replicas} `reconciler run` processes, each in a UTS namespace of its own with its own host name
(as pods are: a killed replica is found only by its leases expiring), one embedded PostgreSQL holding
the state database and the built-in registry. {args.envs} environments track `main` of a `file://`
repository; the leader polls it every {args.poll}; `daemon.lease_ttl = "{args.lease_ttl}"`. A commit
adds one group, which every environment applies. Times are from writing the ref (or the SIGKILL) to
every environment's status being `Synced` at the commit, read from the state database every 20 ms.

| measurement | value |
|---|---:|
| commit → all {args.envs} `Synced` ({len(f.commit_s)} commits) | {commits} |
| runs per replica over those commits | {spread} (most: {most} of {total}; half is {total / 2:g}) |
| duplicate applies (a second successful run of one revision in one environment) | {f.duplicates} |
| SIGKILL of the idle leader → another replica holds the leader lease | {f.leader_takeover_s:.2f} s |
| SIGKILL of the idle leader + a commit at once → all `Synced` | {idle} |
| SIGKILL of a replica with a run in flight{victim} → all `Synced` | {f.midrun_synced_s:.2f} s |
| runs recorded `Interrupted` / re-runs of each that applied something | {f.interrupted} / {f.rerun_counts} |
| duplicate applies after the mid-run kill | {f.midrun_duplicates} |
| rolling restart ({len(f.rolling_exit_codes)} x: commit, SIGTERM a replica, start one; a last commit) | {rolling} |

An interrupted run's environment is planned again from live state; a re-run that finds the
interrupted run had already applied everything is `NoChanges`, which the daemon does not record
as a run (a 0 above), and the status becomes `Synced`. The leases expire `lease_ttl` after their
last renewal (every `lease_ttl`/3), so a takeover takes between 2/3 and all of `lease_ttl`, plus
the survivors' 1 s look at the members, plus the run. On one host (no `unshare`) a dead replica's
rows are taken at once (its process is known gone).

{reproduce(command)}"""


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--envs", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--lease-ttl", default="10s")
    parser.add_argument("--poll", default="1s", help="source.poll_interval")
    parser.add_argument("--write", type=Path, help="update this Markdown file's replicas section")
    args = parser.parse_args()
    load_before, code = load_average(), code_version()
    figures = run(args)
    print(figures, flush=True)
    if args.write:
        command = (f".venv/bin/python bench/replicas.py --envs {args.envs} --replicas {args.replicas} "
                   f"--commits {args.commits} --lease-ttl {args.lease_ttl} --poll {args.poll} --write {args.write}")
        load = conditions(load_before, code)
        write_section(args.write, HEADING, section(figures, args, command, load))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
