"""Trigger coalescing: a burst of events becomes one fetch, and at most one queued run per environment.

Called by the supervisor, the file watcher, the scheduler and the webhook endpoints. Git events
are triggers, not truth: whatever arrives, the run that follows re-reads Git and live state, so
losing or merging triggers can never cause a wrong apply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from reconciler import logs

log = logs.get_logger(__name__)

DRIFT_CHECK = "drift-check"


@dataclass
class _Slot:
    running: bool = False
    queued: str | None = None  # the trigger of the one run waiting behind the running one
    running_for: str | None = None  # the revision the running run was asked for, when known
    queued_for: str | None = None
    merged: int = 0


@dataclass
class RunQueue:
    """At most one running and one queued run per environment; extra requests merge into the queued one."""

    work: Callable[[str, str], None]
    workers: int = 4
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: threading.Condition = field(init=False)
    _pool: ThreadPoolExecutor = field(init=False)
    accepting: bool = True

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._lock)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="reconcile")

    def submit(self, env: str, trigger: str, revision: str | None = None) -> bool:
        """Ask for a run of ``env``; return False when it merged into one running or queued.

        ``revision`` is what the caller saw as the target: a request for the revision a run is
        already applying (a burst of hooks during that run) adds nothing and merges into it.
        """
        with self._lock:
            if not self.accepting:
                return False
            slot = self._slots.setdefault(env, _Slot())
            if slot.running:
                same = revision is not None and revision in (slot.running_for, slot.queued_for)
                if same or (slot.queued is not None and not (slot.queued == DRIFT_CHECK and trigger != DRIFT_CHECK)):
                    slot.merged += 1
                    return False
                slot.queued, slot.queued_for = trigger, revision  # a sync outranks a queued drift check
                return True
            slot.running, slot.running_for = True, revision
        self._pool.submit(self._run, env, trigger)
        return True

    def _run(self, env: str, trigger: str) -> None:
        while True:
            try:
                self.work(env, trigger)
            except Exception:  # the worker must survive anything a run throws
                log.exception("daemon.run_crashed", environment=env, trigger=trigger)
            with self._lock:
                slot = self._slots[env]
                if slot.queued is None or not self.accepting:
                    slot.running = False
                    slot.queued = slot.running_for = slot.queued_for = None
                    self._idle.notify_all()
                    return
                trigger, slot.queued = slot.queued, None
                slot.running_for, slot.queued_for = slot.queued_for, None

    def busy(self) -> list[str]:
        with self._lock:
            return [env for env, slot in self._slots.items() if slot.running]

    def stop(self, timeout: float) -> bool:
        """Refuse new work and wait up to ``timeout`` for runs in flight; True when all finished."""
        with self._lock:
            self.accepting = False
            for slot in self._slots.values():
                slot.queued = None
            finished = self._idle.wait_for(lambda: not any(s.running for s in self._slots.values()), timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return bool(finished)


class Signal:
    """A level-triggered flag: any number of ``set`` calls before the consumer wakes count as one."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.requests = 0
        self._lock = threading.Lock()
        self.sources: set[str] = set()

    def notify(self, source: str) -> None:
        with self._lock:
            self.requests += 1
            self.sources.add(source)
        self._event.set()

    def wait(self, timeout: float | None = None) -> set[str] | None:
        """Block until set (or timeout); return the sources gathered and clear, or None on timeout."""
        if not self._event.wait(timeout):
            return None
        with self._lock:
            self._event.clear()
            sources, self.sources = self.sources, set()
        return sources
