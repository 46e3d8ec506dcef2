"""Several ``reconciler run`` processes sharing one PostgreSQL state database (issue 14).

Used by ``tests/test_replicas.py`` and ``bench/replicas.py``: a repository declaring N
environments on the built-in registry (kept in PostgreSQL too, so every replica applies to one
platform), a ``file://`` source the leader polls, and readers of the shared state database (run
records, statuses, the leader lease) that go to PostgreSQL directly, not through any one daemon.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.source import workspace
from tests.daemon_support import DaemonProcess, start_daemon, to_toml

GROUPS_FILE = "groups.yaml"


@dataclass(frozen=True)
class Run:
    environment: str
    revision: str | None
    result: str
    owner: str | None
    trigger: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


@dataclass
class Replicas:
    base: Path
    envs: list[str]
    state_url: str  # psycopg form
    config: Path
    daemons: list[DaemonProcess] = field(default_factory=list)
    commits: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # for the daemons' ``env`` secret backend

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    hosts: dict[int, str] = field(default_factory=dict)  # pid → host name, for daemons given one of their own

    def start(self, count: int, own_hosts: bool = False) -> list[DaemonProcess]:
        """Start ``count`` daemons; with ``own_hosts`` each in a UTS namespace of its own (``unshare``,
        needs root) named ``replica-N``, so they are different hosts to each other, as pods are: a
        dead one is then found only by its leases expiring."""
        started = []
        for _ in range(count):
            index = len(self.daemons)
            # One system clock for all (RECONCILER_NOW empty): run records of different daemons compare.
            data_dir = self.base / f"data-{index}"
            host = f"replica-{index}"
            wrap = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh"] if own_hosts else None
            d = start_daemon(self.config, data_dir, env={**self.secrets, "RECONCILER_NOW": "",
                                                  "RECONCILER_DATA_DIR": str(data_dir)},
                             name=host, wrap=wrap)
            if own_hosts:
                self.hosts[d.proc.pid] = host
            self.daemons.append(d)
            started.append(d)
        return started

    def owner(self, daemon: DaemonProcess) -> str:
        """The lease owner name of a daemon started here (``host:pid``, as ``store.OWNER`` makes it)."""
        return f"{self.hosts.get(daemon.proc.pid, socket.gethostname())}:{daemon.proc.pid}"

    def live(self) -> list[DaemonProcess]:
        return [d for d in self.daemons if d.proc.poll() is None]

    def commit(self) -> str:
        """A change every environment applies: one more group."""
        self.commits += 1
        path = self.repo / "desired-state" / GROUPS_FILE
        path.write_text(path.read_text() + f"---\nkind: Group\nname: wave-{self.commits}\n")
        return workspace.commit_all(self.repo, f"Wave {self.commits}")

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.state_url, autocommit=True) as conn:
            return list(conn.execute(sql, args).fetchall())

    def runs(self) -> list[Run]:
        rows = self._query("select environment, revision, result, owner, trigger, started_at, finished_at "
                           "from runs order by started_at")
        return [Run(*row) for row in rows]

    def synced_at(self, revision: str) -> set[str]:
        rows = self._query("select environment from environment_status where state = 'Synced' "
                           "and applied_revision = %s", revision)
        return {str(r[0]) for r in rows}

    def all_synced(self, revision: str) -> bool:
        return self.synced_at(revision) >= set(self.envs)

    def leader(self) -> DaemonProcess | None:
        """The live daemon holding the leader lease, if any."""
        rows = self._query("select owner from leases where environment = '@leader'")
        if not rows:
            return None
        return next((d for d in self.live() if self.owner(d) == rows[0][0]), None)

    def stop(self) -> None:
        for d in self.daemons:
            d.kill()


def write_desired(folder: Path, envs: list[str]) -> None:
    (folder / "environments").mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(f"version: 1\nenvironments: [{', '.join(envs)}]\n")
    for env in envs:
        (folder / "environments" / f"{env}.yaml").write_text(
            f"kind: Environment\nname: {env}\ntrack:\n  branch: main\nsync:\n  automatic: true\n"
            "  prune: true\n  drift_check_interval: 30m\naccess:\n  edit: [admins]\n  use: [users]\n")
    (folder / GROUPS_FILE).write_text("kind: Group\nname: admins\n---\nkind: Group\nname: users\n")


def make_replicas(base: Path, pg: EmbeddedPostgres, environments: int, lease_ttl: str = "10s",
                  poll_interval: str = "1s", webhook_secret: str | None = None) -> Replicas:
    """A repository with ``environments`` environments and a configuration on a new state database;
    with ``webhook_secret``, GitHub-style webhooks signed with it are accepted."""
    envs = [f"env-{n:02d}" for n in range(environments)]
    repo = base / "repo"
    write_desired(repo / "desired-state", envs)
    workspace.init(repo)
    workspace.commit_all(repo, f"{environments} environments")
    suffix = uuid.uuid4().hex[:10]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        for name in (f"state_{suffix}", f"registry_{suffix}"):
            conn.execute(f"create database {name}")
    state_url = pg.database_url(f"state_{suffix}")
    sa_url = state_url.replace("postgresql://", "postgresql+psycopg://", 1)
    registry_url = pg.database_url(f"registry_{suffix}").replace("postgresql://", "postgresql+psycopg://", 1)
    config = base / "reconciler.toml"
    source = {"url": repo.resolve().as_uri(), "poll_interval": poll_interval}
    secrets = {}
    if webhook_secret is not None:
        source["webhook_secret"] = "${secret:WEBHOOK_SECRET}"
        secrets["WEBHOOK_SECRET"] = webhook_secret
    config.write_text(to_toml({
        "source": source,
        "state": {"url": sa_url},
        "platform": {"url": registry_url},
        "secrets": {"backends": ["env"]},
        "daemon": {"lease_ttl": lease_ttl},
    }))
    return Replicas(base, envs, state_url, config, secrets=secrets)
