"""``reconciler init`` scaffolds a valid folder; ``reconciler explain`` knows ids, risks and gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.gates import GateCode
from reconciler.core.outcome import EnvState, RunResult
from reconciler.explain import GATES, RESULTS, STATES
from tests.conftest import cli


def test_init_writes_a_folder_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "state"
    result = cli(None, "init", str(target))
    assert result.exit_code == 0, result.stderr
    assert "environments staging → production" in result.stdout
    assert cli(None, "validate", str(target)).exit_code == 0
    assert (target / "databases/app/001_tables.sql").exists()


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = cli(None, "init", str(tmp_path))
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_explain_a_schema_drift_id() -> None:
    result = cli(None, "explain", "crm:drop-column:public.customers.legacy_notes")
    assert result.exit_code == 0
    assert "drops a column that exists live but is not declared" in result.stdout
    assert "Approve: crm:drop-column:public.customers.legacy_notes" in result.stdout


def test_explain_a_platform_drift_id_a_risk_and_a_gate() -> None:
    assert "configuration variable's value" in cli(None, "explain", "config-variable:SUPPORT_EMAIL:value").stdout
    assert "CONCURRENTLY" in cli(None, "explain", "lock-risk").stdout
    assert "never followed" in cli(None, "explain", "moved-tag").stdout
    assert "drops a schema" in cli(None, "explain", "crm:drop-schema:audit").stdout


def test_explain_something_unknown() -> None:
    result = cli(None, "explain", "bogus")
    assert result.exit_code == 1
    assert "nothing known about 'bogus'" in result.stderr


@pytest.mark.parametrize("code", list(GateCode))
def test_every_gate_code_has_an_explanation(code: GateCode) -> None:
    """A gate the core can refuse with is one an operator can look up (issue 11)."""
    result = cli(None, "explain", code.value)
    assert result.exit_code == 0, result.stderr
    # 'destructive' is a risk and the gate of that risk: one text serves both.
    assert result.stdout.startswith((f"Gate '{code.value}': ", f"Risk '{code.value}': "))
    assert GATES[code] in " ".join(result.stdout.split())


@pytest.mark.parametrize("state", list(EnvState))
def test_every_environment_state_has_an_explanation(state: EnvState) -> None:
    result = cli(None, "explain", state.value)
    assert result.exit_code == 0, result.stderr
    assert f"Environment state '{state.value}': " in result.stdout
    assert STATES[state] in " ".join(result.stdout.split())


@pytest.mark.parametrize("result_code", list(RunResult))
def test_every_run_result_has_an_explanation(result_code: RunResult) -> None:
    result = cli(None, "explain", result_code.value)
    assert result.exit_code == 0, result.stderr
    assert f"Run result '{result_code.value}': " in result.stdout
    assert RESULTS[result_code] in " ".join(result.stdout.split())


def test_explain_no_release_and_not_a_release() -> None:
    no_release = cli(None, "explain", "no-release")
    assert no_release.exit_code == 0, no_release.stderr
    assert "no tag in the repository matches" in no_release.stdout
    not_a_release = cli(None, "explain", "not-a-release")
    assert not_a_release.exit_code == 0, not_a_release.stderr
    assert "carries no semantic version" in not_a_release.stdout


def test_a_state_that_is_also_a_run_result_is_explained_as_both() -> None:
    result = cli(None, "explain", "failed")
    assert result.exit_code == 0, result.stderr
    assert "Environment state 'Failed': " in result.stdout
    assert "Run result 'Failed': " in result.stdout
