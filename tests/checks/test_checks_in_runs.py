"""Checks in runs (issue 16 phase B): run after every apply, recorded per run, gating promotion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.checks.servers import crm_api
from tests.conftest import World, cli, set_clock

NO_CUSTOMERS = """kind: Check
name: staging-has-customers
environments: [staging]
when: {when}
sql:
  database: crm
  query: select exists (select 1 from customers)
  expect: true
"""


def run_checks_in_staging(world: World) -> None:
    path = world.desired / "environments" / "staging.yaml"
    path.write_text(path.read_text().replace("  automatic: true\n", "  automatic: true\n  run_checks: true\n"))


def status_of(world: World, env: str) -> dict[str, Any]:
    rows = json.loads(cli(world, "status", "--format", "json").stdout)["environments"]
    return next(r for r in rows if r["name"] == env)


def history_of(world: World, env: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(cli(world, "history", env, "--format", "json").stdout)["runs"]
    return runs


def test_a_failing_check_fails_the_run_and_names_the_check(pyworld: World) -> None:
    run_checks_in_staging(pyworld)
    pyworld.write("checks/staging.yaml", NO_CUSTOMERS.format(when="after-apply"))
    pyworld.commit("Staging runs its checks; staging must have customers")
    result = cli(pyworld, "apply", "staging")
    assert result.exit_code == 1
    assert "check staging-has-customers failed after apply: returned False; expected true" in result.stderr
    status = status_of(pyworld, "staging")
    assert status["state"] == "Failed"
    assert status["applied_revision"] == status["desired_revision"]  # applied in full; it does not work
    assert [(c["name"], c["passed"]) for c in status["last_run"]["checks"]] == [
        ("dashboard-open-tickets", True), ("staging-has-customers", False)]
    run = history_of(pyworld, "staging")[0]
    assert run["result"] == "Failed"
    assert [c["when"] for c in run["checks"]] == ["after-schema", "after-apply"]
    assert "failed: staging-has-customers" in cli(pyworld, "history", "staging").stdout
    # Nothing left to apply: the next run checks again rather than calling the environment Synced.
    again = cli(pyworld, "apply", "staging")
    assert again.exit_code == 1
    assert status_of(pyworld, "staging")["state"] == "Failed"
    # Dropping the check: the desired state changes only in its checks; the run checks it and is Synced.
    (pyworld.desired / "checks" / "staging.yaml").unlink()
    pyworld.commit("Staging may be empty")
    fixed = cli(pyworld, "apply", "staging")
    assert fixed.exit_code == 0, fixed.stderr
    assert status_of(pyworld, "staging")["state"] == "Synced"
    last = history_of(pyworld, "staging")[0]
    assert (last["result"], [c["name"] for c in last["checks"]]) == ("NoChanges", ["dashboard-open-tickets"])


def test_an_after_schema_check_that_fails_stops_destructive_steps(pyworld: World) -> None:
    run_checks_in_staging(pyworld)
    assert cli(pyworld, "apply", "staging").exit_code == 0
    sql = pyworld.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    pyworld.write("checks/staging.yaml", NO_CUSTOMERS.format(when="after-schema"))
    pyworld.commit("Drop customers.plan; staging must have customers")
    result = cli(pyworld, "apply", "staging")
    assert result.exit_code == 1
    assert "check staging-has-customers failed after apply" in result.stderr
    assert "destructive steps) were not applied" in result.stderr
    assert "plan" in pyworld.columns("staging", "customers")
    run = history_of(pyworld, "staging")[0]
    assert [(c["name"], c["passed"]) for c in run["checks"]] == [
        ("dashboard-open-tickets", True), ("staging-has-customers", False)]
    assert status_of(pyworld, "staging")["state"] == "Failed"


def test_a_release_whose_check_fails_in_staging_is_never_promoted(pyworld: World) -> None:
    run_checks_in_staging(pyworld)
    pyworld.write("checks/staging.yaml", NO_CUSTOMERS.format(when="after-apply"))
    pyworld.commit("Staging runs its checks; staging must have customers")
    assert cli(pyworld, "apply", "staging").exit_code == 1
    pyworld.tag("v1.0.0", "Release 1.0.0")
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 3
    assert "check staging-has-customers failed in staging for the desired state of v1.0.0" in result.stderr
    production = status_of(pyworld, "production")
    assert (production["state"], production["applied_revision"]) == ("Blocked", None)
    assert pyworld.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]
    explained = cli(pyworld, "explain", "checks-upstream")
    assert explained.exit_code == 0 and "promoted_from" in explained.stdout
    # Staging's checks pass once it has a customer; the same release is promoted.
    pyworld.query("staging", "insert into customers (email, full_name) values ('a@example.com', 'A') returning id")
    assert cli(pyworld, "apply", "staging").exit_code == 0
    promoted = cli(pyworld, "apply", "production")
    assert promoted.exit_code == 0, promoted.stderr
    assert status_of(pyworld, "production")["applied_ref"] == "v1.0.0"


def test_a_release_soaks_in_staging_before_production(pyworld: World, monkeypatch: pytest.MonkeyPatch) -> None:
    path = pyworld.desired / "environments" / "production.yaml"
    path.write_text(path.read_text().replace("  promoted_from: staging", "  promoted_from: staging\n  soak: 30m"))
    run_checks_in_staging(pyworld)
    pyworld.commit("Production waits for 30 minutes of a Synced staging")
    assert cli(pyworld, "apply", "staging").exit_code == 0  # at 10:00 (TEST_NOW), on the product's clock
    pyworld.tag("v1.0.0", "Release 1.0.0")
    set_clock(monkeypatch, "2026-12-02T10:20:00Z")
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 3
    assert "soaking in staging until 10:30 UTC" in result.stderr
    production = status_of(pyworld, "production")
    assert (production["state"], production["applied_revision"]) == ("Blocked", None)
    set_clock(monkeypatch, "2026-12-02T10:31:00Z")
    promoted = cli(pyworld, "apply", "production")
    assert promoted.exit_code == 0, promoted.stderr
    assert status_of(pyworld, "production")["applied_ref"] == "v1.0.0"


def test_a_failed_run_in_staging_restarts_the_soak(pyworld: World, monkeypatch: pytest.MonkeyPatch) -> None:
    path = pyworld.desired / "environments" / "production.yaml"
    path.write_text(path.read_text().replace("  promoted_from: staging", "  promoted_from: staging\n  soak: 30m"))
    run_checks_in_staging(pyworld)
    pyworld.write("checks/staging.yaml", NO_CUSTOMERS.format(when="after-apply"))
    pyworld.commit("Soak; staging must have customers")
    assert cli(pyworld, "apply", "staging").exit_code == 1  # 10:00: the check fails
    pyworld.query("staging", "insert into customers (email, full_name) values ('a@example.com', 'A') returning id")
    set_clock(monkeypatch, "2026-12-02T10:10:00Z")
    assert cli(pyworld, "apply", "staging").exit_code == 0  # 10:10: checked again, passes: the soak starts
    pyworld.tag("v1.0.0", "Release 1.0.0")
    set_clock(monkeypatch, "2026-12-02T10:35:00Z")
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 3
    assert "soaking in staging until 10:40 UTC" in result.stderr


HEALTH = """kind: Check
name: crm-api-health
environments: [production]
timeout: 5s
http:
  resource: crm-api
  path: /health
  status: 200
