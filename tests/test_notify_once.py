"""A failing environment notifies once per revision and event, however often the daemon retries.

The Notifier tests use a real state store and a real HTTP receiver on loopback; the daemon test
runs ``reconciler run`` with staging's database URL missing from every secret store, retrying every
200 ms (``daemon.retry_delays``), across a restart, until the secret is written. (A database that
refuses connections would do too, but its error asks for 5 s between attempts, ``TemporaryError.delay``,
which the daemon honours over a shorter configured delay: seven retries took half a minute.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.config import load_settings
from reconciler.core.gates import GateCode
from reconciler.core.outcome import RunOutcome as Outcome
from reconciler.core.outcome import RunResult
from reconciler.daemon.notify import Notifier
from reconciler.errors import SecretError
from reconciler.store.store import Store
from tests.conftest import World, git
from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.webhooks import Receiver, receiving

REV_A, REV_B = "a" * 40, "b" * 40




@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


def notifier(tmp_path: Path, receiver: Receiver) -> Notifier:
    settings = load_settings(None, data_dir=str(tmp_path), notify={"webhooks": [{"url": receiver.url}]})
    return Notifier(settings, Store(f"sqlite:///{tmp_path / 'state.db'}"), backoff=0.01)


def events(receiver: Receiver) -> list[tuple[str, str | None]]:
    return [(b["event"], b.get("revision")) for b in receiver.bodies]


def failed(rev: str, run_id: str, reason: str = "crm: cannot connect") -> Outcome:
    return Outcome("staging", RunResult.FAILED, rev, "main", run_id, reason)


def test_retries_of_a_failing_revision_notify_once(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver)
    for attempt in range(4):  # each retry is a new run with a new id
        n.outcome(failed(REV_A, f"run{attempt}"))
    assert n.wait_idle(10)
    assert events(receiver) == [("failed", REV_A)]
    n.close()


def test_a_new_revision_and_another_event_still_notify(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver)
    n.outcome(failed(REV_A, "run1"))
    n.outcome(failed(REV_B, "run2"))
    n.outcome(failed(REV_B, "run3", reason="another cause, same revision"))
    n.outcome(Outcome("staging", RunResult.BLOCKED, REV_B, "main", "run4", "inside a deny window",
                      gate=GateCode.WINDOW))
    n.outcome(Outcome("staging", RunResult.BLOCKED, REV_B, "main", "run5", "inside a deny window",
                      gate=GateCode.WINDOW))
    assert n.wait_idle(10)
    assert events(receiver) == [("failed", REV_A), ("failed", REV_B), ("blocked", REV_B)]
    n.close()


def test_a_recovery_is_notified_and_a_later_failure_again(tmp_path: Path, receiver: Receiver) -> None:
    n = notifier(tmp_path, receiver)
    n.outcome(failed(REV_A, "run1"))
    n.outcome(Outcome("staging", "Succeeded", REV_A, "main", "run2"))
    n.outcome(Outcome("staging", "Succeeded", REV_A, "main", "run3"))  # nothing failed since: no news
    n.outcome(Outcome("staging", "NoChanges", REV_A, "main", "run4"))
    n.outcome(failed(REV_A, "run5"))  # the same revision fails again after it recovered: news
    n.outcome(failed(REV_A, "run6"))
    n.outcome(Outcome("staging", "NoChanges", REV_A, "main", "run7"))  # Synced again, nothing to apply
    assert n.wait_idle(10)
    assert events(receiver) == [("failed", REV_A), ("recovered", REV_A), ("failed", REV_A), ("recovered", REV_A)]
    recovered = receiver.bodies[1]
    assert recovered["title"] == "staging: recovered at aaaaaaaaaaaa (main)"
    assert recovered["run_id"] == "run2"
    n.close()


def test_what_was_notified_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    first = notifier(tmp_path, receiver)
    first.outcome(failed(REV_A, "run1"))
    assert first.wait_idle(10)
    first.close()
    second = notifier(tmp_path, receiver)  # same state database: what a restarted daemon sees
    second.outcome(failed(REV_A, "run2"))
    second.outcome(Outcome("staging", "Succeeded", REV_A, "main", "run3"))
    assert second.wait_idle(10)
    assert events(receiver) == [("failed", REV_A), ("recovered", REV_A)]
    second.close()


def test_a_webhook_url_may_be_a_secret_reference(tmp_path: Path, receiver: Receiver,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_URL", receiver.url)
    settings = load_settings(None, data_dir=str(tmp_path), notify={"webhooks": [{"url": "${secret:NOTIFY_URL}"}]})
    n = Notifier(settings, Store(f"sqlite:///{tmp_path / 'state.db'}"), backoff=0.01)
    n.outcome(failed(REV_A, "run1"))
    assert n.wait_idle(10)
    assert events(receiver) == [("failed", REV_A)]
    n.close()
    monkeypatch.delenv("NOTIFY_URL")
    with pytest.raises(SecretError) as caught:
        Notifier(settings, Store(f"sqlite:///{tmp_path / 'state.db'}"))
    assert str(caught.value) == "notify.webhooks[0].url: secret NOTIFY_URL is not set (searched: env)"


# -- the daemon ------------------------------------------------------------------------------------


def failed_runs(d: DaemonProcess) -> int:
    runs = d.get("/api/v1/environments/staging/runs?limit=500")["runs"]
    return len([r for r in runs if r["result"] == "Failed"])


def test_a_daemon_retrying_a_failing_run_notifies_once(pyworld: World, receiver: Receiver,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    head = git(pyworld.repo, "rev-parse", "HEAD")
    secrets = pyworld.root / "secrets"
    secrets.mkdir()
    url_file = secrets / "CRM_DB_STAGING_ADMIN_URL"
    # Staging's admin URL is in no secret store until the test writes the file: every run fails on it.
    monkeypatch.delenv(url_file.name)
    env = {k: v for k, v in pyworld.secrets.items() if k != url_file.name}
    pyworld.configure(secrets={"backends": [f"files:{secrets}", "env"]}, daemon={"retry_delays": ["200ms"]},
                      notify={"webhooks": [{"url": receiver.url}]})
    d = start_daemon(pyworld.config, pyworld.root / "data", env=env)
    try:
        d.wait_env("staging", state="Failed")
        wait_for(lambda: failed_runs(d) >= 4, message="several retries of the failing run")
    finally:
        d.terminate()
    d = start_daemon(pyworld.config, pyworld.root / "data", env=env, name="restarted")
    try:
        after_restart = failed_runs(d)
        wait_for(lambda: failed_runs(d) >= after_restart + 3, message="retries after the restart")
        url_file.write_text(pyworld.databases["staging"])  # the secret arrives
        d.wait_env("staging", state="Synced")
        # Delivery is one queue, in order: once the recovery arrived, every earlier message has too.
        wait_for(lambda: ("recovered", head) in events(receiver), message="the recovery notification")
    finally:
        d.kill()
    assert events(receiver) == [("failed", head), ("recovered", head)]
