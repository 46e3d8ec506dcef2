"""Break glass: a release during a deny window in an emergency, recorded, notified, explained (issue 17).

Production's window is declared open at the tests' clock (Wednesday 10:00 UTC). Only the window
yields: a release that never verified in staging stays refused, and the override needs a reason
(CLI) or an admin-scope token and a reason (API).
"""

from __future__ import annotations

import getpass
import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from reconciler.api.auth import hash_token
from reconciler.daemon.main import http_app
from reconciler.daemon.supervisor import Daemon
from tests.conftest import World, cli
from tests.daemon_support import wait_for
from tests.test_notify import Receiver, receiver  # noqa: F401 (the fixture)
from tests.test_windows import declare_window

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

OPEN_NOW = '{deny: "0 9 * * WED", duration: 3h, timezone: UTC}'  # 09:00-12:00 on the tests' Wednesday
TOKENS = {"ops": "break-glass-admin-token", "ci": "break-glass-sync-token"}


def history(world: World, env: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = json.loads(cli(world, "history", env, "--format", "json").stdout)["runs"]
    return runs


def release_in_window(world: World) -> None:
    declare_window(world, OPEN_NOW)
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")
    held = cli(world, "apply", "production")
    assert held.exit_code == 3
    assert "inside a deny window until 2026-12-02 12:00 UTC" in held.stderr


def test_the_cli_breaks_the_glass_with_a_reason_and_it_is_recorded_and_notified(
    pyworld: World, receiver: Receiver,  # noqa: F811
) -> None:
    pyworld.configure(notify={"webhooks": [{"url": receiver.url}]})
    release_in_window(pyworld)
    result = cli(pyworld, "apply", "production", "--break-glass", "INC-42: refunds fail, hotfix", "--format", "json")
    assert result.exit_code == 0, result.stderr
    applied = json.loads(result.stdout)
    who = f"cli:{getpass.getuser()}"
    assert applied["result"] == "Succeeded"
    assert applied["break_glass"] == {"who": who, "reason": "INC-42: refunds fail, hotfix"}
    run = history(pyworld, "production")[0]
    assert (run["result"], run["trigger"], run["ref"]) == ("Succeeded", "break-glass", "v1.0.0")
    assert run["reason"] == (f"break glass by {who}: INC-42: refunds fail, hotfix "
                             "(deny window until 2026-12-02 12:00 UTC overridden)")
    assert run["break_glass"]["who"] == who
    assert run["break_glass"]["reason"] == "INC-42: refunds fail, hotfix"
    assert run["break_glass"]["gate"] == "window"
    text = cli(pyworld, "history", "production").stdout
    assert "break glass by" in text
    sent = wait_for(lambda: [b for b in receiver.bodies if b["event"] == "break-glass"] or None,
                    message="a break-glass notification")
    assert sent[0]["who"] == who
    assert sent[0]["why"] == "INC-42: refunds fail, hotfix"
    assert sent[0]["title"].startswith(f"production: deny window overridden by {who} at ")


def test_break_glass_without_a_reason_is_refused(pyworld: World) -> None:
    release_in_window(pyworld)
    result = cli(pyworld, "apply", "production", "--break-glass", "  ")
    assert result.exit_code == 1
    assert "--break-glass needs a reason" in result.stderr
    assert [r["result"] for r in history(pyworld, "production")] == ["Blocked"]


def test_break_glass_overrides_only_the_window(pyworld: World) -> None:
    """A release whose desired state never verified in staging stays refused, glass broken or not."""
    declare_window(pyworld, OPEN_NOW)
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    pyworld.commit("Add auditors (not yet in staging)")
    pyworld.tag("v1.0.0", "Release 1.0.0")
    result = cli(pyworld, "apply", "production", "--break-glass", "INC-43: we are in a hurry")
    assert result.exit_code == 3
    assert "has never synced and verified in staging" in result.stderr
    assert pyworld.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]


def test_explain_window_tells_how_to_break_the_glass() -> None:
    text = cli(None, "explain", "window").stdout
    assert "--break-glass" in text
    assert "/api/v1/environments/ENV/break-glass" in text
    assert "admin" in text


# -- the API ---------------------------------------------------------------------------------------------------


@pytest.fixture
def api(pyworld: World) -> Iterator[TestClient]:
    pyworld.configure(api={"tokens": [
        {"name": "ops", "hash": hash_token(TOKENS["ops"]), "scopes": ["read", "sync", "admin"]},
        {"name": "ci", "hash": hash_token(TOKENS["ci"]), "scopes": ["read", "sync"]},
    ]})
    daemon = Daemon(pyworld.settings(), pyworld.reconciler())  # not started: the request runs the run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Starlette's note that its test client moves off httpx
        from fastapi.testclient import TestClient
    try:
        with TestClient(http_app(daemon), base_url="http://127.0.0.1:8080") as client:
            yield client
    finally:
        daemon.queue.stop(5)


def as_(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


def test_the_api_breaks_the_glass_with_an_admin_token_and_a_reason(pyworld: World, api: TestClient) -> None:
    release_in_window(pyworld)
    response = api.post("/api/v1/environments/production/break-glass", headers=as_("ops"),
                        json={"reason": "INC-44: data leak, revoke access now"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["result"], body["ref"]) == ("Succeeded", "v1.0.0")
    assert body["break_glass"] == {"who": "token:ops", "reason": "INC-44: data leak, revoke access now"}
    run = api.get("/api/v1/environments/production/runs", headers=as_("ops")).json()["runs"][0]
    assert run["trigger"] == "break-glass"
    assert (run["break_glass"]["who"], run["break_glass"]["reason"]) == (
        "token:ops", "INC-44: data leak, revoke access now")


@pytest.mark.parametrize(("who", "body", "status", "error"), [
    ("ci", {"reason": "INC-45"}, 403, "token lacks the 'admin' scope"),
    ("ops", {}, 400, "a reason is required"),
    ("ops", {"reason": "   "}, 400, "a reason is required"),
    ("ops", {"reason": 7}, 400, "a reason is required"),
])
def test_the_api_refuses_break_glass_without_admin_or_reason(
    pyworld: World, api: TestClient, who: str, body: dict[str, object], status: int, error: str,
) -> None:
    release_in_window(pyworld)
    response = api.post("/api/v1/environments/production/break-glass", headers=as_(who), json=body)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert [r["result"] for r in history(pyworld, "production")] == ["Blocked"]


def test_the_api_refuses_break_glass_without_a_token(pyworld: World, api: TestClient) -> None:
    response = api.post("/api/v1/environments/production/break-glass", json={"reason": "INC-46"})
    assert response.status_code == 401
