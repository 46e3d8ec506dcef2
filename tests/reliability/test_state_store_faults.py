"""State database faults: every error names the cause and the database, and a run's result stands.

The faults are real: SQLite's own ``max_page_count`` limit (SQLite answers exactly as on a full
disk, ``SQLITE_FULL``, with no mount needed), a file the kernel refuses to write (``chattr +i`` as
root, where permissions do not bind; ``chmod`` otherwise), a garbage file, a folder where the file
should be, a lock held by another connection, and a PostgreSQL state store on a closed port.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.core.changes import Change, DriftItem, Phase
from reconciler.core.outcome import DriftChecked, RunOutcome, RunResult, Waiting
from reconciler.core.plan import Plan, Step
from reconciler.errors import StoreError
from reconciler.store.store import Store
from tests.conftest import World, cli, cli_process

Limit = Callable[[Path, int], None]


def _database_file(dbapi_connection: Any) -> str | None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return None
    row = dbapi_connection.execute("pragma database_list").fetchone()
    return str(row[2]) if row else None


@pytest.fixture
def page_limit() -> Iterator[Limit]:
    """``limit(path, headroom)``: every new connection to the SQLite file ``path`` — in this process,
    the product's included — may grow it by ``headroom`` pages (4 KiB each) and no more."""
    limits: dict[str, int] = {}

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        path = _database_file(dbapi_connection)
        if path in limits:
            pages = dbapi_connection.execute("pragma page_count").fetchone()[0]
            dbapi_connection.execute(f"pragma max_page_count = {pages + limits[path]}")

    sa.event.listen(sa.pool.Pool, "connect", on_connect)

    def limit(path: Path, headroom: int) -> None:
        limits[str(path.resolve())] = headroom

    yield limit
    sa.event.remove(sa.pool.Pool, "connect", on_connect)


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Make a file unwritable for this process, root included, and undo it afterwards."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"cannot make a file immutable here (root ignores permissions): {done.stderr.strip()}")
        else:
            path.chmod(0o444)
        frozen.append(path)

    yield freeze
    for path in frozen:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o644)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


def store_error(fn: Callable[[], object]) -> str:
    with pytest.raises(StoreError) as caught:
        fn()
    return str(caught.value)


# -- the store's messages ----------------------------------------------------------------------------


def test_a_full_disk_is_named_with_the_database(tmp_path: Path, page_limit: Limit) -> None:
    path = tmp_path / "state.db"
    Store(f"sqlite:///{path}").close()
    page_limit(path, 0)
    store = Store(f"sqlite:///{path}")
    plan = Plan("staging", "a" * 40, [Step(Phase.GROUPS, "platform", "group", "x", Change.CREATE, (
        DriftItem(id="x" * 50_000, kind="group", name="x", field=None, change=Change.CREATE, declared={}, live=None),
    ))])
    message = store_error(lambda: store.record(RunOutcome("staging", RunResult.PROGRESSING, "a" * 40, "main",
                                                          plan=plan)))
    assert message == (f"state database {path}: start run failed: the disk is full (SQLite: database or disk is "
                       "full); free space on the disk that holds it")


def test_a_read_only_database_is_named_and_still_readable(tmp_path: Path, read_only: Callable[[Path], None]) -> None:
    path = tmp_path / "state.db"
    writable = Store(f"sqlite:///{path}")
    writable.record(DriftChecked("staging", (), dt.datetime.now(dt.UTC)))  # Synced: no drift
    writable.close()
    read_only(path)
    store = Store(f"sqlite:///{path}")
    assert store.status("staging").state == "Synced"
    message = store_error(lambda: store.record(Waiting("staging", "a run is waiting")))
    assert message.startswith(f"state database {path}: write status failed: the database is read-only "
                              "(SQLite: attempt to write a readonly database); make the file and its folder writable")


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database " * 1000)
    message = store_error(lambda: Store(f"sqlite:///{path}"))
    assert message.startswith(f"state database {path}: open failed: the file is not a SQLite database "
                              "(or is corrupt) (SQLite: file is not a database); check the path, restore")


def test_a_folder_in_place_of_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.mkdir()
    message = store_error(lambda: Store(f"sqlite:///{path}"))
    assert message.startswith(f"state database {path}: open failed: the file cannot be opened "
                              "(SQLite: unable to open database file); check that the path names a file")


def test_a_file_in_the_way_of_its_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    message = store_error(lambda: Store(f"sqlite:///{tmp_path / 'data' / 'state.db'}"))
    assert message == (f"state database {tmp_path / 'data' / 'state.db'}: cannot create the folder "
                       f"{tmp_path / 'data'}: a file of that name is in the way")


