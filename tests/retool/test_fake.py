"""The fake Retool behaves the way Retool's documentation says Retool behaves.

Each test talks to the fake with a bare HTTP client, as a reader of Retool's API reference would,
and states one documented behaviour the provider must cope with (sources in docs/retool.md):
Source Control writes only push branches, deploys read the deploy branch, instances may share a
repository, resource creation configures the default environment, lists come in pages, Spaces are
isolated by token, and deprecated operations are counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon_support import wait_for
from tests.retool.example import APP
from tests.retool.fake import FakeRetool, FakeSourceControl


def client(fake: FakeRetool, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=fake.url + "/api/v2", headers={"Authorization": f"Bearer {token or fake.token}"})


@pytest.fixture
def http(fake: FakeRetool) -> Iterator[httpx.Client]:
    with client(fake) as c:
        yield c


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def deploy_and_wait(http: httpx.Client) -> dict[str, Any]:
    deployment = ok(http.post("/source_control/deploy"))
    found: dict[str, Any] = {}

    def finished() -> bool:
        found.update(ok(http.get(f"/source_control/deployment/{deployment['id']}")))
        return found["status"] in ("SUCCESS", "ERROR")

    wait_for(finished, timeout=30)
    return found


PAGE = {"elementType": "PAGE"}


# -- Source Control: writes push branches, merges make them count ------------------------------------


def test_a_release_and_a_manifest_written_through_the_api_are_branches_until_merged(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    sc_uuid = source_control.app_uuid(APP)
    assert sc_uuid is not None

    release = ok(http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.0.0"}))
    manifest = ok(http.put(f"/source_control/manifests/production/{sc_uuid}", params=PAGE,
                           json={"release": "1.0.0"}))

    assert source_control.branches() == sorted([release["branch_name"], manifest["branch_name"]])
    assert ok(http.get(f"/source_control/releases/{sc_uuid}", params=PAGE)) == []
    assert ok(http.get("/source_control/manifests")) == {"manifests": []}
    assert source_control.head(release["branch_name"]) == release["commit_sha"]

    source_control.merge(release["branch_name"])
    source_control.merge(manifest["branch_name"])

    assert [r["release_version"] for r in ok(http.get(f"/source_control/releases/{sc_uuid}", params=PAGE))] == [
        "1.0.0"]
    assert ok(http.get("/source_control/manifests/production")) == {"manifest": {
        "name": "production", "apps": [{"uuid": sc_uuid, "release": "1.0.0"}], "workflows": []}}


def test_a_deploy_publishes_what_the_deploy_branch_says_not_what_was_pushed(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    sc_uuid = source_control.app_uuid(APP)
    release = ok(http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.0.0"}))
    source_control.merge(release["branch_name"])
    manifest = ok(http.put(f"/source_control/manifests/production/{sc_uuid}", params=PAGE,
                           json={"release": "1.0.0"}))

    before_merge = deploy_and_wait(http)
    assert before_merge["status"] == "SUCCESS"
    assert fake.live_releases() == {APP: "latest"}

    source_control.merge(manifest["branch_name"])
    after_merge = deploy_and_wait(http)

    assert after_merge["status"] == "SUCCESS"
    assert after_merge["commit_sha"] == source_control.head()
    assert fake.live_releases() == {APP: "1.0.0"}
    assert fake.live_artifacts() == {APP: source_control.artifact(sc_uuid, "1.0.0")}
    apps = ok(http.get("/apps"))
    assert [(a["name"], a["release_version"]) for a in apps] == [(APP, "1.0.0")]


def test_a_deploy_of_a_manifest_naming_a_release_that_is_not_merged_ends_in_error(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    sc_uuid = source_control.app_uuid(APP)
    ok(http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.0.0"}))
    manifest = ok(http.put(f"/source_control/manifests/production/{sc_uuid}", params=PAGE,
                           json={"release": "1.0.0"}))
    source_control.merge(manifest["branch_name"])

    assert deploy_and_wait(http)["status"] == "ERROR"
    assert fake.live_releases() == {APP: "latest"}


def test_a_manifest_names_apps_by_their_source_control_uuid_not_their_id_on_the_instance(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    app_id = fake.app(APP)["id"]
    assert app_id != source_control.app_uuid(APP)

    answer = http.put(f"/source_control/manifests/production/{app_id}", params=PAGE, json={"release": "1.0.0"})

    assert answer.status_code == 400
    assert "No protected element" in answer.json()["message"]
    assert source_control.branches() == []


def test_a_release_is_a_snapshot_of_the_app_on_the_deploy_branch_when_it_is_made(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    sc_uuid = source_control.app_uuid(APP)
    assert sc_uuid is not None
    first = ok(http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.0.0"}))
    source_control.edit_app(APP, {"main.rsx": b"<App>changed</App>"})
    second = ok(http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.1.0"}))
    source_control.merge(first["branch_name"])
    source_control.merge(second["branch_name"])

    assert source_control.artifact(sc_uuid, "1.0.0") != source_control.artifact(sc_uuid, "1.1.0")
    again = http.post(f"/source_control/releases/{sc_uuid}", params=PAGE, json={"release_version": "1.0.0"})
    assert again.status_code == 400
    assert again.json()["message"] == "Release 1.0.0 already exists"


def test_two_instances_share_one_repository_and_each_publishes_its_own_manifest(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    staging = FakeRetool(token="retool_staging_token", source_control=source_control, manifest_name="staging")
    staging.start()
    try:
        with client(staging) as staging_http:
            sc_uuid = source_control.app_uuid(APP)
            release = ok(staging_http.post(f"/source_control/releases/{sc_uuid}", params=PAGE,
                                           json={"release_version": "2.0.0"}))
            source_control.merge(release["branch_name"])
            pin = ok(staging_http.put(f"/source_control/manifests/staging/{sc_uuid}", params=PAGE,
                                      json={"release": "2.0.0"}))
            source_control.merge(pin["branch_name"])

            assert deploy_and_wait(staging_http)["status"] == "SUCCESS"
            assert deploy_and_wait(http)["status"] == "SUCCESS"

            # The protected app reached the staging instance by its deploy, with an id of its own.
            assert staging.live_releases() == {APP: "2.0.0"}
            assert staging.app(APP)["id"] != fake.app(APP)["id"]
            assert fake.live_releases() == {APP: "latest"}
            assert ok(staging_http.get(f"/source_control/releases/{sc_uuid}", params=PAGE)) == ok(
                http.get(f"/source_control/releases/{sc_uuid}", params=PAGE))
        staging.assert_clean()
    finally:
        staging.stop()


# -- environments and what is instance-wide ---------------------------------------------------------


def test_creating_a_resource_configures_it_in_the_default_environment_with_the_options_given(
    fake: FakeRetool, http: httpx.Client
) -> None:
    ok(http.post("/resources", json={"type": "restapi", "display_name": "crm-api",
                                     "options": {"base_url": "https://api-staging.internal"}}))

    assert fake.default_env() == "production"
    assert fake.resource_options("crm-api", "production") == {"base_url": "https://api-staging.internal"}
    assert fake.config("crm-api", "staging") is None


def test_a_grant_on_an_app_or_folder_is_instance_wide_and_one_on_a_configuration_is_per_environment(
    fake: FakeRetool, http: httpx.Client
) -> None:
    group = ok(http.post("/groups", json={"name": "support-team"}))
    app_id = fake.app(APP)["id"]
    resource = ok(http.post("/resources", json={"type": "restapi", "display_name": "r",
                                                "options": {"base_url": "https://x"}}))
    staging = ok(http.post("/resource_configurations", json={
        "resource_id": resource["id"], "environment_id": fake.env_id("staging"), "options": {"base_url": "https://s"},
    }))
    subject = {"type": "group", "id": group["id"]}
    ok(http.post("/permissions/grant", json={"subject": subject, "object": {"type": "app", "id": app_id},
                                             "access_level": "use"}))
    ok(http.post("/permissions/grant", json={"subject": subject, "access_level": "use",
                                             "object": {"type": "resource_configuration", "id": staging["id"]}}))

    assert fake.grants() == {("support-team", "app", APP): "use",
                             ("support-team", "resource_configuration", "r@staging"): "use"}


# -- lists come in pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/groups", "/folders", "/environments", "/apps", "/resources"])
def test_every_list_that_can_say_has_more_comes_in_pages(fake: FakeRetool, http: httpx.Client, path: str) -> None:
    ok(http.post("/environments", json={"name": "qa", "color": "#00703C"}))
    for name in ("a", "b"):
        fake.add_app(f"app-{name}")
        ok(http.post("/resources", json={"type": "restapi", "display_name": name, "options": {"base_url": "https://x"}}))
    fake.page_size = 2
    first = http.get(path).json()
    second = http.get(path, params={"next_token": first["next_token"]}).json()

    assert first["has_more"] is True
    assert len(first["data"]) == 2
    assert first["total_count"] > 2
    assert second["data"] and second["data"][0] not in first["data"]


def test_list_objects_comes_in_pages_too(fake: FakeRetool, http: httpx.Client) -> None:
    group = ok(http.post("/groups", json={"name": "support-team"}))
    for index in range(3):
        folder = ok(http.post("/folders", json={"name": f"F{index}", "folder_type": "app"}))
        ok(http.post("/permissions/grant", json={"subject": {"type": "group", "id": group["id"]},
                                                 "object": {"type": "folder", "id": folder["id"]},
                                                 "access_level": "use"}))
    fake.page_size = 2
    body = {"subject": {"type": "group", "id": group["id"]}, "object_type": "folder"}

    first = http.post("/permissions/listObjects", json=body).json()
    rest = http.post("/permissions/listObjects", json=body, params={"next_token": first["next_token"]}).json()

    assert (len(first["data"]), first["has_more"]) == (2, True)
    assert (len(rest["data"]), rest["has_more"]) == (1, False)


# -- spaces ---------------------------------------------------------------------------------------------


def test_each_space_has_its_own_token_and_sees_only_its_own_objects(fake: FakeRetool, http: httpx.Client) -> None:
    space = ok(http.post("/spaces", json={"name": "Support", "domain": "support.example.com"}))
    token = fake.space_token("Support")
    ok(http.post("/groups", json={"name": "admin-space-group"}))

    with client(fake, token) as support:
        ok(support.post("/groups", json={"name": "support-space-group"}))
        support_groups = {g["name"] for g in ok(support.get("/groups"))}
        support_apps = ok(support.get("/apps"))
    admin_groups = {g["name"] for g in ok(http.get("/groups"))}

    assert token != fake.token
    assert [s["id"] for s in ok(http.get("/spaces"))] == [space["id"]]
    assert "support-space-group" in support_groups and "admin-space-group" not in support_groups
    assert "admin-space-group" in admin_groups and "support-space-group" not in admin_groups
    assert support_apps == []
    with fake.space("Support") as state:
        assert {g["name"] for g in state.groups.values()} == support_groups
    assert {c.space for c in fake.calls} == {"Admin", "Support"}


# -- deprecated operations are answered and counted ------------------------------------------------------


def test_deprecated_operations_still_answer_and_are_counted(
    fake: FakeRetool, source_control: FakeSourceControl, http: httpx.Client
) -> None:
    sc_uuid = source_control.app_uuid(APP)
    ok(http.get(f"/source_control/releases/{sc_uuid}", params=PAGE))
    assert fake.deprecated_calls() == []

    ok(http.get(f"/source_control/releases/apps/{sc_uuid}"))

    assert [(c.method, c.template) for c in fake.deprecated_calls()] == [
        ("GET", "/source_control/releases/apps/{appUuid}")]


def test_without_source_control_the_source_control_operations_refuse(tmp_path: Path) -> None:
    bare = FakeRetool(token="retool_no_sc_token")
    bare.start()
    try:
        with client(bare) as http:
            answer = http.get("/source_control/manifests")
        assert answer.status_code == 400
        assert answer.json() == {"success": False, "message": "Source Control is not configured"}
        bare.assert_clean()
    finally:
        bare.stop()
