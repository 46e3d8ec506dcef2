"""``POST /api/v1/environments/{env}/checks`` on a real daemon: results, a filter, one run at a time, no secrets.

Who may call it is in tests/test_api_access.py's table (the callers of ``sync``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.checks.servers import silent_server
from tests.conftest import CANARY, World, make_world
from tests.daemon_support import DaemonProcess, start_daemon, wait_for

pytestmark = pytest.mark.xdist_group("checks-api")

CHECKS = "/api/v1/environments/staging/checks"


@dataclass
class Served:
    daemon: DaemonProcess
    world: World
    silence: ExitStack  # closing it closes the server that never answers (the 'hangs' check calls it)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[Served]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(tmp_path_factory.mktemp("checks-api"), pg, monkeypatch, cli_git=False)
    with ExitStack() as silence:
        silent = silence.enter_context(silent_server())
        world.write("resources/silent.yaml", f"kind: Resource\nname: silent\ntype: restapi\n"
                    f"options:\n  base_url: http://{silent}\n")
        world.write("checks/staging.yaml", """kind: Check
name: leaks-nothing
environments: [staging]
sql:
  database: crm
  query: select cast('${secret:CRM_DB_STAGING_PASSWORD}' as integer)
  rows: {at_least: 1}
---
kind: Check
name: hangs
environments: [staging]
timeout: 2m
http:
  resource: silent
  path: /health
""")
        world.commit("Checks for the API")
        daemon = start_daemon(world.config, world.root / "data", env=world.secrets, name="checks-api")
        try:
            daemon.wait_env("staging", state="Synced")
            yield Served(daemon, world, silence)
        finally:
            daemon.kill()
            world.close()
            monkeypatch.undo()


def post(served: Served, *names: str, timeout: float = 30) -> httpx.Response:
    with served.daemon.client() as client:
        return client.post(CHECKS, params=[("check", n) for n in names], timeout=timeout)


def test_the_answer_holds_every_result_and_no_secret(served: Served) -> None:
    response = post(served, "dashboard-open-tickets", "leaks-nothing")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert (body["environment"], body["ref"], body["passed"]) == ("staging", "main", False)
    assert [(c["name"], c["passed"], c["error"]) for c in body["checks"]] == [
        ("dashboard-open-tickets", True, None),
        ("leaks-nothing", False, 'the query failed: invalid input syntax for type integer: "(secret)"'),
    ]
    assert CANARY not in response.text
    assert CANARY not in served.daemon.logs()


def test_an_unknown_check_is_404(served: Served) -> None:
    response = post(served, "nope")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no check named 'nope' in staging (its checks: ")


def test_one_run_at_a_time_per_environment(served: Served) -> None:
    """While a check waits on an endpoint that never answers, a second request is refused, not queued."""
    first: list[httpx.Response] = []

    def hang() -> None:
        # The probes below may hold the lock for a moment first: ask until this run is the one running.
        while (response := post(served, "hangs", timeout=180)).status_code == 409:
            pass
        first.append(response)

    runner = threading.Thread(target=hang)
    runner.start()
    refused = wait_for(lambda: (r := post(served, "dashboard-open-tickets")).status_code == 409 and r)
    assert refused.json() == {"error": "the checks of staging are running already; ask again when they finish",
                              "detail": None}
    served.silence.close()  # the silent server goes away: the waiting request is reset, the check fails now
    runner.join(timeout=150)
    assert not runner.is_alive()
    assert first[0].status_code == 200
    result = first[0].json()["checks"][0]
    assert (result["name"], result["passed"]) == ("hangs", False)
    assert result["error"].startswith("GET /health: ")
    assert post(served, "dashboard-open-tickets").status_code == 200  # the lock went with the run
