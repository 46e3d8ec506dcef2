"""``reconciler import`` from the fake Retool: what Retool shows becomes a desired state that validates.

The fake instance is set up by one reconciler (the example applied to staging and production);
a second installation with an empty state store then adopts it, as a team with a hand-made Retool
instance would. Retool never shows secret values and shows some credentials in clear; neither
reaches a written file or the output, and after the import the plan holds only what Retool cannot
show: secret values (compared by what the reconciler wrote, so each plans as an update until it
is written once), descriptions Retool has no place for, and the app's source (the API does not
give an app's files).
"""

from __future__ import annotations

import json
import shutil

import pytest

from reconciler.source import workspace
from tests.conftest import World, cli
from tests.retool.fake_server import FakeRetool
from tests.retool.test_engine_integration import reconciler_for

APP = "customer-support-dashboard"


def test_an_import_from_retool_validates_leaks_nothing_and_plans_only_what_retool_hides(
    pyworld: World, fake: FakeRetool, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = pyworld
    monkeypatch.setenv("RETOOL_TOKEN", fake.token)
    assert fake.source_control is not None
    world.configure(platform={"provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}",
                              "manifest": fake.manifest_name, "source_control": {"url": fake.source_control.url},
                              "requests_per_minute": 60_000, "deploy_poll_interval": "10ms"})
    setup = reconciler_for(world, fake)
    assert setup.reconcile("staging").result == "Succeeded"
    world.tag("v1.0.0", "Release 1.0.0")
    assert setup.reconcile("production").result == "Succeeded"
    world.configure(data_dir=str(world.root / "adopting"))  # another installation: nothing recorded
    out = world.root / "imported"

    result = cli(world, "import", "--env", "staging", "--env", "production", "--out", str(out), "--format", "json")

    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert cli(None, "validate", str(out)).exit_code == 0
    written = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    leaked = [name for name, value in world.secrets.items() if value in written + result.stdout + result.stderr]
    assert leaked == []
    s = world.secrets
    provided = {
        "CRM_API_AUTHORIZATION_STAGING": s["CRM_API_STAGING_TOKEN"],
        "CRM_API_AUTHORIZATION_PRODUCTION": s["CRM_API_PRODUCTION_TOKEN"],
        "CRM_DB_PASSWORD_STAGING": s["CRM_DB_STAGING_PASSWORD"],
        "CRM_DB_PASSWORD_PRODUCTION": s["CRM_DB_PRODUCTION_PASSWORD"],
        "SEGMENT_BASIC_USERNAME_STAGING": s["SEGMENT_STAGING_KEY"],
        "SEGMENT_BASIC_USERNAME_PRODUCTION": s["SEGMENT_PRODUCTION_KEY"],
        "SEGMENT_WRITE_KEY_STAGING": s["SEGMENT_STAGING_KEY"],
        "SEGMENT_WRITE_KEY_PRODUCTION": s["SEGMENT_PRODUCTION_KEY"],
    }
    assert sorted(secret["name"] for secret in report["secrets"]) == sorted(provided)

    for name, value in provided.items():
        monkeypatch.setenv(name, value)
    repo = world.root / "adopted"
    shutil.copytree(out, repo / "desired-state")
    workspace.init(repo)
    workspace.commit_all(repo, "Adopt what runs in Retool")
    world.configure(source={"url": str(repo)})
    for env in ("staging", "production"):
        plan = cli(world, "plan", env, "--rev", "main", "--format", "json")
        assert plan.exit_code == 2, plan.stderr
        assert sorted(i["id"] for i in json.loads(plan.stdout)["items"]) == sorted([
            # Secret values: Retool never shows them (or the reconciler never wrote them).
            "resource:crm-api:options.authorization", "resource:crm-db:options.password",
            "resource:segment:options.basic_username", "config-variable:SEGMENT_WRITE_KEY:value",
            # Descriptions Retool has no field for: unknown until the reconciler writes them. A group's
            # is the instance's: staging's plan leaves it to production (applied with production).
            "resource:crm-api:description", "resource:crm-db:description", "resource:segment:description",
            *(["group:platform-admins:description", "group:support-team:description"] if env == "production"
              else []),
            # The API does not give an app's files: the import wrote a placeholder.
            f"app:{APP}:source_hash",
        ])
