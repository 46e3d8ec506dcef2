"""``reconciler check ENV``: the example's checks against real databases and a CRM API on loopback."""

from __future__ import annotations

import json

from tests.checks.servers import crm_api
from tests.conftest import CANARY, World, cli

FAILING = """kind: Check
name: staging-has-customers
environments: [staging]
sql:
  database: crm
  query: select exists (select 1 from customers)
  expect: true
"""


def test_the_examples_checks_pass_in_staging_once_applied(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    result = cli(pyworld, "check", "staging")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Checks of staging at ") and lines[0].endswith("(main): 1 passed, 0 failed")
    assert lines[1].split() == ["CHECK", "TARGET", "WHEN", "RESULT", "TIME", "DETAIL"]
    row = lines[2].split()
    assert row[:5] == ["dashboard-open-tickets", "database", "crm", "after-schema", "passed"]
    assert row[-2:] == ["0", "rows"]


def test_a_failing_check_exits_4_and_says_why(pyworld: World) -> None:
    pyworld.write("checks/staging.yaml", FAILING)
    pyworld.commit("Staging must have customers")
    assert cli(pyworld, "apply", "staging").exit_code == 0
    result = cli(pyworld, "check", "staging", "--format", "json")
    assert result.exit_code == 4
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert (report["environment"], report["ref"], len(report["revision"])) == ("staging", "main", 40)
    assert [(c["name"], c["passed"], c["error"]) for c in report["checks"]] == [
        ("dashboard-open-tickets", True, None),
        ("staging-has-customers", False, "returned False; expected true"),
    ]
    assert set(report["checks"][0]) == {"name", "kind", "target", "app", "when", "passed", "duration_seconds",
                                        "detail", "error"}
    only = cli(pyworld, "check", "staging", "--check", "dashboard-open-tickets", "--format", "json")
    assert only.exit_code == 0
    assert [c["name"] for c in json.loads(only.stdout)["checks"]] == ["dashboard-open-tickets"]


def test_checks_run_against_the_schema_the_environment_runs(pyworld: World) -> None:
    """Before staging is applied its database has no open_tickets view: the dashboard's query fails."""
    result = cli(pyworld, "check", "staging", "--format", "markdown")
    assert result.exit_code == 4
    assert "| dashboard-open-tickets | database crm | after-schema | **FAILED** |" in result.stdout
    assert 'the query failed: relation "open_tickets" does not exist' in result.stdout


def test_production_checks_call_the_crm_api_with_productions_credentials(pyworld: World) -> None:
    with crm_api() as api:
        variables = pyworld.desired / "config" / "variables.yaml"
        variables.write_text(variables.read_text().replace("production: https://api.example.com",
                                                           f"production: {api.url}"))
        pyworld.write("checks/echo.yaml", "kind: Check\nname: echo\nenvironments: [production]\nhttp:\n"
                      "  resource: crm-api\n  path: /echo\n  headers:\n"
                      "    X-Probe: ${secret:CRM_DB_STAGING_PASSWORD}\n")
        pyworld.commit("Production's CRM API on loopback; a check the API fails")
        assert cli(pyworld, "apply", "staging").exit_code == 0
        pyworld.tag("v1.0.0", "Release 1.0.0\n")
        assert cli(pyworld, "apply", "production").exit_code == 0
        result = cli(pyworld, "check", "production", "--format", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 4
    assert report["ref"] == "v1.0.0"
    outcome = {c["name"]: (c["passed"], c["detail"]) for c in report["checks"]}
    assert outcome["crm-api-health"] == (True, 'HTTP 200, $.status = "ok"')
    assert outcome["dashboard-open-tickets"] == (True, "0 rows")
    assert outcome["crm-has-customers"] == (False, "returned False; expected true")
    assert outcome["echo"][0] is False
    health = next(r for r in api.requests if r.path == "/health")
    assert health.headers["Authorization"] == f"Bearer {pyworld.secrets['CRM_API_PRODUCTION_TOKEN']}"
    echoed = next(r for r in api.requests if r.path == "/echo")
    assert echoed.headers["X-Probe"] == CANARY  # sent, and echoed back in the 500 body...
    assert outcome["echo"][1].startswith("GET /echo: expected status 200, got 500: ")
    for secret in (CANARY, pyworld.secrets["CRM_API_PRODUCTION_TOKEN"]):  # ...but never shown
        assert secret not in result.stdout + result.stderr


def test_unknown_environments_and_checks_are_errors(pyworld: World) -> None:
    unknown = cli(pyworld, "check", "qa")
    assert unknown.exit_code == 1
    assert "unknown environment 'qa'" in unknown.stderr
    missing = cli(pyworld, "check", "staging", "--check", "nope")
    assert missing.exit_code == 1
    assert "no check named 'nope' in staging (its checks: dashboard-open-tickets)" in missing.stderr
