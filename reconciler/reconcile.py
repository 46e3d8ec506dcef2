"""The one reconcile function the CLI and the daemon share, and the queries around it.

Flow of ``Reconciler.reconcile`` (STYLE: source → desired → engine → providers → store):

1. resolve what the environment should run (branch head, highest release tag, or a pin);
2. gate the revision: moved tag, semver order, reachability, promotion, signature (tag-tracked);
3. load and validate the desired state at that revision (cached by Git tree id);
4. render the environment, read live state, diff, plan the schema, order the plan;
5. gate the plan: destructive changes and their approvals, deny windows;
6. take the environment's lease, write the run record, apply step by step (recording progress);
7. re-read live state and verify zero drift; write the run result and the status in one place.

A refusal never applies anything; a failure leaves a run record naming what was applied.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from reconciler.clock import Clock
from reconciler.clock import now as clock_now
from reconciler.config import Settings
from reconciler.desired import loader
from reconciler.desired.models import Environment
from reconciler.desired.state import DesiredState
from reconciler.desired.validation import app_environments
from reconciler.durations import parse_duration
from reconciler.engine import gates, topology
from reconciler.engine.changes import Change, DriftItem
from reconciler.engine.drift import diff_objects
from reconciler.engine.plan import Plan, Step, build_plan
from reconciler.engine.render import DesiredDatabase, DesiredEnvironment, render
from reconciler.errors import (
    Cancelled,
    ConfigError,
    NotFoundError,
    ReconcilerError,
    SchemaError,
    SourceError,
    StoreError,
    ValidationError,
    Waiting,
    clip,
)
from reconciler.providers.base import (
    AppDeployment,
    ApplyContext,
    LiveState,
    PlatformProvider,
    SchemaProvider,
)
from reconciler.secrets.backends import Secrets
from reconciler.secrets.fingerprints import Fingerprinter
from reconciler.source.repository import Repository, TagRef
from reconciler.source.revisions import Release, releases, short, tag_version
from reconciler.store.store import EnvironmentStatus, Store

log = structlog.get_logger(__name__)

@dataclass(frozen=True)
class Target:
    """What an environment should run now, and whether the gates that need no plan allow it."""

    environment: str
    spec: Environment  # the environment's policy (from the control branch head)
    revision: str | None
    ref: str | None  # branch or tag name
    tag: TagRef | None = None
    gate: gates.Gate = field(default_factory=gates.Gate.ok)
    approvals: tuple[str, ...] = ()
    pinned: bool = False
    newer_available: str | None = None  # a newer revision a pin holds back


@dataclass
class Outcome:
    environment: str
    result: str  # Succeeded | NoChanges | Failed | Blocked | Busy | Interrupted | Waiting (for a merge)
    revision: str | None = None
    ref: str | None = None
    run_id: str | None = None
    reason: str | None = None
    gate: str | None = None
    plan: Plan | None = None
    applied: list[str] = field(default_factory=list)
    remaining: list[DriftItem] = field(default_factory=list)
    duration: float = 0.0
    release: bool = False  # the revision came from a release tag (a promotion when it succeeds)
    warnings: list[str] = field(default_factory=list)  # went wrong around the run without changing its result
    retry_after: float | None = None  # Waiting: when to look again
    retry_at: dt.datetime | None = None  # Blocked by a deny window: when it closes (the gate's clock)

    @property
    def exit_code(self) -> int:
        # Waiting is not a failure: the run did what it could and a merge will let the next one finish.
        return {"Succeeded": 0, "NoChanges": 0, "Waiting": 0, "Blocked": 3}.get(self.result, 1)


@dataclass
class Lease:
    """An environment's lease as ``Reconciler.lease`` took it: held or not, and what went wrong
    releasing it (filled in when the ``with`` block ends)."""

    held: bool
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Computed:
    desired: DesiredEnvironment
    state: DesiredState
    plan: Plan
    live: LiveState  # what the plan was made against; apply starts from it (no second read)
    sharing: topology.Sharing | None = None  # who applies what this one's platform instance shares


class Reconciler:
    """Everything needed to reconcile: the source, the providers, the store, the secrets.

    ``clock`` answers "what time is it" for deny windows and status times; by default the product's
    clock (``reconciler.clock.now``, which ``RECONCILER_NOW`` may set).
    """

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        store: Store,
        platform: PlatformProvider,
        schema: SchemaProvider | None,
        secrets: Secrets,
        fingerprinter: Fingerprinter,
        clock: Clock = clock_now,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.store = store
        self.platform = platform
        self.schema = schema
        self.secrets = secrets
        self.fingerprinter = fingerprinter
        self.clock = clock
        self._states: OrderedDict[str, DesiredState | ValidationError] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._env_locks: dict[str, threading.Lock] = {}
        self._env_locks_guard = threading.Lock()

    def close(self) -> None:
        self.platform.close()
        close = getattr(self.schema, "close", None)
        if close is not None:
            close()
        self.store.close()

    # -- desired state ---------------------------------------------------------------------

    @property
    def control_branch(self) -> str:
        return self.settings.source.branches[0]

    def state_at(self, revision: str) -> DesiredState:
        """The validated desired state at ``revision``; cached by the folder's Git tree id."""
        tree = self.repository.tree(revision, self.settings.source.path)
        key = tree.content_id()
        with self._cache_lock:
            cached = self._states.get(key)
            if cached is not None:
                self._states.move_to_end(key)
        if cached is None:
            try:
                cached = loader.load(tree)
            except ValidationError as exc:
                cached = exc
            with self._cache_lock:
                self._states[key] = cached
                while len(self._states) > 32:
                    self._states.popitem(last=False)
        if isinstance(cached, ValidationError):
            raise cached
        return cached

    def tree_id(self, revision: str) -> str:
        return self.repository.tree(revision, self.settings.source.path).content_id()

    def control_state(self) -> DesiredState:
        return self.state_at(self.repository.branch_head(self.control_branch))

    def environments(self) -> list[str]:
        return self.control_state().environment_order

    def spec(self, env: str) -> Environment:
        """The environment's policy, as declared at the head of the control branch.

        Policy comes from the control branch, not from the revision being applied, so a release
        tag cannot loosen its own gates.
        """
        try:
            state = self.control_state()
        except ValidationError:
            status = self.store.status(env)
            if status.applied_revision is None:
                raise
            state = self.state_at(status.applied_revision)
        spec = state.environments.get(env)
        if spec is None:
            raise NotFoundError(f"unknown environment {clip(env)!r} (declared: {', '.join(state.environment_order)})")
        return spec

    # -- what to run -------------------------------------------------------------------------

    def target(self, env: str, rev: str | None = None) -> Target:
        spec = self.spec(env)
        status = self.store.status(env)
        if spec.track.branch is not None:
            return self._branch_target(spec, status, rev)
        return self._tag_target(spec, status, rev)

    def _branch_target(self, spec: Environment, status: EnvironmentStatus, rev: str | None) -> Target:
        branch = spec.track.branch
        assert branch is not None
        head = self.repository.branch_head(branch)
        if rev is not None:
            commit = self.repository.resolve(rev)
            ref = rev
            if commit == head:
                ref = branch
            elif commit == status.applied_revision and status.applied_ref:
                ref = status.applied_ref  # re-applying what runs (self-heal) keeps its name
            return Target(spec.name, spec, commit, ref)
        if status.pinned_revision:
            newer = head if head != status.pinned_revision else None
            return Target(spec.name, spec, status.pinned_revision, f"pinned@{short(status.pinned_revision)}",
                          pinned=True, newer_available=newer)
        return Target(spec.name, spec, head, branch)

    def _tag_target(self, spec: Environment, status: EnvironmentStatus, rev: str | None) -> Target:
        track = spec.track
        assert track.tag is not None
        tags = self.repository.tags()
        self.store.remember_tags((t.name, t.target) for t in tags)
        seen = self.store.tag_targets()
        matching = releases(tags, track.tag, track.prereleases)
        if rev is not None:
            tag = next((t for t in tags if t.name == rev), None)
            if tag is None:
                commit = self.repository.resolve(rev)
                return Target(spec.name, spec, commit, rev, gate=gates.Gate.block(
                    "not-a-tag", f"{spec.name} tracks release tags ({track.tag}); {rev!r} is not one — "
                    f"apply a release tag, or 'reconciler pin {spec.name} {rev}' to hold it there"))
            return self._gate_tag(spec, status, tag, seen, explicit=True)
        if status.pinned_revision:
            newest = matching[0].tag.target if matching else None
            ref = status.applied_ref if status.applied_revision == status.pinned_revision else None
            return Target(spec.name, spec, status.pinned_revision, ref or f"pinned@{short(status.pinned_revision)}",
                          pinned=True, newer_available=newest if newest != status.pinned_revision else None)
        applied = status.applied_ref
        applied_version = tag_version(applied, track.tag) if applied else None
        if applied_version is not None and applied not in {t.name for t in tags} and (
                not matching or matching[0].version <= applied_version):
            return Target(spec.name, spec, status.applied_revision, applied, gate=gates.Gate.block(
                "tag-deleted", f"tag {applied}, which {spec.name} runs, was deleted; {spec.name} stays at "
                f"{short(status.applied_revision)} — cut a new release tag to move it"))
        if not matching:
            return Target(spec.name, spec, status.applied_revision, status.applied_ref, gate=gates.Gate.block(
                "no-release", f"no release tag matching {track.tag!r} yet"))
        return self._gate_tag(spec, status, matching[0].tag, seen, explicit=False)

    def _gate_tag(
        self, spec: Environment, status: EnvironmentStatus, tag: TagRef, seen: dict[str, str], explicit: bool
    ) -> Target:
        track = spec.track
        assert track.tag is not None
        version = tag_version(tag.name, track.tag)
        applied_version = tag_version(status.applied_ref, track.tag) if status.applied_ref else None
        running_this = status.applied_ref == tag.name and status.applied_revision == tag.target
        if version is None:
            gate = gates.Gate.block("not-a-release", f"tag {tag.name} does not match {track.tag!r} as a semver release")
            return Target(spec.name, spec, tag.target, tag.name, tag, gate)
        if version.is_prerelease and not track.prereleases:
            gate = gates.Gate.block(
                "prerelease", f"tag {tag.name} is a prerelease and {spec.name} sets prereleases: false")
            return Target(spec.name, spec, tag.target, tag.name, tag, gate)
        newer = applied_version is None or version > applied_version or running_this
        if explicit and applied_version is not None and version == applied_version:
            newer = True  # re-applying the running release is allowed (it heals drift)
        reachable = self.repository.is_reachable(tag.target, track.from_branch) if track.from_branch else None
        verified = None
        if track.promoted_from:
            verified = self.store.verified_in(track.promoted_from, self.tree_id(tag.target))
        signature_ok, signature_reason = self.verify_signature(spec, tag)
        facts = gates.TagFacts(
            name=tag.name, target=tag.target, reachable=reachable, verified_upstream=verified,
            first_seen_target=seen.get(tag.name), signature_ok=signature_ok, signature_reason=signature_reason,
            newer_than_applied=newer,
        )
        gate = gates.check_tag(spec, facts)
        return Target(spec.name, spec, tag.target, tag.name, tag, gate, tuple(gates.approvals_in(tag.message)))

    def verify_signature(self, spec: Environment, tag: TagRef) -> tuple[bool | None, str]:
        """Signature check of a release tag when the environment asks for one."""
        if spec.track.verify_signatures is None:
            return None, ""
        from reconciler.source import signatures

        result = signatures.verify_tag(self.repository, tag, spec.track.verify_signatures)
        return result.ok, result.reason

    def newest_release(self, spec: Environment) -> Release | None:
        if spec.track.tag is None:
            return None
        found = releases(self.repository.tags(), spec.track.tag, spec.track.prereleases)
        return found[0] if found else None

    # -- computing drift and plans ---------------------------------------------------------------

    def compute(self, env: str, revision: str) -> Computed:
        """Render ``env`` at ``revision``, read live state, and plan (no gates, no writes).

        On a platform instance shared with other environments, what the instance shares is applied
        by one environment there (engine/topology.py): this environment's read is told whether it
        publishes the instance's apps, and its plan marks the changes another applies as applied with it.
        """
        state = self.state_at(revision)
        placement = self.settings.platform.placement(state.environment_order)
        problems = topology.shared_instance_problems(state, placement)
        if problems:
            raise ValidationError(problems)
        place = topology.sharing(state, env, placement)
        desired = render(state, env, self.fingerprinter.sensitive)
        live = self.platform.read(env, declared=frozenset(desired.objects), owner=place.owner == env)
        drift = topology.defer_shared(self._diff(desired, live), place)
        return Computed(desired, state, build_plan(env, revision, drift), live, place)

    def _diff(self, desired: DesiredEnvironment, live: LiveState) -> list[DriftItem]:
        items = diff_objects(desired.objects, live, prune=desired.spec.sync.prune)
        if desired.databases and self.schema is None:
            raise SourceError("this desired state manages databases but no schema provider is configured")
        for database in desired.databases:
            assert self.schema is not None
            items.extend(self.schema.plan(
                database.name,
                self._database_url(desired.name, database),
                [(f.path, f.text) for f in database.files],
                database.content_key,
                database.managed_schemas,
            ))
        return items

    def _database_url(self, env: str, database: DesiredDatabase) -> str:
        """The resolved URL of ``database``; one that is not a URL is refused by its reference, never its value."""
        assert self.schema is not None
        url = self.secrets.resolve(database.url)
        problem = self.schema.check_url(url)
        if problem is not None:
            source = database.url if self.secrets.names(database.url) else f"environments.{env}.url"
            raise ConfigError(f"database {database.name} ({env}): the URL from {clip(source)} {problem}")
        return url

    def plan(self, env: str, rev: str | None = None) -> Plan:
        target = self.target(env, rev)
        if target.revision is None:
            raise SourceError(f"{env} has no revision to plan yet: {target.gate.reason}")
        return self.compute(env, target.revision).plan

    def current_revision(self, env: str) -> tuple[str, str | None]:
        """The revision drift is judged against: what runs, else what the environment tracks."""
        status = self.store.status(env)
        if status.applied_revision:
            return status.applied_revision, status.applied_ref
        target = self.target(env)
        if target.revision is None:
            raise SourceError(f"{env} has nothing applied and nothing to apply yet: {target.gate.reason}")
        return target.revision, target.ref

    def drift(self, env: str) -> tuple[Plan, dict[str, dt.datetime]]:
        """Drift of live against the environment's current revision, with first-seen times."""
        revision, _ref = self.current_revision(env)
        plan = self.compute(env, revision).plan
        first_seen = self.store.observe_drift(env, [i.as_json() for i in plan.drift])
        self._summarise_drift(env, plan)
        return plan, first_seen

    def _summarise_drift(self, env: str, plan: Plan) -> None:
        status = self.store.status(env)
        if status.state in ("Blocked", "Failed", "Progressing"):
            self.store.update_status(env, drift_count=len(plan.pending), last_checked_at=self.clock())
            return
        state = "Synced" if not plan.pending else "OutOfSync"
        reason = None if not plan.pending else _drift_reason(plan)
        if status.applied_revision is None:
            state, reason = "OutOfSync" if plan.pending else "Synced", reason or "nothing applied yet"
        self.store.update_status(env, state=state, reason=reason, drift_count=len(plan.pending),
                                 last_checked_at=self.clock())

    # -- reconciling --------------------------------------------------------------------------------

    def _env_lock(self, env: str) -> threading.Lock:
        with self._env_locks_guard:
            return self._env_locks.setdefault(env, threading.Lock())

    @contextmanager
    def lease(self, env: str) -> Iterator[Lease]:
        """One run per environment: a thread lock in this process, a lease row across processes.

        Failing to release the lease row (the state database is full, read-only or gone) does not
        change what the run did: the row expires after ``daemon.lease_ttl``, a process of this host
        takes over a dead owner's row at once, and this process renews its own. So it is a warning
        on the lease, not an error.
        """
        lock = self._env_lock(env)
        if not lock.acquire(blocking=False):
            yield Lease(held=False)
            return
        ttl = parse_duration(self.settings.daemon.lease_ttl)
        try:
            if not self.store.acquire_lease(env, ttl):
                yield Lease(held=False)
                return
            done = threading.Event()
            heartbeat = threading.Thread(target=self._renew_lease, args=(env, ttl, done), daemon=True,
                                         name=f"lease-{env}")
            heartbeat.start()
            lease = Lease(held=True)
            try:
                yield lease
            finally:
                done.set()
                heartbeat.join(timeout=5)
                try:
                    self.store.release_lease(env)
                except ReconcilerError as exc:
                    log.warning("lease.release_failed", environment=env, error=str(exc),
                                expires_in=self.settings.daemon.lease_ttl)
                    lease.warnings.append(f"could not release the lease on {env} ({exc}); it expires by itself "
                                          f"within {self.settings.daemon.lease_ttl}")
        finally:
            lock.release()

    def _renew_lease(self, env: str, ttl: float, done: threading.Event) -> None:
        """Keep the lease while a long step runs (a lock wait, a slow migration)."""
        while not done.wait(ttl / 3):
            try:
                self.store.acquire_lease(env, ttl)
            except ReconcilerError as exc:
                log.warning("lease.renew_failed", environment=env, error=str(exc))

    def reconcile(
        self,
        env: str,
        rev: str | None = None,
        trigger: str = "cli",
        approvals: tuple[str, ...] | list[str] = (),
        record_no_changes: bool = True,
        cancel: threading.Event | None = None,
    ) -> Outcome:
        """Bring ``env`` to its target revision (or ``rev``) through every gate. Never raises for
        an expected failure: the outcome says what happened and the store has the record."""
        started = time.monotonic()
        # Caller mistakes are errors, not runs: an unknown environment or revision records nothing.
        try:
            self.spec(env)
        except NotFoundError:
            raise
        except ReconcilerError:
            pass  # an invalid control branch, a missing branch: the run below records why
        if rev is not None:
            self.repository.resolve(rev)
        with self.lease(env) as lease:
            if not lease.held:
                return Outcome(env, "Busy", reason=f"another run is applying {env}; try again shortly")
            self.recover_interrupted(env)  # we hold the lease: an unfinished run here was abandoned
            # Every log line of this run, providers' included, carries the environment (and run id).
            with structlog.contextvars.bound_contextvars(environment=env, trigger=trigger, run_id=None,
                                                         revision=None):
                outcome = self._reconcile(env, rev, trigger, tuple(approvals), record_no_changes, cancel)
        outcome.warnings.extend(lease.warnings)
        outcome.duration = time.monotonic() - started
        log.info("reconcile.done", environment=env, result=outcome.result, revision=short(outcome.revision),
                 run_id=outcome.run_id, reason=outcome.reason, seconds=round(outcome.duration, 3))
        return outcome

    def _reconcile(
        self, env: str, rev: str | None, trigger: str, approvals: tuple[str, ...], record_no_changes: bool,
        cancel: threading.Event | None,
    ) -> Outcome:
        try:
            target = self.target(env, rev)
        except NotFoundError:
            raise  # an unknown environment is the caller's mistake, not a run
        except ValidationError as exc:
            return self._failed_without_run(env, None, None, trigger, f"the control branch is invalid: {exc}")
        except ReconcilerError as exc:
            return self._failed_without_run(env, None, None, trigger, str(exc))
        self.store.update_status(env, tracked_ref=_tracked_ref(target.spec), desired_revision=target.revision,
                                 desired_ref=target.ref)
        if not target.gate.allowed:
            return self._blocked(target, trigger, target.gate)
        assert target.revision is not None
        status = self.store.status(env)
        if status.pinned_revision and rev is not None and self.repository.resolve(rev) != status.pinned_revision:
            return self._blocked(target, trigger, gates.Gate.block(
                "pinned", f"{env} is pinned at {short(status.pinned_revision)}; run 'reconciler unpin {env}' first"))
        try:
            computed = self.compute(env, target.revision)
        except ValidationError as exc:
            return self._blocked(target, trigger, gates.Gate.block("invalid", str(exc)))
        except ReconcilerError as exc:  # live state could not be read or planned: no change was made
            return self._failed_without_run(env, target.revision, target.ref, trigger, f"{exc}; nothing was applied")
        plan = computed.plan
        gate = gates.check_destructive(target.spec, plan.destructive, [*target.approvals, *approvals])
        if gate.allowed and not plan.is_empty():
            gate = gates.check_window(target.spec, self.clock())
        if not gate.allowed:
            return self._blocked(target, trigger, gate, plan)
        tree_id = computed.state.content_id
        if plan.is_empty():
            return self._no_changes(target, trigger, plan, tree_id, record_no_changes)
        plan_json = [item.as_json() for item in plan.items]
        run_id = self.store.start_run(env, trigger, target.revision, tree_id, target.ref, plan_json)
        structlog.contextvars.bind_contextvars(run_id=run_id, revision=short(target.revision))
        self.store.update_status(env, state="Progressing", reason=f"applying {len(plan.items)} changes",
                                 last_run_id=run_id)
        log.info("reconcile.apply", steps=len(plan.steps), items=len(plan.items))
        applied: list[str] = []
        try:
            self._apply(computed, target, plan, applied, run_id, cancel)
            verify = self.compute(env, target.revision).plan
        except Cancelled as exc:
            log.warning("reconcile.cancelled", applied=len(applied))
            return self._finish(target, run_id, "Interrupted", str(exc), applied, None, plan, tree_id)
        except Waiting as exc:
            # A platform proposed a change (a pushed branch) that counts once merged: not a failure.
            log.info("reconcile.waiting", reason=str(exc), applied=len(applied))
            outcome = self._finish(target, run_id, "Waiting", str(exc), applied, None, plan, tree_id)
            outcome.retry_after = exc.delay
            return outcome
        except ReconcilerError as exc:
            log.warning("reconcile.failed", error=str(exc), applied=len(applied))
            return self._finish(target, run_id, "Failed", f"{exc}", applied, None, plan, tree_id)
        remaining = verify.items
        if remaining:
            reason = f"{len(remaining)} changes still differ after apply: " + ", ".join(i.id for i in remaining[:5])
            return self._finish(target, run_id, "Failed", reason, applied, verify, plan, tree_id)
        return self._finish(target, run_id, "Succeeded", None, applied, verify, plan, tree_id)

    def _apply(
        self, computed: Computed, target: Target, plan: Plan, applied: list[str], run_id: str,
        cancel: threading.Event | None = None,
    ) -> None:
        env = target.environment
        assert target.revision is not None
        ctx = ApplyContext(environment=env, secrets=self.secrets, fingerprints=self.store, releases=self.store,
                           owner=computed.sharing is None or computed.sharing.owner == env)
        release = target.ref if target.tag is not None and target.ref else short(target.revision)
        order = computed.state.environment_order
        for name, app in computed.state.apps.items():
            source = computed.state.app_sources.get(name)
            # A release is made by the app's first environment in promotion order; the others run it.
            first = next((e for e in order if e in app_environments(app, order)), env)
            ctx.deployments[name] = AppDeployment(target.revision, release, source.files if source else {},
                                                  may_release=first == env)
        live = computed.live
        for step in plan.steps:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"stopped by shutdown after {len(applied)} of {len(plan.items)} changes; "
                                "the next start plans again from live state")
            self._apply_step(ctx, computed, live, step)
            self.store.record_applied(run_id, step.ids, offset=len(applied))
            applied.extend(step.ids)

    def _apply_step(self, ctx: ApplyContext, computed: Computed, live: LiveState, step: Step) -> None:
        desired = computed.desired
        if step.target == "schema":
            self._apply_schema_step(desired, step)
            return
        key = (step.kind, step.name)
        change = step.change
        if step.items[0].change == Change.UPDATE:
            change = Change.UPDATE
        if computed.sharing is not None and step.kind != "app":
            # Whether this run writes the object's instance-wide fields (an app's are the owner's).
            ctx = replace(ctx, owner=computed.sharing.applies(key))
        self.platform.apply(ctx, change, desired.objects.get(key), live.get(key))

    def _apply_schema_step(self, desired: DesiredEnvironment, step: Step) -> None:
        """Apply one database's statements of one phase.

        The statements are planned again first: what the additive phase changed can alter the
        destructive statements migra proposes. Only ids that were planned (and therefore gated and
        approved) may run; anything new means the database changed under us, and the run fails.
        """
        assert self.schema is not None
        database = next(d for d in desired.databases if d.name == step.name)
        url = self._database_url(desired.name, database)
        fresh = self.schema.plan(database.name, url, [(f.path, f.text) for f in database.files],
                                 database.content_key, database.managed_schemas)
        planned = set(step.ids)
        now = [i for i in fresh if i.phase == step.phase]
        unexpected = [i.id for i in now if i.id not in planned]
        if unexpected:
            raise SchemaError(f"the schema of {database.name} changed during the run; unplanned statements: "
                              f"{', '.join(unexpected[:5])}; the next run plans again")
        if now:
            self.schema.apply(database.name, url, now)

    # -- the summariser: the one place that writes run results and status -------------------------

    def _finish(
        self, target: Target, run_id: str, result: str, reason: str | None, applied: list[str],
        verify: Plan | None, plan: Plan, tree_id: str,
    ) -> Outcome:
        env = target.environment
        self.store.finish_run(run_id, result, reason, applied, len(verify.items) if verify else None)
        if result == "Succeeded" and verify is not None:
            self.store.update_status(
                env, state="Synced" if not verify.pending else "OutOfSync",
                reason=_drift_reason(verify) if verify.pending else None, applied_revision=target.revision,
                applied_ref=target.ref, applied_tree_id=tree_id, drift_count=len(verify.pending), last_run_id=run_id,
                last_checked_at=self.clock(),
            )
            self.store.observe_drift(env, [i.as_json() for i in verify.drift])
        elif result == "Interrupted":
            self.store.update_status(env, state="Unknown", reason=reason, last_run_id=run_id)
        elif result == "Waiting":
            self.store.update_status(env, state="Progressing", reason=reason, last_run_id=run_id)
        else:
            self.store.update_status(env, state="Failed", reason=reason, last_run_id=run_id,
                                     drift_count=len(verify.items) if verify else None)
        return Outcome(env, result, target.revision, target.ref, run_id, reason, None, plan, applied,
                       verify.items if verify else [], release=target.tag is not None)

    def _no_changes(self, target: Target, trigger: str, plan: Plan, tree_id: str, record: bool) -> Outcome:
        env = target.environment
        status = self.store.status(env)
        run_id = status.last_run_id
        last = self.store.run(run_id) if run_id else None
        repeat = last is not None and last.revision == target.revision and last.result in ("Succeeded", "NoChanges")
        if record or not repeat:
            run_id = self.store.start_run(env, trigger, target.revision, tree_id, target.ref, [], result="NoChanges")
        self.store.update_status(
            env, state="Synced" if not plan.pending else "OutOfSync",
            reason=_drift_reason(plan) if plan.pending else None, applied_revision=target.revision,
            applied_ref=target.ref, applied_tree_id=tree_id, drift_count=len(plan.pending), last_run_id=run_id,
            last_checked_at=self.clock(),
        )
        self.store.observe_drift(env, [i.as_json() for i in plan.drift])
        return Outcome(env, "NoChanges", target.revision, target.ref, run_id, None, None, plan)

    def _blocked(self, target: Target, trigger: str, gate: gates.Gate, plan: Plan | None = None) -> Outcome:
        env = target.environment
        status = self.store.status(env)
        last = self.store.run(status.last_run_id) if status.last_run_id else None
        same = (last is not None and last.result == "Blocked" and last.revision == target.revision
                and last.reason == gate.reason)
        run_id = last.id if same and last is not None else self.store.start_run(
            env, trigger, target.revision, None, target.ref,
            [i.as_json() for i in plan.items] if plan else [], result="Blocked", reason=gate.reason,
        )
        self.store.update_status(env, state="Blocked", reason=gate.reason, last_run_id=run_id,
                                 desired_revision=target.revision, desired_ref=target.ref)
        log.warning("reconcile.blocked", environment=env, gate=gate.code, reason=gate.reason,
                    revision=short(target.revision))
        return Outcome(env, "Blocked", target.revision, target.ref, run_id, gate.reason, gate.code, plan,
                       retry_at=gate.retry_at)

    def _failed_without_run(
        self, env: str, revision: str | None, ref: str | None, trigger: str, reason: str
    ) -> Outcome:
        run_id = self.store.start_run(env, trigger, revision, None, ref, [], result="Failed", reason=reason)
        self.store.update_status(env, state="Failed", reason=reason, last_run_id=run_id)
        return Outcome(env, "Failed", revision, ref, run_id, reason)

    # -- crash recovery ----------------------------------------------------------------------------

    def recover_interrupted(self, env: str | None = None) -> list[str]:
        """Mark runs left Progressing by a process that is gone as Interrupted; return their ids.

        A run is abandoned when its process is known dead (same host) or no live lease of its owner
        covers the environment any more. With ``env`` given the caller holds that environment's
        lease, so any unfinished run there is abandoned.
        """
        found = []
        for run in self.store.unfinished_runs():
            if env is not None and run.environment != env:
                continue
            if env is None and not self.store.abandoned(run):
                continue
            reason = (f"interrupted (the process stopped during the run; {len(run.applied)} changes had been "
                      "applied); planning again from live state")
            self.store.finish_run(run.id, "Interrupted", reason, run.applied, None)
            self.store.update_status(run.environment, state="Unknown", reason=reason)
            log.warning("reconcile.interrupted_run", run_id=run.id, environment=run.environment,
                        applied=len(run.applied))
            found.append(run.id)
        return found

    # -- pins ---------------------------------------------------------------------------------------

    def pin(self, env: str, rev: str) -> str:
        self.spec(env)
        commit = self.repository.resolve(rev)
        self.store.update_status(env, pinned_revision=commit)
        return commit

    def unpin(self, env: str) -> None:
        self.spec(env)
        self.store.update_status(env, pinned_revision=None)

    def status_rows(self) -> list[tuple[EnvironmentStatus, Any]]:
        return status_rows(self)


