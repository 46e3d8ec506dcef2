"""The whole reconciler (Git → render → diff → plan → gates → apply → verify) into the fake Retool.

The example desired state from a real Git repository is reconciled for staging and production; a
second run writes nothing; the record of what was written survives a restart (it lives in the
state store); out-of-band edits in Retool are found and healed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.app.reconcile import Reconciler
from reconciler.daemon.supervisor import Daemon
from tests.conftest import World
from tests.daemon_support import wait_for
from tests.retool.example import APP
from tests.retool.fake import FakeRetool


def without_deny_windows(world: World) -> None:
    """Production's Friday-evening deny window would hold these runs on some days: not what they test."""
    spec = world.desired / "environments/production.yaml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines()
                              if "windows:" not in line and "deny:" not in line) + "\n")
    world.commit("No deny window")


@pytest.fixture
def retool_world(
    pyworld: World, fake: FakeRetool, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, FakeRetool]]:
    """The example repository reconciled into one fake instance hosting staging and production."""
    assert fake.source_control is not None
    pyworld.configure(platform={
        "provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}", "manifest": fake.manifest_name,
        "source_control": {"url": fake.source_control.url}, "requests_per_minute": 60_000,
        "deploy_poll_interval": "10ms",
    })
    monkeypatch.setenv("RETOOL_TOKEN", fake.token)
    without_deny_windows(pyworld)
    yield pyworld, fake


def reconciler_for(world: World, fake: FakeRetool) -> Reconciler:
    """The reconciler as the configuration builds it (wiring), state store and all."""
    return world.reconciler()


def test_the_example_reconciles_into_retool_and_a_second_run_writes_nothing(
    retool_world: tuple[World, FakeRetool],
) -> None:
    world, fake = retool_world
    r = reconciler_for(world, fake)
    staging = r.reconcile("staging")
    assert staging.result == "Succeeded", staging.reason
    assert fake.config_values("SUPPORT_EMAIL")["staging"] == "support-staging@example.com"
    world.tag("v1.0.0", "Release 1.0.0")
    production = r.reconcile("production")
    assert production.result == "Succeeded", production.reason
    assert fake.live_releases() == fake.pinned() != {}

    fake.clear_calls()
    assert r.reconcile("staging").result == "NoChanges"
    assert r.reconcile("production").result == "NoChanges"
    assert fake.writes() == []

    # After a restart the record of written secrets comes from the state store: still nothing to do.
    fresh = reconciler_for(world, fake)
    assert fresh.plan("staging").is_empty()
    assert fresh.plan("production").is_empty()
    assert fake.writes() == []


def test_out_of_band_edits_in_retool_are_found_and_healed(retool_world: tuple[World, FakeRetool]) -> None:
    world, fake = retool_world
    r = reconciler_for(world, fake)
    assert r.reconcile("staging").result == "Succeeded"
    fake.set_config_value("SUPPORT_EMAIL", "staging", "intruder@example.com")
    fake.revoke("support-team", "resource_configuration", "crm-db@staging")
    plan, _ = r.drift("staging")
    assert sorted(i.id for i in plan.pending) == [
        "config-variable:SUPPORT_EMAIL:value",
        "permission:support-team/resource/crm-db",
    ]
    healed = r.reconcile("staging")
    assert healed.result == "Succeeded", healed.reason
    assert fake.config_values("SUPPORT_EMAIL")["staging"] == "support-staging@example.com"
    assert r.drift("staging")[0].pending == []


def test_in_pull_request_mode_an_environment_is_progressing_until_the_branches_are_merged_then_synced(
    retool_world: tuple[World, FakeRetool],
) -> None:
    world, fake = retool_world
    sc = fake.source_control
    assert sc is not None
    world.configure(platform={"source_control": {"url": sc.url, "merge": "pull-request"}})
    r = reconciler_for(world, fake)

    waiting = r.reconcile("staging")

    assert waiting.result == "Waiting"
    assert waiting.exit_code == 0
    (release,) = sc.branches()  # staging shares its instance with production: it makes the release only
    status = r.status("staging")
    assert (status.state, status.applied_revision) == ("Progressing", None)
    assert status.reason is not None and status.reason.startswith(f"waiting for merge of {release} into main")
    assert r.reconcile("staging").result == "Waiting"  # nothing merged yet: still waiting, nothing new pushed
    assert sc.branches() == [release]

    sc.merge(release)
    done = r.reconcile("staging")

    assert done.result == "Succeeded", done.reason
    assert r.status("staging").state == "Synced"
    assert fake.pinned() == {} and fake.live_releases() == {APP: "latest"}

    world.tag("v1.0.0", "Release 1.0.0")
    assert r.reconcile("production").result == "Waiting"
    (manifest,) = [b for b in sc.branches() if b != release]
    assert r.status("production").reason.startswith(f"waiting for merge of {manifest}")  # type: ignore[union-attr]
    sc.merge(manifest)
    published = r.reconcile("production")

    assert published.result == "Succeeded", published.reason
    assert r.status("production").state == "Synced"
    assert fake.live_releases() == fake.pinned() != {}


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop(30)


def test_under_the_daemon_pull_request_mode_waits_for_each_merge_seen_on_a_fetch_then_syncs(
    retool_world: tuple[World, FakeRetool], daemons: list[Daemon],
) -> None:
    """``merge = "pull-request"`` end to end with the daemon: nothing but the test's merges in the fake's
    bare Source Control repository moves the environments on; the daemon looks for them by itself."""
    world, fake = retool_world
    sc = fake.source_control
    assert sc is not None
    world.configure(platform={"source_control": {"url": sc.url, "merge": "pull-request", "poll_interval": "200ms"}},
                    source={"url": str(world.repo), "poll_interval": "1h"})
    r = world.reconciler()
    daemon = Daemon(world.settings(), r)
    daemons.append(daemon)
    daemon.start()

    def waiting(env: str) -> str | None:
        status = r.status(env)
        reason = status.reason or ""
        return reason if status.state == "Progressing" and reason.startswith("waiting for merge of ") else None

    reason = wait_for(lambda: waiting("staging"), message="staging waiting for the release branch's merge")
    (release,) = sc.branches()
    assert reason.startswith(f"waiting for merge of {release} into main")
    assert r.status("staging").applied_revision is None
    runs_before = len(r.queries.runs("staging"))
    assert sc.branches() == [release]  # looking again pushes nothing new

    sc.merge(release)
    wait_for(lambda: r.status("staging").state == "Synced", message="staging Synced once the merge was seen")
    assert fake.pinned() == {} and fake.live_releases() == {APP: "latest"}
    assert len(r.queries.runs("staging")) > runs_before

    world.tag("v1.0.0", "Release 1.0.0")
    wait_for(lambda: waiting("production"), message="production waiting for its manifest branch's merge")
    (manifest,) = [b for b in sc.branches() if b != release]
    assert (r.status("production").reason or "").startswith(f"waiting for merge of {manifest}")
    assert fake.live_releases() == {APP: "latest"}  # nothing published before the merge

    sc.merge(manifest)
    wait_for(lambda: r.status("production").state == "Synced", message="production Synced once the merge was seen")
    assert r.status("production").applied_ref == "v1.0.0"
    assert fake.live_releases() == fake.pinned() != {}
