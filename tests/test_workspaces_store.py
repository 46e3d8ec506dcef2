"""The state store keyed by (workspace, environment): isolation, and the migration of a database made
before workspaces (SQLite and PostgreSQL) with nothing lost."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from reconciler.core.gates import BreakGlass
from reconciler.core.outcome import RunOutcome, RunResult
from reconciler.core.releases import ReleaseRecord
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.store import tables as t
from reconciler.store.leases import Leases
from reconciler.store.store import Store
from tests import state_before_workspaces as old
from tests.daemon_support import wait_for

WHEN = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
REV = "a" * 40


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    pg: EmbeddedPostgres = request.getfixturevalue("pg")
    name = f"state_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    yield pg.database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)


def make_main_database(url: str) -> None:
    """A state database as main (before workspaces) left it: every table with a row, an older
    database's leftover column too."""
    engine = sa.create_engine(url)
    old.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE environment_status ADD COLUMN tracked_ref VARCHAR(255)")
        conn.execute(sa.insert(old.runs).values(
            id="r" * 32, environment="staging", revision=REV, tree_id="t" * 40, ref="main", trigger="commit",
            started_at=WHEN, finished_at=WHEN, result="Succeeded", reason=None, plan=[{"id": "group:x"}],
            applied=["group:x"], drift_after=0, owner="host:1"))
        conn.execute(sa.insert(old.run_changes).values(run_id="r" * 32, seq=0, item_id="group:x"))
        conn.execute(sa.insert(old.run_checks).values(
            run_id="r" * 32, seq=0, environment="staging", tree_id="t" * 40, name="up", passed=True,
            result={"name": "up", "passed": True}))
        conn.execute(sa.insert(old.environment_status).values(
            environment="staging", state="Synced", reason=None, applied_revision=REV, applied_ref="main",
            applied_tree_id="t" * 40, drift_count=0, last_run_id="r" * 32, last_checked_at=WHEN,
            pinned_revision=REV, updated_at=WHEN))
        conn.execute(sa.insert(old.tags_seen).values(name="v1.0.0", target=REV, first_seen=WHEN))
        conn.execute(sa.insert(old.drift_seen).values(
            environment="staging", item_id="group:y", first_seen=WHEN, last_seen=WHEN,
            item={"id": "group:y", "kind": "group", "name": "y"}))
        conn.execute(sa.insert(old.fingerprints).values(provider="retool", scope="resource:crm", fingerprint="f1"))
        conn.execute(sa.insert(old.releases).values(
            repository="repo", app="crm", key="k", version="1.0.0", label="l", revision=REV,
            environment="staging", merged=True, recorded_at=WHEN))
        conn.execute(sa.insert(old.leases).values(environment="production", owner="other-host:1",
                                                  expires_at=WHEN + dt.timedelta(days=3650)))
        conn.execute(sa.insert(old.signals).values(name="source-moved", value="1:commit", updated_at=WHEN))
        conn.execute(sa.insert(old.events).values(key="failed:staging:x", created_at=WHEN))
        conn.execute(sa.insert(old.overrides).values(
            run_id="r" * 32, environment="staging", gate="window", who="token:ops", reason="INC-1: hotfix",
            created_at=WHEN))
    engine.dispose()


def test_a_database_made_by_main_is_migrated_with_nothing_lost(state_url: str) -> None:
    make_main_database(state_url)
    store = Store(state_url)
    try:
        status = store.status("staging")
        assert (status.state.value, status.applied_revision, status.pinned_revision, status.last_run_id) == (
            "Synced", REV, REV, "r" * 32)
        [run] = store.runs("staging")
        assert (run.workspace, run.revision, run.result, run.applied, run.plan) == (
            "default", REV, "Succeeded", ["group:x"], [{"id": "group:x"}])
        assert run.checks == [{"name": "up", "passed": True}]
        assert run.break_glass is not None and (run.break_glass["who"], run.break_glass["reason"]) == (
            "token:ops", "INC-1: hotfix")
        assert store.verified_in("staging", "t" * 40)
        assert store.tag_targets() == {"v1.0.0": REV}
        assert [item["id"] for item, _ in store.drift("staging")] == ["group:y"]
        assert store.get("retool", "resource:crm") == "f1"
        release = store.find_release("repo", "crm", key="k")
        assert release is not None and release.version == "1.0.0"
        assert not store.first_time("failed:staging:x")
        assert not Leases(store).acquire("production", ttl=60, owner="me")  # the other host's lease holds
        assert Leases(store).look("@leader", "source-moved")[2] == "1:commit"
        # The old leftover column is gone with the rebuild; nothing reads it.
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("environment_status")}
        assert "tracked_ref" not in columns and "workspace" in columns
        assert "workspace" in {c["name"] for c in sa.inspect(store.engine).get_columns("overrides")}
    finally:
        store.close()
    again = Store(state_url)  # opening it again finds nothing to do and keeps everything
    try:
        assert again.status("staging").applied_revision == REV
    finally:
        again.close()