def test_a_locked_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(f"sqlite:///{path}")
    store.engine.dispose()
    # The product waits 30 s for a lock; this store's connections give up at once (same error, sooner).
    sa.event.listen(store.engine, "connect", lambda conn, _r: conn.execute("pragma busy_timeout = 0"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")
    try:
        message = store_error(lambda: store.record(Waiting("staging", "a run is waiting")))
    finally:
        holder.rollback()
        holder.close()
    assert message.startswith(f"state database {path}: write status failed: the database is locked by another "
                              "process (SQLite: database is locked)")


def test_an_unreachable_postgresql_is_named_without_its_password(tmp_path: Path) -> None:
    port = closed_port()
    message = store_error(lambda: Store(f"postgresql+psycopg://reconciler:Pw-Canary-5@127.0.0.1:{port}/state"))
    assert message == (f"state database PostgreSQL 127.0.0.1:{port}/state (user reconciler): open failed: nothing "
                       "accepts connections at that address (connection refused); is the server running, and are "
                       "the host and port right?")


def test_a_url_that_does_not_parse_is_not_echoed(tmp_path: Path) -> None:
    message = store_error(lambda: Store("postgresql+psycopg://u:Pw-Canary-6@h:notaport/x"))
    assert "Pw-Canary-6" not in message
    assert message == ("state database (a URL that does not parse): open failed: the URL is not a valid SQLAlchemy "
                       "URL (e.g. sqlite:////var/lib/reconciler/reconciler.db)")


# -- the CLI -----------------------------------------------------------------------------------------


def state_db(world: World) -> Path:
    return (world.root / "data" / "reconciler.db").resolve()


def test_an_apply_whose_lease_release_fails_still_succeeds(pyworld: World, page_limit: Limit) -> None:
    """Applied, verified and recorded Succeeded: the lease the disk could not delete expires by itself."""
    assert cli(pyworld, "status").exit_code == 0  # creates the state database
    path = state_db(pyworld)
    with sqlite3.connect(path) as conn:
        # Deleting the lease row is the one write that needs room once the run is recorded.
        conn.executescript("""
            create table ballast (b blob);
            create trigger lease_release_needs_room after delete on leases
            begin insert into ballast values (zeroblob(8 * 1024 * 1024)); end;
        """)
    page_limit(path, 512)  # 2 MiB: enough for the run's records, not for the ballast
    result = cli(pyworld, "apply", "staging")
    assert result.exit_code == 0, result.stderr
    assert "Succeeded: staging is at" in result.stdout
    assert result.stderr.strip() == (
        f"warning: could not release the lease on staging (state database {path}: release lease failed: the disk "
        "is full (SQLite: database or disk is full); free space on the disk that holds it); it expires by itself "
        "within 60s")
    with sqlite3.connect(path) as conn:
        (result_row,) = conn.execute("select result from runs order by started_at desc limit 1").fetchall()
        leases = conn.execute("select environment from leases").fetchall()
    assert result_row == ("Succeeded",)
    assert leases == [("staging",)]  # left behind until it expires, or its owner runs again (below)
    with sqlite3.connect(path) as conn:
        conn.execute("drop trigger lease_release_needs_room")
    again = cli(pyworld, "apply", "staging")
    assert again.exit_code == 0, again.stderr
    assert "No changes: staging already matches" in again.stdout and again.stderr == ""
    with sqlite3.connect(path) as conn:
        assert conn.execute("select environment from leases").fetchall() == []


def test_status_and_apply_on_a_read_only_state_database(pyworld: World, read_only: Callable[[Path], None]) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    path = state_db(pyworld)
    subprocess.run(["sqlite3", str(path), "pragma wal_checkpoint(truncate)"], check=True, capture_output=True)
    read_only(path)
    shown = cli_process("status", "--config", str(pyworld.config))
    assert shown.exit_code == 0, shown.stderr
    assert "staging" in shown.stdout and "Synced" in shown.stdout
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: x\n")
    commit = pyworld.commit("Add group x")
    fresh = cli_process("status", "--format", "json", "--config", str(pyworld.config))
    assert fresh.exit_code == 0, fresh.stderr
    row = next(r for r in json.loads(fresh.stdout)["environments"] if r["name"] == "staging")
    assert row["desired_revision"] == commit  # shown though the store could not record it
    refused = cli_process("apply", "staging", "--config", str(pyworld.config))
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(f"error: state database {path}: take lease failed: the database is read-only "
                                     "(SQLite: attempt to write a readonly database); make the file")
    assert "OperationalError" not in refused.stderr


def test_status_on_an_unreachable_postgresql_state_store(pyworld: World) -> None:
    port = closed_port()
    pyworld.configure(state={"url": f"postgresql+psycopg://reconciler:Pw-Canary-7@127.0.0.1:{port}/state"})
    for command in (["status"], ["apply", "staging"], ["history", "staging"]):
        result = cli_process(*command, "--config", str(pyworld.config))
        assert result.exit_code == 1, command
        assert result.stdout == ""
        assert result.stderr == (
            f"error: state database PostgreSQL 127.0.0.1:{port}/state (user reconciler): open failed: nothing "
            "accepts connections at that address (connection refused); is the server running, and are the host "
            "and port right?\n"), command


def test_status_on_a_corrupt_state_database(pyworld: World) -> None:
    path = state_db(pyworld)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"garbage " * 2000)
    result = cli_process("status", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: state database {path}: open failed: the file is not a SQLite database")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_state_url_may_be_a_secret_reference(pyworld: World, tmp_path: Path) -> None:
    """deploy/reconciler.toml sets state.url = "${secret:STATE_DB_URL}": it is resolved, never shown."""
    path = tmp_path / "elsewhere" / "state.db"
    pyworld.configure(state={"url": "${secret:STATE_DB_URL}"})
    result = cli_process("apply", "staging", "--config", str(pyworld.config),
                         env={"STATE_DB_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("select result from runs").fetchall() == [("Succeeded",)]
    missing = cli_process("status", "--config", str(pyworld.config), unset=["STATE_DB_URL"])
    assert missing.exit_code == 1
    assert missing.stderr == "error: state.url: secret STATE_DB_URL is not set (searched: env)\n"
