"""A command loads only the libraries it needs (issue 12: CLI latency is mostly imports).

Checked structurally, in a fresh process: which modules were imported by the time it exits. How
long the commands take is measured in bench/cli_latency.py, never here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import World, cli

# Libraries some commands need and others do not (pydantic, PyYAML and typer every one does). structlog is
# imported only when a line is logged: none of these commands logs at the default level (error).
HEAVY = ("psycopg", "pglast", "migra", "schemainspect", "sqlalchemy", "pygit2", "pydantic_settings", "fastapi",
         "uvicorn", "httpx", "watchfiles", "structlog")

# Runs the CLI, then (at exit, whatever the exit code) writes the top-level modules it imported.
WRAPPER = """
import atexit, json, sys
out, argv = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
sys.argv = ["reconciler", *argv]
from reconciler.cli import main
main()
"""


def imported(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(out), *args], capture_output=True, text=True,
                          env={**os.environ, "RECONCILER_LOG_LEVEL": "error"}, timeout=300, check=False)
    assert done.returncode in (0, 2), done.stderr
    return set(json.loads(out.read_text())) & set(HEAVY)


def registry_only(world: World) -> None:
    """The example without its Database (and the checks that query it)."""
    for folder in ("databases", "checks"):
        shutil.rmtree(world.desired / folder, ignore_errors=True)
    app = world.desired / "apps" / "customer-support-dashboard.yaml"
    app.write_text("".join(line for line in app.read_text().splitlines(keepends=True)
                           if not line.startswith("databases:")))
    world.commit("Registry only")


def test_validate_of_a_folder_without_sql_needs_no_database_git_or_state_libraries(pyworld: World,
                                                                                    tmp_path: Path) -> None:
    registry_only(pyworld)
    assert imported(tmp_path, "validate", str(pyworld.desired)) == set()


def test_status_loads_no_database_driver_and_no_schema_engine(pyworld: World, tmp_path: Path) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    assert imported(tmp_path, "status", "--config", str(pyworld.config)) == {"sqlalchemy", "pygit2", "pglast",
                                                                             "pydantic_settings"}


def test_a_registry_only_plan_loads_no_database_driver_and_no_schema_engine(pyworld: World, tmp_path: Path) -> None:
    registry_only(pyworld)
    assert imported(tmp_path, "plan", "staging", "--config", str(pyworld.config)) == {"sqlalchemy", "pygit2",
                                                                                      "pydantic_settings"}


def test_drift_of_unchanged_catalogs_loads_no_schema_engine(pyworld: World, tmp_path: Path) -> None:
    """The diff an earlier process made is reused: neither migra nor schemainspect is loaded."""
    assert cli(pyworld, "apply", "staging").exit_code == 0  # its verification plan stores the diff
    assert imported(tmp_path, "drift", "staging", "--config", str(pyworld.config)) == {
        "sqlalchemy", "pygit2", "pglast", "psycopg", "pydantic_settings"}
