"""JSON Schemas of the document kinds, generated from the pydantic models (``schemas/`` in the repo).

A test regenerates them and fails when the committed files are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reconciler.desired.models import KIND_MODELS, RootConfig

BASE_URL = "https://reconciler.dev/schemas/v1"


def schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    models: dict[str, type[BaseModel]] = {"reconciler.yaml": RootConfig, **KIND_MODELS}
    for kind, model in models.items():
        schema = model.model_json_schema(by_alias=True)
        file = "reconciler-yaml" if kind == "reconciler.yaml" else kind
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{BASE_URL}/{file}.schema.json",
                  **schema}
        out[f"{file}.schema.json"] = schema
    return out


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
