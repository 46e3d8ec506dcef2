"""The retool provider reconciles the example desired state into a Retool instance (the fake).

Each test reads, diffs and applies the way the engine does (``example.reconcile``), against the
fake on loopback, which checks every request and answer against Retool's OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.core.changes import Change
from reconciler.core.objects import PlatformObject
from reconciler.providers.retool import (
    MemoryFingerprintBook,
    RetoolProvider,
    RetoolStateError,
    release_version,
)
from reconciler.secrets.values import Sensitive
from reconciler.source.branches import BranchRepository
from tests.retool.example import APP, COMMIT, Secrets, context, diff, keys, objects, reconcile
from tests.retool.fake import MASK, FakeRetool, FakeSourceControl


def apply_both(provider: RetoolProvider, secrets: Secrets, book: MemoryFingerprintBook) -> None:
    for env in ("staging", "production"):
        reconcile(provider, context(env, secrets, book), objects(env, secrets))


# -- a full run, then a no-op ----------------------------------------------------------------------


def test_after_applying_staging_and_production_a_read_gives_exactly_the_declared_objects(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)

    for env in ("staging", "production"):
        assert diff(objects(env, secrets), provider.read(env)) == {}


def test_a_full_apply_writes_once_per_missing_thing_and_a_second_pass_writes_nothing(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.clear_calls()
    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))
    staging_writes = len(fake.writes())
    fake.clear_calls()
    reconcile(provider, context("production", secrets, book), objects("production", secrets))
    production_writes = len(fake.writes())
    fake.clear_calls()

    second = [reconcile(provider, context(env, secrets, book), objects(env, secrets))
              for env in ("staging", "production")]

    # staging: 1 environment PATCH, 4 folders (app + resource type for CRM and Support), 3 resources
    # + 3 deletions of the configuration Retool gives each new resource in its default environment
    # (production) + 3 staging configurations, 2 variables, 2 groups, 9 grants, release + manifest +
    # deploy = 30. The release and manifest branches are merged in Git, not through the API.
    assert staging_writes == 30
    # production, on the same instance: 1 environment PATCH, 3 configurations, 2 variable PUTs, 6
    # grants (app and folder grants are the instance's); the app already runs the release staging
    # made and published, so nothing for it = 12.
    assert production_writes == 12
    assert second == [[], []]
    assert fake.writes() == []
    assert set(fake.counts_by_method()) == {"GET", "POST"}  # POST only for listObjects reads


def test_applying_every_object_again_when_nothing_differs_sends_no_write(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    fake.clear_calls()

    for env in ("staging", "production"):
        live = provider.read(env)
        for key, desired in objects(env, secrets).items():
            provider.apply(context(env, secrets, book), Change.UPDATE, desired, live[key])

    assert fake.writes() == []


# -- what lands in Retool --------------------------------------------------------------------------


def test_secret_options_are_written_resolved_and_never_come_back_from_the_api(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)

    stored = fake.resource_options("crm-db", "staging")
    assert stored == {"database_options": {
        "host": "db-staging.internal", "port": "5432", "name": "crm", "username": "retool",
        "password": "stg-db-pass-1", "ssl_settings": {"enabled": True},
    }}
    assert fake.resource_options("crm-api", "production") == {
        "base_url": "https://api.example.com",
        "headers": [["Accept", "application/json"], ["Authorization", "Bearer prd-api-token-1"]],
    }
    answered = provider.client.list_all("/resource_configurations")
    passwords = [c["options"]["database_options"]["password"] for c in answered
                 if c["resource"]["display_name"] == "crm-db"]
    assert passwords == [MASK, MASK]
    live = provider.read("staging")[("resource", "crm-db")].fields["options"]["password"]
    assert isinstance(live, Sensitive)
    assert live == secrets.sensitive("${secret:CRM_DB_STAGING_PASSWORD}")


def test_a_secret_variable_keeps_every_environments_value_although_put_replaces_them_all(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)

    assert fake.config_values("SEGMENT_WRITE_KEY") == {
        "staging": "stg-segment-key-1",
        "production": "prd-segment-key-1",
    }
    assert fake.config_values("API_CRM_BASE_URL") == {
        "staging": "https://api-staging.internal.example.com",
        "production": "https://api.example.com",
    }


def test_an_app_is_released_once_its_branches_merged_deployed_and_every_environment_runs_that_release(
    fake: FakeRetool, source_control: FakeSourceControl, provider: RetoolProvider, book: MemoryFingerprintBook,
    secrets: Secrets,
) -> None:
    apply_both(provider, secrets, book)

    version = release_version(COMMIT[:7])
    sc_uuid = source_control.app_uuid(APP)
    assert sc_uuid is not None
    assert fake.pinned() == {APP: version}
    assert fake.live_releases() == {APP: version}
    assert fake.live_artifacts() == {APP: source_control.artifact(sc_uuid, version)}
    assert [r["release_version"] for r in source_control.releases(sc_uuid)] == [version]
    assert source_control.releases(sc_uuid)[0]["release_description"] == f"{COMMIT[:7]} (commit {COMMIT})"
    assert source_control.branches() and all(source_control.is_merged(b) for b in source_control.branches())
    # Production ran the release staging made (same version, same artifact): nothing was deployed again.
    assert [d["status"] for d in fake.state.deployments.values()] == ["SUCCESS"]
    assert fake.deprecated_calls() == []


def test_release_labels_become_the_plain_semver_retool_accepts() -> None:
    assert release_version("v1.4.0") == "1.4.0"
    assert release_version("2.0.10") == "2.0.10"
    assert release_version("a1b2c3d") == f"0.0.{int('a1b2c3d', 16)}"
    assert release_version("v1.4.0-rc.1") == release_version("v1.4.0-rc.1")
    assert release_version("v1.4.0-rc.1").startswith("0.0.")


def test_builtin_groups_and_resources_are_never_reported(fake: FakeRetool, provider: RetoolProvider) -> None:
    assert sorted(provider.read("staging", declared=frozenset())) == [("environment", "staging")]
    # An import (nothing declared) reads every app too, the instance's own groups and resources still not.
    assert sorted(provider.read("staging")) == [("app", APP), ("environment", "staging")]


# -- out-of-band changes are drift, and re-applying heals them ---------------------------------------


def test_a_config_value_changed_in_retool_is_drift_and_reapplying_restores_it(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    fake.set_config_value("API_CRM_BASE_URL", "staging", "https://evil.example.com")

    drift = diff(objects("staging", secrets), provider.read("staging"))
    healed = reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    assert list(drift) == [("config-variable", "API_CRM_BASE_URL")]
    assert drift[("config-variable", "API_CRM_BASE_URL")][1]["value"] == "https://evil.example.com"
    assert healed == [("update", ("config-variable", "API_CRM_BASE_URL"))]
    assert fake.config_values("API_CRM_BASE_URL")["staging"] == "https://api-staging.internal.example.com"
    assert diff(objects("staging", secrets), provider.read("staging")) == {}


def test_a_permission_revoked_in_retool_is_drift_and_reapplying_grants_it_again(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    fake.revoke("support-team", "resource_configuration", "crm-db@staging")

    drift = diff(objects("staging", secrets), provider.read("staging"))
    healed = reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    assert list(drift) == [("permission", "support-team/resource/crm-db")]
    assert drift[("permission", "support-team/resource/crm-db")][1] is None
    assert healed == [("create", ("permission", "support-team/resource/crm-db"))]
    assert fake.grants()[("support-team", "resource_configuration", "crm-db@staging")] == "use"
    assert diff(objects("staging", secrets), provider.read("staging")) == {}


def test_a_resource_configuration_deleted_in_retool_is_drift_and_reapplying_recreates_it(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    fake.delete_resource_configuration("crm-db", "staging")

    drift = diff(objects("staging", secrets), provider.read("staging"))
    healed = reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    # The configuration carried the environment's grants on it, so they went with it.
    assert sorted(drift) == [
        ("permission", "platform-admins/resource/crm-db"),
        ("permission", "support-team/resource/crm-db"),
        ("resource", "crm-db"),
    ]
    assert keys(healed) == set(drift)
    assert fake.resource_options("crm-db", "staging")["database_options"]["password"] == "stg-db-pass-1"
    assert diff(objects("staging", secrets), provider.read("staging")) == {}
    assert diff(objects("production", secrets), provider.read("production")) == {}


def test_an_option_changed_in_retool_is_drift_on_that_resource_only(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    config = fake.config("crm-db", "production")
    assert config is not None
    config["options"]["database_options"]["host"] = "rogue.internal"

    drift = diff(objects("production", secrets), provider.read("production"))
    reconcile(provider, context("production", secrets, book), objects("production", secrets))

    declared, live = drift[("resource", "crm-db")]
    assert list(drift) == [("resource", "crm-db")]
    assert live["options"] == {**declared["options"], "host": "rogue.internal"}
    assert fake.resource_options("crm-db", "production")["database_options"]["host"] == "db.internal"


def test_a_secret_changed_in_git_is_drift_by_fingerprint_and_the_new_value_is_written(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    rotated = Secrets({**secrets.values, "SEGMENT_STAGING_KEY": "stg-segment-key-2"})

    drift = diff(objects("staging", rotated), provider.read("staging"))
    reconcile(provider, context("staging", rotated, book), objects("staging", rotated))

    assert sorted(drift) == [("config-variable", "SEGMENT_WRITE_KEY"), ("resource", "segment")]
    assert fake.config_values("SEGMENT_WRITE_KEY") == {
        "staging": "stg-segment-key-2",
        "production": "prd-segment-key-1",
    }
    assert fake.resource_options("segment", "staging")["authentication_options"]["basic_username"] == (
        "stg-segment-key-2"
    )
    assert diff(objects("staging", rotated), provider.read("staging")) == {}


def test_a_secret_edited_inside_retool_cannot_be_seen(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    """The documented limit: Retool never returns secret values, so their edits are invisible."""
    apply_both(provider, secrets, book)
    fake.set_config_value("SEGMENT_WRITE_KEY", "staging", "changed-in-retool")

    assert diff(objects("staging", secrets), provider.read("staging")) == {}


def test_an_app_published_at_another_release_in_retool_is_drift_and_reapplying_publishes_ours_again(
    fake: FakeRetool, source_control: FakeSourceControl, provider: RetoolProvider, book: MemoryFingerprintBook,
    secrets: Secrets,
) -> None:
    apply_both(provider, secrets, book)
    sc_uuid = source_control.app_uuid(APP)
    assert sc_uuid is not None
    # Someone releases an edited app by hand and publishes it on this instance.
    source_control.edit_app(APP, {"main.rsx": b"<App>edited by hand</App>"})
    source_control.merge(source_control.push_release(sc_uuid, "9.9.9", None, "2026-01-01T00:00:00Z", None).branch)
    source_control.merge(source_control.push_manifest_entry("production", sc_uuid, "9.9.9", None).branch)
    assert fake.deploy_now()["status"] == "SUCCESS"
    assert fake.live_releases() == {APP: "9.9.9"}

    drift = diff(objects("production", secrets), provider.read("production"))
    reconcile(provider, context("production", secrets, book), objects("production", secrets))

    assert list(drift) == [("app", APP)]
    assert drift[("app", APP)][1]["source_hash"] == "unknown:9.9.9"
    assert fake.live_releases() == {APP: release_version(COMMIT[:7])}
    assert fake.pinned() == {APP: release_version(COMMIT[:7])}
    assert diff(objects("production", secrets), provider.read("production")) == {}


# -- delete, per kind, removes only the named object ------------------------------------------------


def test_deleting_a_permission_revokes_only_that_grant(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    before = fake.grants()
    live = provider.read("staging")[("permission", "support-team/resource/crm-db")]

    provider.apply(context("staging", secrets, book), Change.DELETE, None, live)

    after = fake.grants()
    assert set(before) - set(after) == {("support-team", "resource_configuration", "crm-db@staging")}
    assert set(after) <= set(before)


def test_deleting_a_resource_in_one_environment_keeps_it_for_the_other(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    ctx = context("staging", secrets, book)

    provider.apply(ctx, Change.DELETE, None, provider.read("staging")[("resource", "crm-db")])

    assert fake.config("crm-db", "staging") is None
    assert fake.config("crm-db", "production") is not None
    assert fake.names("resources") == ["crm-api", "crm-db", "retool_db", "segment"]
    assert diff(objects("production", secrets), provider.read("production")) == {}

    provider.apply(context("production", secrets, book), Change.DELETE, None,
                   provider.read("production")[("resource", "crm-db")])

    assert fake.names("resources") == ["crm-api", "retool_db", "segment"]


def test_deleting_a_secret_variable_in_one_environment_keeps_the_others_value(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)

    provider.apply(context("staging", secrets, book), Change.DELETE, None,
                   provider.read("staging")[("config-variable", "SEGMENT_WRITE_KEY")])

    assert fake.config_values("SEGMENT_WRITE_KEY") == {"production": "prd-segment-key-1"}
    assert ("config-variable", "SEGMENT_WRITE_KEY") not in provider.read("staging")
    assert diff(objects("production", secrets), provider.read("production")) == {}


def test_deleting_a_group_a_folder_or_an_app_removes_only_that_one(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    ctx = context("staging", secrets, book)
    live = provider.read("staging")

    provider.apply(ctx, Change.DELETE, None, live[("group", "support-team")])
    provider.apply(ctx, Change.DELETE, None, live[("folder", "Support")])
    provider.apply(ctx, Change.DELETE, None, live[("app", APP)])

    assert fake.names("groups") == ["All Users", "admin", "editor", "platform-admins", "viewer"]
    assert sorted({f for f in fake.names("folders") if f not in ("root", "archive")}) == ["CRM"]
    # The app left this instance's manifest and the instance deployed that: no release is live.
    assert fake.pinned() == {}
    assert fake.live_releases() == {APP: "latest"}


def test_deleting_an_environment_removes_only_that_environment(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    qa = PlatformObject("environment", "qa", {"description": "Quality assurance", "color": "#00703C"})
    ctx = context("staging", secrets, book)
    provider.apply(ctx, Change.CREATE, qa, None)
    assert provider.read("qa", declared=frozenset()) == {("environment", "qa"): qa}

    provider.apply(ctx, Change.DELETE, None, qa)

    assert fake.names("environments") == ["production", "staging"]


def test_prune_deletes_only_undeclared_objects_and_only_when_enabled(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    declared = objects("staging", secrets)
    del declared[("config-variable", "API_CRM_BASE_URL")]
    del declared[("permission", "support-team/resource/segment")]

    without_prune = reconcile(provider, context("staging", secrets, book), declared)
    with_prune = reconcile(provider, context("staging", secrets, book), declared, prune=True)

    assert without_prune == []
    assert with_prune == [
        ("delete", ("permission", "support-team/resource/segment")),
        ("delete", ("config-variable", "API_CRM_BASE_URL")),
    ]
    assert fake.config_values("API_CRM_BASE_URL") == {"production": "https://api.example.com"}
    assert diff(declared, provider.read("staging")) == {}
    assert diff(objects("production", secrets), provider.read("production")) == {}


# -- refusals ------------------------------------------------------------------------------------------


def test_an_app_that_never_reached_retool_through_source_control_is_refused(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.state.apps.clear()
    app = objects("staging", secrets)[("app", APP)]

    with pytest.raises(RetoolStateError, match="Source Control") as caught:
        provider.apply(context("staging", secrets, book), Change.CREATE, app, None)

    assert caught.value.retryable is False
    assert fake.writes() == []


def test_an_option_retool_has_no_place_for_is_refused_before_anything_is_written(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    segment = PlatformObject("resource", "segment", {
        "type": "restapi", "description": None, "folder": None,
        "options": {"base_url": "https://api.segment.io/v1", "write_key": "abc"},
    })

    with pytest.raises(RetoolStateError, match="'write_key' is not a REST API option"):
        provider.apply(context("staging", secrets, book), Change.CREATE, segment, None)

    assert fake.writes() == []


def test_an_update_that_would_erase_a_secret_reconciler_did_not_write_is_refused(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    production = fake.env_id("production")
    provider.client.post("/configuration_variables", {
        "name": "SEGMENT_WRITE_KEY", "secret": True,
        "values": [{"environment_id": production, "value": "set-by-hand"}],
    })
    variable = objects("staging", secrets)[("config-variable", "SEGMENT_WRITE_KEY")]

    with pytest.raises(RetoolStateError, match="did not write"):
        provider.apply(context("staging", secrets, book), Change.CREATE, variable, None)

    assert fake.config_values("SEGMENT_WRITE_KEY") == {"production": "set-by-hand"}


def test_without_a_book_given_the_provider_adopts_the_one_apply_is_given(
    fake: FakeRetool, source_control: FakeSourceControl, book: MemoryFingerprintBook, secrets: Secrets,
    tmp_path: Path,
) -> None:
    sc = {"manifest": fake.manifest_name, "source_control": BranchRepository(source_control.url, tmp_path / "c")}
    provider = RetoolProvider(fake.url, fake.token, requests_per_minute=60_000, deploy_poll_interval=0.01, **sc)
    try:
        apply_both(provider, secrets, book)

        assert provider.fingerprints is book
        assert diff(objects("staging", secrets), provider.read("staging")) == {}
        restarted = RetoolProvider(fake.url, fake.token, requests_per_minute=60_000, **sc)
        restarted.fingerprints = book
        restarted.releases = provider.releases
        assert diff(objects("production", secrets), restarted.read("production")) == {}
        restarted.close()
    finally:
        provider.close()


class NarrowBook(MemoryFingerprintBook):
    """A book whose entries hold at most 120 characters, like the state store's column."""

    def put(self, provider: str, scope: str, fingerprint: str) -> None:
        assert len(fingerprint) <= 120, f"{scope}: {len(fingerprint)} characters"
        super().put(provider, scope, fingerprint)


