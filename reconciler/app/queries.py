"""The read model the API, the dashboard and the CLI share: environment status rows, runs, drift reports.

A status row is what the store holds (state, reason, what runs, the last run) with what the
environment tracks and should run computed from Git when it is read (``Reconciler.desired``),
never written. Nothing here writes: ``status``, ``history`` and the API's GETs leave the state
database as they found it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler import logs
from reconciler.app import promotion
from reconciler.app.promotion import PromotionView
from reconciler.core.changes import DriftItem
from reconciler.core.outcome import EnvironmentStatus, as_read
from reconciler.core.plan import Plan
from reconciler.core.targets import Target, tracked_ref
from reconciler.desired.models import Environment
from reconciler.errors import ReconcilerError
from reconciler.store.store import RunRecord, Store

log = logs.get_logger(__name__)

# RunRecord is what the store returns for a run; readers take it from here, not from the store.
__all__ = ["DriftReport", "PromotionView", "Queries", "RunRecord", "Source", "StatusRow"]


@dataclass(frozen=True)
class StatusRow:
    status: EnvironmentStatus
    tracked_ref: str | None
    desired_revision: str | None
    desired_ref: str | None
    last_run: RunRecord | None


@dataclass(frozen=True)
class DriftReport:
    """The drift last recorded for an environment (by a run or a drift check)."""

    plan: Plan
    ref: str | None
    first_seen: dict[str, dt.datetime]
    checked_at: dt.datetime | None


class Source(Protocol):
    """What the read model asks of the application (``app/reconcile.Reconciler``)."""

    def desired(self, env: str, rev: str | None = None) -> Target: ...

    def known_environments(self) -> list[str]: ...

    def declared_spec(self, env: str) -> Environment | None: ...

    def spec(self, env: str) -> Environment: ...

    def registry_app(self, env: str, app: str) -> dict[str, Any] | None: ...

    def environments(self) -> list[str]: ...

    def target(self, env: str, rev: str | None = None) -> Target: ...

    def candidates(self, limit: int) -> list[Any]: ...

    @property
    def clock(self) -> Callable[[], dt.datetime]: ...


class Queries:
    """Reads of the store joined with what Git says now; built by ``Reconciler`` as ``reconciler.queries``."""

    def __init__(self, reconciler: Source, store: Store) -> None:
        self.reconciler = reconciler
        self.store = store

    def names(self) -> list[str]:
        return self.reconciler.known_environments()

    def known(self, env: str) -> None:
        """Nothing when ``env`` is declared; ``NotFoundError`` (an API 404) naming those that are."""
        self.reconciler.spec(env)

    def status_row(self, env: str) -> StatusRow:
        status = self.store.status(env)
        tracked = desired_revision = desired_ref = None
        try:
            target = self.reconciler.desired(env)
        except ReconcilerError as exc:
            log.info("status.target_unknown", environment=env, error=str(exc))
            spec = self.reconciler.declared_spec(env)  # what it tracks, from the last good desired state
            tracked = tracked_ref(spec) if spec is not None else None
        else:
            tracked, desired_revision, desired_ref = tracked_ref(target.spec), target.revision, target.ref
        last = self.store.run(status.last_run_id) if status.last_run_id else None
        return StatusRow(as_read(status, desired_revision, desired_ref), tracked, desired_revision, desired_ref, last)

    def state_counts(self, sees: Callable[[str], bool]) -> tuple[int, dict[str, int]]:
        """How many of the environments ``sees`` lets through there are, and how many are in each state,
        as status reads them (``as_read``: OutOfSync once a new revision is known): the workspaces list
        of the API and of the dashboard."""
        states: dict[str, int] = {}
        envs = [env for env in self.names() if sees(env)]
        for env in envs:
            state = self.status_row(env).status.state.value
            states[state] = states.get(state, 0) + 1
        return len(envs), states

    def status_rows(self) -> list[StatusRow]:
        return [self.status_row(name) for name in self.names()]

    def runs(self, env: str, limit: int = 50) -> list[RunRecord]:
        return self.store.runs(env, limit)

    def run(self, env: str, run_id: str) -> RunRecord | None:
        record = self.store.run(run_id)
        return record if record is not None and record.environment == env else None

    def drift_report(self, env: str) -> DriftReport:
        status = self.store.status(env)
        seen = self.store.drift(env)
        items = [DriftItem.from_json(item) for item, _ in seen]
        return DriftReport(Plan(env, status.applied_revision, [], items), status.applied_ref,
                           {item["id"]: when for item, when in seen}, status.last_checked_at)

    def releases(self, limit: int = 10, visible: set[str] | None = None) -> PromotionView:
        """The promotion view: the newest ``limit`` release tags and the tracked branch heads, per
        environment (only those in ``visible``, when given); see ``app/promotion.py``."""
        return promotion.build(self.reconciler, self.store, limit, visible)

    def store_reachable(self) -> bool:
        return self.store.ping()

    def registry_app(self, env: str, app: str) -> dict[str, Any] | None:
        """An app's resources and config in ``env``, secrets resolved (the registry platform's endpoint)."""
        return self.reconciler.registry_app(env, app)
