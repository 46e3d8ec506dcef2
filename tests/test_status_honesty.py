"""Status and metrics say what is true as soon as it is known (issue 17).

- A new commit: the environment stops saying Synced the moment the revision is known, not when the
  run that applies it starts (a real daemon on a real Git repository, its run held back by a lease).
- ``reconciler_drift_items``: a sample for every environment from the first evaluation, and 0 again
  once a self-heal verified zero drift (an in-process daemon, its drift check called directly).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import httpx
import pytest

from reconciler.daemon.main import http_app
from reconciler.daemon.supervisor import Daemon
from reconciler.providers.registry import RegistryProvider
from reconciler.store.leases import Leases
from reconciler.store.store import Store
from tests.conftest import World
from tests.daemon_support import DaemonProcess, start_daemon, wait_for


@pytest.fixture
def daemon(pyworld: World) -> Iterator[DaemonProcess]:
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    yield d
    d.kill()


def test_a_new_commit_is_out_of_sync_before_its_run_starts(pyworld: World, daemon: DaemonProcess) -> None:
    before = daemon.wait_env("staging", state="Synced")
    store = Store(pyworld.settings().state_url)
    leases = Leases(store)
    # This process holds staging's lease, as a long run would: the daemon's run must wait for it.
    assert leases.acquire("staging", ttl=600)
    try:
        pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text()
                      + "---\nkind: Group\nname: auditors\n")
        commit = pyworld.commit("Add auditors")
        seen = daemon.env("staging")
        # Git already knows the revision: Synced would be a lie, whatever the daemon has seen yet.
        assert seen["desired_revision"] == commit
        assert seen["applied_revision"] == before["applied_revision"]
        assert seen["state"] == "OutOfSync"
        # Said on read, or already recorded by a daemon quick to see the commit: never Synced.
        assert seen["reason"] in (f"revision {commit[:12]} (main) is not applied yet",
                                  f"revision {commit[:12]} (main) found; applying")

        # The daemon, once it sees the commit, records it through the store before queueing the run.
        def recorded() -> bool:
            stored = store.status("staging")
            return stored.state == "OutOfSync" and stored.reason == f"revision {commit[:12]} (main) found; applying"

        wait_for(recorded, message="the daemon to record staging OutOfSync")
        assert store.status("staging").applied_revision == before["applied_revision"]
        assert daemon.env("staging")["state"] == "OutOfSync"
    finally:
        leases.release("staging")
        store.close()
    daemon.wait_env("staging", state="Synced", applied_revision=commit)


# -- reconciler_drift_items ------------------------------------------------------------------------------------


def drift_samples(text: str) -> dict[str, float]:
    pattern = r'^reconciler_drift_items\{environment="([^"]+)",workspace="default"\} (\S+)$'
    return {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.MULTILINE)}


@pytest.fixture
def in_process(pyworld: World) -> Iterator[tuple[Daemon, httpx.Client]]:
    """A daemon that is not started: the test calls its evaluation and drift check itself."""
    daemon = Daemon(pyworld.settings(), pyworld.reconciler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Starlette's note that its test client moves off httpx
        from fastapi.testclient import TestClient
    try:
        with TestClient(http_app(daemon), base_url="http://127.0.0.1:8080") as client:
            yield daemon, client
    finally:
        daemon.queue.stop(5)


def test_every_environment_has_a_drift_sample_before_its_first_drift_check(
    pyworld: World, in_process: tuple[Daemon, httpx.Client],
) -> None:
    daemon, client = in_process
    assert daemon.reconciler.reconcile("staging").result == "Succeeded"
    daemon.evaluate("startup")  # staging runs what it should; production has no release yet: no run, no check
    assert drift_samples(client.get("/metrics").text) == {"staging": 0.0, "production": 0.0}


def test_drift_items_drop_to_zero_after_a_self_heal_verified_zero_drift(
    pyworld: World, in_process: tuple[Daemon, httpx.Client],
) -> None:
    daemon, client = in_process
    r = daemon.reconciler
    assert r.reconcile("staging").result == "Succeeded"
    registry = RegistryProvider(pyworld.settings().registry_url)
    registry.edit_config_value("staging", "SUPPORT_EMAIL", "someone@else.example")
    registry.close()

    daemon._drift_check("staging")  # finds one drift item; staging sets self_heal: true, so it heals at once

    runs = r.queries.runs("staging")
    assert (runs[0].trigger, runs[0].result, runs[0].applied) == (
        "self-heal", "Succeeded", ["config-variable:SUPPORT_EMAIL:value"])
    assert r.status("staging").drift_count == 0
    assert drift_samples(client.get("/metrics").text)["staging"] == 0.0