def _tracked_ref(spec: Environment) -> str:
    return spec.track.branch or f"tag {spec.track.tag}"


def _drift_reason(plan: Plan) -> str:
    unpruned = [i for i in plan.pending if i.change == Change.DELETE and not i.pruned and i.kind != "schema"]
    if unpruned and len(unpruned) == len(plan.pending):
        return f"{len(unpruned)} undeclared objects (prune is off)"
    count = len(plan.pending)
    return f"{count} drift item{'s' if count != 1 else ''}"


def build(settings: Settings, **overrides: Any) -> Reconciler:
    """Construct a Reconciler from settings (providers, store, source, secrets)."""
    from reconciler.wiring import build_reconciler

    return build_reconciler(settings, **overrides)


__all__ = ["Computed", "Outcome", "Reconciler", "Target", "build"]


def status_rows(reconciler: Reconciler) -> list[tuple[EnvironmentStatus, Any]]:
    """Status of every environment, with the desired revision refreshed from Git.

    Only reading the store is required: the refreshed revision is recorded when it changed and the
    store takes writes, and shown either way (``status`` reports from a full or read-only store).
    """
    try:
        names = reconciler.environments()
    except ReconcilerError:
        names = sorted(reconciler.store.statuses())
    rows = []
    for name in names:
        status = reconciler.store.status(name)
        try:
            target = reconciler.target(name)
        except ReconcilerError as exc:
            log.warning("status.target_failed", environment=name, error=str(exc))
        else:
            fresh: dict[str, Any] = {"tracked_ref": _tracked_ref(target.spec),
                                     "desired_revision": target.revision, "desired_ref": target.ref}
            if any(getattr(status, key) != value for key, value in fresh.items()):
                try:
                    reconciler.store.update_status(name, **fresh)
                except StoreError as exc:
                    log.warning("status.not_recorded", environment=name, error=str(exc))
                status = replace(status, **fresh)
        rows.append((status, reconciler.store.run(status.last_run_id) if status.last_run_id else None))
    return rows
