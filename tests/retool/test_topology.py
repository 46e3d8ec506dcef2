"""Topology end to end: Git → reconciler (as configured) → fake Retool instances.

Two layouts (SPEC §10): one instance hosting staging and production (``[platform] host/token``),
and one instance per environment sharing a Source Control repository (``[[platform.instances]]``).
On a shared instance, what the instance shares (groups, folders, grants on apps and folders, a
resource's folder, a variable's description) changes only when production — the most protected
environment there — applies, under its gates; staging's plans show those changes "applied with
production". Prune deletes only what the reconciler created or adopted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from reconciler.app.reconcile import Reconciler
from reconciler.app.wiring import build_platform, build_secrets
from reconciler.core.revisions import short
from reconciler.providers.retool import MemoryFingerprintBook, release_version
from reconciler.providers.retool.platform import RetoolPlatform
from reconciler.reports.drift import render_plan
from tests.conftest import World, cli
from tests.retool.example import APP
from tests.retool.fake import FakeRetool, FakeSourceControl
from tests.retool.test_engine_integration import without_deny_windows


def edit(world: World, relative: str, old: str, new: str) -> None:
    path = world.desired / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def shared(pyworld: World, fake: FakeRetool, source_control: FakeSourceControl,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Reconciler]]:
    """One instance hosting staging and production, configured as today's single [platform] instance."""
    pyworld.configure(platform={
        "provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}", "manifest": "production",
        "source_control": {"url": source_control.url}, "requests_per_minute": 60_000, "deploy_poll_interval": "10ms",
    })
    monkeypatch.setenv("RETOOL_TOKEN", fake.token)
    without_deny_windows(pyworld)
    yield pyworld, pyworld.reconciler()


def promote(world: World, r: Reconciler, tag: str) -> None:
    staging = r.reconcile("staging")
    assert staging.result in ("Succeeded", "NoChanges"), staging.reason
    world.tag(tag, f"Release {tag}")
    production = r.reconcile("production")
    assert production.result in ("Succeeded", "NoChanges"), production.reason


# -- one instance hosting staging and production ----------------------------------------------------------


def test_on_a_shared_instance_staging_makes_release_r_and_production_publishes_that_same_r(
    shared: tuple[World, Reconciler], fake: FakeRetool, source_control: FakeSourceControl,
) -> None:
    world, r = shared
    staging = r.reconcile("staging")

    assert staging.result == "Succeeded", staging.reason
    version = release_version(short(staging.revision))
    sc_uuid = source_control.app_uuid(APP)
    assert [x["release_version"] for x in source_control.releases(str(sc_uuid))] == [version]
    assert fake.live_releases() == {APP: "latest"} and fake.pinned() == {}  # made and recorded, not live
    assert r.status("staging").state == "Synced"
    # Instance-wide objects wait for production: no app grant yet, shown as applied with production.
    assert ("support-team", "app", APP) not in fake.grants()
    waiting = [i.id for i in r.drift("staging")[0].drift if i.deferred_to == "production"]
    assert f"permission:support-team/app/{APP}" in waiting

    world.tag("v1.0.0", "Release 1.0.0")
    production = r.reconcile("production")

    assert production.result == "Succeeded", production.reason
    assert fake.pinned() == fake.live_releases() == {APP: version}
    assert fake.live_artifacts() == {APP: source_control.artifact(str(sc_uuid), version)}
    assert fake.grants()[("support-team", "app", APP)] == "use"
    assert all(source_control.is_merged(b) for b in source_control.branches())
    assert [d["status"] for d in fake.state.deployments.values()] == ["SUCCESS"]

    fake.clear_calls()
    assert r.reconcile("staging").result == "NoChanges"
    assert r.reconcile("production").result == "NoChanges"
    assert fake.writes() == []


