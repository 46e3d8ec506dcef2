"""Read commands write nothing: ``plan``, ``drift``, ``status``, ``history``, ``diff`` and ``releases`` leave
every table of the state database as they found it (issue 11).

Each is run against a state database that a run filled, in the situations where reads used to
write: a release tag no run has seen yet (remembering tags), a newer revision on the control branch
than the one applied (the desired revision in the status), and drift no check has recorded yet
(drift first-seen times and the status).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.providers.registry import RegistryProvider
from tests.conftest import World, cli, shared_world

# One worker runs the module, so the shared world (``filled``) is built once.
pytestmark = pytest.mark.xdist_group("read-only")

Rows = dict[str, list[tuple[object, ...]]]


def state_rows(world: World) -> Rows:
    """Every row of every table of the world's state database, in a stable order."""
    path = world.root / "data" / "reconciler.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [name for (name,) in conn.execute(
            "select name from sqlite_master where type = 'table' order by name")]
        return {table: sorted(conn.execute(f'select * from "{table}"').fetchall(), key=repr) for table in tables}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[World]:
    """Staging applied; since then a release tag, a new control-branch revision and drift on staging.

    One for the module: every test runs a read command on it and checks that it changed nothing."""
    with shared_world(tmp_path_factory, pg, "filled") as world:
        yield fill(world)


@pytest.fixture(scope="module")
def as_filled(filled: World) -> Rows:
    """The state database as ``filled`` left it, before any test's command ran."""
    return state_rows(filled)


def fill(pyworld: World) -> World:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    pyworld.tag("v1.0.0", "Release 1.0.0")
    pyworld.write("environments/staging.yaml", (pyworld.desired / "environments/staging.yaml").read_text()
                  + "# a revision staging has not applied\n")
    pyworld.commit("A revision staging does not run yet")
    registry = RegistryProvider(pyworld.settings().registry_url)
    registry.edit_config_value("staging", "SUPPORT_EMAIL", "someone@else.example")
    registry.close()
    return pyworld


@pytest.mark.parametrize(("args", "exit_code"), [
    (("plan", "staging"), 2),
    (("plan", "production"), 2),
    (("plan", "production", "--format", "json"), 2),
    (("drift",), 2),
    (("drift", "staging", "--format", "json"), 2),
    (("status",), 0),
    (("status", "--format", "json"), 0),
    (("history", "staging"), 0),
    (("diff", "--base", "v1.0.0", "--head", "main"), 0),
    (("releases",), 0),
    (("releases", "--format", "json"), 0),
])
def test_a_read_command_leaves_the_state_database_as_it_found_it(
    filled: World, as_filled: Rows, args: tuple[str, ...], exit_code: int,
) -> None:
    before = state_rows(filled)
    assert before["runs"] and before["environment_status"]  # the run above filled it
    assert before == as_filled  # no other read command wrote to the shared database either
    result = cli(filled, *args)
    assert result.exit_code == exit_code, result.stderr
    assert state_rows(filled) == before
