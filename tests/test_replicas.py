"""Replicas share the work (issue 14): three real ``reconciler run`` processes, one PostgreSQL state database.

Every environment is applied exactly once per commit (counted in the run records), never by two
daemons at once (the run records of one environment do not overlap), by the daemon it is assigned to;
one daemon holds the leader lease; SIGKILL of the leader hands the lease and its environments to
the others, and the next commit still reaches every environment.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from reconciler.app.replicas import assign
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.daemon_support import DaemonProcess, wait_for
from tests.replica_support import Replicas, Run, make_replicas
from tests.test_daemon import metric

ENVIRONMENTS = 8


@pytest.fixture
def replicas(tmp_path: Path, pg: EmbeddedPostgres) -> Iterator[Replicas]:
    r = make_replicas(tmp_path, pg, ENVIRONMENTS)
    yield r
    r.stop()


def see_each_other(daemons: list[DaemonProcess]) -> None:
    for d in daemons:
        wait_for(lambda d=d: metric(d, "reconciler_replicas") == len(daemons),  # type: ignore[misc]
                 message=f"{d.log_path.name} to see {len(daemons)} replicas")


def applied_once(r: Replicas, revision: str) -> dict[str, Run]:
    """Each environment's one successful run of ``revision``; fail on a missing or a second one."""
    runs = [run for run in r.runs() if run.revision == revision and run.result == "Succeeded"]
    counts = Counter(run.environment for run in runs)
    assert counts == Counter(dict.fromkeys(r.envs, 1)), f"runs of {revision[:8]} per environment: {counts}"
    return {run.environment: run for run in runs}


def never_concurrent(r: Replicas) -> None:
    by_env: dict[str, list[Run]] = {}
    for run in r.runs():
        by_env.setdefault(run.environment, []).append(run)
    for env, runs in by_env.items():
        for before, after in pairwise(runs):
            assert before.finished_at is not None and before.finished_at <= after.started_at, \
                f"{env}: a run by {after.owner} started while one by {before.owner} was running"


def test_three_daemons_share_the_environments_and_take_over_from_a_killed_leader(replicas: Replicas) -> None:
    r = replicas
    daemons = r.start(3)
    see_each_other(daemons)
    wait_for(lambda: r.all_synced(r.daemons[0].env("env-00")["applied_revision"] or "-"),
             message="the first commit to reach every environment")

    second = r.commit()
    wait_for(lambda: r.all_synced(second), message="the second commit to reach every environment")
    owners = assign(r.envs, [r.owner(d) for d in daemons])
    for env, run in applied_once(r, second).items():
        assert run.owner == owners[env], f"{env} was run by {run.owner}, not the replica it is assigned to"
    per_replica = Counter(run.owner for run in applied_once(r, second).values())
    assert max(per_replica.values()) <= -(-ENVIRONMENTS // 3), f"not spread evenly: {per_replica}"
    leader = wait_for(r.leader, message="a leader")
    assert sum(metric(d, "reconciler_leader") for d in daemons) == 1, "more than one daemon thinks it leads"

    leader.proc.kill()  # SIGKILL: no chance to hand anything over
    leader.proc.wait(30)
    survivors = r.live()
    new_leader = wait_for(r.leader, message="a surviving daemon to take the leader lease")
    assert new_leader in survivors
    see_each_other(survivors)

    third = r.commit()
    wait_for(lambda: r.all_synced(third), message="the third commit to reach every environment after the kill")
    after = applied_once(r, third)
    assert {run.owner for run in after.values()} <= {r.owner(d) for d in survivors}
    never_concurrent(r)
    # The first commit too: exactly once each, whoever ran it.
    first = r.runs()[0].revision
    assert first is not None
    applied_once(r, first)


def test_a_webhook_to_a_follower_brings_a_commit_to_every_environment(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    secret = "replica-hook-secret"
    r = make_replicas(tmp_path, pg, ENVIRONMENTS, poll_interval="1h", webhook_secret=secret)  # nobody polls
    try:
        daemons = r.start(3)
        see_each_other(daemons)
        leader = wait_for(r.leader, message="a leader")
        first = r.commit()
        follower = next(d for d in daemons if d is not leader)
        body = b'{"ref": "refs/heads/main"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        with httpx.Client(base_url=follower.url, timeout=10) as c:
            assert c.post("/hooks/github", content=body, headers={"X-Hub-Signature-256": signature}).status_code == 202
        # The follower fetched and told the others: every environment, whichever replica runs it, applies it.
        wait_for(lambda: r.all_synced(first), message="the commit to reach every environment")
        owners = assign(r.envs, [r.owner(d) for d in daemons])
        for env, run in applied_once(r, first).items():
            assert run.owner == owners[env], f"{env} was run by {run.owner}"
    finally:
        r.stop()
