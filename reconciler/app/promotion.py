"""The promotion view (read model): release tags and branch heads as rows, environments as columns.

``Queries.releases`` builds it for ``reconciler releases``, ``GET /api/v1/releases`` and the
dashboard's ``/promotion`` page. For each row and environment it says whether the environment
runs that revision or ran it (and when), when its desired state verified there (the Git tree id is
the evidence, as the promotion gate uses it) and what its checks said; and, where it does not run,
what would stop it going there next: the gate, its reason, and the command or tag trailer that
unblocks it. The gates judged are those that need no plan (``Reconciler.target``: release-tag,
promotion, signature gates, pins) and the deny window; a destructive change's approval needs a
plan of live state and is judged when the revision is applied. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from reconciler.core import gates
from reconciler.core.gates import GateCode
from reconciler.core.outcome import EnvironmentStatus
from reconciler.core.revisions import short
from reconciler.core.targets import Target
from reconciler.desired.models import Environment
from reconciler.errors import ReconcilerError
from reconciler.store.store import RunRecord, Store

OK_RESULTS = ("Succeeded", "NoChanges")


class Candidate(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def commit(self) -> str: ...

    @property
    def tree_id(self) -> str | None: ...


class Source(Protocol):
    """What the view asks of the application (``app/reconcile.Reconciler``)."""

    def environments(self) -> list[str]: ...

    def spec(self, env: str) -> Environment: ...

    def desired(self, env: str, rev: str | None = None) -> Target: ...

    def target(self, env: str, rev: str | None = None) -> Target: ...

    def candidates(self, limit: int) -> list[Any]: ...

    @property
    def clock(self) -> Callable[[], dt.datetime]: ...


@dataclass(frozen=True)
class Blocker:
    """What stops a revision going to an environment next, and what lets it through."""

    gate: str
    reason: str
    unblock: str

    def as_json(self) -> dict[str, str]:
        return {"gate": self.gate, "reason": self.reason, "unblock": self.unblock}


@dataclass(frozen=True)
class Cell:
    environment: str
    state: str  # runs | ran | next | blocked
    ran_at: dt.datetime | None = None  # the last run there that applied it (or found nothing to change)
    verified_at: dt.datetime | None = None  # first verified there: a run at this tree id ended with zero drift
    checks: str | None = None  # the checks of this tree there: "2/2 passed", "failed: a, b"
    blocker: Blocker | None = None
    next_step: str | None = None  # state "next": how it gets there

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "state": self.state,
                "ran_at": self.ran_at.isoformat() if self.ran_at else None,
                "verified_at": self.verified_at.isoformat() if self.verified_at else None,
                "checks": self.checks, "blocked": self.blocker.as_json() if self.blocker else None,
                "next_step": self.next_step}


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # tag | branch
    commit: str
    tree_id: str | None
    cells: list[Cell] = field(default_factory=list)

    @property
    def next(self) -> Cell | None:
        """The next promotion of this revision: the first environment, in promotion order, it has not reached."""
        return next((c for c in self.cells if c.state in ("next", "blocked")), None)

    def as_json(self) -> dict[str, Any]:
        upcoming = self.next
        return {"name": self.name, "kind": self.kind, "commit": self.commit, "tree_id": self.tree_id,
                "cells": [c.as_json() for c in self.cells],
                "next": {"environment": upcoming.environment, "state": upcoming.state,
                         "blocked": upcoming.blocker.as_json() if upcoming.blocker else None,
                         "next_step": upcoming.next_step} if upcoming is not None else None}


@dataclass(frozen=True)
class PromotionView:
    environments: list[str]
    rows: list[Row]
    generated_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        return {"environments": self.environments, "generated_at": self.generated_at.isoformat(),
                "rows": [r.as_json() for r in self.rows]}


def build(source: Source, store: Store, limit: int, visible: set[str] | None = None) -> PromotionView:
    """The view of the newest ``limit`` release tags and the tracked branch heads (reads only)."""
    order = [env for env in source.environments() if visible is None or env in visible]
    statuses = {env: store.status(env) for env in order}
    runs = {env: [r for r in store.runs(env, 500) if r.result in OK_RESULTS] for env in order}
    now = source.clock()
    rows = []
    for candidate in source.candidates(limit):
        row = Row(candidate.name, candidate.kind, candidate.commit, candidate.tree_id)
        for env in order:
            row.cells.append(_cell(source, store, env, row, statuses[env], runs[env], now))
        rows.append(row)
    return PromotionView(order, rows, now)


def _cell(source: Source, store: Store, env: str, row: Row, status: EnvironmentStatus, runs: list[RunRecord],
          now: dt.datetime) -> Cell:
    ran = [r for r in runs if r.revision == row.commit]
    verified = sorted(r.started_at for r in runs if row.tree_id and r.tree_id == row.tree_id)
    checks = _checks(store.checks_for(env, row.tree_id)) if row.tree_id else None
    base = Cell(env, "runs", ran_at=ran[0].finished_at or ran[0].started_at if ran else None,
                verified_at=verified[0] if verified else None, checks=checks)
    if status.applied_revision == row.commit:
        return base
    try:
        spec = source.spec(env)
        blocker = _blocker(source, env, spec, row, status, now)
    except ReconcilerError as exc:
        return replace(base, state="blocked", blocker=Blocker("unknown", str(exc), "reconciler status"))
    if ran or blocker is not None:
        return replace(base, state="ran" if ran else "blocked", blocker=blocker)
    return replace(base, state="next", next_step=_next_step(source, env, spec, row))


def _blocker(source: Source, env: str, spec: Environment, row: Row, status: EnvironmentStatus,
             now: dt.datetime) -> Blocker | None:
    if status.pinned_revision and status.pinned_revision != row.commit:
        named = f" ({status.applied_ref})" if status.applied_revision == status.pinned_revision and \
            status.applied_ref else ""
        return Blocker(GateCode.PINNED.value, f"{env} is pinned at {short(status.pinned_revision)}{named}",
                       f"reconciler unpin {env}")
    if spec.track.tag is not None and row.kind == "branch":
        prefix = spec.track.tag.split("*")[0]
        return Blocker(GateCode.NOT_A_TAG.value, f"{env} is released by tags matching {spec.track.tag!r}",
                       f"git tag -a {prefix}X.Y.Z {short(row.commit)} -m 'Release X.Y.Z' && git push origin "
                       f"{prefix}X.Y.Z")
    target = source.target(env, row.name if row.kind == "tag" else row.commit)
    if not target.gate.allowed:
        assert target.gate.code is not None
        return Blocker(target.gate.code.value, target.gate.reason, _unblock(target.gate.code, env, spec, row))
    window = gates.check_window(spec, now)
    if not window.allowed:
        assert window.code is not None
        return Blocker(window.code.value, window.reason, _unblock(window.code, env, spec, row))
    return None


def _next_step(source: Source, env: str, spec: Environment, row: Row) -> str:
    """How a revision no gate holds gets to ``env``: by itself, or the command that applies it."""
    try:
        natural = source.desired(env).revision == row.commit
    except ReconcilerError:
        natural = False
    if natural and spec.sync.automatic:
        return "applied automatically (the daemon's next run)"
    if natural:
        return f"reconciler apply {env}"
    return f"reconciler apply {env} --rev {row.name if row.kind == 'tag' else short(row.commit)}"


def _unblock(code: GateCode, env: str, spec: Environment, row: Row) -> str:
    """The exact command, tag trailer or edit that lets ``row`` through ``code`` in ``env``."""
    upstream = spec.track.promoted_from or "the earlier environment"
    rev = row.name if row.kind == "tag" else short(row.commit)
    prefix = (spec.track.tag or "v*").split("*")[0]
    hints = {
        GateCode.NOT_PROMOTED: f"reconciler apply {upstream} --rev {rev}",
        GateCode.CHECKS_UPSTREAM: f"reconciler apply {upstream} --rev {rev} (runs its checks)",
        GateCode.SOAKING: "none: promoted automatically when the soak ends",
        GateCode.UNREACHABLE: f"merge {short(row.commit)} into {spec.track.from_branch} and tag the merge",
        GateCode.MOVED_TAG: f"cut a new release tag: git tag -a {prefix}X.Y.Z {short(row.commit)}",
        GateCode.OLDER_TAG: f"reconciler pin {env} {rev} (a rollback)",
        GateCode.SIGNATURE: f"cut a signed release tag: git tag -s {prefix}X.Y.Z {short(row.commit)}",
        GateCode.SIGNER: f"cut a release tag signed by an allowed signer: git tag -s {prefix}X.Y.Z "
                         f"{short(row.commit)}",
        GateCode.APPROVER: "have an approver sign the release tag (git tag -s)",
        GateCode.PRERELEASE: f"cut a release without a prerelease suffix, or set prereleases: true for {env}",
        GateCode.NOT_A_RELEASE: f"name the release tag as a version matching {spec.track.tag!r}",
        GateCode.NOT_A_TAG: f"git tag -a {prefix}X.Y.Z {short(row.commit)}",
        GateCode.NO_RELEASE: f"git tag -a {prefix}X.Y.Z {short(row.commit)}",
        GateCode.TAG_DELETED: f"git tag -a {prefix}X.Y.Z {short(row.commit)}",
        GateCode.PINNED: f"reconciler unpin {env}",
        GateCode.INVALID: f"reconciler validate (fix the desired state at {rev})",
        GateCode.DESTRUCTIVE: "add an 'Approve: <drift id>' trailer to the tag message, or --approve <drift id>",
        GateCode.DESTRUCTIVE_DENIED: f"make the schema change additive (destructive changes are denied in {env})",
        GateCode.WINDOW: f"none: applied when the window closes; in an emergency: reconciler apply {env} "
                         "--break-glass \"REASON\"",
    }
    return hints.get(code, f"reconciler explain {code.value}")


def _checks(results: list[dict[str, Any]] | None) -> str | None:
    if not results:
        return None
    failed = [r["name"] for r in results if not r.get("passed")]
    return f"failed: {', '.join(failed)}" if failed else f"{len(results)}/{len(results)} passed"