def test_staging_changes_to_instance_wide_objects_wait_for_production_and_its_gates(
    shared: tuple[World, Reconciler], fake: FakeRetool,
) -> None:
    world, r = shared
    # Production prunes: a grant no longer declared is revoked (SPEC §3), by production's run only.
    edit(world, "environments/production.yaml", "  prune: false", "  prune: true")
    world.commit("Production prunes what is no longer declared")
    promote(world, r, "v1.0.0")
    before = {"grants": fake.grants(), "crm-db folder": fake.resource("crm-db").get("folder_id"),
              "description": fake.variable("API_CRM_BASE_URL").get("description"), "groups": fake.names("groups")}
    edit(world, "apps/customer-support-dashboard.yaml", "  use: [support-team]", "  use: []")
    edit(world, "resources/crm-db.yaml", "folder: CRM", "folder: Databases")
    edit(world, "config/variables.yaml", "description: Base URL of the CRM API", "description: The CRM API")
    edit(world, "groups.yaml", "---\nkind: Group\nname: platform-admins", "---\nkind: Group\nname: auditors\n"
         "---\nkind: Group\nname: platform-admins")
    edit(world, "groups.yaml", "description: Support engineers", "description: Support agents")
    edit(world, "config/variables.yaml", "  default: support-staging@example.com", "  default: help@example.com")
    world.commit("Staging changes that touch the whole instance")

    staging = r.reconcile("staging")

    assert staging.result == "Succeeded", staging.reason
    # Staging's own change is applied; the instance's objects are exactly as production left them.
    assert fake.config_values("SUPPORT_EMAIL")["staging"] == "help@example.com"
    assert fake.grants() == before["grants"]
    assert fake.resource("crm-db").get("folder_id") == before["crm-db folder"]
    assert fake.variable("API_CRM_BASE_URL").get("description") == before["description"]
    assert "auditors" in fake.names("groups")  # a new group changes nothing production uses
    plan, _ = r.drift("staging")
    deferred = sorted(i.id for i in plan.drift if i.deferred_to == "production")
    assert deferred == [
        "config-variable:API_CRM_BASE_URL:description",
        "group:support-team:description",
        f"permission:support-team/app/{APP}",
        "resource:crm-db:folder",
    ]
    assert plan.pending == [] and r.status("staging").state == "Synced"
    assert "4 instance-wide changes applied with production" in render_plan("text", r.plan("staging"))
    reported = cli(world, "drift", "staging", "--format", "json")
    assert reported.exit_code == 0  # nothing of staging's own drifts
    assert sorted(i["id"] for i in json.loads(reported.stdout)["items"] if i.get("applied_with") == "production") \
        == deferred

    world.tag("v1.1.0", "Release 1.1.0")
    production = r.reconcile("production")

    assert production.result == "Succeeded", production.reason
    assert ("support-team", "app", APP) not in fake.grants()
    assert fake.variable("API_CRM_BASE_URL")["description"] == "The CRM API"
    assert fake.resource("crm-db")["folder_id"] != before["crm-db folder"]
    assert r.drift("staging")[0].drift == []


def test_a_release_production_may_not_take_changes_nothing_instance_wide(
    shared: tuple[World, Reconciler], fake: FakeRetool,
) -> None:
    world, r = shared
    promote(world, r, "v1.0.0")
    grants = fake.grants()
    edit(world, "apps/customer-support-dashboard.yaml", "  use: [support-team]", "  use: []")
    world.commit("Revoke the support team's use of the dashboard")
    # Staging has nothing of its own to apply: the revocation is the instance's.
    assert r.reconcile("staging").result == "NoChanges"
    assert fake.grants() == grants
    # A tag not on main is refused by production's gates: the revocation waits with it.
    world.branch("hotfix", "HEAD~1")
    world.checkout("hotfix")
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text() + "\n")
    world.commit("Off main")
    world.tag("v1.1.0", "Release from a branch")
    world.checkout("main")

    blocked = r.reconcile("production")

    assert blocked.result == "Blocked"
    assert fake.grants() == grants


def test_prune_deletes_what_the_reconciler_made_never_what_people_made(
    shared: tuple[World, Reconciler], fake: FakeRetool,
) -> None:
    world, r = shared
    edit(world, "environments/production.yaml", "  prune: false", "  prune: true")
    edit(world, "groups.yaml", "---\nkind: Group\nname: platform-admins", "---\nkind: Group\nname: temporary\n"
         "---\nkind: Group\nname: platform-admins")
    world.commit("Prune production; a temporary group")
    promote(world, r, "v1.0.0")
    assert "temporary" in fake.names("groups")
    with fake.lock:
        fake._new_group("made-by-hand")
        folder = fake._new_folder("Hand-made", "app", "app_1")
        fake.state.grants[(fake.group_id("support-team"), "folder", folder["id"])] = "use"
    edit(world, "groups.yaml", "---\nkind: Group\nname: temporary\n", "")
    world.commit("The temporary group goes")

    assert r.reconcile("staging").result == "NoChanges"  # staging prunes too, but a group is the instance's
    assert "temporary" in fake.names("groups")
    world.tag("v1.1.0", "Release 1.1.0")
    assert r.reconcile("production").result == "Succeeded"

    assert "temporary" not in fake.names("groups")
    assert "made-by-hand" in fake.names("groups")
    assert "Hand-made" in fake.names("folders")
    assert fake.grants()[("support-team", "folder", "Hand-made")] == "use"
    left_alone = [i.id for i in r.drift("production")[0].drift if not i.pruned]
    assert "group:made-by-hand" in left_alone


