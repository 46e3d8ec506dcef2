"""The daemon of ``reconciler run``: one supervisor per workspace, in one process, behind one HTTP server.

``daemon/main.py`` builds ``Workspaces`` from the configuration; the API and the dashboard serve it
as their ``Host`` (``api/daemon.py``). Each workspace has its own supervisor (``supervisor.Daemon``:
fetch signal, run queue, schedule, backoff, notifier) over its own ``Reconciler`` (source, platform
target, the state store's view of that workspace), so an event, a failure or a slow run of one
workspace never reaches another. What they share is only what is the process's: the state
database, the secret backends, the schema provider, the metrics registry (each series labelled
with its workspace) and the HTTP server.

A workspace whose parts cannot be built when the daemon starts (its repository cannot be opened or
cloned, a secret of its platform does not resolve) does not stop the others: it is logged
(``workspace.unavailable``), its API paths answer 503, and building it is tried again every poll
interval until it succeeds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry

from reconciler import logs
from reconciler.app.reconcile import Reconciler
from reconciler.config import Settings
from reconciler.daemon.metrics import Families, Metrics
from reconciler.daemon.supervisor import Daemon
from reconciler.daemon.watch import RefWatcher
from reconciler.durations import parse_duration
from reconciler.errors import ReconcilerError

log = logs.get_logger(__name__)

# Builds one workspace's parts: its Reconciler and, when it has someone to notify, its notifier.
Builder = Callable[[Settings], tuple[Reconciler, object | None]]


class Workspaces:
    """Every workspace's supervisor, started and stopped together."""

    def __init__(self, settings: Settings, build: Builder) -> None:
        self.settings = settings
        self.families = Families()
        self._build = build
        self._running: dict[str, Daemon] = {}
        self._closers: list[Callable[[], None]] = []
        self.unavailable: dict[str, str] = {}  # workspace → why it could not be built (for the log; not served)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._retry: threading.Thread | None = None
        self._started = False
        self._watcher: RefWatcher | None = None

    # -- what the HTTP server asks (api/daemon.Host) ---------------------------------------------

    @property
    def registry(self) -> CollectorRegistry:
        return self.families.registry

    @property
    def workspaces(self) -> Mapping[str, Daemon]:
        """The running workspaces' supervisors, in configuration order."""
        with self._lock:
            return {name: self._running[name] for name in self.settings.workspace_names() if name in self._running}

    # -- lifecycle ------------------------------------------------------------------------------

    def build(self) -> None:
        """Build every workspace's parts and supervisor (started by ``start``); with a plain
        configuration, a part that cannot be built is an error, as it always was."""
        for name in self.settings.workspace_names():
            self._build_one(name)

    def start(self) -> None:
        with self._lock:
            # One watcher thread for every local repository (see daemon/watch.py); a workspace built
            # later by the retry loop watches its own.
            targets: dict[Path, list[Callable[[], None]]] = {}
            for daemon in self._running.values():
                git_dir = daemon.reconciler.watch_dir()
                if git_dir is not None:
                    targets.setdefault(git_dir, []).append(partial(daemon.fetch_signal.notify, "watch"))
            if targets:
                self._watcher = RefWatcher.of(targets)
                self._watcher.start()
            for daemon in self._running.values():
                daemon.start(watch=False)
            self._started = True
        if self.unavailable:
            self._retry = threading.Thread(target=self._retry_loop, name="workspaces-retry", daemon=True)
            self._retry.start()
        log.info("daemon.workspaces", running=len(self._running), unavailable=sorted(self.unavailable))

    def _build_one(self, name: str) -> bool:
        settings = self.settings.for_workspace(name)
        try:
            reconciler, notifier = self._build(settings)
        except ReconcilerError as exc:
            if not self.settings.workspaces:
                raise  # the one workspace of a plain configuration: reconciler run exits 1, as always
            if self.unavailable.get(name) != str(exc):
                log.error("workspace.unavailable", workspace=name, error=str(exc))
            self.unavailable[name] = str(exc)
            return False
        daemon = Daemon(settings, reconciler, notifier, Metrics(self.families, name))
        with self._lock:
            if self._stopping.is_set():  # built by the retry loop while stop() ran: never started, never stopped
                reconciler.close()
                if notifier is not None:
                    notifier.close()  # type: ignore[attr-defined]
                return False
            self._closers.append(reconciler.close)
            if notifier is not None:
                self._closers.append(notifier.close)  # type: ignore[attr-defined]
            if self._started:  # built late, by the retry loop
                daemon.start()
            self._running[name] = daemon
        self.unavailable.pop(name, None)
        return True

    def _retry_loop(self) -> None:
        """Build the workspaces that could not be built, every (shortest) poll interval, until all run."""
        while self.unavailable and not self._stopping.is_set():
            waits = [parse_duration(self.settings.for_workspace(n).source.poll_interval) for n in self.unavailable]
            if self._stopping.wait(max(1.0, min(waits))):
                return
            for name in list(self.unavailable):
                if not self._stopping.is_set() and self._build_one(name):
                    log.info("workspace.available", workspace=name)

    def stop(self, timeout: float) -> bool:
        """Stop every supervisor at once (each finishes the change in flight) within ``timeout``."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        with self._lock:
            daemons = list(self._running.values())
        if not daemons:
            return True
        with ThreadPoolExecutor(max_workers=len(daemons), thread_name_prefix="stop") as pool:
            results = list(pool.map(lambda d: d.stop(timeout), daemons))
        return all(results)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
