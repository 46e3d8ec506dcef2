"""``kind: Check`` documents: what ``validate`` accepts and what it refuses, each with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.checks.prepared import for_environment
from reconciler.desired.loader import load
from reconciler.errors import ValidationError
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


def problems_with(folder: Path, text: str) -> list[str]:
    (folder / "checks" / "extra.yaml").write_text(text)
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(folder))
    return [str(p) for p in caught.value.problems]


SQL = "kind: Check\nname: c\nsql:\n  database: crm\n  query: select true\n  expect: true\n"


def test_the_example_declares_an_sql_check_per_environment_and_an_http_check_for_production() -> None:
    state = load(DirectoryTree(EXAMPLE))
    assert sorted(state.checks) == ["crm-api-health", "crm-has-customers", "dashboard-open-tickets"]
    health = state.checks["crm-api-health"]
    assert health.http is not None and health.http.json_path == "$.status" and health.http.value == "ok"
    assert state.checks["dashboard-open-tickets"].when == "after-schema"
    assert state.checks["crm-has-customers"].when == "after-apply"
    assert state.locations[("Check", "crm-api-health")] == ("checks/crm.yaml", 23)


def test_a_minimal_sql_check_is_valid(folder: Path) -> None:
    (folder / "checks" / "extra.yaml").write_text(SQL)
    check = load(DirectoryTree(folder)).checks["c"]
    assert (check.environments, check.timeout, check.when, check.app) == (None, "10s", "after-apply", None)


def test_an_unknown_field_points_at_its_line(folder: Path) -> None:
    assert problems_with(folder, SQL.replace("  expect: true", "  expect: true\n  retries: 3")) == [
        "checks/extra.yaml:7: Check 'c': unknown field 'sql.retries' (check the spelling; unknown fields are not "
        "allowed)"]


def test_a_check_is_sql_or_http_not_both_nor_neither(folder: Path) -> None:
    both = SQL + "http:\n  resource: crm-api\n"
    assert problems_with(folder, both) == ["checks/extra.yaml:1: Check 'c': a check needs exactly one of 'sql' or "
                                           "'http'"]
    assert problems_with(folder, "kind: Check\nname: c\n") == [
        "checks/extra.yaml:1: Check 'c': a check needs exactly one of 'sql' or 'http'"]


def test_an_sql_check_says_what_it_expects(folder: Path) -> None:
    neither = SQL.replace("  expect: true\n", "")
    assert problems_with(folder, neither) == [
        "checks/extra.yaml:3: Check 'c': sql: an sql check needs exactly one of 'expect: true' or "
        "'rows: {at_least: N}' / 'rows: {exactly: N}'"]
    both_counts = SQL.replace("  expect: true", "  rows: {at_least: 1, exactly: 2}")
    assert problems_with(folder, both_counts) == [
        "checks/extra.yaml:6: Check 'c': sql.rows: rows needs exactly one of 'at_least' or 'exactly'"]
    false = SQL.replace("expect: true", "expect: false")
    assert problems_with(folder, false) == ["checks/extra.yaml:6: Check 'c': sql.expect: Input should be True"]


def test_an_sql_check_names_a_declared_database_with_a_url_for_each_environment(folder: Path) -> None:
    assert problems_with(folder, SQL.replace("database: crm", "database: billing")) == [
        "checks/extra.yaml:4: Check 'c': reference to undeclared database 'billing'"]
    (folder / "databases" / "crm.yaml").write_text(
        (folder / "databases" / "crm.yaml").read_text().replace("  production:", "  # production:"))
    found = problems_with(folder, SQL)
    assert "checks/extra.yaml:4: Check 'c': database 'crm' has no URL for environment production" in found


@pytest.mark.parametrize(("query", "message"), [
    ("select 1; delete from customers", "the query holds 2 statements; a check runs exactly one"),
    ("selec 1", 'the query does not parse: syntax error at or near "selec"'),
    ("commit", "the query is a transaction statement; a check runs one query inside its own read-only transaction"),
    ("copy customers to program 'true'", "COPY is not allowed in a check; write a SELECT"),
])
def test_a_query_is_one_statement_that_parses(folder: Path, query: str, message: str) -> None:
    found = problems_with(folder, SQL.replace("select true", f'"{query}"'))
    assert found == [f"checks/extra.yaml:5: Check 'c': {message}"]


def test_a_write_passes_validation_because_the_read_only_transaction_refuses_it(folder: Path) -> None:
    (folder / "checks" / "extra.yaml").write_text(SQL.replace("select true", "delete from customers"))
    assert "c" in load(DirectoryTree(folder)).checks


def test_references_in_a_query_parse_as_a_literal_or_a_name(folder: Path) -> None:
    query = "select count(*) > 0 from ${config:SUPPORT_EMAIL} where token = '${secret:CHECK_TOKEN}'"
    (folder / "checks" / "extra.yaml").write_text(SQL.replace("select true", f'"{query}"'))
    assert load(DirectoryTree(folder)).checks["c"].sql.query == query  # type: ignore[union-attr]


def test_references_in_a_check_are_checked_like_a_resources(folder: Path) -> None:
    text = SQL.replace("select true", "\"select '${config:NOPE}' = '${secrets:X}'\"")
    assert problems_with(folder, text) == [
        "checks/extra.yaml:5: Check 'c': reference to undeclared config variable 'NOPE'",
        "checks/extra.yaml:5: Check 'c': unknown reference '${secrets:X}'; use ${secret:NAME} or ${config:NAME}",
    ]


def test_environments_and_app_must_be_declared(folder: Path) -> None:
    text = SQL.replace("sql:", "environments: [staging, qa]\napp: reports\nsql:")
    assert problems_with(folder, text) == [
        "checks/extra.yaml:3: Check 'c': unknown environment 'qa' (declared in reconciler.yaml: staging, production)",
        "checks/extra.yaml:4: Check 'c': reference to undeclared app 'reports'",
    ]


def test_a_checks_app_must_run_where_the_check_runs(folder: Path) -> None:
    app = folder / "apps" / "customer-support-dashboard.yaml"
    app.write_text(app.read_text().replace("environments: [staging, production]", "environments: [staging]"))
    text = SQL.replace("sql:", "environments: [staging, production]\napp: customer-support-dashboard\nsql:")
    found = problems_with(folder, text)
    assert "checks/extra.yaml:4: Check 'c': app 'customer-support-dashboard' is not deployed to environment " \
           "production" in found


def test_an_app_check_without_environments_runs_where_its_app_is_deployed(folder: Path) -> None:
    app = folder / "apps" / "customer-support-dashboard.yaml"
    app.write_text(app.read_text().replace("environments: [staging, production]", "environments: [staging]"))
    (folder / "checks" / "crm.yaml").unlink()  # its production checks name the app
    text = SQL.replace("sql:", "app: customer-support-dashboard\nsql:")
    (folder / "checks" / "extra.yaml").write_text(text)
    state = load(DirectoryTree(folder))  # valid
    assert [c.name for c in for_environment(state, "staging")].count("c") == 1
    assert "c" not in [c.name for c in for_environment(state, "production")]


@pytest.mark.parametrize("timeout", ["0s", "11m", "soon"])
def test_a_timeout_is_a_duration_up_to_ten_minutes(folder: Path, timeout: str) -> None:
    found = problems_with(folder, SQL.replace("sql:", f"timeout: {timeout}\nsql:"))
    assert len(found) == 1 and found[0].startswith("checks/extra.yaml:3: Check 'c': timeout: ")


HTTP = "kind: Check\nname: h\nenvironments: [production]\nhttp:\n  resource: crm-api\n  path: /health\n"


def test_an_http_check_needs_a_declared_rest_resource_in_each_environment(folder: Path) -> None:
    assert problems_with(folder, HTTP.replace("crm-api", "crm-apx")) == [
        "checks/extra.yaml:5: Check 'h': reference to undeclared resource 'crm-apx'"]
    assert problems_with(folder, HTTP.replace("crm-api", "crm-db")) == [
        "checks/extra.yaml:5: Check 'h': resource 'crm-db' has no base_url option for environment production; "
        "HTTP checks call a REST resource's base_url"]
    resource = folder / "resources" / "crm-api.yaml"
    resource.write_text(resource.read_text().replace("  production:", "  live:"))
    found = problems_with(folder, HTTP)
    assert "checks/extra.yaml:5: Check 'h': resource 'crm-api' is not configured for environment production" in found


def test_a_literal_credential_in_a_header_is_an_error(folder: Path) -> None:
    text = HTTP + "  headers:\n    X-Request-Source: reconciler\n    Authorization: Bearer abc123\n"
    assert problems_with(folder, text) == [
        "checks/extra.yaml:9: Check 'h': header 'Authorization' holds a literal credential; reference it as "
        "${secret:NAME}"]
    (folder / "checks" / "extra.yaml").write_text(text.replace("Bearer abc123", '"Bearer ${secret:HEALTH_TOKEN}"'))
    assert load(DirectoryTree(folder)).checks["h"].http.headers["Authorization"] == (  # type: ignore[union-attr]
        "Bearer ${secret:HEALTH_TOKEN}")


def test_a_header_name_is_a_token(folder: Path) -> None:
    assert problems_with(folder, HTTP + "  headers:\n    'X Bad: yes': v\n") == [
        "checks/extra.yaml:8: Check 'h': http.headers: key 'X Bad: yes' is not allowed; a header name has 1 to 100 "
        "letters, digits or !#$%&'*+.^_`|~- (no spaces or colons)"]


def test_json_path_is_rfc_9535_and_value_needs_it(folder: Path) -> None:
    found = problems_with(folder, HTTP + "  json_path: status\n")
    assert len(found) == 1
    assert found[0].startswith("checks/extra.yaml:7: Check 'h': http.json_path: 'status' is not an RFC 9535 JSONPath (")
    assert found[0].endswith("); write it like '$.status' or '$.checks[0].ok'")
    assert problems_with(folder, HTTP + "  value: ok\n") == [
        "checks/extra.yaml:4: Check 'h': http: 'value' needs a 'json_path' that says where in the response to find it"]


def test_a_null_value_is_an_expectation_of_null(folder: Path) -> None:
    (folder / "checks" / "extra.yaml").write_text(HTTP + "  json_path: $.error\n  value: null\n")
    http = load(DirectoryTree(folder)).checks["h"].http
    assert http is not None and "value" in http.model_fields_set and http.value is None


def test_scheduled_checks_need_run_checks(folder: Path) -> None:
    spec = folder / "environments" / "production.yaml"
    spec.write_text(spec.read_text().replace("  self_heal: false", "  self_heal: false\n  scheduled_checks: report"))
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(folder))
    (problem,) = [str(p) for p in caught.value.problems]
    assert "environments/production.yaml" in problem
    assert "scheduled_checks needs run_checks: true" in problem
    spec.write_text(spec.read_text().replace("  scheduled_checks: report", "  scheduled_checks: rollback\n"
                                             "  run_checks: true"))
    assert load(DirectoryTree(folder)).environments["production"].sync.scheduled_checks == "rollback"