def test_workspaces_see_only_their_own_rows(state_url: str) -> None:
    a = Store(state_url, "team-a")
    b = a.for_workspace("team-b")
    try:
        a.record(RunOutcome(environment="staging", result=RunResult.BLOCKED, revision=REV, ref="main",
                            trigger="commit", reason="window"))
        a.set_pin("staging", REV)
        a.remember_tags([("v1.0.0", REV)])
        a.put("registry", "scope", "fa")
        a.record_release(ReleaseRecord(repository="repo", app="crm", key="k", version="1.0.0", label="l",
                                       revision=REV, environment="staging"))
        assert a.first_time("blocked:staging")
        assert Leases(a).acquire("staging", ttl=60, owner="a")

        assert b.statuses() == {}
        assert b.runs("staging") == []
        assert b.run(a.runs("staging")[0].id) is None
        assert b.tag_targets() == {}
        assert b.get("registry", "scope") is None
        assert b.find_release("repo", "crm", key="k") is None
        assert b.first_time("blocked:staging")  # B's notification is its own news
        assert Leases(b).acquire("staging", ttl=60, owner="b")  # B's staging is not A's
        b.set_pin("staging", "b" * 40)
        assert (a.status("staging").pinned_revision, b.status("staging").pinned_revision) == (REV, "b" * 40)
        assert a.runs("staging")[0].workspace == "team-a"
        a.record(RunOutcome(environment="staging", result=RunResult.SUCCEEDED, revision=REV, ref="main",
                            trigger="break-glass", break_glass=BreakGlass("token:ops-a", "INC-1")))
        glass = a.runs("staging")[0]
        assert glass.break_glass is not None and glass.break_glass["who"] == "token:ops-a"
        with a.engine.connect() as conn:
            assert conn.execute(sa.select(t.overrides.c.workspace, t.overrides.c.run_id)).all() == [
                ("team-a", glass.id)]
        assert b.runs("staging") == []
    finally:
        a.close()


def test_a_replica_look_reads_live_members_the_leader_and_the_news_of_its_own_workspace(state_url: str) -> None:
    """One read per tick (Leases.look): expired rows are nobody, another workspace's rows are not ours."""
    from reconciler.store.leases import LEADER, member_key

    team = Store(state_url, "team")
    other = team.for_workspace("other")
    leases, theirs = Leases(team), Leases(other)
    assert leases.look(LEADER, "source-moved") == ([], None, None)  # an empty store
    assert leases.acquire(member_key("host-a"), 60, "host-a") and leases.acquire(member_key("host-b"), 60, "host-b")
    assert leases.acquire(member_key("host-c"), 0.001, "host-c")  # expires at once
    assert leases.acquire(LEADER, 60, "host-b")
    leases.post("source-moved", "1:commit")
    assert theirs.acquire(member_key("host-z"), 60, "host-z") and theirs.acquire(LEADER, 60, "host-z")
    theirs.post("source-moved", "9:other")
    wait_for(lambda: leases.look(LEADER, "source-moved")[0] == ["host-a", "host-b"],
             message="host-c's membership row to expire")
    assert leases.look(LEADER, "source-moved") == (["host-a", "host-b"], "host-b", "1:commit")
    assert theirs.look(LEADER, "source-moved") == (["host-z"], "host-z", "9:other")
    team.close()


def test_the_workspaces_of_a_process_share_one_replica_read_and_its_own_writes_are_seen_at_once(
        state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every workspace's replica looks each second; the workspaces of one process share one read of
    the store (20 workspaces reading for themselves cost the idle daemon 4 to 6 % of a core), and a
    write of this process (a renewal, a leader lease, a signal) makes the next look read again."""
    from reconciler.store import leases as module
    from reconciler.store.leases import LEADER, member_key

    monkeypatch.setattr(module, "LOOK_MAX_AGE", 3600.0)  # only a write may refresh the shared read
    team = Store(state_url, "team")
    other = team.for_workspace("other")
    statements: list[str] = []
    sa.event.listen(team.engine, "before_cursor_execute",
                    lambda _c, _cur, sql, params, *_: statements.append(f"{sql} {params}")
                    if "leases" in sql.lower() else None)
    assert Leases(team.for_workspace("stranger")).acquire(member_key("host-s"), 60, "host-s")  # never looks here
    Leases(team).look(LEADER, "source-moved"), Leases(other).look(LEADER, "source-moved")  # both ask once
    assert Leases(team).acquire(member_key("host-a"), 60, "host-a")
    assert Leases(other).acquire(member_key("host-b"), 60, "host-b")
    statements.clear()
    assert Leases(team).look(LEADER, "source-moved")[0] == ["host-a"]
    assert Leases(other).look(LEADER, "source-moved")[0] == ["host-b"]
    assert Leases(team).look(LEADER, "source-moved")[0] == ["host-a"]
    reads = [s for s in statements if s.lstrip().lower().startswith("select")]
    assert len(reads) == 1  # one read for three looks
    board = module._board(team.engine)._last
    assert board is not None and set(board.rows) == {"team", "other"}  # not the workspace that never looks here
    assert Leases(other).acquire(LEADER, 60, "host-b")  # this process writes: the next look reads again
    assert Leases(other).look(LEADER, "source-moved")[1] == "host-b"
    Leases(team).post("source-moved", "2:commit")
    assert Leases(team).look(LEADER, "source-moved")[2] == "2:commit"
    team.close()
