"""Checks under a running daemon: a rollback recorded and notified once, checks on the drift schedule,
and a soak that ends while the daemon runs.

Real components: the daemon (a ``reconciler run`` process, or the supervisor in process where the
test must move the clock), the embedded PostgreSQL, a CRM API and a notification receiver on
loopback. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import clock
from reconciler.daemon.supervisor import Daemon
from tests.checks.servers import CrmApi, crm_api
from tests.conftest import World
from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.webhooks import Receiver, receiving

HEALTH = """kind: Check
name: crm-api-health
environments: [production]
timeout: 5s
http:
  resource: crm-api
  path: /health
  status: 200
"""


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def production_checks_its_api(world: World, api: CrmApi, sync: str) -> None:
    """Production's CRM API is ``api`` (on loopback), checked by crm-api-health; ``sync`` is added to its
    sync section. Staging declares no check of its own."""
    edit(world.desired / "config" / "variables.yaml", "production: https://api.example.com", f"production: {api.url}")
    edit(world.desired / "environments" / "production.yaml", "  self_heal: false", f"  self_heal: false\n{sync}")
    (world.desired / "checks" / "crm.yaml").unlink()
    world.write("checks/health.yaml", HEALTH)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as got:
        yield got


@pytest.fixture
def api() -> Iterator[CrmApi]:
    with crm_api() as served:
        yield served


def runs_of(d: DaemonProcess, env: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = d.get(f"/api/v1/environments/{env}/runs?limit=100")["runs"]
    return runs


def test_a_daemon_rolls_production_back_once_and_notifies_it_once(
    pyworld: World, api: CrmApi, hook: Receiver,
) -> None:
    """v1.1.0 moves production to an API whose health check fails: the daemon records the failed run,
    rolls back to v1.0.0 (pinned) and sends one ``rolled_back`` message saying who, what and why."""
    production_checks_its_api(pyworld, api, "  run_checks: true\n  on_failed_checks: rollback")
    pyworld.configure(notify={"webhooks": [{"url": hook.url}]})
    pyworld.commit("Production checks its CRM API and rolls back when it fails")
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        first = pyworld.tag("v1.0.0", "Release 1.0.0")
        d.wait_env("production", state="Synced", applied_ref="v1.0.0")
        api.routes["/v2/health"] = (503, {"status": "down"})
        edit(pyworld.desired / "config" / "variables.yaml", f"production: {api.url}", f"production: {api.url}/v2")
        head = pyworld.commit("Production uses the CRM API v2")
        d.wait_env("staging", state="Synced", applied_revision=head)
        second = pyworld.tag("v1.1.0", "Release 1.1.0")

        d.wait_env("production", state="Synced", applied_revision=first, pinned_revision=first)
        wait_for(lambda: ("rolled_back", first) in hook.events(), message="the rollback's notification")
        runs = runs_of(d, "production")
        assert [(r["trigger"], r["result"], r["revision"]) for r in runs[:2]] == [
            ("rollback", "Succeeded", first), ("tag", "Failed", second)]
        # v2 is healthy again and an operator unpins: v1.1.0 goes out, and its promotion is the next message.
        api.routes["/v2/health"] = (200, {"status": "ok"})
        with d.client() as client:
            assert client.post("/api/v1/environments/production/unpin").status_code == 200
        d.wait_env("production", state="Synced", applied_ref="v1.1.0")
        wait_for(lambda: ("promoted", second) in hook.events(), message="v1.1.0's promotion message")
    finally:
        d.terminate()
    # One delivery queue, in order: everything sent before the last promotion has arrived.
    assert hook.events() == [("promoted", first), ("rolled_back", first), ("promoted", second)]
    rolled = next(b for b in hook.bodies if b["event"] == "rolled_back")
    assert rolled["title"] == "production: rolled back from v1.1.0 to v1.0.0"
    assert rolled["by"] == "reconciler (sync.on_failed_checks: rollback)"
    assert (rolled["ref"], rolled["from_revision"], rolled["from_ref"]) == ("v1.0.0", second, "v1.1.0")
    assert rolled["failed_run_id"] == runs[1]["id"] and rolled["run_id"] == runs[0]["id"]
    assert rolled["reason"] == ("rolled back to v1.0.0 because check crm-api-health failed at v1.1.0 (pinned); "
                                "'reconciler unpin production' releases it")
    assert [(c["name"], c["passed"], c["error"]) for c in rolled["checks"]] == [
        ("crm-api-health", False, 'GET /health: expected status 200, got 503: {"status": "down"}')]


def check_every_second(world: World) -> None:
    edit(world.desired / "environments" / "production.yaml", "drift_check_interval: 5m", "drift_check_interval: 1s")


def health_probes(api: CrmApi, path: str = "/health") -> int:
    return len([r for r in list(api.requests) if r.path == path])


def test_scheduled_checks_record_and_notify_a_new_failure_once_and_then_the_recovery(
    pyworld: World, api: CrmApi, hook: Receiver,
) -> None:
    production_checks_its_api(pyworld, api, "  run_checks: true\n  scheduled_checks: report")
    check_every_second(pyworld)
    pyworld.configure(notify={"webhooks": [{"url": hook.url}]})
    pyworld.commit("Production checks its CRM API on every drift check")
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        first = pyworld.tag("v1.0.0", "Release 1.0.0")
        d.wait_env("production", state="Synced", applied_ref="v1.0.0")
        api.routes["/health"] = (503, {"status": "down"})

        failed = d.wait_env("production", state="Failed")
        assert failed["reason"] == ('check crm-api-health failed on schedule: GET /health: expected status 200, '
                                    'got 503: {"status": "down"}')
        assert (failed["applied_revision"], failed["pinned_revision"]) == (first, None)  # report: nothing else
        probes = health_probes(api)
        wait_for(lambda: health_probes(api) >= probes + 3, message="three more scheduled checks")
        scheduled = [r for r in runs_of(d, "production") if r["trigger"] == "scheduled-checks"]
        assert [(r["result"], r["revision"]) for r in scheduled] == [("Failed", first)]  # one record, not one a second
        assert [(c["name"], c["passed"]) for c in scheduled[0]["checks"]] == [("crm-api-health", False)]
        assert d.env("production")["state"] == "Failed"  # no run of the daemon's own turned it Synced meanwhile

        api.routes["/health"] = (200, {"status": "ok"})
        d.wait_env("production", state="Synced", applied_revision=first)
        wait_for(lambda: ("recovered", first) in hook.events(), message="the recovery's notification")
        runs = runs_of(d, "production")
    finally:
        d.terminate()
    assert [(r["trigger"], r["result"]) for r in runs[:2]] == [("scheduled-checks", "NoChanges"),
                                                                ("scheduled-checks", "Failed")]
    assert [c["passed"] for c in runs[0]["checks"]] == [True]
    assert hook.events() == [("promoted", first), ("failed", first), ("recovered", first)]
    message = hook.bodies[1]
    assert message["reason"] == failed["reason"]
    assert [(c["name"], c["passed"], c["duration_seconds"] >= 0) for c in message["checks"]] == [
        ("crm-api-health", False, True)]


def test_scheduled_checks_with_rollback_roll_production_back_when_its_api_breaks(
    pyworld: World, api: CrmApi, hook: Receiver,
) -> None:
    production_checks_its_api(pyworld, api, "  run_checks: true\n  scheduled_checks: rollback")
    check_every_second(pyworld)
    pyworld.configure(notify={"webhooks": [{"url": hook.url}]})
    pyworld.commit("Production checks its CRM API on every drift check and rolls back when it breaks")
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        first = pyworld.tag("v1.0.0", "Release 1.0.0")
        d.wait_env("production", state="Synced", applied_ref="v1.0.0")
        api.routes["/v2/health"] = (200, {"status": "ok"})
        edit(pyworld.desired / "config" / "variables.yaml", f"production: {api.url}", f"production: {api.url}/v2")
        head = pyworld.commit("Production uses the CRM API v2")
        d.wait_env("staging", state="Synced", applied_revision=head)
        second = pyworld.tag("v1.1.0", "Release 1.1.0")
        d.wait_env("production", state="Synced", applied_ref="v1.1.0")

        api.routes["/v2/health"] = (503, {"status": "down"})  # v1.1.0 ran fine for a while; now its API breaks
        d.wait_env("production", state="Synced", applied_revision=first, pinned_revision=first)
        wait_for(lambda: ("rolled_back", first) in hook.events(), message="the rollback's notification")
        runs = runs_of(d, "production")
    finally:
        d.terminate()
    assert [(r["trigger"], r["result"], r["revision"]) for r in runs[:2]] == [
        ("rollback", "Succeeded", first), ("scheduled-checks", "Failed", second)]
    assert hook.events() == [("promoted", first), ("promoted", second), ("rolled_back", first)]
    rolled = hook.bodies[2]
    assert rolled["by"] == "reconciler (sync.scheduled_checks: rollback)"
    assert rolled["reason"] == ("rolled back to v1.0.0 because check crm-api-health failed at v1.1.0 (pinned); "
                                "'reconciler unpin production' releases it")


# -- a soak ends while the daemon runs ---------------------------------------------------------------------


class ManualClock:
    """The product's clock, standing still until the test moves it."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop(30)


