"""Promotion refusals (SPEC §4): each leaves the environment unchanged and prints the reason."""

from __future__ import annotations

import json

import pytest

from tests.conftest import World, cli, git


def production(world: World) -> dict[str, object]:
    rows = json.loads(cli(world, "status", "--format", "json").stdout)["environments"]
    return next(r for r in rows if r["name"] == "production")


def release_staging(world: World) -> None:
    result = cli(world, "apply", "staging")
    assert result.exit_code == 0, result.stderr


def test_a_tag_not_reachable_from_main_is_refused(world: World) -> None:
    release_staging(world)
    world.branch("experiment")
    world.checkout("experiment")
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: testers\n")
    commit = world.commit("Experiment")
    world.tag("v1.0.0", "Release from a branch", target=commit)
    result = cli(world, "apply", "production")
    assert result.exit_code == 3
    assert f"tag v1.0.0 ({commit[:12]}) is not reachable from branch main" in result.stderr
    status = production(world)
    assert status["state"] == "Blocked"
    assert status["applied_revision"] is None
    assert world.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]


def test_a_desired_state_not_verified_in_staging_is_refused(world: World) -> None:
    release_staging(world)
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    world.commit("Add auditors (not yet in staging)")
    world.tag("v1.0.0", "Release 1.0.0")
    result = cli(world, "apply", "production")
    assert result.exit_code == 3
    assert "has never synced and verified in staging" in result.stderr
    assert production(world)["applied_revision"] is None
    # Once staging verifies that tree, the same tag passes.
    release_staging(world)
    assert cli(world, "apply", "production").exit_code == 0
    assert production(world)["applied_ref"] == "v1.0.0"


def test_a_moved_tag_is_refused_even_when_not_newer(world: World) -> None:
    release_staging(world)
    first = world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    second = world.commit("Add auditors")
    release_staging(world)
    git(world.repo, "tag", "-f", "-a", "v1.0.0", "-m", "moved", second)
    result = cli(world, "apply", "production")
    assert result.exit_code == 3
    assert f"tag v1.0.0 moved from {first[:12]} to {second[:12]}" in result.stderr
    status = production(world)
    assert status["state"] == "Blocked"
    assert status["applied_revision"] == first


def test_an_older_release_is_refused(world: World) -> None:
    release_staging(world)
    world.tag("v1.0.0", "Release 1.0.0")
    world.tag("v1.1.0", "Release 1.1.0")
    assert cli(world, "apply", "production").exit_code == 0
    assert production(world)["applied_ref"] == "v1.1.0"
    result = cli(world, "apply", "production", "--rev", "v1.0.0")
    assert result.exit_code == 3
    assert "tag v1.0.0 is not newer than what production runs" in result.stderr
    assert production(world)["applied_ref"] == "v1.1.0"


def test_prereleases_are_ignored_unless_asked_for(world: World) -> None:
    release_staging(world)
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    world.commit("Add auditors")
    release_staging(world)
    world.tag("v1.1.0-rc.1", "Release candidate")
    again = cli(world, "apply", "production", "--format", "json")
    assert json.loads(again.stdout)["ref"] == "v1.0.0"
    explicit = cli(world, "apply", "production", "--rev", "v1.1.0-rc.1")
    assert explicit.exit_code == 3
    assert "is a prerelease" in explicit.stderr


def test_an_invalid_revision_is_never_applied(world: World) -> None:
    release_staging(world)
    before = production(world)
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nnmae: broken\n")
    world.commit("Broken document")
    result = cli(world, "apply", "staging")
    assert result.exit_code == 3
    assert "desired state is invalid" in result.stderr
    assert "unknown field 'nmae'" in result.stderr
    rows = {r["name"]: r for r in json.loads(cli(world, "status", "--format", "json").stdout)["environments"]}
    assert rows["staging"]["state"] == "Blocked"
    assert rows["staging"]["applied_revision"] != rows["staging"]["desired_revision"]
    assert production(world) == before


@pytest.fixture
def drop_column(world: World) -> World:
    """staging and production at v1.0.0; then main drops customers.plan and staging follows."""
    release_staging(world)
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    sql = world.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    world.commit("Drop customers.plan")
    release_staging(world)
    assert "plan" not in world.columns("staging", "customers")
    return world


def test_destructive_change_without_approval_is_blocked(drop_column: World) -> None:
    world = drop_column
    world.tag("v1.1.0", "Release 1.1.0")
    result = cli(world, "apply", "production")
    assert result.exit_code == 3
    assert "destructive change needs approval: crm:drop-column:public.customers.plan" in result.stderr
    assert "plan" in world.columns("production", "customers")
    assert production(world)["applied_ref"] == "v1.0.0"
    history = json.loads(cli(world, "history", "production", "--format", "json").stdout)["runs"]
    assert history[0]["result"] == "Blocked"
    assert history[0]["applied"] == []


def test_destructive_change_approved_by_a_tag_trailer(drop_column: World) -> None:
    world = drop_column
    world.tag("v1.1.0", "Release 1.1.0\n\nApprove: crm:drop-column:public.customers.plan\n")
    result = cli(world, "apply", "production")
    assert result.exit_code == 0, result.stderr
    assert "plan" not in world.columns("production", "customers")


def test_destructive_change_approved_on_the_command_line_with_a_prefix(drop_column: World) -> None:
    world = drop_column
    world.tag("v1.1.0", "Release 1.1.0")
    result = cli(world, "apply", "production", "--approve", "crm:drop-column:*")
    assert result.exit_code == 0, result.stderr
    assert "plan" not in world.columns("production", "customers")
