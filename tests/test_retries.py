"""The daemon's retry after a failed run waits what the error asks, on the configured backoff (issue 11).

An error that knows when trying again may help carries it (``TemporaryError.delay``: a Retool
``Retry-After``, a lock timeout's backoff, a failed fetch); the app puts it on the run's outcome
(``retry_after``) and the daemon waits at least that long. Without one, the daemon waits
``daemon.retry_delays`` in turn, then the last one again, each stretched by up to a tenth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import pytest

from reconciler.core.objects import LiveState, ObjectKey
from reconciler.core.outcome import RunOutcome, RunResult
from reconciler.daemon.retries import JITTER, Backoff
from reconciler.daemon.supervisor import Daemon
from reconciler.errors import PermanentError, ProviderError, ReconcilerError, TemporaryError
from reconciler.providers.registry import RegistryProvider
from tests.conftest import World

DELAYS = [15.0, 30.0, 60.0]

# (attempt, what the error asked) → the delay before jitter
BACKOFF = [
    (1, None, 15.0),
    (2, None, 30.0),
    (3, None, 60.0),
    (9, None, 60.0),  # the last delay, for ever
    (1, 120.0, 120.0),  # the error asks for longer than the schedule: its delay wins
    (2, 5.0, 30.0),  # the error asks for less: never sooner than the schedule
    (1, 0.0, 15.0),
]


@pytest.mark.parametrize(("attempt", "asked", "base"), BACKOFF)
def test_the_retry_delay_is_the_longer_of_the_schedule_and_the_errors_own(
    attempt: int, asked: float | None, base: float,
) -> None:
    backoff = Backoff(DELAYS)
    for _ in range(20):  # jitter is random: every draw stays within its bound
        assert base <= backoff.delay(attempt, asked) <= base * (1 + JITTER)


class FailingPlatform(RegistryProvider):
    """The registry provider whose reads fail with ``error``."""

    def __init__(self, url: str, error: ReconcilerError) -> None:
        super().__init__(url)
        self.error = error

    def read(
        self, environment: str, *, declared: Collection[ObjectKey] | None = None, owner: bool = True
    ) -> LiveState:
        raise self.error


@pytest.mark.parametrize(("error", "retry_after"), [
    (TemporaryError("the platform answered 429", delay=42.0), 42.0),
    # A temporary error that does not know when it may pass asks for nothing: daemon.retry_delays
    # decide (a default of its own would override a configured schedule shorter than it).
    (ProviderError("cannot connect to the database: connection refused"), None),
    (PermanentError("the platform refused the token"), None),
])
def test_a_failed_run_carries_the_errors_delay(pyworld: World, error: ReconcilerError,
                                                retry_after: float | None) -> None:
    r = pyworld.reconciler(platform=FailingPlatform(pyworld.settings().registry_url, error))
    outcome = r.reconcile("staging")
    assert outcome.result == RunResult.FAILED
    assert outcome.retry_after == retry_after


@pytest.mark.parametrize(("retry_after", "base"), [(None, 15.0), (300.0, 300.0)])
def test_the_daemon_schedules_the_retry_after_the_errors_delay(pyworld: World, retry_after: float | None,
                                                                base: float) -> None:
    pyworld.configure(daemon={"retry_delays": ["15s", "1m"]})
    daemon = Daemon(pyworld.settings(), pyworld.reconciler())  # not started: the job stays pending, readable
    before = dt.datetime.now(dt.UTC)
    daemon._after("staging", RunOutcome("staging", RunResult.FAILED, reason="boom", retry_after=retry_after))
    after = dt.datetime.now(dt.UTC)
    job = daemon.scheduler.get_job("retry:staging")
    assert job is not None
    when = job.trigger.run_date
    assert before + dt.timedelta(seconds=base) <= when <= after + dt.timedelta(seconds=base * (1 + JITTER))
