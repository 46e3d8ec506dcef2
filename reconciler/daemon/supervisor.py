"""The daemon's supervisor: turns events into runs, on schedule, with backoff, and stops cleanly.

Events: a ref change seen by the watcher (local repositories), the poll interval and webhooks
(remote ones: fetch first), each environment's drift-check interval, the end of a deny window, a
retry after a failure. Every event funnels into two coalescing points — one fetch signal and one
run queue per environment — and every run is ``Reconciler.reconcile``; the supervisor only
decides *when*, never *what*. It writes nothing itself: what it sees between runs it tells the
app (``Reconciler.note``, ``Reconciler.check_drift``), which records it through the store.

Several daemons on one shared state database (``app/replicas.py``): only the leader polls and
watches the source and keeps the tag bookkeeping; whoever fetches a change (the leader, or the
replica a webhook reached) posts it and the others fetch and evaluate too. Each daemon evaluates,
drift-checks and runs only the environments assigned to it among the live members; when the
members change (a daemon stopped or died), everyone evaluates again and takes over what is now theirs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler import logs
from reconciler.app.reconcile import Reconciler
from reconciler.app.replicas import Membership, assign
from reconciler.config import Settings
from reconciler.core.gates import BreakGlass, GateCode
from reconciler.core.outcome import SCHEDULED_CHECKS, EnvState, RunOutcome, RunResult
from reconciler.core.plan import Plan
from reconciler.core.revisions import short
from reconciler.daemon.metrics import Metrics
from reconciler.daemon.retries import Backoff
from reconciler.daemon.triggers import DRIFT_CHECK, RunQueue, Signal
from reconciler.daemon.watch import RefWatcher
from reconciler.durations import parse_duration
from reconciler.errors import ReconcilerError

log = logs.get_logger(__name__)


def _malloc_trim() -> Callable[[], None]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None  # not glibc: nothing to do
    def release() -> None:
        trim(0)

    return release


# A run allocates and frees a few MB (inspections, plans); give the pages back so an idle daemon
# stays small instead of keeping its high-water mark.
release_memory = _malloc_trim()

MIN_FETCH_GAP = 0.25  # a trigger this soon after the last fetch and evaluation ended is part of a burst
BURST_QUIET = 0.2  # a burst is over after this long without a trigger...
MAX_BURST_WAIT = 5.0  # ...or after this long, whichever comes first
REPLICA_TICK = 1.0  # how often a replica looks at the members, the leader lease and the other replicas' news
LEADER_ONLY = frozenset({"poll", "watch"})  # triggers a follower ignores: the leader fetches for everyone
FROM_REPLICA = "replica:"  # a trigger passed on by another replica: it has told the others already
MEMBERS_CHANGED = "rebalance"  # the live replicas changed: evaluate again, take over what is now ours
NOT_NEWS = frozenset({"poll", "startup", MEMBERS_CHANGED})  # triggers worth telling the others only if a ref moved
MERGE_CHECK = 60.0  # seconds between looks for a merge when the platform names no interval


@dataclass
class DaemonState:
    ready: bool = False
    fetch_error: str | None = None
    recovered: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


class Daemon:
    """One workspace's supervisor (``daemon/workspaces.Workspaces`` owns one per workspace). Everything
    it does is that workspace's: its source, its runs, its schedule, its metrics' ``workspace`` label and
    its log lines' ``workspace=``."""

    def __init__(self, settings: Settings, reconciler: Reconciler, notifier: object | None = None,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.workspace = settings.workspace_name
        self.reconciler = reconciler
        self.metrics = metrics or Metrics(workspace=self.workspace)
        self.state = DaemonState()
        self.fetch_signal = Signal()
        self.cancel = threading.Event()
        self.stopping = threading.Event()
        self.queue = RunQueue(self._work, workers=4)
        self.scheduler = BackgroundScheduler(timezone=dt.UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                           "misfire_grace_time": 30})
        self.notifier = notifier
        self.watcher: RefWatcher | None = None
        self._fetcher = threading.Thread(target=self._fetch_loop, name="fetcher", daemon=True)
        self._drift_intervals: dict[str, float] = {}
        # After a failed run, wait each delay in turn (daemon.retry_delays), then the last one again.
        self.backoff = Backoff([parse_duration(d) for d in settings.daemon.retry_delays])
        self.replicas = reconciler.replicas()
        self.membership = Membership(leader=True, members=())  # alone: everything is ours
        self._seen_news: str | None = None
        self._owners: dict[str, str] = {}  # environment → the member that runs it, as of the last evaluation
        self._replica_thread = threading.Thread(target=self._replica_loop, name="replicas", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, watch: bool = True) -> None:
        """Start; ``watch=False`` when someone else watches this workspace's local repository (the
        shared watcher of ``daemon/workspaces.py``, which notifies ``fetch_signal``)."""
        if self.replicas is not None:
            _, self._seen_news = self._look(renew=True)  # a member before the first evaluation: the others count us
            self._replica_thread.start()
        self.state.recovered = self.reconciler.recover_interrupted()
        self.scheduler.start()
        poll = parse_duration(self.settings.source.poll_interval)
        self.scheduler.add_job(lambda: self.fetch_signal.notify("poll"), IntervalTrigger(seconds=max(poll, 1.0)),
                               id="poll", replace_existing=True)
        watch_dir = self.reconciler.watch_dir() if watch else None
        if watch_dir is not None:
            self.watcher = RefWatcher(watch_dir, lambda: self.fetch_signal.notify("watch"))
            self.watcher.start()
        self._fetcher.start()
        self.fetch_signal.notify("startup")
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        log.info("daemon.started", workspace=self.workspace, source=self.reconciler.source_label,
                 recovered_runs=len(self.state.recovered))

    def _warm_up(self) -> None:
        try:
            self.reconciler.warm_up()
        except Exception as exc:  # only an optimisation: the first plan imports what it needs anyway
            log.debug("daemon.warm_up_skipped", error=type(exc).__name__)

    def stop(self, timeout: float) -> bool:
        """Stop within ``timeout``: no new runs, the change in flight finishes, then everything halts."""
        log.info("daemon.stopping", workspace=self.workspace, in_flight=self.queue.busy())
        self.stopping.set()
        self.cancel.set()
        self.fetch_signal.notify("stop")
        if self.watcher is not None:
            self.watcher.stop()
        if self.scheduler.running:  # not when start() failed before starting it
            self.scheduler.shutdown(wait=False)
        finished = self.queue.stop(timeout)
        if self._fetcher.ident is not None:
            self._fetcher.join(timeout=2)
        if self.replicas is not None:
            if self._replica_thread.ident is not None:
                self._replica_thread.join(timeout=REPLICA_TICK * 3)
            self.replicas.leave()  # the others take over now, not after lease_ttl
        if not finished:
            log.warning("daemon.stop_timeout", in_flight=self.queue.busy())
        log.info("daemon.stopped", clean=finished)
        return finished

    # -- replicas ----------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.membership.leader

    def mine(self, env: str) -> bool:
        """True when this daemon runs ``env`` (always, unless it shares a state database with others)."""
        if self.replicas is None or not self.membership.members:
            return True
        return self._owners.get(env, self.replicas.owner) == self.replicas.owner

    def _look(self, renew: bool) -> tuple[bool, str | None]:
        """Renew (when due) and look at the members, the leader lease and the news other replicas
        announced; whether the members or the leader changed, and the news."""
        assert self.replicas is not None
        if renew:
            self.replicas.renew()
        if renew or not self.membership.leader:  # the leader renews every ttl/3; the others try every tick
            self.replicas.lead()
        before = self.membership
        self.membership, news = self.replicas.look()
        self.metrics.leader.set(1 if self.membership.leader else 0)
        self.metrics.replicas.set(len(self.membership.members))
        if before.leader != self.membership.leader:
            log.info("daemon.leader" if self.membership.leader else "daemon.follower",
                     members=len(self.membership.members))
        return before != self.membership, news

    def _replica_loop(self) -> None:
        assert self.replicas is not None
        renew_every = self.replicas.ttl / 3
        last_renew = time.monotonic()
        while not self.stopping.wait(min(REPLICA_TICK, renew_every)):
            due = time.monotonic() - last_renew >= renew_every
            try:
                changed, news = self._look(renew=due)
                if due:
                    last_renew = time.monotonic()
            except ReconcilerError as exc:
                log.warning("daemon.replicas_unreachable", error=str(exc))
                continue
            if changed:
                log.info("daemon.members_changed", members=len(self.membership.members), leader=self.membership.leader)
                self.fetch_signal.notify(MEMBERS_CHANGED)
            if news is not None and news != self._seen_news:
                self._seen_news = news
                self.fetch_signal.notify(FROM_REPLICA + news.partition(":")[2])

    def _announce(self, sources: set[str], trigger: str, moved: bool) -> None:
        """Tell the other replicas about a change this daemon fetched or was told of (a webhook, an
        unpin), unless another replica told us: it has told everyone."""
        own = {s for s in sources if not s.startswith(FROM_REPLICA)}
        if self.replicas is None or not own or not (moved or own - NOT_NEWS):
            return
        try:
            self._seen_news = self.replicas.announce(trigger)  # our own news: not a reason to fetch again
        except ReconcilerError as exc:
            log.warning("daemon.announce_failed", error=str(exc))

    # -- fetching and evaluating -----------------------------------------------------------------

    def request_fetch(self, source: str) -> None:
        self.fetch_signal.notify(source)

    def _fetch_loop(self) -> None:
        logs.bind_context(workspace=self.workspace)  # this thread is this workspace's
        last_end = -MIN_FETCH_GAP
        while not self.stopping.is_set():
            sources = self.fetch_signal.wait(timeout=1.0)
            if sources is None or self.stopping.is_set():
                continue
            if self.replicas is not None and not self.membership.leader:
                sources -= LEADER_ONLY
                if not sources:
                    continue
            if time.monotonic() - last_end < MIN_FETCH_GAP:
                # Inside a burst: the first trigger fetched at once; the rest (those that came while it
                # fetched and evaluated, however long that took on a busy machine, and those right
                # after) wait for the burst to go quiet (bounded) and share one trailing fetch.
                deadline = time.monotonic() + MAX_BURST_WAIT
                while time.monotonic() < deadline and not self.stopping.is_set():
                    more = self.fetch_signal.wait(timeout=BURST_QUIET)
                    if more is None:
                        break
                    sources |= more
            self._fetch_and_evaluate(sources)
            last_end = time.monotonic()

    def _fetch_and_evaluate(self, sources: set[str]) -> None:
        try:
            moved = False
            if sources != {"startup"}:  # opening a remote repository fetched it a moment ago
                moved = self.reconciler.fetch()
            self.metrics.fetches.labels("ok").inc()
            self.metrics.last_fetch = time.time()
            self.state.fetch_error = None
        except ReconcilerError as exc:
            self.metrics.fetches.labels("error").inc()
            self.state.fetch_error = str(exc)
            log.warning("daemon.fetch_failed", error=str(exc))
            return
        self.state.ready = True
        trigger = "commit" if "watch" in sources else next(iter(sorted(sources)))
        trigger = trigger.removeprefix(FROM_REPLICA)
        self._announce(sources, trigger, moved)
        try:
            self.evaluate(trigger)
        except Exception:
            log.exception("daemon.evaluate_failed")

    def evaluate(self, trigger: str) -> None:
        """Look at what each environment should run and queue the runs that are due."""
        try:
            envs = self.reconciler.environments()
        except ReconcilerError as exc:
            log.warning("daemon.control_branch_invalid", error=str(exc))
            envs = self.reconciler.known_environments()
        if self.is_leader():
            try:
                self.reconciler.remember_tags()  # moved tags are judged against what was seen first
            except ReconcilerError as exc:
                log.warning("daemon.tags_not_recorded", error=str(exc))
        self._owners = assign(envs, self.membership.members)
        envs = [env for env in envs if self.mine(env)]  # the other replicas evaluate the rest
        self._schedule_drift_checks(envs)
        for env in envs:
            try:
                self._evaluate_env(env, trigger)
            except ReconcilerError as exc:
                log.warning("daemon.evaluate_env_failed", environment=env, error=str(exc))

    def _evaluate_env(self, env: str, trigger: str) -> None:
        prev = self.reconciler.status(env)
        self.metrics.set_drift(env, prev.drift_count)  # a sample from the first evaluation on, checked or not
        target = self.reconciler.target(env)
        self.metrics.set_revisions(env, target.revision, prev.applied_revision)
        if target.revision is None:
            if prev.reason != target.gate.reason:
                self.reconciler.note(env, target.gate.reason)  # e.g. no release tag yet
            return
        if not target.gate.allowed:
            if prev.state == EnvState.BLOCKED and prev.reason == target.gate.reason:
                return  # still refused for the same reason: nothing new to record
            self.queue.submit(env, trigger, target.revision)  # the run records the refusal in history and status
            return
        moved = target.revision != prev.applied_revision or (target.tag is not None and target.ref != prev.applied_ref)
        if target.pinned and target.newer_available and not moved:
            self.reconciler.note(env, f"pinned at {short(target.revision)}; newer revision "
                                 f"{short(target.newer_available)} is not applied until 'reconciler unpin {env}'")
        if not moved and prev.state in (EnvState.SYNCED, EnvState.OUT_OF_SYNC, EnvState.PROGRESSING):
            return
        if not moved and prev.state == EnvState.FAILED and self.state.failures.get(env):
            return  # a retry with backoff is already scheduled
        if not moved and prev.state == EnvState.FAILED and self._failed_on_schedule(env, prev.last_run_id):
            return  # the drift schedule checks again, and records the recovery
        if moved and not target.spec.sync.automatic:
            self.reconciler.note(env, f"revision {short(target.revision)} ({target.ref}) is waiting: automatic sync "
                                      f"is off; run 'reconciler apply {env}'", out_of_sync=True)
            return
        if moved and prev.state == EnvState.SYNCED:
            # Synced no longer holds from the moment the new revision is known: say so before the run
            # is queued (it may wait behind another), not when it starts applying.
            self.reconciler.note(env, f"revision {short(target.revision)} ({target.ref}) found; applying",
                                 out_of_sync=True)
        self.queue.submit(env, "tag" if target.tag is not None and moved else trigger, target.revision)

    def _failed_on_schedule(self, env: str, run_id: str | None) -> bool:
        """True when ``env``'s last run is a failure of its scheduled checks (not something a run retries)."""
        last = self.reconciler.queries.run(env, run_id) if run_id else None
        return last is not None and last.trigger == SCHEDULED_CHECKS

    def _promote_downstream(self, env: str) -> None:
        """After ``env`` verified a tree, environments promoted from it may now pass their gate."""
        try:
            names = self.reconciler.environments()
        except ReconcilerError:
            return
        for other in names:
            try:
                if self.reconciler.spec(other).track.promoted_from != env:
                    continue
                if self.mine(other):
                    self._evaluate_env(other, "promotion")
                elif self.replicas is not None:
                    self.replicas.announce("promotion")  # the replica that runs it evaluates it
            except ReconcilerError as exc:
                log.warning("daemon.evaluate_env_failed", environment=other, error=str(exc))

    # -- runs --------------------------------------------------------------------------------------

    def request_sync(self, env: str, trigger: str = "api") -> bool:
        return self.queue.submit(env, trigger)

    def break_glass(self, env: str, who: str, reason: str) -> RunOutcome:
        """A run now, in the caller's thread, that may override a deny window (``core.gates.break_glass``).

        Another run applying ``env`` makes it Busy (nothing recorded): the caller asks again.
        """
        # The caller's thread (an API request's): its log lines are this workspace's, like the queue's.
        with logs.bound_context(workspace=self.workspace, environment=env, trigger="break-glass"):
            outcome = self.reconciler.reconcile(env, trigger="break-glass", cancel=self.cancel,
                                                break_glass=BreakGlass(who, reason))
            self._after(env, outcome)
        return outcome

    def _work(self, env: str, trigger: str) -> None:
        if self.stopping.is_set():
            return
        logs.bind_context(workspace=self.workspace, environment=env, trigger=trigger)
        try:
            if trigger == DRIFT_CHECK:
                self._drift_check(env)
            else:
                self._sync(env, trigger)
        finally:
            logs.unbind_context("workspace", "environment", "trigger")
            release_memory()

    def _sync(self, env: str, trigger: str, rev: str | None = None) -> RunOutcome:
        outcome = self.reconciler.reconcile(env, rev, trigger=trigger, record_no_changes=False, cancel=self.cancel)
        self._after(env, outcome)
        return outcome

    def _after(self, env: str, outcome: RunOutcome) -> None:
        if outcome.result != RunResult.BUSY:
            self.metrics.runs.labels(env, outcome.result.value).inc()
            self.metrics.run_duration.labels(env).observe(outcome.duration)
            blocked = (outcome.gate or "unknown") if outcome.result == RunResult.BLOCKED else None
            self.metrics.set_blocked(env, blocked)
            status = self.reconciler.status(env)
            self.metrics.set_revisions(env, outcome.revision, status.applied_revision)
            self.metrics.set_drift(env, status.drift_count)  # a run's verification (a self-heal's) counts too
        if outcome.result == RunResult.BUSY:
            self._retry(env, outcome.retry_after or 0.0, "busy")
        elif outcome.result == RunResult.FAILED:
            count = self.state.failures.get(env, 0) + 1
            self.state.failures[env] = count
            self._retry(env, self.backoff.delay(count, outcome.retry_after), "retry")
        elif outcome.result == RunResult.WAITING:
            self.state.failures.pop(env, None)
            self._retry(env, outcome.retry_after or MERGE_CHECK, "merge-check")  # look for the merge again
        else:
            self.state.failures.pop(env, None)
        if outcome.result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES) and not self.stopping.is_set():
            self._promote_downstream(env)
        if outcome.result == RunResult.BLOCKED and outcome.retry_at is not None:
            # The window closes at retry_at on the reconciler's clock (which RECONCILER_NOW may set to
            # another day); the scheduler keeps real time, so it is given the distance. A window that
            # closed since the gate looked still gets its run, a second from now.
            # A soak ends the same way: the gate says when.
            delay = max(0.0, (outcome.retry_at - self.reconciler.clock()).total_seconds()) + 1.0
            trigger = "soak-ended" if outcome.gate == GateCode.SOAKING else "window-closed"
            self._schedule(env, delay, trigger, f"window:{env}")
        if self.notifier is not None:
            self.notifier.outcome(outcome)  # type: ignore[attr-defined]

    def _retry(self, env: str, delay: float, trigger: str) -> None:
        self._schedule(env, delay, trigger, f"retry:{env}")

    def _schedule(self, env: str, delay: float, trigger: str, job_id: str) -> None:
        """Queue a run of ``env`` ``delay`` real seconds from now (apscheduler keeps real time)."""
        if self.stopping.is_set():
            return
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        self.scheduler.add_job(self.queue.submit, DateTrigger(run_date=when), args=[env, trigger],
                               id=job_id, replace_existing=True)

    # -- drift checks ------------------------------------------------------------------------------

    def _schedule_drift_checks(self, envs: list[str]) -> None:
        for env in envs:
            try:
                interval = parse_duration(self.reconciler.spec(env).sync.drift_check_interval)
            except ReconcilerError:
                continue
            if self._drift_intervals.get(env) == interval:
                continue
            self._drift_intervals[env] = interval
            self.scheduler.add_job(self.queue.submit, IntervalTrigger(seconds=max(interval, 1.0)),
                                   args=[env, DRIFT_CHECK], id=f"drift:{env}", replace_existing=True)
        for env in set(self._drift_intervals) - set(envs):
            self._drift_intervals.pop(env)
            self.scheduler.remove_job(f"drift:{env}")

    def _drift_check(self, env: str) -> None:
        status = self.reconciler.status(env)
        if status.applied_revision is None or status.state == EnvState.PROGRESSING:
            return
        try:
            plan, _first_seen = self.reconciler.check_drift(env)
        except ReconcilerError as exc:
            log.warning("daemon.drift_check_failed", environment=env, error=str(exc))
            return
        self.metrics.set_drift(env, len(plan.pending))
        if self.notifier is not None:
            self.notifier.drift(env, plan)  # type: ignore[attr-defined]
        self._scheduled_checks(env, plan)
        if not plan.items:
            return
        spec = self.reconciler.spec(env)
        if spec.sync.self_heal and self.state.failures.get(env):
            log.info("daemon.self_heal_deferred", environment=env, reason="the last run failed; retrying with backoff")
        elif spec.sync.self_heal:
            # Heal to what runs now (not to a newer revision a gate may be holding back).
            rev = status.applied_ref if spec.track.tag is not None and status.applied_ref else status.applied_revision
            log.info("daemon.self_heal", environment=env, items=len(plan.items))
            self._sync(env, "self-heal", rev)

    def _scheduled_checks(self, env: str, plan: Plan) -> None:
        """``sync.scheduled_checks``: check what runs with each drift check; a failure or a recovery is
        recorded (by the app) and notified once. No retry is scheduled: the next drift check is the retry."""
        try:
            outcome = self.reconciler.check_on_schedule(env, plan)
        except ReconcilerError as exc:
            log.warning("daemon.scheduled_checks_failed", environment=env, error=str(exc))
            return
        if outcome is None:
            return
        self.metrics.runs.labels(env, outcome.result.value).inc()
        if outcome.result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES):
            self.state.failures.pop(env, None)
        if self.notifier is not None:
            self.notifier.outcome(outcome)  # type: ignore[attr-defined]
