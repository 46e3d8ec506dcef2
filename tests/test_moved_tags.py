"""A remote source (``file://`` bare repository) refuses moved and deleted release tags like a local one.

SPEC §4: a tag name seen before now pointing elsewhere is never followed (exit 3, ``Blocked``, an
alert), and a deleted release tag leaves the environment where it is. The repository is the
example one, made with pygit2 or with the ``git`` CLI; it is published to a bare repository made
with the same tool, and the reconciler reads that bare repository over ``file://`` through its
clone cache, as it would read an https or ssh remote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pygit2
import pytest

from reconciler.source import workspace
from reconciler.source.repository import Repository
from tests.conftest import World, cli, git
from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.webhooks import Receiver, receiving

TAG = "v1.0.0"


@dataclass
class Remote:
    """The bare repository the reconciler fetches from, and how the test publishes to it."""

    world: World
    bare: Path

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def push(self, *refspecs: str) -> None:
        """Push ``refspecs`` (``+src:dst`` forces, ``:dst`` deletes) from the work repository."""
        if self.world.using_cli_git:
            git(self.world.repo, "push", "-q", str(self.bare), *refspecs)
            return
        repo = pygit2.Repository(str(self.world.repo))
        repo.remotes["origin"].push(list(refspecs))

    def publish_main(self) -> None:
        self.push("+refs/heads/main:refs/heads/main")

    def publish_tag(self, name: str = TAG) -> None:
        self.push(f"+refs/tags/{name}:refs/tags/{name}")

    def move_tag(self, target: str, name: str = TAG) -> None:
        """Re-point an annotated tag in the work repository (``git tag -a -f``), then force-push it."""
        if self.world.using_cli_git:
            git(self.world.repo, "tag", "-a", "-f", name, "-m", "moved", target)
        else:
            pygit2.Repository(str(self.world.repo)).references.delete(f"refs/tags/{name}")
            workspace.tag(self.world.repo, name, "moved", target)
        self.publish_tag(name)

    def delete_tag(self, name: str = TAG) -> None:
        self.push(f":refs/tags/{name}")

    def remote_tag_target(self, name: str = TAG) -> str:
        return str(pygit2.Repository(str(self.bare)).revparse_single(name).peel(pygit2.Commit).id)


@pytest.fixture
def remote(world: World) -> Iterator[Remote]:
    """``world`` published to a bare repository (made with the world's own Git tool), read over file://."""
    bare = world.root / "remote.git"
    if world.using_cli_git:
        git(world.root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(world.repo, "remote", "add", "origin", str(bare))
    else:
        pygit2.init_repository(str(bare), bare=True, initial_head="main")
        pygit2.Repository(str(world.repo)).remotes.create("origin", str(bare))
    # The release must not wait for the example's Friday-evening deny window: these tests are
    # about tags, and must pass on any day of the week.
    spec = world.desired / "environments" / "production.yaml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines()
                              if "windows:" not in line and "deny:" not in line) + "\n")
    world.commit("production: no deny window in this test")
    r = Remote(world, bare)
    r.publish_main()
    # No polling: the daemon tests ask for each fetch with a webhook, as a Git host would.
    world.configure(source={"url": r.url, "poll_interval": "1h"})
    yield r


def status(world: World, env: str) -> dict[str, Any]:
    rows = json.loads(cli(world, "status", "--format", "json").stdout)["environments"]
    return next(row for row in rows if row["name"] == env)


def add_region_column(world: World) -> str:
    """A second commit with a schema change production must not receive through a moved tag."""
    world.write("databases/crm/004_region.sql", "alter table customers add column region text;\n")
    return world.commit("Add customers.region")


def release_first(world: World, remote: Remote) -> str:
    """staging applies main, v1.0.0 is tagged and published, production applies it."""
    assert cli(world, "apply", "staging").exit_code == 0
    first = world.tag(TAG, "Release 1.0.0")
    remote.publish_tag()
    applied = cli(world, "apply", "production")
    assert applied.exit_code == 0, applied.stderr
    assert status(world, "production")["applied_revision"] == first
    return first


