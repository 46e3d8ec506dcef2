"""End-to-end: a real ``reconciler run`` process on loopback, a real Git repository, a real PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import World, cli, git
from tests.daemon_support import DaemonProcess, start_daemon, wait_for


@pytest.fixture
def daemon_for(pyworld: World) -> Iterator[callable]:  # type: ignore[valid-type]
    started: list[DaemonProcess] = []

    def start(world: World = pyworld, name: str = "daemon") -> DaemonProcess:
        d = start_daemon(world.config, world.root / "data", env=world.secrets, name=name)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def metric(d: DaemonProcess, name: str) -> float:
    text = httpx.get(d.url + "/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_commit_reaches_staging_and_a_tag_reaches_production(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    pyworld.write("config/variables.yaml", (pyworld.desired / "config/variables.yaml").read_text().replace(
        "support-staging@example.com", "help-staging@example.com"))
    commit = pyworld.commit("Change the staging support address")
    staging = d.wait_env("staging", state="Synced", applied_revision=commit)
    assert staging["applied_ref"] == "main"
    assert staging["last_run"]["trigger"] == "commit"
    production = d.env("production")
    assert production["applied_revision"] is None
    assert production["reason"] == "no release tag matching 'v*' yet"

    pyworld.tag("v1.0.0", "Release 1.0.0")
    production = d.wait_env("production", state="Synced", applied_ref="v1.0.0")
    assert production["applied_revision"] == commit
    assert production["last_run"]["trigger"] == "tag"
    status = json.loads(cli(pyworld, "status", "--format", "json").stdout)["environments"]
    assert [(e["name"], e["state"], e["applied_ref"]) for e in status] == [
        ("staging", "Synced", "main"), ("production", "Synced", "v1.0.0")]
    assert d.terminate() == 0


def blocked_reason(d: DaemonProcess, world: World, env: str, contains: str) -> str:
    def refused() -> dict[str, object] | None:
        e = d.env(env)
        return e if e["state"] == "Blocked" and contains in (e["reason"] or "") else None

    found = wait_for(refused, message=f"{env} Blocked with a reason containing {contains!r}")
    status = {e["name"]: e for e in json.loads(cli(world, "status", "--format", "json").stdout)["environments"]}
    assert status[env]["state"] == "Blocked"
    assert contains in status[env]["reason"]
    return str(found["reason"])


def test_an_unreachable_tag_is_blocked(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    pyworld.branch("hotfix")
    pyworld.checkout("hotfix")
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: x\n")
    commit = pyworld.commit("Hotfix not on main")
    pyworld.tag("v1.0.0", "Release", target=commit)
    blocked_reason(d, pyworld, "production", "is not reachable from branch main")
    assert d.env("production")["applied_revision"] is None


def test_a_tag_not_promoted_through_staging_is_blocked_then_passes(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    pyworld.configure(source={"url": str(pyworld.repo), "branches": ["main"]})
    # staging will not sync automatically here: its policy says so, so the tag arrives first.
    spec = pyworld.desired / "environments/staging.yaml"
    spec.write_text(spec.read_text().replace("  automatic: true", "  automatic: false"))
    commit = pyworld.commit("staging syncs by hand")
    pyworld.tag("v1.0.0", "Release 1.0.0")
    d = daemon_for()
    blocked_reason(d, pyworld, "production", "has never synced and verified in staging")
    assert d.env("staging")["state"] == "OutOfSync"
    with d.client() as c:
        assert c.post("/api/v1/environments/staging/sync").status_code == 202
    d.wait_env("staging", state="Synced", applied_revision=commit)
    d.wait_env("production", state="Synced", applied_ref="v1.0.0")


def test_a_moved_tag_is_blocked(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    first = pyworld.tag("v1.0.0", "Release 1.0.0")
    d.wait_env("production", state="Synced", applied_ref="v1.0.0")
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: x\n")
    second = pyworld.commit("More")
    d.wait_env("staging", state="Synced", applied_revision=second)
    git(pyworld.repo, "tag", "-f", "-a", "v1.0.0", "-m", "moved", second)
    reason = blocked_reason(d, pyworld, "production", "moved")
    assert f"moved from {first[:12]} to {second[:12]}" in reason
    assert d.env("production")["applied_revision"] == first


def test_a_destructive_change_without_approval_is_blocked(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    pyworld.tag("v1.0.0", "Release 1.0.0")
    d.wait_env("production", state="Synced", applied_ref="v1.0.0")
    sql = pyworld.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    commit = pyworld.commit("Drop customers.plan")
    d.wait_env("staging", state="Synced", applied_revision=commit)
    pyworld.tag("v1.1.0", "Release 1.1.0")
    blocked_reason(d, pyworld, "production", "destructive change needs approval: crm:drop-column:public.customers.plan")
    assert "plan" in pyworld.columns("production", "customers")
    pyworld.tag("v1.1.1", "Release 1.1.1\n\nApprove: crm:drop-column:public.customers.plan\n")
    d.wait_env("production", state="Synced", applied_ref="v1.1.1")
    assert "plan" not in pyworld.columns("production", "customers")


def _ssh_signing(world: World, key_dir: Path) -> Path:
    key_dir.mkdir()
    key = key_dir / "release"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release@example.com", "-f", str(key)],
                   check=True)
    allowed = key_dir / "allowed_signers"
    allowed.write_text("release@example.com " + (key_dir / "release.pub").read_text())
    git(world.repo, "config", "gpg.format", "ssh")
    git(world.repo, "config", "user.signingkey", str(key))
    return allowed


def test_signatures_bad_or_missing_are_blocked_and_good_ones_pass(tmp_path: Path, pyworld: World,
                                                                   daemon_for) -> None:  # type: ignore[no-untyped-def]
    allowed = _ssh_signing(pyworld, tmp_path / "keys")
    spec = pyworld.desired / "environments/production.yaml"
    spec.write_text(spec.read_text().replace(
        "  prereleases: false\n", f"  prereleases: false\n  verify_signatures: {{ssh_allowed_signers: {allowed}}}\n"))
    pyworld.commit("Require signed releases")
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    pyworld.tag("v1.0.0", "Unsigned release")
    blocked_reason(d, pyworld, "production", "tag v1.0.0: the tag is not signed")
    # Signed with a key that is not an allowed signer.
    other = tmp_path / "other"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    git(pyworld.repo, "-c", f"user.signingkey={other}", "tag", "-s", "v1.0.1", "-m", "Signed by a stranger")
    blocked_reason(d, pyworld, "production", "not in the allowed-signers file")
    git(pyworld.repo, "tag", "-s", "v1.0.2", "-m", "Signed release")
    d.wait_env("production", state="Synced", applied_ref="v1.0.2")


def test_webhooks_without_a_good_signature_get_401_and_cause_no_fetch(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    pyworld.configure(source={"url": f"file://{pyworld.repo}", "webhook_secret": "${secret:WEBHOOK_SECRET}",
                              "poll_interval": "1h"})
    pyworld.secrets["WEBHOOK_SECRET"] = "hook-secret-123"
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    fetches = metric(d, "reconciler_fetches_total")
    body = b'{"ref": "refs/heads/main"}'
    with httpx.Client(base_url=d.url, timeout=5) as c:
        assert c.post("/hooks/github", content=body).status_code == 401
        bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert c.post("/hooks/github", content=body, headers=bad).status_code == 401
        assert c.post("/hooks/gitlab", content=body, headers={"X-Gitlab-Token": "wrong"}).status_code == 401
        bad = {"X-Reconciler-Signature": "sha256=bad"}
        assert c.post("/hooks/generic", content=body, headers=bad).status_code == 401
        response = c.post("/hooks/github", content=body)
        assert response.json()["error"] == "missing or bad X-Hub-Signature-256"
    assert metric(d, "reconciler_fetches_total") == fetches
    # A correctly signed hook fetches, and the new commit reaches staging.
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: y\n")
    commit = pyworld.commit("More")
    signature = "sha256=" + hmac.new(b"hook-secret-123", body, hashlib.sha256).hexdigest()
    with httpx.Client(base_url=d.url, timeout=5) as c:
        assert c.post("/hooks/github", content=body, headers={"X-Hub-Signature-256": signature}).status_code == 202
    d.wait_env("staging", state="Synced", applied_revision=commit)
    assert metric(d, "reconciler_fetches_total") > fetches


def test_webhooks_for_a_push_already_fetched_or_an_unfetched_branch_cause_no_fetch(
    pyworld: World, daemon_for  # type: ignore[no-untyped-def]
) -> None:
    """Redelivered hooks, hooks from several integrations, pushes to feature branches: no fetch."""
    pyworld.configure(source={"url": f"file://{pyworld.repo}", "webhook_secret": "${secret:WEBHOOK_SECRET}",
                              "poll_interval": "1h"})
    pyworld.secrets["WEBHOOK_SECRET"] = "hook-secret-123"
    d = daemon_for()
    head = d.wait_env("staging", state="Synced")["applied_revision"]

    def push(ref: str, after: str) -> httpx.Response:
        body = json.dumps({"ref": ref, "after": after}).encode()
        signature = "sha256=" + hmac.new(b"hook-secret-123", body, hashlib.sha256).hexdigest()
        with httpx.Client(base_url=d.url, timeout=30) as c:
            return c.post("/hooks/github", content=body, headers={"X-Hub-Signature-256": signature})

    fetches = metric(d, "reconciler_fetches_total")
    for ref, after in [("refs/heads/main", head), ("refs/heads/feature/x", "a" * 40)]:
        response = push(ref, after)
        assert response.status_code == 202
        assert response.json()["detail"] == "nothing new to fetch"
    assert metric(d, "reconciler_fetches_total") == fetches
    assert metric(d, 'reconciler_webhooks_total{outcome="known",source="github",workspace="default"}') == 2
    # A push of something new fetches, and the commit reaches staging.
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: y\n")
    commit = pyworld.commit("More")
    assert "detail" not in push("refs/heads/main", commit).json()
    d.wait_env("staging", state="Synced", applied_revision=commit)
    assert metric(d, "reconciler_fetches_total") > fetches


def test_sigterm_when_idle_exits_zero_without_waiting_for_the_shutdown_timeout(
    pyworld: World, daemon_for  # type: ignore[no-untyped-def]
) -> None:
    pyworld.configure(daemon={"shutdown_timeout": "10m"})
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    assert d.terminate() == 0  # long before the 10 minutes it would be allowed


def hold_lock(url: str, table: str, release: threading.Event, holding: threading.Event) -> None:
    """Hold ACCESS SHARE on ``table`` (an open read transaction): ALTER TABLE must wait, reads need not."""
    with psycopg.connect(url) as conn:
        conn.execute(f"select * from {table} limit 1")
        holding.set()
        release.wait(300)


def test_sigterm_during_an_apply_finishes_the_change_and_exits_zero(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    pyworld.configure(databases={"lock_timeout": "1s", "lock_retries": 1}, daemon={"shutdown_timeout": "20s"})
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    release, holding = threading.Event(), threading.Event()
    locker = threading.Thread(target=hold_lock, args=(pyworld.databases["staging"], "customers", release, holding))
    locker.start()
    try:
        assert holding.wait(30)
        sql = pyworld.desired / "databases/crm/004_phone.sql"
        sql.write_text("alter table customers add column phone text;\n")
        pyworld.commit("Add phone")
        d.wait_env("staging", state="Progressing")
        # It stops while the lock is still held (the holder lets go only after this): the change in
        # flight gives up on its lock timeout, and nothing waits for the holder.
        assert d.terminate() == 0
    finally:
        release.set()
        locker.join()
    runs = json.loads(cli(pyworld, "history", "staging", "--format", "json").stdout)["runs"]
    assert runs[0]["result"] in ("Failed", "Interrupted")
    assert "phone" not in pyworld.columns("staging", "customers")  # nothing half-applied


def test_kill_9_during_an_apply_then_restart_converges(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    pyworld.configure(databases={"lock_timeout": "20s", "lock_retries": 0})
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    release, holding = threading.Event(), threading.Event()
    locker = threading.Thread(target=hold_lock, args=(pyworld.databases["staging"], "customers", release, holding))
    locker.start()
    try:
        assert holding.wait(30)
        (pyworld.desired / "databases/crm/004_phone.sql").write_text("alter table customers add column phone text;\n")
        pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: z\n")
        commit = pyworld.commit("Add phone and a group")
        d.wait_env("staging", state="Progressing")
        d.kill()
    finally:
        release.set()
        locker.join()
    d2 = daemon_for(name="daemon2")
    d2.wait_env("staging", state="Synced", applied_revision=commit)
    runs = d2.get("/api/v1/environments/staging/runs")["runs"]
    results = [r["result"] for r in runs]
    assert "Interrupted" in results
    interrupted = next(r for r in runs if r["result"] == "Interrupted")
    assert "interrupted" in interrupted["reason"]
    succeeded = [r for r in runs if r["result"] == "Succeeded" and r["revision"] == commit]
    assert len(succeeded) == 1
    # Nothing applied twice: each change id appears in exactly one run's applied list.
    applied = [i for r in runs if r["revision"] == commit for i in r["applied"]]
    assert len(applied) == len(set(applied))
    assert pyworld.columns("staging", "customers").count("phone") == 1


def test_two_daemons_on_one_postgresql_state_store_apply_each_run_once(pyworld: World, pg, daemon_for) -> None:  # type: ignore[no-untyped-def]
    name = "state_" + hashlib.sha256(str(pyworld.root).encode()).hexdigest()[:10]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    state_url = pg.database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    pyworld.configure(state={"url": state_url}, platform={"url": f"sqlite:///{pyworld.root / 'registry.db'}"})
    first = daemon_for(name="a")
    second = daemon_for(name="b")
    commits = []
    for index in range(4):
        first.wait_env("staging", state="Synced")
        pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text()
                      + f"---\nkind: Group\nname: team-{index}\n")
        commits.append(pyworld.commit(f"Team {index}"))
    first.wait_env("staging", state="Synced", applied_revision=commits[-1])
    second.wait_env("staging", state="Synced", applied_revision=commits[-1])  # both see the one truth
    runs = first.get("/api/v1/environments/staging/runs?limit=500")["runs"]
    applied = [i for r in runs for i in r["applied"]]
    assert len(applied) == len(set(applied)), "a change was applied twice"
    groups = [i for i in applied if i.startswith("group:team-")]
    assert sorted(groups) == [f"group:team-{i}" for i in range(4)]


def test_out_of_band_schema_drift_is_healed_with_self_heal_and_only_reported_without(
    pyworld: World, daemon_for  # type: ignore[no-untyped-def]
) -> None:
    for env in ("staging", "production"):
        spec = pyworld.desired / f"environments/{env}.yaml"
        spec.write_text(spec.read_text().replace("drift_check_interval: 1m", "drift_check_interval: 1s")
                        .replace("drift_check_interval: 5m", "drift_check_interval: 1s"))
    pyworld.commit("Check drift every second")
    d = daemon_for()
    d.wait_env("staging", state="Synced")
    pyworld.tag("v1.0.0", "Release 1.0.0")
    d.wait_env("production", state="Synced", applied_ref="v1.0.0")
    for env in ("staging", "production"):
        with psycopg.connect(pyworld.databases[env], autocommit=True) as conn:
            conn.execute("alter table customers add column legacy_notes text")

    def reported() -> dict[str, object] | None:
        drift = d.get("/api/v1/environments/production/drift")
        return drift if drift["items"] else None

    drift = wait_for(reported, message="production drift to be reported")
    item = next(i for i in drift["items"] if i["id"] == "crm:drop-column:public.customers.legacy_notes")
    assert item["risk"] == "destructive"
    assert item["heal"] == "reconciler apply production --approve crm:drop-column:public.customers.legacy_notes"
    assert d.env("production")["state"] == "OutOfSync"
    # staging heals itself (self_heal: true, destructive changes allowed there).
    wait_for(lambda: "legacy_notes" not in pyworld.columns("staging", "customers"), message="staging to heal")
    d.wait_env("staging", state="Synced")
    runs = d.get("/api/v1/environments/staging/runs")["runs"]
    assert runs[0]["trigger"] == "self-heal"
    assert "crm:drop-column:public.customers.legacy_notes" in runs[0]["applied"]
    assert "legacy_notes" in pyworld.columns("production", "customers")  # reported only


def test_every_log_line_of_a_run_carries_the_run_id_and_environment(pyworld: World, daemon_for) -> None:  # type: ignore[no-untyped-def]
    d = daemon_for()
    staging = d.wait_env("staging", state="Synced")
    run_id = staging["last_run"]["id"]
    lines = [json.loads(line) for line in d.logs().splitlines() if line.startswith("{")]
    of_run = [line for line in lines if line.get("run_id") == run_id]
    assert {line["event"] for line in of_run} >= {"reconcile.apply", "registry.apply", "schema planned"}
    assert all(line["environment"] == "staging" for line in of_run)
    applies = [line for line in lines if line["event"] == "registry.apply"]
    assert applies and all(line.get("run_id") for line in applies)
