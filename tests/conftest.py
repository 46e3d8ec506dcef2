"""Shared fixtures: a real PostgreSQL, real Git repositories, a real state store.

``world`` builds what most end-to-end tests need: a Git repository holding the example desired
state (made with pygit2 or with the ``git`` CLI), two fresh CRM databases on the session's
embedded PostgreSQL, secrets for every reference, and a ``reconciler.toml`` pointing at all of
it. The CLI is driven in-process through typer's runner, or as a real subprocess where the exact
stderr and exit code of the installed console script matter.

No test depends on the day it runs: every world sets the product's clock (``RECONCILER_NOW``, see
``reconciler/clock.py``) to ``TEST_NOW``, a Wednesday morning outside the example's Friday-evening
deny window, for in-process code and for the processes it starts; tests of windows set their own
instant. ``tests/fakeclock.py`` keeps the suite working under ``faketime``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from typer.testing import CliRunner

from reconciler import clock, logs
from reconciler.app.reconcile import Reconciler
from reconciler.app.wiring import Overrides, build_reconciler
from reconciler.cli import app
from reconciler.config import Settings, load_settings
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.source import workspace
from tests.daemon_support import TEST_NOW, to_toml
from tests.fakeclock import on_the_real_clock, prepare_children

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "desired-state"
CANARY = "canary-Zq8sW3pLx0-secret"  # a secret value that must never appear in any output


def pytest_configure(config: pytest.Config) -> None:
    prepare_children()  # under faketime, the xdist workers and all they start fake the date only


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """In-process CLI calls configure structlog (level, stream); do not let that leak into the next test."""
    yield
    structlog.reset_defaults()
    logs.reset()


def without_flushes(server_url: str) -> None:
    """Have a test server skip the disk flushes (fsync) its data never needs: it is thrown away after
    the session, and no test crashes the server itself. Each ``DROP DATABASE`` (the declared schemas'
    scratch databases), every commit, and the shutdown checkpoint otherwise wait on the disk."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"alter system set {setting} = off".encode())
        conn.execute(b"select pg_reload_conf()")


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    # Outside pytest's rotating basetemp: a concurrent pytest run may prune old basetemps.
    root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
    try:
        with on_the_real_clock():
            server = EmbeddedPostgres(root / "data").start()
        try:
            without_flushes(server.url)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


@dataclass
class World:
    root: Path
    repo: Path
    config: Path
    secrets: dict[str, str]
    databases: dict[str, str]  # environment → database URL
    pg: EmbeddedPostgres
    using_cli_git: bool = False
    _reconcilers: list[Reconciler] = field(default_factory=list)
    _config: dict[str, Any] = field(default_factory=dict)

    def configure(self, **sections: Any) -> None:
        """Merge ``sections`` into reconciler.toml (a table's keys merge; other values replace)."""
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(self._config.get(key), dict):
                self._config[key].update(value)
            else:
                self._config[key] = value
        self.config.write_text(to_toml(self._config))

    @property
    def desired(self) -> Path:
        return self.repo / "desired-state"

    def settings(self) -> Settings:
        return load_settings(self.config)

    def reconciler(self, **overrides: Any) -> Reconciler:
        r = build_reconciler(self.settings(), Overrides(**overrides))
        self._reconcilers.append(r)
        return r

    def write(self, relative: str, text: str) -> None:
        path = self.desired / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str) -> str:
        if self.using_cli_git:
            git(self.repo, "add", "-A")
            git(self.repo, "commit", "-q", "-m", message)
            return git(self.repo, "rev-parse", "HEAD")
        return workspace.commit_all(self.repo, message)

    def tag(self, name: str, message: str | None = None, target: str | None = None) -> str:
        if self.using_cli_git:
            ref = target or "HEAD"
            if message is None:
                git(self.repo, "tag", name, ref)
            else:
                git(self.repo, "tag", "-a", name, "-m", message, ref)
            return git(self.repo, "rev-parse", f"{name}^{{commit}}")
        return workspace.tag(self.repo, name, message, target)

    def branch(self, name: str, start: str = "HEAD") -> None:
        git(self.repo, "branch", name, start)

    def checkout(self, name: str) -> None:
        git(self.repo, "checkout", "-q", name)

    def query(self, env: str, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.databases[env]) as conn:
            return list(conn.execute(sql).fetchall())

    def columns(self, env: str, table: str) -> list[str]:
        rows = self.query(env, "select column_name from information_schema.columns where table_schema = 'public' "
                          f"and table_name = '{table}' order by ordinal_position")
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        for r in self._reconcilers:
            r.close()


