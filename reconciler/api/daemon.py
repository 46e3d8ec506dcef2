"""What the API and the dashboard ask of the daemon they run in (``daemon/supervisor.Daemon``).

Protocols only, so ``api/`` and ``web/`` need nothing of ``daemon/`` (which imports them to serve
them): its settings, the application it runs (reads go through ``reconciler.queries``), its
metrics and readiness, and its two triggers — a run of one environment, a fetch of the source.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

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
    def webhooks(self) -> Counter: ...


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