def second_commit_through_staging(world: World, remote: Remote) -> str:
    second = add_region_column(world)
    remote.publish_main()
    assert cli(world, "apply", "staging").exit_code == 0
    assert "region" in world.columns("staging", "customers")
    return second


def test_a_force_moved_tag_on_a_remote_is_refused(world: World, remote: Remote) -> None:
    first = release_first(world, remote)
    second = second_commit_through_staging(world, remote)
    remote.move_tag(second)
    assert remote.remote_tag_target() == second

    result = cli(world, "apply", "production")

    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"tag {TAG} moved from {first[:12]} to {second[:12]}; moved tags are never followed" in result.stderr
    after = status(world, "production")
    assert after["state"] == "Blocked"
    assert "moved" in after["reason"]
    assert after["applied_revision"] == first
    assert "region" not in world.columns("production", "customers")
    assert cli(world, "apply", "production").exit_code == 3  # and again: the first target is remembered


def test_a_deleted_tag_on_a_remote_is_reported_and_production_stays(world: World, remote: Remote) -> None:
    first = release_first(world, remote)
    remote.delete_tag()

    result = cli(world, "apply", "production")

    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"tag {TAG}, which production runs, was deleted; production stays at {first[:12]}" in result.stderr
    after = status(world, "production")
    assert after["state"] == "Blocked"
    assert after["applied_revision"] == first


def test_a_tag_deleted_then_recreated_elsewhere_on_a_remote_is_refused(world: World, remote: Remote) -> None:
    first = release_first(world, remote)
    second = second_commit_through_staging(world, remote)
    remote.delete_tag()
    assert cli(world, "apply", "production").exit_code == 3  # the deleted-tag gate saw the gap
    remote.move_tag(second)  # the same name again, on another commit

    result = cli(world, "apply", "production")

    assert result.exit_code == 3, result.stdout + result.stderr
    assert f"tag {TAG} moved from {first[:12]} to {second[:12]}" in result.stderr
    assert status(world, "production")["applied_revision"] == first
    assert "region" not in world.columns("production", "customers")


def test_the_clone_cache_mirrors_moved_and_deleted_tags(world: World, remote: Remote) -> None:
    first = world.tag(TAG, "Release 1.0.0")
    world.tag("v0.9.0", "Old")
    remote.publish_tag()
    remote.publish_tag("v0.9.0")
    cache = Repository(remote.url, cache_dir=world.root / "cache")
    seen = cache.tag(TAG)
    assert seen is not None and seen.target == first
    second = add_region_column(world)
    remote.publish_main()
    remote.move_tag(second)
    remote.delete_tag("v0.9.0")

    assert cache.fetch() is True

    moved = cache.tag(TAG)
    assert moved is not None and moved.target == second
    assert moved.message.strip() == "moved"
    assert cache.tag("v0.9.0") is None


def test_a_cache_made_before_tags_were_mirrored_is_upgraded_when_opened(world: World, remote: Remote) -> None:
    world.tag(TAG, "Release 1.0.0")
    remote.publish_tag()
    cache_dir = world.root / "cache"
    Repository(remote.url, cache_dir=cache_dir)
    # What an older version left behind: a cache in libgit2's default ("auto") tag mode.
    (git_dir,) = (cache_dir / "git").iterdir()
    config = pygit2.Repository(str(git_dir)).config
    if "remote.origin.tagopt" in config:
        del config["remote.origin.tagopt"]
    second = add_region_column(world)
    remote.publish_main()
    remote.move_tag(second)

    reopened = Repository(remote.url, cache_dir=cache_dir)  # opening fetches

    moved = reopened.tag(TAG)
    assert moved is not None and moved.target == second




@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


