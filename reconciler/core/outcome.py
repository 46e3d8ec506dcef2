"""Run results, environment states, and the one function that decides every status transition (pure).

A run ends in a ``RunOutcome``; a drift check in a ``DriftChecked``; the daemon's look at an
environment that needs no run (no release yet, a pin holding a newer revision back, automatic
sync off) in a ``Waiting``. ``Store.record`` hands each, with the status stored before it, to
``transition`` and writes what comes back, in one transaction: steps return results, and one
summariser writes the status (STYLE, "Status is written in one place").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from reconciler.core.changes import Change, DriftItem
from reconciler.core.gates import BreakGlass, GateCode
from reconciler.core.plan import Plan

# The trigger of a run that the drift schedule's checks recorded (``sync.scheduled_checks``).
SCHEDULED_CHECKS = "scheduled-checks"


class RunResult(StrEnum):
    """How a run ended (SPEC §9, plus the states a run passes through)."""

    SUCCEEDED = "Succeeded"
    NO_CHANGES = "NoChanges"
    FAILED = "Failed"
    BLOCKED = "Blocked"
    INTERRUPTED = "Interrupted"  # the process stopped during the run; the next run plans again
    BUSY = "Busy"  # another run holds the environment; nothing was recorded
    PROGRESSING = "Progressing"  # applying now
    WAITING = "Waiting"  # the platform proposed a change (a pushed branch) that counts once merged


class EnvState(StrEnum):
    """An environment's state (SPEC §9)."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    PROGRESSING = "Progressing"
    BLOCKED = "Blocked"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class EnvironmentStatus:
    """What the state store holds about one environment (what it tracks is computed from Git when read)."""

    environment: str
    state: EnvState = EnvState.UNKNOWN
    reason: str | None = None
    applied_revision: str | None = None
    applied_ref: str | None = None
    applied_tree_id: str | None = None
    drift_count: int | None = None
    last_run_id: str | None = None
    last_checked_at: dt.datetime | None = None
    pinned_revision: str | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What one reconcile did: the result, what was applied, and what the status becomes."""

    environment: str
    result: RunResult
    revision: str | None = None
    ref: str | None = None
    run_id: str | None = None
    reason: str | None = None
    gate: GateCode | None = None
    plan: Plan | None = None
    applied: tuple[str, ...] = ()
    verify: Plan | None = None  # live planned again after applying (Succeeded/Failed) or the plan itself (NoChanges)
    duration: float = 0.0
    release: bool = False  # the revision came from a release tag (a promotion when it succeeds)
    warnings: tuple[str, ...] = ()  # went wrong around the run without changing its result
    trigger: str = "cli"
    tree_id: str | None = None  # the Git tree id of the desired-state folder that was applied
    quiet: bool = False  # a daemon pass: repeating the last run's result adds no run record
    retry_after: float | None = None  # the failure says when trying again may help (TemporaryError.delay)
    retry_at: dt.datetime | None = None  # Blocked by a deny window: when it closes (the gate's clock)
    checks: tuple[dict[str, Any], ...] = ()  # results of the checks run after applying (CheckResult.as_json())
    cause: RunOutcome | None = None  # a rollback: the failed run (with its checks) that it undoes
    by: str | None = None  # a rollback: the policy that decided it ("sync.on_failed_checks: rollback")
    break_glass: BreakGlass | None = None  # a deny window this run overrode: who and why (recorded, notified)

    @property
    def failed_checks(self) -> list[str]:
        """Names of the checks that failed in this run."""
        return [c["name"] for c in self.checks if not c.get("passed")]

    @property
    def remaining(self) -> list[DriftItem]:
        """Planned changes that still differ after the run."""
        return self.verify.items if self.verify is not None and self.result != RunResult.NO_CHANGES else []

    @property
    def drift_after(self) -> int | None:
        return len(self.verify.items) if self.verify is not None else None

    @property
    def exit_code(self) -> int:
        """``reconciler apply``'s exit code (SPEC §6): 0 applied or nothing to do, 3 blocked, 1 otherwise.

        Waiting is not a failure: the run did what it could, and a merge lets the next one finish.
        """
        return {RunResult.SUCCEEDED: 0, RunResult.NO_CHANGES: 0, RunResult.WAITING: 0,
                RunResult.BLOCKED: 3}.get(self.result, 1)


@dataclass(frozen=True)
class DriftChecked:
    """A drift check of what runs: the drift found, and when."""

    environment: str
    drift: tuple[DriftItem, ...]
    checked_at: dt.datetime


@dataclass(frozen=True)
class Waiting:
    """The daemon looked at an environment and has no run to start, only something to say."""

    environment: str
    reason: str
    out_of_sync: bool = False  # a newer revision waits for 'reconciler apply' (automatic sync is off)


Event = RunOutcome | DriftChecked | Waiting


def drift_reason(drift: list[DriftItem] | tuple[DriftItem, ...]) -> str:
    """The status reason for drift found: a count, or that only undeclared objects differ."""
    unpruned = [i for i in drift if i.change == Change.DELETE and not i.pruned and i.kind != "schema"]
    if unpruned and len(unpruned) == len(drift):
        return f"{len(unpruned)} undeclared objects (prune is off)"
    count = len(drift)
    return f"{count} drift item{'s' if count != 1 else ''}"


def _pending(drift: list[DriftItem] | tuple[DriftItem, ...]) -> list[DriftItem]:
    """The drift an environment answers for: not what another environment on its platform instance
    applies (``deferred_to``, see ``core.topology``), which is neither its drift nor a failed verification."""
    return [i for i in drift if i.deferred_to is None]


def repeats(outcome: RunOutcome, last_result: str | None, last_revision: str | None, last_reason: str | None) -> bool:
    """True when ``outcome`` says again what the last run said, so it needs no run record of its own.

    The same refusal of the same revision is one record however often it is decided; a daemon
    pass that finds nothing to do at the revision that last succeeded adds none either, nor does
    the drift schedule's checks failing again as they failed last time.
    """
    if outcome.result == RunResult.BLOCKED:
        return (last_result == RunResult.BLOCKED and last_revision == outcome.revision
                and last_reason == outcome.reason)
    if outcome.result == RunResult.FAILED and outcome.trigger == SCHEDULED_CHECKS:
        # The drift schedule finding the same failure again: one record, however many intervals it lasts.
        return last_result == RunResult.FAILED and last_revision == outcome.revision and last_reason == outcome.reason
    if outcome.result == RunResult.NO_CHANGES and outcome.quiet:
        return last_revision == outcome.revision and last_result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES)
    return False


def transition(previous: EnvironmentStatus, event: Event, now: dt.datetime) -> EnvironmentStatus:
    """The environment's status after ``event``: the one place status transitions are decided.

    ``event.run_id`` (for a run) is already the id of the record it was written under.
    """
    if isinstance(event, Waiting):
        if previous.state == EnvState.PROGRESSING:
            return previous  # a run is applying: what it writes when it ends is the news
        state = EnvState.OUT_OF_SYNC if event.out_of_sync else previous.state
        return replace(previous, state=state, reason=event.reason)
    if isinstance(event, DriftChecked):
        drift = _pending(event.drift)
        if previous.state in (EnvState.BLOCKED, EnvState.FAILED, EnvState.PROGRESSING):
            return replace(previous, drift_count=len(drift), last_checked_at=event.checked_at)
        reason = drift_reason(drift) if drift else None
        if previous.applied_revision is None:
            reason = reason or "nothing applied yet"
        return replace(previous, state=EnvState.OUT_OF_SYNC if drift else EnvState.SYNCED, reason=reason,
                       drift_count=len(drift), last_checked_at=event.checked_at)
    return _after_run(previous, event, now)


def as_read(status: EnvironmentStatus, desired_revision: str | None, desired_ref: str | None) -> EnvironmentStatus:
    """``status`` as a reader is shown it, given what the environment should run now (computed from Git).

    The store says Synced for the revision that was applied; from the moment Git has a newer one
    until the daemon's run starts (its fetch, its queue) that is no longer true. A reader is shown
    OutOfSync, naming the revision waiting, as soon as Git knows it. Nothing is written: the daemon
    records the same through ``Store.record`` when it sees the revision, and the run's own record
    replaces both.
    """
    if status.state != EnvState.SYNCED or desired_revision is None or status.applied_revision is None:
        return status
    if desired_revision == status.applied_revision:
        return status
    named = f" ({desired_ref})" if desired_ref else ""
    return replace(status, state=EnvState.OUT_OF_SYNC,
                   reason=f"revision {desired_revision[:12]}{named} is not applied yet")


def _after_run(previous: EnvironmentStatus, outcome: RunOutcome, now: dt.datetime) -> EnvironmentStatus:
    result = outcome.result
    if result == RunResult.BUSY:
        return previous
    if result == RunResult.PROGRESSING:
        count = len(outcome.plan.items) if outcome.plan is not None else 0
        return replace(previous, state=EnvState.PROGRESSING, reason=f"applying {count} changes",
                       last_run_id=outcome.run_id)
    if result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES) and outcome.verify is not None:
        drift = _pending(outcome.verify.drift)
        return replace(
            previous, state=EnvState.OUT_OF_SYNC if drift else EnvState.SYNCED,
            reason=drift_reason(drift) if drift else None, applied_revision=outcome.revision,
            applied_ref=outcome.ref, applied_tree_id=outcome.tree_id, drift_count=len(drift),
            last_run_id=outcome.run_id, last_checked_at=now,
        )
    if result == RunResult.BLOCKED:
        return replace(previous, state=EnvState.BLOCKED, reason=outcome.reason, last_run_id=outcome.run_id)
    if result == RunResult.WAITING:
        return replace(previous, state=EnvState.PROGRESSING, reason=outcome.reason, last_run_id=outcome.run_id)
    if result == RunResult.INTERRUPTED:
        return replace(previous, state=EnvState.UNKNOWN, reason=outcome.reason, last_run_id=outcome.run_id)
    if outcome.failed_checks and outcome.verify is not None and not outcome.verify.drift:
        # Applied in full, but a check failed: the environment runs the revision, and is Failed.
        return replace(previous, state=EnvState.FAILED, reason=outcome.reason, applied_revision=outcome.revision,
                       applied_ref=outcome.ref, applied_tree_id=outcome.tree_id, drift_count=0,
                       last_run_id=outcome.run_id, last_checked_at=now)
    # Failed. A run that had a plan may have changed live state: the old drift count no longer
    # holds (what a verify pass found replaces it); one that failed before planning changed nothing.
    drift_count = outcome.drift_after if outcome.plan is not None else previous.drift_count
    return replace(previous, state=EnvState.FAILED, reason=outcome.reason, last_run_id=outcome.run_id,
                   drift_count=drift_count)

