"""The one reconcile function the CLI and the daemon share: gather facts, let the core decide, apply, record once.

Flow of ``Reconciler.reconcile`` (STYLE: source → desired → core → providers → store):

1. gather what Git and the store say about the environment and let ``core.targets`` choose the
   revision (branch head, highest release tag, or a pin) and ``core.gates`` refuse it or not;
2. load and validate the desired state at that revision (cached by Git tree id);
3. render the environment, read live state, diff, plan the schema, order the plan (``core``);
4. gate the plan: destructive changes and their approvals, deny windows (``core.gates``);
5. take the environment's lease, record the run's start, apply step by step (recording progress);
6. re-read live state and verify zero drift; ``Store.record`` writes the run's result and the
   status that ``core.outcome.transition`` decides, once.

A refusal never applies anything; a failure leaves a run record naming what was applied. Read
paths (``plan``, ``drift``, ``target`` for display) write nothing: see ``app/queries.py``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler import logs
from reconciler.app.queries import Queries
from reconciler.app.replicas import Replicas
from reconciler.checks.prepared import for_environment
from reconciler.checks.runner import run_checks
from reconciler.clock import Clock
from reconciler.clock import now as clock_now
from reconciler.config import Settings
from reconciler.core import gates, targets, topology
from reconciler.core.changes import Change, DriftItem, Phase
from reconciler.core.drift import diff_objects
from reconciler.core.gates import Gate
from reconciler.core.objects import LiveState
from reconciler.core.outcome import (
    SCHEDULED_CHECKS,
    DriftChecked,
    EnvironmentStatus,
    EnvState,
    RunOutcome,
    RunResult,
    Waiting,
)
from reconciler.core.plan import Plan, Step, build_plan
from reconciler.core.render import DesiredDatabase, DesiredEnvironment, render
from reconciler.core.revisions import TagRef, releases, short
from reconciler.core.targets import Requested, Running, TagEvidence, Target
from reconciler.desired import loader
from reconciler.desired.models import Environment, app_environments
from reconciler.desired.state import DesiredState
from reconciler.durations import parse_duration
from reconciler.errors import (
    Cancelled,
    ConfigError,
    NotFoundError,
    ReconcilerError,
    SchemaError,
    SourceError,
    TemporaryError,
    ValidationError,
    clip,
)
from reconciler.errors import Waiting as WaitingForMerge
from reconciler.providers.base import (
    AppDeployment,
    AppDirectory,
    ApplyContext,
    HandEditable,
    PlatformProvider,
    SchemaProvider,
)
from reconciler.secrets.backends import Secrets
from reconciler.secrets.fingerprints import Fingerprinter
from reconciler.secrets.values import Sensitive
from reconciler.source.repository import Repository
from reconciler.store.leases import Leases
from reconciler.store.store import Store

log = logs.get_logger(__name__)

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


@dataclass(frozen=True)
class Candidate:
    """A row of the promotion view: a release tag or a branch head, and its desired state's tree id."""

    name: str
    kind: str  # "tag" or "branch"
    commit: str
    tree_id: str | None


@dataclass(frozen=True)
class Parts:
    """What a ``Reconciler`` is made of; ``app/wiring.py`` builds them from settings."""

    settings: Settings
    repository: Repository
    store: Store
    platform: PlatformProvider
    schema: SchemaProvider | None
    secrets: Secrets
    fingerprinter: Fingerprinter


