"""The promotion view (issue 17): ``reconciler releases`` and ``GET /api/v1/releases`` on a real repository.

Production's deny window is declared open at the tests' clock (Wednesday 10:00 UTC), so the views
show a release held by the window, one not yet verified in staging, one that ran, and the branch head.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from reconciler.api.auth import hash_token
from reconciler.daemon.main import http_app
from reconciler.daemon.supervisor import Daemon
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.conftest import World, cli, shared_world
from tests.test_windows import declare_window

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# One worker runs the module, so the shared world (``releases``) is built once.
pytestmark = pytest.mark.xdist_group("releases")

OPEN_NOW = '{deny: "0 9 * * WED", duration: 3h, timezone: UTC}'  # 09:00-12:00 on the tests' Wednesday


def add_group(world: World, name: str) -> str:
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + f"---\nkind: Group\nname: {name}\n")
    return world.commit(f"Add {name}")


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[World]:
    """One for the module's tests that only read it (a test that changes it builds its own)."""
    with shared_world(tmp_path_factory, pg, "releases") as world:
        yield release(world)


def release(pyworld: World) -> World:
    """v1.0.0 runs in production (glass broken); v1.1.0 verified in staging, held by the window;
    v1.2.0 (the head of main) not yet in staging."""
    declare_window(pyworld, OPEN_NOW)
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.0.0", "Release 1.0.0")
    assert cli(pyworld, "apply", "production", "--break-glass", "INC-1: first release").exit_code == 0
    add_group(pyworld, "auditors")
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.1.0", "Release 1.1.0")
    add_group(pyworld, "testers")
    pyworld.tag("v1.2.0", "Release 1.2.0")
    return pyworld


def view(world: World) -> dict[str, Any]:
    result = cli(world, "releases", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def cells(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["name"], c["environment"]): c for row in data["rows"] for c in row["cells"]}


def test_rows_are_release_tags_newest_first_then_branch_heads(releases: World) -> None:
    data = view(releases)
    assert data["environments"] == ["staging", "production"]
    assert [(r["name"], r["kind"]) for r in data["rows"]] == [
        ("v1.2.0", "tag"), ("v1.1.0", "tag"), ("v1.0.0", "tag"), ("main", "branch")]
    assert all(len(r["commit"]) == 40 and r["tree_id"] for r in data["rows"])


def test_each_cell_says_where_it_runs_ran_and_when_it_verified(releases: World) -> None:
    found = cells(view(releases))
    assert found[("v1.1.0", "staging")]["state"] == "runs"
    assert found[("v1.0.0", "production")]["state"] == "runs"
    assert found[("v1.0.0", "staging")]["state"] == "ran"
    assert found[("v1.0.0", "staging")]["ran_at"].startswith("2026-12-02T10:")  # the tests' clock
    # Verified by tree id: v1.0.0's desired state verified in staging before production ran it.
    verified = found[("v1.0.0", "staging")]["verified_at"]
    assert verified.startswith("2026-12-02T10:")
    assert verified <= found[("v1.0.0", "production")]["ran_at"]
    assert found[("v1.2.0", "staging")]["verified_at"] is None


def test_the_next_promotion_names_the_gate_the_reason_and_what_unblocks_it(releases: World) -> None:
    rows = {r["name"]: r for r in view(releases)["rows"]}
    held = rows["v1.1.0"]["next"]
    assert held["environment"] == "production"
    assert held["blocked"]["gate"] == "window"
    assert held["blocked"]["reason"].startswith("inside a deny window until 2026-12-02 12:00 UTC")
    assert held["blocked"]["unblock"] == ("none: applied when the window closes; in an emergency: reconciler apply "
                                          "production --break-glass \"REASON\"")
    staged = cells(view(releases))[("v1.2.0", "production")]
    assert staged["blocked"]["gate"] == "not-promoted"
    assert staged["blocked"]["unblock"] == "reconciler apply staging --rev v1.2.0"
    assert rows["v1.2.0"]["next"]["environment"] == "staging"
    assert rows["v1.2.0"]["next"]["next_step"] == "applied automatically (the daemon's next run)"
    branch = cells(view(releases))[("main", "production")]
    assert branch["blocked"]["gate"] == "not-a-tag"
    assert branch["blocked"]["unblock"].startswith("git tag -a vX.Y.Z ")


def test_a_pinned_environment_is_unblocked_by_unpin(pyworld: World) -> None:
    releases = release(pyworld)
    assert cli(releases, "pin", "staging", "v1.0.0").exit_code == 0
    blocked = cells(view(releases))[("v1.2.0", "staging")]["blocked"]
    assert blocked["gate"] == "pinned"
    assert blocked["reason"].startswith("staging is pinned at ")
    assert blocked["unblock"] == "reconciler unpin staging"


def test_the_text_view_fits_80_columns_and_says_what_unblocks(releases: World) -> None:
    result = cli(releases, "releases")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert lines[1].split() == ["REVISION", "STAGING", "PRODUCTION"]
    assert "v1.1.0 → production: blocked by window" in [line.strip() for line in lines]
    text = " ".join(line.strip() for line in lines)
    assert "unblock: none: applied when the window closes; in an emergency: reconciler apply production " \
           "--break-glass \"REASON\"" in text
    assert "unblock: reconciler apply staging --rev v1.2.0" not in text  # v1.2.0's next is staging, unblocked
    markdown = cli(releases, "releases", "--format", "markdown").stdout
    assert "| Revision | staging | production |" in markdown
    assert "- **v1.1.0 → production**: blocked by `window`" in markdown


# -- the API ---------------------------------------------------------------------------------------------------


@pytest.fixture
def api(releases: World) -> Iterator[TestClient]:
    releases.configure(api={"tokens": [
        {"name": "reader", "hash": hash_token("releases-read-token"), "scopes": ["read"]},
        {"name": "staging-only", "hash": hash_token("releases-staging-token"), "scopes": ["read"],
         "environments": ["staging"]},
    ]})
    daemon = Daemon(releases.settings(), releases.reconciler())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Starlette's note that its test client moves off httpx
        from fastapi.testclient import TestClient
    try:
        with TestClient(http_app(daemon), base_url="http://127.0.0.1:8080") as client:
            yield client
    finally:
        daemon.queue.stop(5)


def test_the_api_serves_the_same_view_and_only_the_environments_a_token_sees(
    releases: World, api: TestClient,
) -> None:
    full = api.get("/api/v1/releases", headers={"Authorization": "Bearer releases-read-token"})
    assert full.status_code == 200
    assert full.json()["rows"] == view(releases)["rows"]
    limited = api.get("/api/v1/releases?limit=1", headers={"Authorization": "Bearer releases-staging-token"})
    assert limited.status_code == 200
    assert limited.json()["environments"] == ["staging"]
    assert [r["name"] for r in limited.json()["rows"]] == ["v1.2.0", "main"]
    assert api.get("/api/v1/releases").status_code == 401
    assert api.get("/api/v1/releases?limit=0", headers={"Authorization": "Bearer releases-read-token"}
                   ).status_code == 422
