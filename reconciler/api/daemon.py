"""What the API and the dashboard ask of the daemon they run in (``daemon/supervisor.Daemon``).

Protocols only, so ``api/`` and ``web/`` need nothing of ``daemon/`` (which imports them to serve
them). ``Daemon`` is one workspace's supervisor: its settings, the application it runs (reads go
through ``reconciler.queries``), its metrics and readiness, and its two triggers — a run of one
environment, a fetch of the source. ``Host`` is what one HTTP server serves: the process's settings
(top-level tokens, every workspace's), its metrics registry and each workspace's supervisor
(``daemon/workspaces.Workspaces``); ``as_host`` lets a lone supervisor be served as it always was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from reconciler.app.reconcile import Reconciler
from reconciler.config import Settings
from reconciler.core.outcome import RunOutcome


class DaemonState(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def fetch_error(self) -> str | None: ...


class DaemonMetrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def webhooks(self) -> Any: ...  # .labels(source, outcome) → a counter child


class Daemon(Protocol):
    """What the API asks of the daemon: its parts and its two triggers."""

    @property
    def settings(self) -> Settings: ...

    @property
    def reconciler(self) -> Reconciler: ...

    @property
    def metrics(self) -> DaemonMetrics: ...

    @property
    def state(self) -> DaemonState: ...

    def request_sync(self, env: str, trigger: str = "api") -> bool: ...

    def break_glass(self, env: str, who: str, reason: str) -> RunOutcome: ...

    def request_fetch(self, source: str) -> None: ...


class Host(Protocol):
    """What one HTTP server serves: every workspace's supervisor, by name."""

    @property
    def settings(self) -> Settings: ...  # the whole configuration (its [[workspaces]] too)

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def workspaces(self) -> Mapping[str, Daemon]: ...


@dataclass(frozen=True)
class OneWorkspace:
    """A lone supervisor served as a host: the one workspace of a configuration without [[workspaces]]."""

    daemon: Daemon

    @property
    def settings(self) -> Settings:
        return self.daemon.settings

    @property
    def registry(self) -> CollectorRegistry:
        return self.daemon.metrics.registry

    @property
    def workspaces(self) -> Mapping[str, Daemon]:
        return {self.daemon.settings.workspace_name: self.daemon}


def as_host(served: Daemon | Host) -> Host:
    return served if hasattr(served, "workspaces") else OneWorkspace(served)  # type: ignore[arg-type,return-value]
