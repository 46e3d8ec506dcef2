"""Which checks run in an environment, and what each sees there (pure: no I/O, no secret values)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.checks.prepared import HttpProbe, SqlProbe, for_environment
from reconciler.desired.loader import load
from reconciler.desired.state import DesiredState
from reconciler.errors import NotFoundError
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


def example() -> DesiredState:
    return load(DirectoryTree(EXAMPLE))


def test_each_environment_runs_the_checks_declared_for_it() -> None:
    state = example()
    assert [c.name for c in for_environment(state, "staging")] == ["dashboard-open-tickets"]
    assert [c.name for c in for_environment(state, "production")] == [
        "dashboard-open-tickets", "crm-has-customers", "crm-api-health"]


def test_an_sql_check_uses_the_databases_url_for_the_environment() -> None:
    check = for_environment(example(), "production", ["crm-has-customers"])[0]
    assert check.probe == SqlProbe("crm", "${secret:CRM_DB_PRODUCTION_ADMIN_URL}",
                                   "select exists (select 1 from customers)", True, None, None)
    assert (check.kind, check.target, check.timeout, check.when) == ("sql", "database crm", 10.0, "after-apply")


def test_an_http_check_sees_the_resource_as_the_environment_does() -> None:
    check = for_environment(example(), "production", ["crm-api-health"])[0]
    probe = check.probe
    assert isinstance(probe, HttpProbe)
    assert probe.url == "https://api.example.com/health"  # ${config:API_CRM_BASE_URL} for production
    assert probe.headers == {"Authorization": "Bearer ${secret:CRM_API_PRODUCTION_TOKEN}",
                             "Accept": "application/json"}
    assert (probe.method, probe.status, probe.json_path, probe.value, probe.has_value) == (
        "GET", 200, "$.status", "ok", True)
    assert (check.app, check.timeout, check.target) == ("customer-support-dashboard", 5.0, "resource crm-api")


def test_a_checks_headers_replace_the_resources_whatever_their_case(folder: Path) -> None:
    (folder / "checks" / "extra.yaml").write_text(
        "kind: Check\nname: h\nhttp:\n  resource: crm-api\n  headers:\n    accept: text/plain\n"
        "    authorization: \"Token ${secret:HEALTH}\"\n")
    probe = for_environment(load(DirectoryTree(folder)), "staging", ["h"])[0].probe
    assert isinstance(probe, HttpProbe)
    assert probe.headers == {"accept": "text/plain", "authorization": "Token ${secret:HEALTH}"}
    assert probe.url == "https://api-staging.internal.example.com"


def test_basic_and_unsupported_authentication_of_a_resource(folder: Path) -> None:
    (folder / "checks" / "extra.yaml").write_text("kind: Check\nname: s\nhttp:\n  resource: segment\n  path: v1/ping\n")
    state = load(DirectoryTree(folder))
    probe = for_environment(state, "production", ["s"])[0].probe
    assert isinstance(probe, HttpProbe)
    assert probe.basic_auth == ("${secret:SEGMENT_PRODUCTION_KEY}", "")  # a secret config variable, still a reference
    assert probe.url == "https://api.segment.io/v1/v1/ping"
    resource = folder / "resources" / "segment.yaml"
    resource.write_text(resource.read_text() + "  authentication_type: oauth2\n")
    probe = for_environment(load(DirectoryTree(folder)), "production", ["s"])[0].probe
    assert isinstance(probe, HttpProbe)
    assert probe.problem is not None and probe.problem.startswith(
        "resource segment uses oauth2 authentication, which checks cannot reproduce")


def test_unknown_names_are_refused_with_what_exists() -> None:
    state = example()
    with pytest.raises(NotFoundError, match=r"^no check named 'nope' in staging \(its checks: "
                                            r"dashboard-open-tickets\)$"):
        for_environment(state, "staging", ["nope"])
    with pytest.raises(NotFoundError, match=r"^check 'crm-api-health' does not run in staging \(its environments: "
                                            r"production\)$"):
        for_environment(state, "staging", ["crm-api-health"])
    with pytest.raises(NotFoundError, match=r"^unknown environment 'qa'"):
        for_environment(state, "qa")
