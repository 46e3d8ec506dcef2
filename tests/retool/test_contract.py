"""The fake Retool is held to the OpenAPI document, so passing against it means something.

These tests talk to the fake with a bare HTTP client (not our provider) to show that it refuses
what the document forbids and never answers outside it. They clear the recorded violations they
cause on purpose, so that the ``fake`` fixture's teardown check stays meaningful for every other
test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.retool.fake import FakeRetool
from tests.retool.fake.server import SPEC_PATH

RECORDINGS = SPEC_PATH.parent / "recordings"


@pytest.fixture
def http(fake: FakeRetool) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url + "/api/v2", headers={"Authorization": f"Bearer {fake.token}"}) as client:
        yield client


def test_a_request_body_that_violates_the_document_is_refused_and_recorded(
    fake: FakeRetool, http: httpx.Client
) -> None:
    answer = http.post("/environments", json={"name": "qa", "color": "green"})

    assert answer.status_code == 400
    assert answer.json()["success"] is False
    assert len(fake.violations) == 1
    assert "'green' does not match '^#[A-Fa-f0-9]{6}$'" in fake.violations[0]
    assert fake.names("environments") == ["production", "staging"]
    fake.violations.clear()


def test_a_json_patch_operation_the_document_does_not_allow_is_refused(fake: FakeRetool, http: httpx.Client) -> None:
    env = fake.env_id("staging")

    answer = http.patch(f"/environments/{env}", json={"operations": [{"op": "remove", "path": "/color"}]})

    assert answer.status_code == 400
    assert len(fake.violations) == 1
    fake.violations.clear()


def test_a_query_parameter_the_operation_does_not_declare_is_refused(fake: FakeRetool, http: httpx.Client) -> None:
    answer = http.get("/groups", params={"limit": "5"})

    assert answer.status_code == 400
    assert fake.violations == ["request GET /api/v2/groups: undeclared query parameters ['limit']"]
    fake.violations.clear()


def test_a_request_without_the_bearer_token_is_unauthorized(fake: FakeRetool) -> None:
    answer = httpx.get(fake.url + "/api/v2/environments")

    assert answer.status_code == 401
    assert answer.json() == {"success": False, "message": "Invalid or missing API token"}


def test_an_answer_that_would_violate_the_document_is_caught_before_it_leaves(
    fake: FakeRetool, http: httpx.Client
) -> None:
    fake.state.environments[fake.env_id("staging")]["color"] = "blue"

    answer = http.get("/environments")

    assert answer.status_code == 500
    assert len(fake.violations) == 1
    assert "does not match the OpenAPI document" in fake.violations[0]
    fake.violations.clear()


def test_answers_use_the_envelopes_and_masks_seen_in_the_recordings(fake: FakeRetool, http: httpx.Client) -> None:
    production = fake.env_id("production")
    created = http.post("/configuration_variables", json={
        "name": "K", "secret": True, "values": [{"environment_id": production, "value": "s3cret"}],
    }).json()
    listed = http.get("/environments").json()

    assert created["success"] is True
    assert created["data"]["values"] == [{"environment_id": production, "value": "---encrypted-on-server---"}]
    assert set(listed) == {"success", "data", "total_count", "next_token", "has_more"}
    assert fake.config_values("K") == {"production": "s3cret"}


def _recorded(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load(Path(RECORDINGS / name).read_text())
    return list(data["interactions"])


def test_requests_recorded_against_real_retool_are_accepted_by_the_fake(fake: FakeRetool, http: httpx.Client) -> None:
    """The fake's validation is the document's, not stricter: real traffic passes it."""
    staging = fake.env_id("staging")
    production = fake.env_id("production")
    recorded_ids = {"fc4a3c5b-6328-4990-b368-6879a1f38855": staging, "23ba02f3-12c2-456e-826f-13b616daa5ce": production}
    sent = 0
    for name in ("TestAccEnvironment.yaml", "TestAccConfigurationVariable.yaml", "TestAccResourceConfiguration.yaml",
                 "TestAccGroup.yaml"):
        for interaction in _recorded(name):
            request = interaction["request"]
            if request["method"] != "POST" or not request.get("body"):
                continue
            body = request["body"]
            for recorded, ours in recorded_ids.items():
                body = body.replace(recorded, ours)
            path = request["url"].split("/api/v2", 1)[1]
            if path == "/resource_configurations":
                resource = http.post("/resources", json={
                    "type": "restapi", "display_name": f"r{sent}", "options": {"base_url": "https://x"},
                }).json()["data"]
                body = json.dumps({**json.loads(body), "resource_id": resource["id"]})
            answer = http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 200, (name, answer.text)
            sent += 1

    assert sent >= 4
    assert fake.violations == []


def test_the_vendored_contract_matches_the_shared_one() -> None:
    """tests/retool/contract/ is a copy of ../shared/retool for machines without it; it must not drift."""
    from tests.retool.fake.server import SHARED_SPEC, VENDORED_SPEC

    if not SHARED_SPEC.exists():
        pytest.skip("../shared/retool is not beside this checkout; the vendored copy is the contract")
    assert VENDORED_SPEC.read_bytes() == SHARED_SPEC.read_bytes()
    shared = SHARED_SPEC.parent / "recordings"
    vendored = VENDORED_SPEC.parent / "recordings"
    assert sorted(p.name for p in vendored.iterdir()) == sorted(p.name for p in shared.iterdir())
    for path in shared.iterdir():
        assert (vendored / path.name).read_bytes() == path.read_bytes(), path.name