def test_records_fit_a_book_whose_entries_hold_120_characters(
    fake: FakeRetool, make_provider: Callable[..., RetoolProvider], secrets: Secrets
) -> None:
    narrow = NarrowBook()
    provider = make_provider(fingerprints=narrow)
    for env in ("staging", "production"):
        reconcile(provider, context(env, secrets, narrow), objects(env, secrets))

    for env in ("staging", "production"):
        assert diff(objects(env, secrets), provider.read(env)) == {}


# -- what Retool does on its own, and what is not ours ------------------------------------------------------


def test_a_resource_created_from_staging_leaves_no_staging_options_in_another_environment(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    """Retool configures a new resource in its default environment (production) with the create's options."""
    assert fake.default_env() == "production"

    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    for resource in ("crm-db", "crm-api", "segment"):
        assert fake.config(resource, "production") is None
        assert fake.config(resource, "staging") is not None
    assert ("resource", "crm-db") not in provider.read("production")


def test_prune_never_deletes_groups_folders_or_grants_made_by_hand(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    hand = provider.client.post("/groups", {"name": "made-by-hand"})
    folder = provider.client.post("/folders", {"name": "Hand-made", "folder_type": "app"})
    provider.client.post("/permissions/grant", {"subject": {"type": "group", "id": fake.group_id("support-team")},
                                                "object": {"type": "folder", "id": folder["id"]},
                                                "access_level": "use"})
    declared = objects("staging", secrets)

    live = provider.read("staging", declared=frozenset(declared))
    pruned = reconcile(provider, context("staging", secrets, book), declared, prune=True)

    assert live[("group", "made-by-hand")].owned is False
    assert live[("folder", "Hand-made")].owned is False
    assert pruned == []
    assert "made-by-hand" in fake.names("groups") and hand["name"] == "made-by-hand"
    assert "Hand-made" in fake.names("folders")


def test_grants_are_read_for_declared_and_owned_groups_only(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    for index in range(20):
        provider.client.post("/groups", {"name": f"hand-{index}"})
    fake.clear_calls()

    provider.read("staging", declared=frozenset(objects("staging", secrets)))

    groups_asked = {c.body["subject"]["id"] for c in fake.calls if c.path == "/permissions/listObjects"}
    assert groups_asked == {fake.group_id("support-team"), fake.group_id("platform-admins")}
    assert len([c for c in fake.calls if c.path == "/permissions/listObjects"]) == 2 * 3


def test_with_nothing_declared_every_app_and_groups_grants_are_read_and_hand_made_ones_are_not_ours(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    apply_both(provider, secrets, book)
    app_id = fake.add_app("made-by-hand")
    hand = provider.client.post("/groups", {"name": "hand-group"})
    provider.client.post("/permissions/grant", {"subject": {"type": "group", "id": hand["id"]},
                                                "object": {"type": "app", "id": app_id}, "access_level": "use"})

    everything = provider.read("staging")  # what 'reconciler import' asks for
    declared = provider.read("staging", declared=frozenset(objects("staging", secrets)))

    assert everything[("app", "made-by-hand")].owned is False
    assert everything[("permission", "hand-group/app/made-by-hand")].owned is False
    assert everything[("app", APP)].owned is True
    assert ("app", "made-by-hand") not in declared
    assert ("permission", "hand-group/app/made-by-hand") not in declared