"""


def test_a_failed_check_rolls_production_back_to_the_last_release_that_passed(pyworld: World) -> None:
    with crm_api() as api:
        variables = pyworld.desired / "config" / "variables.yaml"
        text = variables.read_text()
        variables.write_text(text.replace("production: https://api.example.com", f"production: {api.url}"))
        path = pyworld.desired / "environments" / "production.yaml"
        path.write_text(path.read_text().replace(
            "  self_heal: false", "  self_heal: false\n  run_checks: true\n  on_failed_checks: rollback"))
        (pyworld.desired / "checks" / "crm.yaml").unlink()
        pyworld.write("checks/health.yaml", HEALTH)
        pyworld.commit("Production checks its CRM API and rolls back when it fails")
        assert cli(pyworld, "apply", "staging").exit_code == 0
        first = pyworld.tag("v1.0.0", "Release 1.0.0")
        assert cli(pyworld, "apply", "production").exit_code == 0
        # v1.1.0 moves production to the API's v2, whose health the test turns bad.
        api.routes["/v2/health"] = (503, {"status": "down"})
        variables.write_text(text.replace("production: https://api.example.com", f"production: {api.url}/v2"))
        pyworld.commit("Production uses the CRM API v2")
        assert cli(pyworld, "apply", "staging").exit_code == 0
        second = pyworld.tag("v1.1.0", "Release 1.1.0")
        cli(pyworld, "apply", "production")
        runs = history_of(pyworld, "production")
        assert [(r["trigger"], r["result"], r["revision"]) for r in runs[:2]] == [
            ("rollback", "Succeeded", first), ("cli", "Failed", second)]
        assert "check crm-api-health failed after apply: GET /health: expected status 200, got 503" in runs[1]["reason"]
        assert runs[0]["reason"] == ("rolled back to v1.0.0 because check crm-api-health failed at v1.1.0 (pinned); "
                                     "'reconciler unpin production' releases it")
        assert [(c["name"], c["passed"]) for c in runs[0]["checks"]] == [("crm-api-health", True)]
        production = status_of(pyworld, "production")
        assert (production["state"], production["applied_revision"], production["pinned_revision"]) == (
            "Synced", first, first)
        # Pinned: nothing moves until an operator unpins; with v2 healthy again, v1.1.0 goes out.
        assert cli(pyworld, "apply", "production").exit_code == 0
        assert status_of(pyworld, "production")["applied_revision"] == first
        api.routes["/v2/health"] = (200, {"status": "ok"})
        assert cli(pyworld, "unpin", "production").exit_code == 0
        assert cli(pyworld, "apply", "production").exit_code == 0
        assert status_of(pyworld, "production")["applied_revision"] == second


def test_a_rollback_that_needs_a_destructive_change_is_not_applied(pyworld: World) -> None:
    with crm_api() as api:
        variables = pyworld.desired / "config" / "variables.yaml"
        text = variables.read_text()
        variables.write_text(text.replace("production: https://api.example.com", f"production: {api.url}"))
        path = pyworld.desired / "environments" / "production.yaml"
        path.write_text(path.read_text().replace(
            "  self_heal: false", "  self_heal: false\n  run_checks: true\n  on_failed_checks: rollback"))
        (pyworld.desired / "checks" / "crm.yaml").unlink()
        pyworld.write("checks/health.yaml", HEALTH)
        pyworld.commit("Production checks its CRM API and rolls back when it fails")
        assert cli(pyworld, "apply", "staging").exit_code == 0
        pyworld.tag("v1.0.0", "Release 1.0.0")
        assert cli(pyworld, "apply", "production").exit_code == 0
        # v1.1.0 adds a column: going back would drop it, and with it whatever was written there.
        sql = pyworld.desired / "databases/crm/001_customers.sql"
        sql.write_text(sql.read_text().replace("    plan        text", "    region      text,\n    plan        text"))
        pyworld.commit("customers.region")
        assert cli(pyworld, "apply", "staging").exit_code == 0
        second = pyworld.tag("v1.1.0", "Release 1.1.0")
        api.routes["/health"] = (503, {"status": "down"})
        result = cli(pyworld, "apply", "production")
    assert result.exit_code == 1
    assert "not rolled back to v1.0.0 because check crm-api-health failed at v1.1.0: it would need destructive " \
           "changes (crm:drop-column:public.customers.region)" in result.stderr
    assert "region" in pyworld.columns("production", "customers")
    production = status_of(pyworld, "production")
    assert (production["state"], production["applied_revision"], production["pinned_revision"]) == (
        "Failed", second, None)
    assert [r["trigger"] for r in history_of(pyworld, "production")[:2]] == ["rollback", "cli"]


def test_an_upstream_without_checks_of_its_own_does_not_hold_promotion(pyworld: World) -> None:
    run_checks_in_staging(pyworld)
    (pyworld.desired / "checks" / "crm.yaml").unlink()
    pyworld.commit("Staging runs checks, but declares none")
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.0.0", "Release 1.0.0")
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 0, result.stderr


def test_status_and_history_show_each_check_of_the_last_run_with_its_error(pyworld: World) -> None:
    run_checks_in_staging(pyworld)
    pyworld.write("checks/staging.yaml", NO_CUSTOMERS.format(when="after-apply"))
    pyworld.commit("Staging runs its checks; staging must have customers")
    assert cli(pyworld, "apply", "staging").exit_code == 1
    status = cli(pyworld, "status").stdout
    assert "failed: staging-has-customers" in status  # the CHECKS column
    failed_line = next(line for line in status.splitlines() if "staging: check staging-has-customers" in line)
    assert failed_line.strip().startswith("staging: check staging-has-customers failed (")
    assert failed_line.strip().endswith("): returned False; expected true")
    history = cli(pyworld, "history", "staging").stdout
    table = history[history.index("Checks of run"):]
    rows = {line.split()[0]: line for line in table.splitlines()[2:] if line.strip()}
    assert sorted(rows) == ["dashboard-open-tickets", "staging-has-customers"]
    assert " after-schema  passed " in rows["dashboard-open-tickets"]
    assert " after-apply   FAILED " in rows["staging-has-customers"]
    assert rows["staging-has-customers"].rstrip().endswith("returned False; expected true")
