"""Faults: each gives a clear status and reason and leaves the environment at its last good state.

Targets go down during plan and during apply, the state database goes down, the Git remote
vanishes or is corrupted, main is force-pushed, the applied tag is deleted, the disk fills while
the clone cache is written, and a process applying changes is killed at 20 seeded random points.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import psycopg
import pytest

from reconciler.app.wiring import build_schema
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests import forked_cli
from tests.conftest import World, cli, cli_process, git, without_flushes
from tests.daemon_support import start_daemon, wait_for
from tests.fakeclock import on_the_real_clock


def status(world: World, env: str) -> dict[str, object]:
    rows = json.loads(cli(world, "status", "--format", "json").stdout)["environments"]
    return next(r for r in rows if r["name"] == env)


def add_group(world: World, name: str) -> str:
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + f"---\nkind: Group\nname: {name}\n")
    return world.commit(f"Add {name}")


@pytest.fixture
def own_pg() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of this test alone, so the test can stop and start it."""
    root = Path(tempfile.mkdtemp(prefix="reconciler-fault-pg-"))
    with on_the_real_clock():
        server = EmbeddedPostgres(root / "data").start()
    without_flushes(server.url)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_target_database_down_during_plan(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    good = status(pyworld, "staging")["applied_revision"]
    add_group(pyworld, "auditors")
    dead = "postgresql://admin:Canary-Pw-77@127.0.0.1:9/crm"
    result = cli_process("apply", "staging", "--config", str(pyworld.config),
                         env={"CRM_DB_STAGING_ADMIN_URL": dead})
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "Canary-Pw-77" not in result.stderr
    assert "Failed: staging" in result.stderr
    after = status(pyworld, "staging")
    assert after["state"] == "Failed"
    assert "127.0.0.1:9" in str(after["reason"]) and "Canary-Pw-77" not in str(after["reason"])
    assert after["applied_revision"] == good


def test_target_database_down_during_apply(pyworld: World, own_pg: EmbeddedPostgres) -> None:
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute("create database crm")
    pyworld.secrets["CRM_DB_STAGING_ADMIN_URL"] = own_pg.database_url("crm")
    import os

    os.environ["CRM_DB_STAGING_ADMIN_URL"] = own_pg.database_url("crm")
    schema = build_schema(pyworld.settings())  # the Reconciler keeps its parts to itself: hold this one
    r = pyworld.reconciler(schema=schema)
    assert r.reconcile("staging").result == "Succeeded"
    good = r.status("staging").applied_revision
    (pyworld.desired / "databases/crm/004_phone.sql").write_text(
        "alter table customers add column phone text;\nalter table customers add column mobile text;\n")
    add_group(pyworld, "auditors")
    real_apply = schema.apply

    def server_dies_first(*args: object, **kwargs: object) -> list[str]:
        own_pg.stop()
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    schema.apply = server_dies_first  # type: ignore[method-assign]
    outcome = r.reconcile("staging")
    assert outcome.result == "Failed"
    assert outcome.reason and ("connect" in outcome.reason or "server" in outcome.reason)
    run = r.queries.run("staging", outcome.run_id or "")
    assert run is not None and run.result == "Failed"
    assert run.applied == []  # the schema step runs first and its transaction never committed
    assert {"group:auditors", "crm:add-column:public.customers.phone"} <= {item["id"] for item in run.plan}
    assert r.status("staging").applied_revision == good
    assert r.status("staging").state == "Failed"
    # Back up: the next run converges, both columns arrive together.
    with on_the_real_clock():
        own_pg.start()
    os.environ["CRM_DB_STAGING_ADMIN_URL"] = own_pg.database_url("crm")
    schema.apply = real_apply  # type: ignore[method-assign]
    healed = r.reconcile("staging")
    assert healed.result == "Succeeded", healed.reason
    with psycopg.connect(own_pg.database_url("crm")) as conn:
        columns = [row[0] for row in conn.execute(
            "select column_name from information_schema.columns where table_name = 'customers'")]
    assert "phone" in columns and "mobile" in columns


def test_state_database_down_and_back(pyworld: World, own_pg: EmbeddedPostgres) -> None:
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute("create database state")
    url = own_pg.database_url("state").replace("postgresql://", "postgresql+psycopg://", 1)
    pyworld.configure(state={"url": url})
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        own_pg.stop()
        ready = wait_for(lambda: (r := httpx.get(d.url + "/readyz", timeout=5)).status_code == 503 and r,
                         message="readiness to drop")
        assert ready.json()["state_store"] is False
        assert httpx.get(d.url + "/healthz", timeout=5).status_code == 200
        down = httpx.get(d.url + "/api/v1/environments", headers={"Authorization": f"Bearer {d.token}"}, timeout=5)
        assert down.status_code == 503
        assert down.json()["error"] == "state store unavailable"
        with on_the_real_clock():
            own_pg.start()
        wait_for(lambda: httpx.get(d.url + "/readyz", timeout=5).status_code == 200, message="readiness back")
        commit = add_group(pyworld, "after-outage")
        d.wait_env("staging", state="Synced", applied_revision=commit)
        assert d.proc.poll() is None
    finally:
        d.kill()


def test_git_remote_unreachable_keeps_the_last_good_state(pyworld: World) -> None:
    pyworld.configure(source={"url": f"file://{pyworld.repo}", "poll_interval": "1h"})
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        synced = d.wait_env("staging", state="Synced")
        moved = pyworld.repo.with_name("repo-moved")
        pyworld.repo.rename(moved)
        with d.client() as c:
            assert c.post("/hooks/generic").status_code == 202  # bearer token with sync scope

        def fetch_failed() -> dict[str, object] | None:
            body = httpx.get(d.url + "/readyz", timeout=5).json()
            return body if body["fetch_error"] else None

        body = wait_for(fetch_failed, message="the fetch to fail")
        assert str(body["fetch_error"]).startswith(f"fetching file://{pyworld.repo} failed")
        assert d.env("staging")["applied_revision"] == synced["applied_revision"]
        assert d.env("staging")["state"] == "Synced"
        moved.rename(pyworld.repo)
        commit = add_group(pyworld, "back")
        with d.client() as c:
            c.post("/hooks/generic")
        d.wait_env("staging", state="Synced", applied_revision=commit)
    finally:
        d.kill()


def test_a_corrupted_repository_is_a_clear_error(pyworld: World) -> None:
    head = git(pyworld.repo, "rev-parse", "HEAD")
    tree = git(pyworld.repo, "rev-parse", "HEAD^{tree}")
    (pyworld.repo / ".git" / "objects" / tree[:2] / tree[2:]).unlink()
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert head[:12] in result.stderr


def test_a_corrupted_clone_cache_is_cloned_again(pyworld: World) -> None:
    pyworld.configure(source={"url": f"file://{pyworld.repo}"})
    assert cli(pyworld, "plan", "staging").exit_code == 2
    caches = list((pyworld.root / "data" / "cache" / "git").iterdir())
    assert len(caches) == 1
    (caches[0] / "HEAD").write_text("garbage\n")
    (caches[0] / "config").write_text("[broken\n")
    result = cli(pyworld, "plan", "staging")
    assert result.exit_code == 2, result.stderr


def test_main_force_pushed(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.0.0", "Release 1.0.0")
    assert cli(pyworld, "apply", "production").exit_code == 0
    released = status(pyworld, "production")["applied_revision"]
    # Rewrite main: a new root commit with the same files plus one change; the old history is gone.
    git(pyworld.repo, "checkout", "-q", "--orphan", "rewritten")
    add_group(pyworld, "rewritten")
    git(pyworld.repo, "branch", "-f", "main", "rewritten")
    git(pyworld.repo, "checkout", "-q", "main")
    new_head = git(pyworld.repo, "rev-parse", "main")
    assert cli(pyworld, "apply", "staging").exit_code == 0
    assert status(pyworld, "staging")["applied_revision"] == new_head
    # production keeps its release; a tag on the old history is no longer reachable from main.
    assert status(pyworld, "production")["applied_revision"] == released
    pyworld.tag("v1.0.1", "Release on the old history", target=str(released))
    refused = cli(pyworld, "apply", "production")
    assert refused.exit_code == 3
    assert "is not reachable from branch main" in refused.stderr
    assert status(pyworld, "production")["applied_revision"] == released


def test_the_applied_tag_deleted(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.0.0", "Release 1.0.0")
    assert cli(pyworld, "apply", "production").exit_code == 0
    released = status(pyworld, "production")["applied_revision"]
    git(pyworld.repo, "tag", "-d", "v1.0.0")
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 3
    assert "tag v1.0.0, which production runs, was deleted; production stays at" in result.stderr
    after = status(pyworld, "production")
    assert after["state"] == "Blocked" and after["applied_revision"] == released
    assert cli(pyworld, "drift", "production").exit_code == 0  # drift is still judged against what runs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_writing_the_cache(pyworld: World, small_disk: Path) -> None:
    # A repository bigger than the disk: an incompressible file outside the desired state.
    (pyworld.repo / "assets.bin").write_bytes(random.Random(7).randbytes(600_000))
    pyworld.commit("Big asset")
    pyworld.configure(source={"url": f"file://{pyworld.repo}"}, data_dir=str(small_disk),
                      state={"url": f"sqlite:///{pyworld.root / 'state.db'}"},
                      platform={"url": f"sqlite:///{pyworld.root / 'registry.db'}"})
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "No space left on device" in result.stderr or "space" in result.stderr.lower()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert again.exit_code == 2, again.stderr  # the half-written cache did not poison the next fetch


def _progress(state_db: Path) -> tuple[str, int] | None:
    try:
        with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("select id, result from runs order by started_at desc limit 1").fetchone()
            if row is None:
                return None
            done = conn.execute("select count(*) from run_changes where run_id = ?", (row[0],)).fetchone()[0]
    except sqlite3.Error:
        return None
    return row[1], int(done)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a hang guard, not a budget: 60 CLI processes take 20 min at load 10 on 2 cores
def test_kill_9_at_random_points_of_an_apply(pyworld: World) -> None:
    """20 seeded iterations: no partial schema, consistent run records, convergence after restart.

    Each ``reconciler apply`` is forked from a process that imported the CLI already (tests/forked_cli.py):
    a real process of its own, without the second of imports a new interpreter spends before applying."""
    state_db = pyworld.root / "data" / "reconciler.db"
    assert cli(pyworld, "apply", "staging").exit_code == 0
    outcomes = []
    for seed in range(20):
        rng = random.Random(seed)
        (pyworld.desired / f"databases/crm/1{seed:02d}_cols.sql").write_text(
            f"alter table customers add column a{seed} text;\nalter table customers add column b{seed} text;\n")
        for index in range(rng.randint(1, 4)):
            pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text()
                          + f"---\nkind: Group\nname: g{seed}-{index}\n")
        pyworld.commit(f"Iteration {seed}")
        target = rng.randint(0, 6)
        proc = forked_cli.start("apply", "staging", "--config", str(pyworld.config))

        def reached(proc: BaseProcess = proc, target: int = target) -> bool:
            if proc.exitcode is not None:
                return True
            found = _progress(state_db)
            return found is not None and found[0] == "Progressing" and found[1] >= target

        wait_for(reached, interval=0.005, message=f"seed {seed} to reach {target} applied changes")
        proc.kill()  # SIGKILL
        proc.join(10)
        assert proc.exitcode is not None, f"seed {seed}: the killed process is still running"
        columns = pyworld.columns("staging", "customers")
        assert (f"a{seed}" in columns) == (f"b{seed}" in columns), f"seed {seed}: partial schema {columns}"
        last = _progress(state_db)
        outcomes.append((seed, target, last))
        healed = cli(pyworld, "apply", "staging")
        assert healed.exit_code == 0, (seed, healed.stderr)
        assert cli(pyworld, "drift", "staging").exit_code == 0, seed
        columns = pyworld.columns("staging", "customers")
        assert f"a{seed}" in columns and f"b{seed}" in columns
    runs = json.loads(cli(pyworld, "history", "staging", "--limit", "200", "--format", "json").stdout)["runs"]
    assert not [r for r in runs if r["result"] == "Progressing"]
    for run in runs:
        planned = {item["id"] for item in run["plan"]}
        assert set(run["applied"]) <= planned, run["id"]
    interrupted = [r for r in runs if r["result"] == "Interrupted"]
    assert interrupted, outcomes  # at least some kills landed mid-run
    print("kill -9 outcomes (seed, target applied count, last run state):", outcomes)
