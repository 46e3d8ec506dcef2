"""The committed JSON Schemas in schemas/ match the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.desired.schemas import schemas
from tests.conftest import ROOT, cli


def test_committed_schemas_are_current() -> None:
    folder = ROOT / "schemas"
    expected = schemas()
    committed = {p.name: json.loads(p.read_text()) for p in folder.glob("*.schema.json")}
    assert sorted(committed) == sorted(expected), "run 'make schemas' and commit schemas/"
    for name, schema in expected.items():
        assert committed[name] == schema, f"schemas/{name} is stale; run 'make schemas' and commit it"


def test_schemas_export_writes_every_kind(tmp_path: Path) -> None:
    result = cli(None, "schemas", "export", str(tmp_path))
    assert result.exit_code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["App.schema.json", "Check.schema.json", "ConfigVariable.schema.json", "Database.schema.json",
                     "Environment.schema.json", "Group.schema.json", "Resource.schema.json", "Space.schema.json",
                     "reconciler-yaml.schema.json"]
    environment = json.loads((tmp_path / "Environment.schema.json").read_text())
    assert environment["additionalProperties"] is False
    assert "track" in environment["required"]


def test_the_example_checks_validate_against_the_check_schema(tmp_path: Path) -> None:
    """Editors validate with these files: what the loader accepts, the schema accepts too."""
    import jsonschema
    import yaml

    cli(None, "schemas", "export", str(tmp_path))
    schema = json.loads((tmp_path / "Check.schema.json").read_text())
    documents = list(yaml.safe_load_all((ROOT / "desired-state" / "checks" / "crm.yaml").read_text()))
    assert len(documents) == 3
    for document in documents:
        jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**documents[0], "retries": 3}, schema)