class Reconciler:
    """The application: every operation the CLI, the daemon, the API and the dashboard use.

    It owns the source, the providers, the store and the secrets, and hands none of them out:
    callers ask it (and ``app/queries.py``) for what they need. ``clock`` answers "what time is it"
    for deny windows and status times; by default the product's clock (``reconciler.clock.now``,
    which ``RECONCILER_NOW`` may set).
    """

    def __init__(self, parts: Parts, clock: Clock = clock_now) -> None:
        self.settings = parts.settings
        self.workspace = parts.settings.workspace_name  # whose source, platform and records these are
        self._repository = parts.repository
        self._store = parts.store
        self._platform = parts.platform
        self._schema = parts.schema
        self._secrets = parts.secrets
        self._fingerprinter = parts.fingerprinter
        self._leases = Leases(parts.store)
        self.queries = Queries(self, parts.store)
        self.clock = clock
        self._states: OrderedDict[str, DesiredState | ValidationError] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._env_locks: dict[str, threading.Lock] = {}
        self._env_locks_guard = threading.Lock()

    def close(self) -> None:
        self._platform.close()
        if self._schema is not None:
            self._schema.close()
        self._store.close()

    def replicas(self) -> Replicas | None:
        """The work sharing between daemons, when the state database can be shared (not SQLite)."""
        if self._store.url.startswith("sqlite"):
            return None
        return Replicas(self._leases, parse_duration(self.settings.daemon.lease_ttl))

    # -- the source ------------------------------------------------------------------------------

    def fetch(self) -> bool:
        """Fetch the remote (a local repository is read as it is); True when a ref moved."""
        return self._repository.fetch()

    def push_is_news(self, ref: str, after: str) -> bool:
        """Whether a webhook's push (``ref`` now at ``after``) needs a fetch (``Repository.push_is_news``)."""
        return self._repository.push_is_news(ref, after)

    @property
    def source_label(self) -> str:
        """The source as logs and messages may show it (no credentials)."""
        return self._repository.display_url

    def watch_dir(self) -> Path | None:
        """The Git directory to watch for ref changes: a local repository's, None for a remote one."""
        return None if self._repository.remote else self._repository.git_dir

    def resolve_secret(self, template: str) -> str:
        """``template`` with its ``${secret:NAME}`` references resolved (webhook secrets)."""
        return self._secrets.resolve(template)

    # -- desired state ---------------------------------------------------------------------------

    @property
    def control_branch(self) -> str:
        return self.settings.source.branches[0]

    def state_at(self, revision: str) -> DesiredState:
        """The validated desired state at ``revision``; cached by the folder's Git tree id."""
        tree = self._repository.tree(revision, self.settings.source.path)
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

    def head_state(self, branch: str | None = None) -> DesiredState:
        """The desired state at the head of ``branch`` (the control branch by default)."""
        return self.state_at(self._repository.branch_head(branch or self.control_branch))

    def control_state(self) -> DesiredState:
        return self.head_state()

    def environments(self) -> list[str]:
        return self.control_state().environment_order

    def known_environments(self) -> list[str]:
        """The declared environments; while the control branch cannot be read, those the last good
        desired state declares and those the store knows (reads only)."""
        try:
            return self.environments()
        except ReconcilerError:
            stored = sorted(self._store.statuses())
            last = self.last_good_state()
            declared = last.environment_order if last is not None else []
            return [*declared, *(name for name in stored if name not in declared)]

    def last_good_state(self) -> DesiredState | None:
        """The desired state at the revision most recently applied anywhere that still loads, or None.

        Status reports show what environments track from it while the control branch is invalid;
        runs never take policy from it (``spec`` falls back only to the environment's own revision).
        """
        applied = [s for s in self._store.statuses().values() if s.applied_revision]
        applied.sort(key=lambda s: s.updated_at or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
        for status in applied:
            assert status.applied_revision is not None
            try:
                return self.state_at(status.applied_revision)
            except ReconcilerError:
                continue
        return None

    def declared_spec(self, env: str) -> Environment | None:
        """``env``'s policy for display: ``spec``, else as the last good desired state declares it (reads only)."""
        try:
            return self.spec(env)
        except NotFoundError:
            return None
        except ReconcilerError:
            last = self.last_good_state()
            return last.environments.get(env) if last is not None else None

    def spec(self, env: str) -> Environment:
        """The environment's policy, as declared at the head of the control branch.

        Policy comes from the control branch, not from the revision being applied, so a release
        tag cannot loosen its own gates.
        """
        state = self._policy_state(env)
        spec = state.environments.get(env)
        if spec is None:
            raise NotFoundError(f"unknown environment {clip(env)!r} (declared: {', '.join(state.environment_order)})")
        return spec

    def _policy_state(self, env: str) -> DesiredState:
        """The desired state ``env``'s policy comes from: the control branch head, else (while that is
        invalid) the revision ``env`` runs."""
        try:
            return self.control_state()
        except ValidationError:
            status = self._store.status(env)
            if status.applied_revision is None:
                raise
            return self.state_at(status.applied_revision)

    def database_approvers(self, env: str) -> dict[str, list[str]]:
        """Database name → its ``approvers``, from the policy state (a release tag cannot name its own)."""
        databases = self._policy_state(env).databases
        return {name: db.approvers for name, db in databases.items() if db.approvers is not None}

    # -- what to run -----------------------------------------------------------------------------

    def desired(self, env: str, rev: str | None = None) -> Target:
        """What ``env`` should run, as ``core.targets.select`` decides from Git and the store (reads only).

        The release-tag gates that need more facts (reachability, promotion, signatures, moved
        tags) are not checked: ``target`` does that. Status reports and plans use this.
        """
        spec = self.spec(env)
        status = self._store.status(env)
        running = Running(status.applied_revision, status.applied_ref, status.pinned_revision)
        requested = Requested(rev, self._repository.resolve(rev)) if rev is not None else None
        if spec.track.branch is not None:
            tags = self._repository.tags() if status.pinned_revision else []  # a pin is named by its tag
            return targets.select(spec, running, head=self._repository.branch_head(spec.track.branch),
                                  tags=tags, requested=requested)
        return targets.select(spec, running, tags=self._repository.tags(), requested=requested)

    def target(self, env: str, rev: str | None = None) -> Target:
        """``desired`` with every gate that needs no plan checked (reads only)."""
        target = self.desired(env, rev)
        if not target.needs_tag_check:
            return target
        return targets.check_tag(target, self._tag_evidence(target))

    def _tag_evidence(self, target: Target) -> TagEvidence:
        tag, track = target.tag, target.spec.track
        assert tag is not None
        reachable = self._repository.is_reachable(tag.target, track.from_branch) if track.from_branch else None
        verified, checks_ran, checks_failed, since = None, None, (), None
        if track.promoted_from:
            tree_id = self._repository.tree(tag.target, self.settings.source.path).content_id()
            verified = self._store.verified_in(track.promoted_from, tree_id)
            upstream = self.declared_spec(track.promoted_from)
            if upstream is not None and upstream.sync.run_checks and self._declares_checks(tag.target,
                                                                                              track.promoted_from):
                results = self._store.checks_for(track.promoted_from, tree_id)
                checks_ran = results is not None
                checks_failed = tuple(r["name"] for r in results or [] if not r.get("passed"))
            if track.soak:
                since = self._store.synced_since(track.promoted_from, tree_id)
        signature_ok, signature_reason = None, ""
        if track.verify_signatures is not None:
            from reconciler.source import signatures

            result = signatures.verify_tag(self._repository, tag, track.verify_signatures)
            signature_ok, signature_reason = result.ok, result.reason
        signed_by = None
        approvers = target.approvals and (target.spec.approvers is not None
                                          or self.database_approvers(target.environment))
        if target.spec.allowed_signers is not None or approvers:
            from reconciler.source import signatures

            keyring = track.verify_signatures.gpg_keyring if track.verify_signatures else None
            signed_by = signatures.tag_signer(self._repository, tag, keyring)
        return TagEvidence(reachable=reachable, verified_upstream=verified,
                           first_seen_target=self._store.tag_targets().get(tag.name),
                           signature_ok=signature_ok, signature_reason=signature_reason,
                           upstream_checks_ran=checks_ran, upstream_checks_failed=checks_failed,
                           upstream_synced_since=since, now=self.clock(), signed_by=signed_by)

    def candidates(self, limit: int) -> list[Candidate]:
        """What the promotion view shows as rows (reads only): the newest ``limit`` release tags that
        match a tag-tracked environment's glob, highest version first, then the head of each branch an
        environment tracks (the control branch first), each with its desired-state folder's tree id."""
        order = self.environments()
        specs = [self.spec(env) for env in order]
        globs = [(s.track.tag, s.track.prereleases) for s in specs if s.track.tag is not None]
        found: dict[str, tuple[TagRef, Any]] = {}
        for glob, prereleases in globs:
            for release in releases(self._repository.tags(), glob, prereleases):
                found.setdefault(release.tag.name, (release.tag, release.version))
        newest = sorted(found.values(), key=lambda pair: (pair[1], pair[0].name), reverse=True)[:limit]
        rows = [Candidate(tag.name, "tag", tag.target, self._tree_id(tag.target)) for tag, _ in newest]
        branches = [self.control_branch, *(s.track.branch for s in specs if s.track.branch is not None)]
        for branch in dict.fromkeys(branches):
            try:
                head = self._repository.branch_head(branch)
            except ReconcilerError:
                continue  # a branch that does not exist (yet) has no head to show
            rows.append(Candidate(branch, "branch", head, self._tree_id(head)))
        return rows

    def _tree_id(self, commit: str) -> str | None:
        try:
            return self._repository.tree(commit, self.settings.source.path).content_id()
        except ReconcilerError:
            return None  # no desired-state folder at that commit

    def _declares_checks(self, revision: str, env: str) -> bool:
        """Does the desired state at ``revision`` declare checks for ``env``? (An invalid one: assume so.)"""
        try:
            state = self.state_at(revision)
        except ReconcilerError:
            return True
        return bool(for_environment(state, env)) if env in state.environments else False

    def remember_tags(self) -> None:
        """Record the first target of every tag not seen before (moved tags are judged against it)."""
        self._store.remember_tags((t.name, t.target) for t in self._repository.tags())

    # -- computing drift and plans ---------------------------------------------------------------

    def compute(self, env: str, revision: str) -> Computed:
        """Render ``env`` at ``revision``, read live state, and plan (no gates, no writes).

        On a platform instance shared with other environments, what the instance shares is applied
        by one environment there (``core.topology``): this environment's read is told whether it
        publishes the instance's apps, and its plan marks the changes another applies as applied with it.
        """
        state = self.state_at(revision)
        placement = self.settings.platform.placement(state.environment_order)
        problems = topology.shared_instance_problems(state, placement)
        if problems:
            raise ValidationError(problems)
        place = topology.sharing(state, env, placement)
        desired = render(state, env, self._fingerprinter.sensitive)
        live = self._platform.read(env, declared=frozenset(desired.objects), owner=place.owner == env)
        drift = topology.defer_shared(self._diff(desired, live), place)
        return Computed(desired, state, build_plan(env, revision, drift), live, place)

    def _diff(self, desired: DesiredEnvironment, live: LiveState) -> list[DriftItem]:
        items = diff_objects(desired.objects, live, prune=desired.spec.sync.prune)
        if desired.databases and self._schema is None:
            raise SourceError("this desired state manages databases but no schema provider is configured")
        for database in desired.databases:
            assert self._schema is not None
            items.extend(self._schema.plan(
                database.name,
                self._database_url(desired.name, database),
                [(f.path, f.text) for f in database.files],
                database.content_key,
                database.managed_schemas,
            ))
        return items

    def _database_url(self, env: str, database: DesiredDatabase) -> str:
        """The resolved URL of ``database``; one that is not a URL is refused by its reference, never its value."""
        assert self._schema is not None
        url = self._secrets.resolve(database.url)
        problem = self._schema.check_url(url)
        if problem is not None:
            source = database.url if self._secrets.names(database.url) else f"environments.{env}.url"
            raise ConfigError(f"database {database.name} ({env}): the URL from {clip(source)} {problem}")
        return url

    def plan(self, env: str, rev: str | None = None) -> Plan:
        target = self.desired(env, rev)
        if target.revision is None:
            raise SourceError(f"{env} has no revision to plan yet: {target.gate.reason}")
        return self.compute(env, target.revision).plan

    def current_revision(self, env: str) -> tuple[str, str | None]:
        """The revision drift is judged against: what runs, else what the environment tracks."""
        status = self._store.status(env)
        if status.applied_revision:
            return status.applied_revision, status.applied_ref
        target = self.desired(env)
        if target.revision is None:
            raise SourceError(f"{env} has nothing applied and nothing to apply yet: {target.gate.reason}")
        return target.revision, target.ref

    def drift(self, env: str) -> tuple[Plan, dict[str, dt.datetime]]:
        """Drift of live against the environment's current revision, with first-seen times (reads only).

        An item the store has not seen yet is first seen now.
        """
        revision, _ref = self.current_revision(env)
        plan = self.compute(env, revision).plan
        stored = {item["id"]: when for item, when in self._store.drift(env)}
        now = self.clock()
        return plan, {i.id: stored.get(i.id, now) for i in plan.drift}

    def check_drift(self, env: str) -> tuple[Plan, dict[str, dt.datetime]]:
        """``drift``, recorded: the daemon's drift schedule (first-seen times and the status)."""
        plan, _first_seen = self.drift(env)
        self._store.record(DriftChecked(env, tuple(plan.drift), self.clock()))
        stored = {item["id"]: when for item, when in self._store.drift(env)}
        return plan, {i.id: stored[i.id] for i in plan.drift if i.id in stored}

    def check_on_schedule(self, env: str, drift: Plan | None = None) -> RunOutcome | None:
        """The drift schedule's checks (``sync.scheduled_checks``): ``env``'s checks of what it runs.

        Recorded only when they say something new: a failure is a Failed run (trigger
        ``scheduled-checks``; the same failure again adds no record, ``core.outcome.repeats``), and
        checks passing again after a failed check make the environment Synced again (a NoChanges run,
        verified against ``drift``, the drift check's plan). With ``scheduled_checks: rollback`` a new
        failure is followed by a rollback, as after an apply. None when nothing was recorded: no
        scheduled checks, another run holds the environment, nothing runs yet, or all passed as before.
        """
        spec = self.spec(env)
        if spec.sync.scheduled_checks is None:
            return None
        with self.lease(env) as lease:
            if not lease.held:
                return None  # a run is applying; it checks what it applies
            with logs.bound_context(environment=env, trigger=SCHEDULED_CHECKS):
                status = self._store.status(env)
                if status.applied_revision is None or status.state == EnvState.PROGRESSING:
                    return None
                state = self.state_at(status.applied_revision)
                results = self._checks(state, env, None)
                if not results:
                    return None
                base = RunOutcome(env, RunResult.NO_CHANGES, status.applied_revision, status.applied_ref,
                                  trigger=SCHEDULED_CHECKS, tree_id=state.content_id)
                if _any_failed(results):
                    failed = self._record(self._judge(base, results, "on schedule"))
                    if failed.run_id != status.last_run_id and spec.sync.scheduled_checks == "rollback":
                        return self._roll_back(failed, (), None)
                    return failed if failed.run_id != status.last_run_id else None
                last = self._store.run(status.last_run_id) if status.last_run_id else None
                if (status.state != EnvState.FAILED or last is None or last.revision != status.applied_revision
                        or all(c.get("passed") for c in last.checks)):
                    return None  # passing, as before; or Failed for a reason checks cannot clear
                if drift is None or drift.revision != status.applied_revision:
                    drift = self.compute(env, status.applied_revision).plan
                return self._record(replace(base, checks=tuple(results), verify=drift))

    # -- what the daemon sees between runs -------------------------------------------------------

    def status(self, env: str) -> EnvironmentStatus:
        return self._store.status(env)

    def note(self, env: str, reason: str, out_of_sync: bool = False) -> None:
        """Record what the daemon saw without running (``core.outcome.Waiting``): never over a running run."""
        self._store.record(Waiting(env, reason, out_of_sync))

    # -- notification dedup (daemon/notify.py's EventLog) ----------------------------------------

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen by any process sharing the store (send each event once)."""
        return self._store.first_time(key)

    def forget_events(self, prefix: str) -> int:
        return self._store.forget_events(prefix)

    # -- capabilities ----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load what the first schema plan needs ahead of it (only an optimisation)."""
        if self._schema is not None and self.control_state().databases:
            self._schema.warm_up()

    def registry_app(self, env: str, app: str) -> dict[str, Any] | None:
        """An app's resolved resources and config in ``env``, secrets included (the registry endpoint).

        NotFoundError when the platform keeps no such directory (only the registry provider does).
        """
        if not isinstance(self._platform, AppDirectory):
            raise NotFoundError("the registry endpoint needs platform.provider = 'registry'")
        found = self._platform.app_details(env, app)
        if found is None:
            return None
        resolved: dict[str, Any] = _resolve(found, self._secrets.resolve)
        return resolved

    def edit_live(self, env: str, name: str, value: str) -> None:
        """Change a config variable on the platform behind Git's back (``reconciler demo`` shows drift so)."""
        if not isinstance(self._platform, HandEditable):
            raise NotFoundError("this platform cannot be edited by hand here")
        self._platform.edit_config_value(env, name, value)

    # -- reconciling -----------------------------------------------------------------------------

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
            with self._leases.hold(env, ttl, self.settings.daemon.lease_ttl) as held:
                # The same list: a failed release adds its warning after this block ends.
                yield Lease(held=held.held, warnings=held.warnings)
        finally:
            lock.release()

    def reconcile(
        self,
        env: str,
        rev: str | None = None,
        trigger: str = "cli",
        approvals: tuple[str, ...] | list[str] = (),
        record_no_changes: bool = True,
        cancel: threading.Event | None = None,
        break_glass: gates.BreakGlass | None = None,
    ) -> RunOutcome:
        """Bring ``env`` to its target revision (or ``rev``) through every gate. Never raises for
        an expected failure: the outcome says what happened and the store has the record.

        ``break_glass`` overrides a deny window (only that gate), recorded with the run.
        """
        started = time.monotonic()
        # Caller mistakes are errors, not runs: an unknown environment or revision records nothing.
        try:
            self.spec(env)
        except NotFoundError:
            raise
        except ReconcilerError:
            pass  # an invalid control branch, a missing branch: the run below records why
        if rev is not None:
            self._repository.resolve(rev)
        with self.lease(env) as lease:
            if not lease.held:
                return RunOutcome(env, RunResult.BUSY, reason=f"another run is applying {env}; try again shortly",
                                  trigger=trigger, retry_after=2.0)
            self.recover_interrupted(env)  # we hold the lease: an unfinished run here was abandoned
            # Every log line of this run, providers' included, carries the environment (and run id).
            with logs.bound_context(environment=env, trigger=trigger, run_id=None,
                                                         revision=None):
                outcome = self._reconcile(env, rev, trigger, tuple(approvals), not record_no_changes, cancel,
                                          break_glass=break_glass)
                if outcome.result == RunResult.FAILED and outcome.failed_checks and outcome.trigger != "rollback":
                    outcome = self._roll_back(outcome, tuple(approvals), cancel)
        outcome = replace(outcome, warnings=(*outcome.warnings, *lease.warnings),
                          duration=time.monotonic() - started)
        log.info("reconcile.done", environment=env, result=outcome.result, revision=short(outcome.revision),
                 run_id=outcome.run_id, reason=outcome.reason, seconds=round(outcome.duration, 3))
        return outcome

    def _roll_back(self, failed: RunOutcome, approvals: tuple[str, ...],
                   cancel: threading.Event | None) -> RunOutcome:
        """``on_failed_checks: rollback``: pin the previous revision whose checks passed and apply it.

        The rollback is a run of its own (trigger ``rollback``) through the same gates; one that would
        need a destructive change is not applied — the pin is released and the environment stays Failed,
        saying so. Returns the outcome to report (once): the rollback's, or ``failed`` when there is none.
        """
        env = failed.environment
        try:
            spec = self.spec(env)
        except ReconcilerError:
            return failed
        policy = "scheduled_checks" if failed.trigger == SCHEDULED_CHECKS else "on_failed_checks"
        wanted = spec.sync.scheduled_checks if failed.trigger == SCHEDULED_CHECKS else spec.sync.on_failed_checks
        if wanted != "rollback" or failed.revision is None:
            return failed
        previous = self._store.last_good(env, failed.revision)
        if previous is None:
            return replace(failed, warnings=(*failed.warnings, f"{env} has no earlier revision whose checks "
                                             "passed: nothing to roll back to"))
        revision, ref = previous
        label = ref or short(revision)
        why = (f"check{'s' if len(failed.failed_checks) > 1 else ''} {', '.join(failed.failed_checks)} failed "
               f"at {failed.ref or short(failed.revision)}")
        log.warning("reconcile.rollback", to=label, because=why)
        self._store.set_pin(env, revision)
        back = self._reconcile(env, None, "rollback", approvals, False, cancel,
                               rollback=f"to {label} because {why}")
        # A pin's run calls its ref "pinned@<commit>"; the message names the release it went back to.
        named = ref if ref is not None and back.revision == revision else back.ref
        return replace(back, cause=failed, by=f"reconciler (sync.{policy}: rollback)", ref=named)

    def _record(self, outcome: RunOutcome) -> RunOutcome:
        """Write ``outcome`` (the run record and the status) through the store's one writer."""
        return replace(outcome, run_id=self._store.record(outcome))

    def _reconcile(
        self, env: str, rev: str | None, trigger: str, approvals: tuple[str, ...], quiet: bool,
        cancel: threading.Event | None, rollback: str | None = None, break_glass: gates.BreakGlass | None = None,
    ) -> RunOutcome:
        try:
            self.remember_tags()
            target = self.target(env, rev)
        except NotFoundError:
            raise  # an unknown environment is the caller's mistake, not a run
        except ValidationError as exc:
            return self._failed(RunOutcome(env, RunResult.FAILED, trigger=trigger),
                                f"the control branch is invalid: {exc}", exc)
        except ReconcilerError as exc:
            return self._failed(RunOutcome(env, RunResult.FAILED, trigger=trigger), str(exc), exc)
        start = RunOutcome(env, RunResult.PROGRESSING, target.revision, target.ref, trigger=trigger,
                           release=target.tag is not None, quiet=quiet)
        if not target.gate.allowed:
            return self._blocked(start, target.gate)
        assert target.revision is not None
        pinned = self._store.status(env).pinned_revision
        gate = gates.check_pin(env, pinned, self._repository.resolve(rev) if rev is not None else None)
        if not gate.allowed:
            return self._blocked(start, gate)
        try:
            computed = self.compute(env, target.revision)
        except ValidationError as exc:
            return self._blocked(start, gates.invalid(str(exc)))
        except ReconcilerError as exc:  # live state could not be read or planned: no change was made
            return self._failed(start, f"{exc}; nothing was applied", exc)
        plan = computed.plan
        start = replace(start, plan=plan, tree_id=computed.state.content_id)
        if rollback is not None and plan.destructive:
            # Destructive changes are never undone silently: no rollback, the environment stays Failed.
            self._store.set_pin(env, None)
            ids = ", ".join(i.id for i in plan.destructive[:5])
            return self._record(replace(start, result=RunResult.FAILED, reason=(
                f"not rolled back {rollback}: it would need "
                f"destructive changes ({ids}); {env} stays Failed at what it runs — fix forward or roll back "
                "by hand")))
        tag_approvals = None
        if target.tag is not None and target.approvals:
            tag_approvals = gates.TagApprovals(target.tag.name, target.approvals, target.signed_by or gates.SignedBy())
        gate = gates.check_destructive(target.spec, plan.destructive, approvals, tag_approvals,
                                       self.database_approvers(env) if plan.destructive else None)
        if gate.allowed and not plan.is_empty():
            window = gates.check_window(target.spec, self.clock())
            gate = gates.break_glass(window, break_glass)
            if gate is not window:  # the operator broke the glass: the run says who and why, for history
                log.warning("reconcile.break_glass", who=break_glass.who if break_glass else None,
                            reason=break_glass.reason if break_glass else None, window=window.reason)
                assert break_glass is not None and window.retry_at is not None
                start = replace(start, break_glass=break_glass, reason=(
                    f"break glass by {break_glass.who}: {break_glass.reason} (deny window until "
                    f"{window.retry_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC overridden)"))
            elif break_glass is not None and window.allowed:
                start = replace(start, warnings=(*start.warnings, f"--break-glass: no deny window is open in {env}; "
                                                 "there was nothing to override"))
        if not gate.allowed:
            return self._blocked(start, gate)
        if rollback is not None:
            start = replace(start, reason=f"rolled back {rollback} (pinned); 'reconciler unpin {env}' releases it")
        if plan.is_empty():
            done = replace(start, result=RunResult.NO_CHANGES, verify=plan)
            if target.spec.sync.run_checks and (self._store.status(env).state == EnvState.FAILED
                                                or self._store.checks_for(env, computed.state.content_id) is None):
                # Nothing to apply, but the last run failed (its checks, perhaps) or this desired state
                # was never checked here (only checks changed): check it, so promotion can rely on it.
                done = self._judge(done, self._checks(computed.state, env, None))
            return self._record(done)
        start = self._record(start)
        assert start.run_id is not None
        logs.bind_context(run_id=start.run_id, revision=short(target.revision))
        log.info("reconcile.apply", steps=len(plan.steps), items=len(plan.items))
        applied: list[str] = []
        run_checks = target.spec.sync.run_checks
        after_schema: list[dict[str, Any]] | None = None

        def before_destructive() -> bool:
            nonlocal after_schema
            after_schema = self._checks(computed.state, env, "after-schema")
            return not _any_failed(after_schema)

        checks: list[dict[str, Any]] = []
        try:
            self._apply(computed, target, plan, applied, start.run_id, cancel,
                        before_destructive if run_checks else None)
            verify = self.compute(env, target.revision).plan
            if run_checks:
                checks = after_schema if after_schema is not None else self._checks(computed.state, env, "after-schema")
                if not _any_failed(checks):
                    checks = [*checks, *self._checks(computed.state, env, "after-apply")]
        except Cancelled as exc:
            log.warning("reconcile.cancelled", applied=len(applied))
            return self._record(replace(start, result=RunResult.INTERRUPTED, reason=str(exc), applied=tuple(applied)))
        except WaitingForMerge as exc:
            # A platform proposed a change (a pushed branch) that counts once merged: not a failure.
            log.info("reconcile.waiting", reason=str(exc), applied=len(applied))
            return self._record(replace(start, result=RunResult.WAITING, reason=str(exc), applied=tuple(applied),
                                        retry_after=exc.delay))
        except ReconcilerError as exc:
            log.warning("reconcile.failed", error=str(exc), applied=len(applied))
            return self._failed(replace(start, applied=tuple(applied)), f"{exc}", exc)
        done = replace(start, applied=tuple(applied), verify=verify, checks=tuple(checks))
        if _any_failed(checks):
            return self._record(self._judge(replace(done, result=RunResult.SUCCEEDED), checks))
        if verify.items:
            still = ", ".join(i.id for i in verify.items[:5])
            reason = f"{len(verify.items)} changes still differ after apply: {still}"
            return self._record(replace(done, result=RunResult.FAILED, reason=reason))
        return self._record(replace(done, result=RunResult.SUCCEEDED))

    def _checks(self, state: DesiredState, env: str, when: str | None) -> list[dict[str, Any]]:
        """Run ``env``'s declared checks of ``state`` (those of ``when`` only, when given); their results as JSON."""
        chosen = [c for c in for_environment(state, env) if when is None or c.when == when]
        if not chosen:
            return []
        results = [r.as_json() for r in run_checks(chosen, self._secrets.resolve)]
        log.info("reconcile.checks", when=when or "all", checks=len(results),
                 failed=[r["name"] for r in results if not r["passed"]])
        return results

    @staticmethod
    def _judge(outcome: RunOutcome, checks: list[dict[str, Any]], moment: str = "after apply") -> RunOutcome:
        """``outcome`` with the checks it ran; Failed, naming the checks, when one of them failed."""
        outcome = replace(outcome, checks=tuple(checks))
        failed = [c for c in checks if not c["passed"]]
        if not failed:
            return outcome
        names = ", ".join(c["name"] for c in failed)
        word = "check" if len(failed) == 1 else "checks"
        reason = f"{word} {names} failed {moment}: {failed[0]['detail']}"
        if outcome.verify is not None and outcome.verify.items and outcome.result != RunResult.NO_CHANGES:
            reason += f"; {len(outcome.verify.items)} planned changes (destructive steps) were not applied"
        return replace(outcome, result=RunResult.FAILED, reason=reason)

    def _failed(self, outcome: RunOutcome, reason: str, error: ReconcilerError) -> RunOutcome:
        """A failed run, with when trying again may help when the error says so (``TemporaryError.delay``)."""
        retry_after = error.delay if isinstance(error, TemporaryError) else None
        return self._record(replace(outcome, result=RunResult.FAILED, reason=reason, retry_after=retry_after))

    def _blocked(self, outcome: RunOutcome, gate: Gate) -> RunOutcome:
        blocked = self._record(replace(outcome, result=RunResult.BLOCKED, reason=gate.reason, gate=gate.code,
                                       retry_at=gate.retry_at))
        log.warning("reconcile.blocked", environment=outcome.environment, gate=gate.code, reason=gate.reason,
                    revision=short(outcome.revision))
        return blocked

    def _apply(
        self, computed: Computed, target: Target, plan: Plan, applied: list[str], run_id: str,
        cancel: threading.Event | None = None, before_destructive: Callable[[], bool] | None = None,
    ) -> None:
        env = target.environment
        assert target.revision is not None
        ctx = ApplyContext(environment=env, secrets=self._secrets, fingerprints=self._store, releases=self._store,
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
            if before_destructive is not None and step.phase >= Phase.SCHEMA_DESTRUCTIVE:
                go_on, before_destructive = before_destructive(), None
                if not go_on:
                    log.warning("reconcile.checks_failed_before_destructive", skipped=len(plan.steps))
                    return
            self._apply_step(ctx, computed, live, step)
            self._store.record_applied(run_id, step.ids, offset=len(applied))
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
        self._platform.apply(ctx, change, desired.objects.get(key), live.get(key))

    def _apply_schema_step(self, desired: DesiredEnvironment, step: Step) -> None:
        """Apply one database's statements of one phase.

        The statements are planned again first: what the additive phase changed can alter the
        destructive statements migra proposes. Only ids that were planned (and therefore gated and
        approved) may run; anything new means the database changed under us, and the run fails.
        """
        assert self._schema is not None
        database = next(d for d in desired.databases if d.name == step.name)
        url = self._database_url(desired.name, database)
        fresh = self._schema.plan(database.name, url, [(f.path, f.text) for f in database.files],
                                  database.content_key, database.managed_schemas)
        planned = set(step.ids)
        now = [i for i in fresh if i.phase == step.phase]
        unexpected = [i.id for i in now if i.id not in planned]
        if unexpected:
            raise SchemaError(f"the schema of {database.name} changed during the run; unplanned statements: "
                              f"{', '.join(unexpected[:5])}; the next run plans again")
        if now:
            self._schema.apply(database.name, url, now)

    # -- crash recovery --------------------------------------------------------------------------

    def recover_interrupted(self, env: str | None = None) -> list[str]:
        """Mark runs left Progressing by a process that is gone as Interrupted; return their ids.

        A run is abandoned when its process is known dead (same host) or no live lease of its owner
        covers the environment any more. With ``env`` given the caller holds that environment's
        lease, so any unfinished run there is abandoned.
        """
        found = []
        for run in self._store.unfinished_runs():
            if env is not None and run.environment != env:
                continue
            if env is None and not self._store.abandoned(run):
                continue
            reason = (f"interrupted (the process stopped during the run; {len(run.applied)} changes had been "
                      "applied); planning again from live state")
            self._store.record(RunOutcome(run.environment, RunResult.INTERRUPTED, run.revision, run.ref, run.id,
                                          reason, applied=tuple(run.applied), trigger=run.trigger))
            log.warning("reconcile.interrupted_run", run_id=run.id, environment=run.environment,
                        applied=len(run.applied))
            found.append(run.id)
        return found

    # -- pins ------------------------------------------------------------------------------------

    def pin(self, env: str, rev: str) -> str:
        self.spec(env)
        commit = self._repository.resolve(rev)
        self._store.set_pin(env, commit)
        return commit

    def unpin(self, env: str) -> None:
        self.spec(env)
        self._store.set_pin(env, None)


def _any_failed(checks: list[dict[str, Any]]) -> bool:
    return any(not c["passed"] for c in checks)


def _resolve(value: Any, resolve: Callable[[str], str]) -> Any:
    """Secrets resolved at request time for the registry endpoint; never stored, never logged."""
    if isinstance(value, Sensitive):
        return resolve(value.template)
    if isinstance(value, dict):
        return {k: _resolve(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, resolve) for v in value]
    return value