# -- one instance per environment, one Source Control repository ----------------------------------------------


@pytest.fixture
def per_environment(pyworld: World, fake: FakeRetool, staging_instance: FakeRetool, source_control: FakeSourceControl,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Reconciler]]:
    """A staging instance (its 'production' Retool environment is our staging) and a production instance."""
    sc = {"url": source_control.url}
    pyworld.configure(platform={"provider": "retool", "requests_per_minute": 60_000, "deploy_poll_interval": "10ms",
                                "instances": [
        {"name": "staging", "host": staging_instance.url, "token": "${secret:RETOOL_STAGING_TOKEN}",
         "environments": ["staging"], "retool_environments": {"staging": "production"}, "manifest": "staging",
         "source_control": sc},
        {"name": "production", "host": fake.url, "token": "${secret:RETOOL_TOKEN}", "environments": ["production"],
         "manifest": "production", "source_control": sc},
    ]})
    monkeypatch.setenv("RETOOL_TOKEN", fake.token)
    monkeypatch.setenv("RETOOL_STAGING_TOKEN", staging_instance.token)
    without_deny_windows(pyworld)
    yield pyworld, pyworld.reconciler()


def test_with_an_instance_per_environment_production_runs_the_release_staging_made(
    per_environment: tuple[World, Reconciler], fake: FakeRetool, staging_instance: FakeRetool,
    source_control: FakeSourceControl,
) -> None:
    world, r = per_environment

    staging = r.reconcile("staging")

    assert staging.result == "Succeeded", staging.reason
    version = release_version(short(staging.revision))
    assert staging_instance.pinned() == staging_instance.live_releases() == {APP: version}
    # Our staging is the staging instance's default 'production' environment; the other instance is untouched.
    assert staging_instance.config_values("SUPPORT_EMAIL") == {"production": "support-staging@example.com"}
    assert fake.names("resources") == ["retool_db"]

    world.tag("v1.0.0", "Release 1.0.0")
    production = r.reconcile("production")

    assert production.result == "Succeeded", production.reason
    sc_uuid = str(source_control.app_uuid(APP))
    assert fake.pinned() == fake.live_releases() == {APP: version}
    artifact = source_control.artifact(sc_uuid, version)
    assert fake.live_artifacts() == staging_instance.live_artifacts() == {APP: artifact}
    assert [x["release_version"] for x in source_control.releases(sc_uuid)] == [version]
    assert fake.config_values("SUPPORT_EMAIL") == {"production": "support@example.com"}
    assert all(source_control.is_merged(b) for b in source_control.branches())
    # Each instance shares nothing with another environment: staging applied its app grants itself.
    assert staging_instance.grants()[("support-team", "app", APP)] == "use"

    fake.clear_calls()
    staging_instance.clear_calls()
    assert r.reconcile("staging").result == "NoChanges"
    assert r.reconcile("production").result == "NoChanges"
    assert fake.writes() == staging_instance.writes() == []


def test_an_instance_takes_the_platforms_request_rate_unless_it_sets_its_own(pyworld: World) -> None:
    instance = {"host": "https://retool.example.com", "token": "t"}
    pyworld.configure(platform={"provider": "retool", "requests_per_minute": 600, "instances": [
        {**instance, "name": "staging", "environments": ["staging"]},
        {**instance, "name": "production", "environments": ["production"], "requests_per_minute": 30},
    ]})
    settings = pyworld.settings()
    platform = build_platform(settings, build_secrets(settings), MemoryFingerprintBook())  # nothing is requested

    assert isinstance(platform, RetoolPlatform)
    rates = {name: p.client.limiter.requests_per_minute for name, p in platform.instances.items()}
    assert rates == {"staging": 600, "production": 30}