def test_a_daemon_promotes_a_release_by_itself_when_its_soak_in_staging_ends(
    pyworld: World, monkeypatch: pytest.MonkeyPatch, daemons: list[Daemon],
) -> None:
    """Staging is Synced with passing checks at 10:00; production's ``soak: 30m`` holds v1.0.0 until
    10:30 on the reconciler's clock. The test moves that clock past 10:30 and the daemon, with no other
    event (polling is hourly, no commit, no tag), promotes v1.0.0 — as it does when a deny window closes."""
    edit(pyworld.desired / "environments" / "production.yaml", "  promoted_from: staging",
         "  promoted_from: staging\n  soak: 30m")
    edit(pyworld.desired / "environments" / "staging.yaml", "  automatic: true\n", "  automatic: true\n"
         "  run_checks: true\n")
    pyworld.commit("Staging checks every apply; production waits for 30 minutes of a Synced staging")
    pyworld.configure(source={"url": str(pyworld.repo), "poll_interval": "1h"})
    moment = ManualClock(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC))
    monkeypatch.setattr(clock, "_current", moment)  # the store's records follow it too
    r = pyworld.reconciler(clock=moment)
    daemon = Daemon(pyworld.settings(), r)
    daemons.append(daemon)
    daemon.start()
    wait_for(lambda: r.status("staging").state == "Synced", message="staging Synced")
    (staging_run,) = r.queries.runs("staging")
    assert [(c["name"], c["passed"]) for c in staging_run.checks] == [("dashboard-open-tickets", True)]

    moment.at = dt.datetime(2026, 12, 2, 10, 29, 57, tzinfo=dt.UTC)
    pyworld.tag("v1.0.0", "Release 1.0.0")

    def soaking() -> bool:
        status = r.status("production")
        return status.state == "Blocked" and "soaking in staging until 10:30 UTC" in (status.reason or "")

    wait_for(soaking, message="production Blocked while v1.0.0 soaks in staging")
    assert r.status("production").applied_revision is None
    moment.at = dt.datetime(2026, 12, 2, 10, 30, 5, tzinfo=dt.UTC)  # the soak is over

    wait_for(lambda: r.status("production").applied_ref == "v1.0.0",
             message="production to promote v1.0.0 once the soak ended")
    assert r.status("production").state == "Synced"
    runs = r.queries.runs("production")
    assert [(run.result, run.trigger) for run in runs[:1]] == [("Succeeded", "soak-ended")]
    assert [run.result for run in runs[1:]] == ["Blocked"]
