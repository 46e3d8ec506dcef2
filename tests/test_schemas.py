"""The committed JSON Schemas in schemas/ match the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert names == ["App.schema.json", "ConfigVariable.schema.json", "Database.schema.json",
                     "Environment.schema.json", "Group.schema.json", "Resource.schema.json",
                     "reconciler-yaml.schema.json"]
    environment = json.loads((tmp_path / "Environment.schema.json").read_text())
    assert environment["additionalProperties"] is False
    assert "track" in environment["required"]