# -- prune leaves what people made by hand, on staging's runs and on production's --------------------------------


def _hand_made_group(fake: FakeRetool) -> None:
    fake._new_group("made-by-hand")


def _hand_made_folder(fake: FakeRetool) -> None:
    fake._new_folder("Hand-made", "app", "app_1")


def _hand_made_resource(fake: FakeRetool) -> None:
    resource = fake._new_resource("restapi", "hand-made-api", None, {"base_url": "https://hand.example.com"})
    for env in ("staging", "production"):
        fake._new_config(resource["id"], fake.env_id(env), {"base_url": f"https://{env}.hand.example.com"})


def _hand_made_variable(fake: FakeRetool) -> None:
    variable_id = str(uuid.uuid4())
    fake.state.variables[variable_id] = {
        "id": variable_id, "name": "HAND_MADE", "description": "made in Retool's settings", "secret": False,
        "values": [{"environment_id": fake.env_id(env), "value": f"{env}-value"} for env in ("staging", "production")]}


def _hand_made_app(fake: FakeRetool) -> None:
    fake._add_app("hand-made-app", "built in Retool's editor", None)


def _hand_made_grants(fake: FakeRetool) -> None:
    """A declared group given access, by hand, to an app and a folder that people made."""
    support = fake.group_id("support-team")
    app_id = fake._add_app("hand-made-app", "built in Retool's editor", None)
    folder = fake._new_folder("Hand-made", "app", "app_1")
    fake.state.grants[(support, "app", app_id)] = "use"
    fake.state.grants[(support, "folder", folder["id"])] = "use"


# kind → (make it by hand, where it can be seen afterwards)
HAND_MADE = {
    "group": (_hand_made_group, lambda fake: "made-by-hand" in fake.names("groups")),
    "folder": (_hand_made_folder, lambda fake: "Hand-made" in fake.names("folders")),
    "resource": (_hand_made_resource, lambda fake: fake.resource("hand-made-api")["display_name"] == "hand-made-api"
                 and fake.config("hand-made-api", "staging") is not None
                 and fake.config("hand-made-api", "production") is not None),
    "variable": (_hand_made_variable, lambda fake: fake.config_values("HAND_MADE") == {
        "staging": "staging-value", "production": "production-value"}),
    "app": (_hand_made_app, lambda fake: fake.app("hand-made-app")["name"] == "hand-made-app"),
    "grant": (_hand_made_grants, lambda fake: fake.grants().get(("support-team", "app", "hand-made-app")) == "use"
              and fake.grants().get(("support-team", "folder", "Hand-made")) == "use"),
}


@pytest.mark.parametrize("kind", sorted(HAND_MADE))
def test_prune_on_staging_and_production_runs_leaves_a_hand_made_object(
    shared: tuple[World, Reconciler], fake: FakeRetool, kind: str,
) -> None:
    """A probe per kind: an object made in Retool by a person, never declared in Git nor created or adopted by
    the reconciler, survives staging's and production's runs with ``prune: true`` (staging prunes in the
    example), and stays reported as drift that prune does not touch."""
    world, r = shared
    edit(world, "environments/production.yaml", "  prune: false", "  prune: true")
    world.commit("Production prunes what is no longer declared")
    promote(world, r, "v1.0.0")
    make, seen = HAND_MADE[kind]
    with fake.lock:
        make(fake)
    assert seen(fake)
    world.write("groups-more.yaml", "kind: Group\nname: temporary\ndescription: goes in v1.2.0\n")
    world.commit("Something for the next runs to apply")

    promote(world, r, "v1.1.0")  # staging's run, then production's, both pruning
    assert seen(fake), f"a hand-made {kind} was deleted by a run that prunes"
    (world.desired / "groups-more.yaml").unlink()
    world.commit("The temporary group goes")
    promote(world, r, "v1.2.0")  # this time prune has something of ours to delete

    assert "temporary" not in fake.names("groups")  # prune works...
    assert seen(fake), f"a hand-made {kind} was deleted by a run that pruned"  # ...on what we made only
    for env in ("staging", "production"):
        assert not [i.id for i in r.drift(env)[0].drift if i.pruned], f"{env} would prune something next run"
