"""Fixtures of the reliability suite: a copy of the example folder, and one hostile-input daemon.

The daemon is started once per module (it takes seconds) and shared by the tests that throw bad
requests at it; each of those tests checks on its own that the daemon is still healthy and that
nothing it rejected caused a fetch.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.api.auth import hash_token
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.conftest import EXAMPLE, World, make_world
from tests.daemon_support import DaemonProcess, start_daemon

WEBHOOK_SECRET = "hook-secret-Hq2v9"
TOKENS = {"reader": "hostile-read-token", "syncer": "hostile-sync-token", "admin": "hostile-admin-token"}
MAX_BODY = 4096


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A writable copy of the example desired-state folder (valid as it is)."""
    target = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


class HostileDaemon:
    """A running daemon with a webhook secret, scoped tokens and a 4 KiB body limit.

    Not a dataclass: hypothesis prints the fixtures of a failing example field by field, and the
    world's fields hold its secrets.
    """

    def __init__(self, world: World, process: DaemonProcess) -> None:
        self.world = world
        self.process = process

    def __repr__(self) -> str:
        return f"HostileDaemon({self.url})"

    @property
    def url(self) -> str:
        return self.process.url

    def metric(self, name: str) -> float:
        """The sum of every sample of metric ``name`` (all label values)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def fetches(self) -> float:
        return self.metric("reconciler_fetches_total")

    def healthy(self) -> bool:
        return self.process.proc.poll() is None and httpx.get(self.url + "/healthz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def hostile_daemon(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[HostileDaemon]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(tmp_path_factory.mktemp("hostile"), pg, monkeypatch, cli_git=False)
    # A file:// URL makes the repository remote, so every fetch is real and counted.
    world.configure(
        source={"url": f"file://{world.repo}", "webhook_secret": "${secret:WEBHOOK_SECRET}", "poll_interval": "1h"},
        api={"tokens": [
            {"name": "reader", "hash": hash_token(TOKENS["reader"]), "scopes": ["read"]},
            {"name": "syncer", "hash": hash_token(TOKENS["syncer"]), "scopes": ["sync"]},
            {"name": "admin", "hash": hash_token(TOKENS["admin"]), "scopes": ["admin"]},
        ], "max_body_bytes": MAX_BODY},
    )
    world.secrets["WEBHOOK_SECRET"] = WEBHOOK_SECRET
    process = start_daemon(world.config, world.root / "data", env=world.secrets, name="hostile")
    process.token = TOKENS["admin"]
    try:
        process.wait_env("staging", state="Synced")
        yield HostileDaemon(world, process)
    finally:
        process.kill()
        world.close()
        monkeypatch.undo()