def fetch_now(d: DaemonProcess) -> None:
    """Send the generic webhook (the daemon's admin token has the sync scope) and wait for its fetch.

    Callers leave time between two of these (a run in between): a hook within 0.25 s of the last
    fetch joins a burst, which ends on a timed wait, and timed waits never end under libfaketime.
    """
    before = _fetches(d)
    with d.client() as c:
        assert c.post("/hooks/generic", content=b"{}").status_code == 202
    wait_for(lambda: _fetches(d) > before, timeout=60, message="the fetch the webhook asked for")


def start_and_release(world: World, remote: Remote, daemons: list[DaemonProcess]) -> str:
    """A daemon on the remote: staging syncs main, then v1.0.0 is published and production applies it."""
    d = start_daemon(world.config, world.root / "data", env=world.secrets)
    daemons.append(d)
    d.wait_env("staging", timeout=60, state="Synced")
    first = world.tag(TAG, "Release 1.0.0")
    remote.publish_tag()
    fetch_now(d)
    d.wait_env("production", timeout=60, state="Synced", applied_ref=TAG, applied_revision=first)
    return first


def test_the_daemon_blocks_a_force_moved_remote_tag_and_alerts_once(
    world: World, remote: Remote, receiver: Receiver, daemons: list[DaemonProcess]
) -> None:
    world.configure(notify={"webhooks": [{"url": receiver.url}]})
    first = start_and_release(world, remote, daemons)
    d = daemons[0]
    second = add_region_column(world)
    remote.publish_main()
    fetch_now(d)
    d.wait_env("staging", timeout=60, state="Synced", applied_revision=second)

    remote.move_tag(second)
    fetch_now(d)

    def blocked() -> dict[str, Any] | None:
        env = d.env("production")
        return env if env["state"] == "Blocked" and "moved" in (env["reason"] or "") else None

    production = wait_for(blocked, timeout=60, message="production Blocked by the moved tag")
    assert f"tag {TAG} moved from {first[:12]} to {second[:12]}" in production["reason"]
    assert production["applied_revision"] == first
    alerts = wait_for(lambda: receiver.blocked("moved-tag") or None, timeout=30, message="a moved-tag alert")
    assert alerts[0]["environment"] == "production"
    assert alerts[0]["revision"] == second
    # Asked again, production is refused again for the same reason: no new run record, no new alert.
    blocked = 'reconciler_runs_total{environment="production",result="Blocked",workspace="default"}'
    blocked_runs = _metric(d, blocked)
    with d.client() as c:
        assert c.post("/api/v1/environments/production/sync").status_code == 202
    wait_for(lambda: _metric(d, blocked) > blocked_runs,
             timeout=60, message="the requested run to be refused")
    assert d.env("production")["last_run"]["id"] == production["last_run"]["id"]
    assert len(receiver.blocked("moved-tag")) == 1
    assert d.env("production")["state"] == "Blocked"
    assert "region" not in world.columns("production", "customers")


def test_the_daemon_reports_a_deleted_remote_tag(
    world: World, remote: Remote, receiver: Receiver, daemons: list[DaemonProcess]
) -> None:
    world.configure(notify={"webhooks": [{"url": receiver.url}]})
    first = start_and_release(world, remote, daemons)
    d = daemons[0]

    remote.delete_tag()
    fetch_now(d)

    def blocked() -> dict[str, Any] | None:
        env = d.env("production")
        return env if env["state"] == "Blocked" and "was deleted" in (env["reason"] or "") else None

    production = wait_for(blocked, timeout=60, message="production Blocked by the deleted tag")
    assert production["applied_revision"] == first
    alerts = wait_for(lambda: receiver.blocked("tag-deleted") or None, timeout=30, message="a tag-deleted alert")
    assert alerts[0]["environment"] == "production"


def _metric(d: DaemonProcess, series: str) -> float:
    """The value of one series of the daemon's /metrics (0 until it first appears)."""
    for line in httpx.get(d.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _fetches(d: DaemonProcess) -> float:
    return _metric(d, 'reconciler_fetches_total{result="ok",workspace="default"}')
