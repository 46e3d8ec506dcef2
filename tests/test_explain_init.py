"""``reconciler init`` scaffolds a valid folder; ``reconciler explain`` knows ids, risks and gates."""

from __future__ import annotations

from pathlib import Path

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
