"""Notifications: once per event, retried with backoff, delivered to a real HTTP receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config import load_settings
from reconciler.core.changes import Change, DriftItem
from reconciler.core.gates import GateCode
from reconciler.core.outcome import RunOutcome as Outcome
from reconciler.core.outcome import RunResult
from reconciler.core.plan import Plan
from reconciler.daemon.notify import Notifier
from reconciler.store.store import Store
from tests.conftest import World
from tests.daemon_support import start_daemon, wait_for
from tests.webhooks import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


def notifier(tmp_path: Path, receiver: Receiver, fmt: str = "json") -> Notifier:
    settings = load_settings(None, data_dir=str(tmp_path), notify={"webhooks": [{"url": receiver.url, "format": fmt}]})
    return Notifier(settings, Store(f"sqlite:///{tmp_path / 'state.db'}"), backoff=0.01)


def drift_plan(*ids: str) -> Plan:
    items = [DriftItem(i, "config-variable", i.split(":")[1], "value", Change.UPDATE, "a", "b") for i in ids]
    return Plan("production", "r" * 40, [], items)


def test_a_drift_is_notified_once_however_often_it_is_seen(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver)
    for _ in range(3):
        n.drift("production", drift_plan("config-variable:SUPPORT_EMAIL:value"))
    n.drift("production", drift_plan("config-variable:SUPPORT_EMAIL:value", "config-variable:X:value"))
    assert n.wait_idle(10)
    assert [b["items"] for b in receiver.bodies] == [
        ["config-variable:SUPPORT_EMAIL:value"],
        ["config-variable:SUPPORT_EMAIL:value", "config-variable:X:value"],
    ]
    assert receiver.bodies[0]["event"] == "drift" and receiver.bodies[0]["environment"] == "production"
    n.close()


def test_delivery_is_retried_with_backoff(tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail_first = 2
    n = notifier(tmp_path, receiver)
    n.outcome(Outcome("staging", RunResult.FAILED, "a" * 40, "main", "run1", "boom"))
    assert n.wait_idle(10)
    assert receiver.attempts == 3
    assert [b["event"] for b in receiver.bodies] == ["failed"]
    assert n.sent == 1 and n.failed == 0
    n.close()


def test_a_receiver_that_stays_down_is_given_up_on(tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail_first = 100
    n = notifier(tmp_path, receiver)
    n.outcome(Outcome("staging", RunResult.FAILED, "a" * 40, "main", "run2", "boom"))
    assert n.wait_idle(10)
    assert receiver.attempts == 5 and n.failed == 1 and receiver.bodies == []
    n.close()


def test_slack_payloads(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver, fmt="slack")
    n.outcome(Outcome("production", RunResult.BLOCKED, "b" * 40, "v1.1.0", "run3", "destructive change needs approval",
                      gate=GateCode.DESTRUCTIVE))
    n.outcome(Outcome("production", RunResult.BLOCKED, "b" * 40, "v1.1.0", "run3", "destructive change needs approval",
                      gate=GateCode.DESTRUCTIVE))
    assert n.wait_idle(10)
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["text"] == "production: bbbbbbbbbbbb (v1.1.0) blocked (destructive)"
    assert "destructive change needs approval" in body["blocks"][0]["text"]["text"]
    n.close()


HEALTH_FAILED = {"name": "crm-api-health", "kind": "http", "target": "resource crm-api", "app": None,
                 "when": "after-apply", "passed": False, "duration_seconds": 5.004,
                 "detail": "GET /health: no answer within 5s", "error": "GET /health: no answer within 5s"}
HAS_CUSTOMERS = {"name": "crm-has-customers", "kind": "sql", "target": "database crm", "app": None,
                 "when": "after-apply", "passed": True, "duration_seconds": 0.012, "detail": "true", "error": None}


def test_a_failed_runs_checks_travel_in_json_and_slack_messages(tmp_path: Path, receiver: Receiver) -> None:
    failed = Outcome("production", RunResult.FAILED, "c" * 40, "v1.2.0", "run4",
                     "check crm-api-health failed after apply: GET /health: no answer within 5s",
                     checks=(HAS_CUSTOMERS, HEALTH_FAILED))
    n = notifier(tmp_path / "json", receiver)
    n.outcome(failed)
    assert n.wait_idle(10)
    n.close()
    assert [(c["name"], c["passed"], c["duration_seconds"], c["error"]) for c in receiver.bodies[0]["checks"]] == [
        ("crm-has-customers", True, 0.012, None), ("crm-api-health", False, 5.004, "GET /health: no answer within 5s")]
    slack = notifier(tmp_path / "slack", receiver, fmt="slack")
    slack.outcome(failed)
    assert slack.wait_idle(10)
    slack.close()
    text = receiver.bodies[1]["blocks"][0]["text"]["text"]
    assert "• check `crm-has-customers` passed (0.01s)" in text
    assert "• check `crm-api-health` FAILED (5.00s): GET /health: no answer within 5s" in text


def test_another_check_failing_at_the_same_revision_is_news(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver)
    health = Outcome("production", RunResult.FAILED, "c" * 40, "v1.2.0", "run5", "health", checks=(HEALTH_FAILED,))
    n.outcome(health)
    n.outcome(health)
    n.outcome(Outcome("production", RunResult.FAILED, "c" * 40, "v1.2.0", "run6", "customers",
                      checks=({**HAS_CUSTOMERS, "passed": False},)))
    assert n.wait_idle(10)
    n.close()
    assert [b["reason"] for b in receiver.bodies] == ["health", "customers"]


def test_the_daemon_announces_a_production_promotion(pyworld: World, receiver: Receiver) -> None:
    pyworld.configure(notify={"webhooks": [{"url": receiver.url}]})
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        pyworld.tag("v1.0.0", "Release 1.0.0")
        d.wait_env("production", state="Synced", applied_ref="v1.0.0")
        promoted = wait_for(lambda: [b for b in receiver.bodies if b["event"] == "promoted"] or None,
                            message="a promotion notification")
        assert promoted[0]["title"] == "production: promoted to v1.0.0"
        assert promoted[0]["ref"] == "v1.0.0"
    finally:
        d.kill()


def test_a_workspaces_rollback_and_break_glass_name_the_workspace(tmp_path: Path, receiver: Receiver) -> None:
    """A workspace's notifier (top-level targets hear every workspace) says whose rollback and override it is."""
    from reconciler.core.gates import BreakGlass

    settings = load_settings(None, data_dir=str(tmp_path), workspaces=[
        {"name": "team-a", "source": {"url": str(tmp_path / "a")},
         "notify": {"webhooks": [{"url": receiver.url, "format": "slack"}]}},
        {"name": "team-b", "source": {"url": str(tmp_path / "b")}},
    ], notify={"webhooks": [{"url": receiver.url}]}).for_workspace("team-a")
    n = Notifier(settings, Store(f"sqlite:///{tmp_path / 'state.db'}", "team-a"), backoff=0.01)
    failed = Outcome("production", RunResult.FAILED, "c" * 40, "v1.2.0", "run7", "health", checks=(HEALTH_FAILED,))
    n.outcome(Outcome("production", RunResult.SUCCEEDED, "b" * 40, "v1.1.0", "run8", None, cause=failed,
                      by="sync.on_failed_checks: rollback"))
    n.outcome(Outcome("production", RunResult.SUCCEEDED, "b" * 40, "v1.1.0", "run9", None,
                      break_glass=BreakGlass("token:ops-a", "INC-7: hotfix")))
    assert n.wait_idle(10)
    n.close()
    sent = {(b.get("event"), "blocks" in b): b for b in receiver.bodies}
    assert {(kind, slack) for kind, slack in sent} == {("rolled_back", False), ("break-glass", False), (None, True)}
    assert sent["rolled_back", False]["workspace"] == "team-a"
    assert sent["break-glass", False]["workspace"] == "team-a"
    assert (sent["break-glass", False]["who"], sent["break-glass", False]["why"]) == ("token:ops-a", "INC-7: hotfix")
    slack = [b["blocks"][0]["text"]["text"] for b in receiver.bodies if "blocks" in b]
    assert len(slack) == 2 and all("workspace: `team-a`" in text for text in slack)
