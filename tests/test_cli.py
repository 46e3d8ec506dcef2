"""plan / apply / drift / status / history / diff / pin on real repositories, in all three formats.

Every test runs twice: on a repository made with pygit2 and on one made with the git CLI.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from reconciler.errors import ProviderError
from reconciler.providers.registry import RegistryProvider
from tests.conftest import World, cli


def test_plan_then_apply_then_plan_again(world: World) -> None:
    first = cli(world, "plan", "staging", "--format", "json")
    assert first.exit_code == 2
    plan = json.loads(first.stdout)
    assert plan["environment"] == "staging"
    assert len(plan["revision"]) == 40
    ids = [i["id"] for i in plan["items"]]
    assert ids[0] == "environment:staging"
    assert "crm:create-table:public.customers" in ids
    assert ids.index("crm:create-table:public.customers") < ids.index("resource:crm-db") < ids.index(
        "app:customer-support-dashboard")
    assert set(plan["items"][0]) >= {"id", "kind", "name", "field", "change", "declared", "live", "risk"}

    applied = cli(world, "apply", "staging")
    assert applied.exit_code == 0, applied.stderr
    assert "Succeeded: staging is at" in applied.stdout

    again = cli(world, "plan", "staging")
    assert again.exit_code == 0
    assert "no changes" in again.stdout
    assert world.columns("staging", "customers") == ["id", "email", "full_name", "plan", "created_at"]


def test_plan_formats(world: World) -> None:
    text = cli(world, "plan", "staging")
    assert text.exit_code == 2
    assert "Plan for staging at" in text.stdout and "crm:create-table:public.customers" in text.stdout
    markdown = cli(world, "plan", "staging", "--format", "markdown")
    assert markdown.exit_code == 2
    assert markdown.stdout.startswith("### Plan for staging at")
    assert "| | ID | Declared | Live | Risk |" in markdown.stdout
    assert "```sql" in markdown.stdout


def test_apply_nothing_to_do_exits_zero(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    again = cli(world, "apply", "staging")
    assert again.exit_code == 0
    assert "No changes" in again.stdout


def test_drift_found_reported_and_healed(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    assert cli(world, "drift", "staging").exit_code == 0
    registry = RegistryProvider(world.settings().registry_url)
    registry.edit_config_value("staging", "SUPPORT_EMAIL", "someone@else.example")
    registry.close()

    found = cli(world, "drift", "staging", "--format", "json")
    assert found.exit_code == 2
    report = json.loads(found.stdout)
    assert [(i["id"], i["declared"], i["live"]) for i in report["items"]] == [
        ("config-variable:SUPPORT_EMAIL:value", "support-staging@example.com", "someone@else.example")]
    assert report["items"][0]["heal"] == "reconciler apply staging"
    assert "first_seen" in report["items"][0]
    markdown = cli(world, "drift", "staging", "--format", "markdown")
    assert "`config-variable:SUPPORT_EMAIL:value`" in markdown.stdout

    assert cli(world, "apply", "staging").exit_code == 0
    assert cli(world, "drift", "staging").exit_code == 0


def test_status_json_contract(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    result = cli(world, "status", "--format", "json")
    assert result.exit_code == 0
    rows = {e["name"]: e for e in json.loads(result.stdout)["environments"]}
    assert list(rows) == ["staging", "production"]
    staging = rows["staging"]
    assert set(staging) >= {"name", "state", "reason", "tracked_ref", "desired_revision", "applied_revision",
                            "applied_ref", "drift_count", "last_run"}
    assert staging["state"] == "Synced"
    assert staging["applied_ref"] == "main"
    assert len(staging["applied_revision"]) == 40
    assert staging["applied_revision"] == staging["desired_revision"]
    assert staging["last_run"]["result"] == "Succeeded"
    assert rows["production"]["state"] == "Unknown"
    assert rows["production"]["applied_revision"] is None
    text = cli(world, "status")
    assert "staging" in text.stdout and "Synced" in text.stdout
    assert "| staging | **Synced** |" in cli(world, "status", "--format", "markdown").stdout


def test_history_lists_runs(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    assert cli(world, "apply", "staging").exit_code == 0
    result = cli(world, "history", "staging", "--format", "json")
    runs = json.loads(result.stdout)["runs"]
    assert [r["result"] for r in runs] == ["NoChanges", "Succeeded"]
    assert runs[1]["trigger"] == "cli"
    assert len(runs[1]["applied"]) == len(runs[1]["plan"]) > 0
    assert "Runs of staging" in cli(world, "history", "staging").stdout


def test_production_applies_a_release_tag(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")
    result = cli(world, "apply", "production", "--format", "json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["ref"] == "v1.0.0"
    status = {e["name"]: e for e in json.loads(cli(world, "status", "--format", "json").stdout)["environments"]}
    assert status["production"]["applied_ref"] == "v1.0.0"
    assert status["production"]["state"] == "Synced"


def test_a_pin_by_release_tag_shows_the_tag_as_what_runs(world: World) -> None:
    """After 'reconciler pin production v1.0.0' production runs v1.0.0, and says so (not pinned@<id>)."""
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    world.commit("Add auditors")
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.1.0", "Release 1.1.0")
    assert cli(world, "apply", "production").exit_code == 0
    assert cli(world, "pin", "production", "v1.0.0").exit_code == 0
    rolled_back = cli(world, "apply", "production", "--format", "json")
    assert rolled_back.exit_code == 0, rolled_back.stderr
    assert json.loads(rolled_back.stdout)["ref"] == "v1.0.0"
    status = {e["name"]: e for e in json.loads(cli(world, "status", "--format", "json").stdout)["environments"]}
    assert status["production"]["applied_ref"] == "v1.0.0"
    assert status["production"]["desired_ref"] == "v1.0.0"


def test_lightweight_tags_are_releases_too(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    assert world.columns("production", "customers") == ["id", "email", "full_name", "plan", "created_at"]


def test_diff_between_revisions(world: World) -> None:
    first = cli(world, "diff", "--base", "main", "--head", "main")
    assert first.exit_code == 0
    world.write("config/variables.yaml", (world.desired / "config/variables.yaml").read_text().replace(
        "support@example.com", "help@example.com"))
    world.commit("Change the support address")
    result = cli(world, "diff", "--base", "main~1", "--head", "main", "--format", "json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    per_env = {e["environment"]: [i["id"] for i in e["items"]] for e in data["environments"]}
    assert per_env == {"staging": [], "production": ["config-variable:SUPPORT_EMAIL:value"]}
    markdown = cli(world, "diff", "--base", "main~1", "--head", "main", "--format", "markdown")
    assert "### production: 1 change" in markdown.stdout
    assert "### staging: no changes" in markdown.stdout


def test_pin_holds_and_unpin_releases(world: World) -> None:
    first = cli(world, "apply", "staging")
    assert first.exit_code == 0
    pinned_at = json.loads(cli(world, "status", "--format", "json").stdout)["environments"][0]["applied_revision"]
    assert cli(world, "pin", "staging", pinned_at).exit_code == 0
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: auditors\n")
    world.commit("Add auditors")
    held = cli(world, "apply", "staging")
    assert held.exit_code == 0
    assert "No changes" in held.stdout
    assert cli(world, "unpin", "staging").exit_code == 0
    moved = cli(world, "apply", "staging", "--format", "json")
    assert json.loads(moved.stdout)["applied"] == ["group:auditors"]


def test_diff_with_a_shadow_server_lists_schema_statements_and_their_risk(pyworld: World) -> None:
    sql = pyworld.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    (pyworld.desired / "databases/crm/004_phone.sql").write_text(
        "alter table customers add column phone text;\n")
    pyworld.commit("Drop plan, add phone")
    result = cli(pyworld, "diff", "--base", "main~1", "--head", "main", "--shadow-url", pyworld.pg.url,
                 "--format", "json")
    assert result.exit_code == 2, result.stderr
    per_env = {e["environment"]: {i["id"]: i["risk"] for i in e["items"]} for e in json.loads(result.stdout)[
        "environments"]}
    for env in ("staging", "production"):
        assert per_env[env]["crm:drop-column:public.customers.plan"] == "destructive"
        assert per_env[env]["crm:add-column:public.customers.phone"] == "safe"
    markdown = cli(pyworld, "diff", "--base", "main~1", "--head", "main", "--shadow-url", pyworld.pg.url,
                   "--format", "markdown")
    assert "| - | `crm:drop-column:public.customers.plan` |" in markdown.stdout
    assert 'alter table "public"."customers" drop column "plan";' in markdown.stdout


def drop_plan_add_phone(world: World) -> None:
    sql = world.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    (world.desired / "databases/crm/004_phone.sql").write_text("alter table customers add column phone text;\n")
    world.commit("Drop plan, add phone")


def shadow_directories() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("reconciler-shadow-*"))


def test_diff_without_a_shadow_server_loads_the_schemas_on_an_embedded_one(pyworld: World) -> None:
    drop_plan_add_phone(pyworld)
    before = shadow_directories()
    result = cli(pyworld, "diff", "--base", "main~1", "--head", "main", "--format", "json")
    assert result.exit_code == 2, result.stderr
    assert result.stderr == ""
    items = {e["environment"]: {i["id"]: i["risk"] for i in e["items"]}
             for e in json.loads(result.stdout)["environments"]}
    for env in ("staging", "production"):
        assert items[env]["crm:drop-column:public.customers.plan"] == "destructive"
        assert items[env]["crm:add-column:public.customers.phone"] == "safe"
        assert not [i for i in items[env] if ":sql-file:" in i]
    assert shadow_directories() == before  # the server and its directory are gone


def test_diff_says_so_when_the_embedded_server_cannot_start(pyworld: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.providers.postgres.embedded import EmbeddedPostgres

    def refuse(self: EmbeddedPostgres) -> EmbeddedPostgres:
        raise ProviderError(f"the embedded PostgreSQL in {self.data_dir} did not start: no space left on device")

    monkeypatch.setattr(EmbeddedPostgres, "start", refuse)
    drop_plan_add_phone(pyworld)
    before = shadow_directories()
    result = cli(pyworld, "diff", "--base", "main~1", "--head", "main", "--format", "json")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("warning: schema changes are shown as SQL file sizes: the embedded PostgreSQL did not "
                           "start (the embedded PostgreSQL in ")
    assert line.endswith("no space left on device); give --shadow-url to use a server")
    ids = {i["id"] for e in json.loads(result.stdout)["environments"] for i in e["items"]}
    assert {"crm:sql-file:databases/crm/001_customers.sql", "crm:sql-file:databases/crm/004_phone.sql"} <= ids
    assert shadow_directories() == before


def test_every_command_accepts_config_after_its_name() -> None:
    from reconciler.cli import app

    commands = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert {"validate", "plan", "apply", "drift", "check", "status", "history", "pin", "unpin", "diff", "run", "demo",
            "init", "explain"} <= set(commands)
    for command in [*commands, "schemas export"]:
        result = cli(None, *command.split(), "--config", "x.toml", "--help")
        assert result.exit_code == 0, (command, result.stderr)
        assert "--config" in result.stdout, command