def _secrets(databases: dict[str, str]) -> dict[str, str]:
    return {
        "CRM_DB_STAGING_ADMIN_URL": databases["staging"],
        "CRM_DB_PRODUCTION_ADMIN_URL": databases["production"],
        "CRM_DB_STAGING_PASSWORD": CANARY,
        "CRM_DB_PRODUCTION_PASSWORD": "prod-db-password-" + uuid.uuid4().hex[:8],
        "CRM_API_STAGING_TOKEN": "staging-token-" + uuid.uuid4().hex[:8],
        "CRM_API_PRODUCTION_TOKEN": "prod-token-" + uuid.uuid4().hex[:8],
        "SEGMENT_STAGING_KEY": "seg-staging-" + uuid.uuid4().hex[:8],
        "SEGMENT_PRODUCTION_KEY": "seg-prod-" + uuid.uuid4().hex[:8],
    }


def set_clock(monkeypatch: pytest.MonkeyPatch, instant: str = TEST_NOW) -> None:
    """Run this test's reconcilers and in-process CLI calls, and the CLI processes and daemons it starts,
    on one clock that reads ``instant`` now (RECONCILER_NOW, RECONCILER_NOW_SINCE) instead of today's date."""
    monkeypatch.setenv(clock.ENV_VAR, instant)
    monkeypatch.setenv(clock.SINCE_VAR, f"{time.time():.6f}")
    monkeypatch.setattr(clock, "_current", clock.from_environment())


def make_world(tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, cli_git: bool) -> World:
    set_clock(monkeypatch)  # production's deny window must not depend on the day the suite runs
    suffix = uuid.uuid4().hex[:10]
    databases = {}
    with psycopg.connect(pg.url, autocommit=True) as conn:
        for env in ("staging", "production"):
            name = f"crm_{env[:4]}_{suffix}"
            # A file copy of the empty template: several times quicker than the default (WAL_LOG) on a
            # server without flushes (``without_flushes``).
            conn.execute(f"create database {name} strategy file_copy")
            databases[env] = pg.database_url(name)
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo / "desired-state")
    if cli_git:
        git(tmp_path, "init", "-q", "-b", "main", str(repo))
    else:
        workspace.init(repo)
    secrets = _secrets(databases)
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    config = tmp_path / "reconciler.toml"
    monkeypatch.delenv("RECONCILER_CONFIG", raising=False)
    world = World(tmp_path, repo, config, secrets, databases, pg, using_cli_git=cli_git)
    world.configure(data_dir=str(tmp_path / "data"), source={"url": str(repo)}, secrets={"backends": ["env"]})
    world.commit("Declare staging and production")
    return world


@contextmanager
def shared_world(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres, name: str) -> Iterator[World]:
    """A pygit2 world for a module-scoped fixture: built once (with whatever runs the fixture adds) for the
    module's tests to share, its environment variables set by a MonkeyPatch of its own, undone after."""
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(tmp_path_factory.mktemp(name), pg, monkeypatch, cli_git=False)
    try:
        yield world
    finally:
        world.close()
        monkeypatch.undo()


@pytest.fixture(params=["pygit2", "git-cli"])
def world(request: pytest.FixtureRequest, tmp_path: Path, pg: EmbeddedPostgres,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The example repository, made once with pygit2 and once with the git CLI."""
    w = make_world(tmp_path, pg, monkeypatch, cli_git=request.param == "git-cli")
    yield w
    w.close()


@pytest.fixture
def pyworld(tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The example repository made with pygit2 only (for tests where the Git tool does not matter)."""
    w = make_world(tmp_path, pg, monkeypatch, cli_git=False)
    yield w
    w.close()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def cli(world: World | None, *args: str) -> CliResult:
    """Run the CLI in-process, with ``--config`` placed after the command name as users do."""
    argv = list(args)
    if world is not None and argv and argv[0] not in ("validate", "schemas", "demo"):
        argv += ["--config", str(world.config)]
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def cli_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, unset: list[str] | None = None
) -> CliResult:
    """Run the installed console script as a real process (``env`` added to, ``unset`` removed from ours)."""
    exe = Path(sys.executable).parent / "reconciler"
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in (unset or [])}
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=full, timeout=120,
                          check=False)
    return CliResult(done.returncode, done.stdout, done.stderr)
