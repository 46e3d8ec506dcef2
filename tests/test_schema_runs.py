"""Schema changes inside whole runs: a held lock fails the run cleanly and the record says why."""

from __future__ import annotations

import threading

import psycopg

from tests.conftest import World


def test_a_held_lock_times_out_retries_and_fails_the_run_cleanly(pyworld: World) -> None:
    pyworld.configure(databases={"lock_timeout": "200ms", "lock_retries": 2})
    r = pyworld.reconciler()
    assert r.reconcile("staging").result == "Succeeded"
    good = r.status("staging").applied_revision
    (pyworld.desired / "databases/crm/004_more.sql").write_text(
        "alter table customers add column phone text;\nalter table tickets add column priority int;\n")
    pyworld.commit("Two columns in one transaction")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(pyworld.databases["staging"]) as conn:
            conn.execute("select * from tickets limit 1")  # ACCESS SHARE until the transaction ends
            holding.set()
            release.wait(300)

    locker = threading.Thread(target=hold)
    locker.start()
    try:
        assert holding.wait(30)
        outcome = r.reconcile("staging")
    finally:
        release.set()
        locker.join()
    assert outcome.result == "Failed"
    assert outcome.reason is not None and "lock" in outcome.reason.lower()
    run = r.queries.run("staging", outcome.run_id or "")
    assert run is not None and run.result == "Failed" and run.reason == outcome.reason
    assert run.applied == []
    # Nothing half-applied: the column on the unlocked table did not arrive without the other.
    assert "phone" not in pyworld.columns("staging", "customers")
    assert "priority" not in pyworld.columns("staging", "tickets")
    status = r.status("staging")
    assert (status.state, status.applied_revision) == ("Failed", good)
    # With the lock gone the next run applies both.
    assert r.reconcile("staging").result == "Succeeded"
    assert "phone" in pyworld.columns("staging", "customers")
    assert "priority" in pyworld.columns("staging", "tickets")
