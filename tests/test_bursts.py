"""A burst of triggers costs at most two fetches, however long a fetch takes (issue 12).

The first trigger of a burst fetches at once; every trigger that arrives while that fetch and its
evaluation run (long on a busy machine, or against a slow remote) or right after joins one trailing
fetch once the burst goes quiet. Measured before in ``bench/daemon.py``: 3 to 4 fetches for a
1,000-webhook burst on a loaded machine, because a slow fetch cycle let the burst start over.

The test makes the fetch slow on purpose (it waits until the test has sent a part of the burst) and
keeps the burst going after the slow fetch ends: the daemon must not fetch again until it is over.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from reconciler.daemon.supervisor import BURST_QUIET, Daemon
from tests.conftest import World
from tests.daemon_support import wait_for

SENT_DURING_THE_FETCH = 20
SENT_AFTER_IT = 60


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop(10)


def test_a_burst_during_a_slow_fetch_makes_one_trailing_fetch(pyworld: World, daemons: list[Daemon]) -> None:
    pyworld.configure(source={"url": f"file://{pyworld.repo}", "poll_interval": "1h"})
    r = pyworld.reconciler()
    fetches: list[float] = []
    evaluated: list[str] = []
    slow = threading.Event()  # the first fetch of the burst waits for this
    real_fetch = r.fetch

    def fetch() -> bool:
        fetches.append(time.monotonic())
        if len(fetches) == 1:
            slow.wait(60)
        return real_fetch()

    r.fetch = fetch  # type: ignore[method-assign]
    daemon = Daemon(pyworld.settings(), r)
    real_evaluate = daemon.evaluate

    def evaluate(trigger: str) -> None:
        real_evaluate(trigger)
        evaluated.append(trigger)

    daemon.evaluate = evaluate  # type: ignore[method-assign]
    daemons.append(daemon)
    daemon.start()
    wait_for(lambda: evaluated, message="the start-up evaluation")

    sent: list[float] = []
    stop = threading.Event()

    def hooks() -> None:  # a webhook every 10 ms, like a busy repository's pushes and their retries
        while not stop.is_set():
            daemon.request_fetch("webhook:github")
            sent.append(time.monotonic())
            stop.wait(0.01)

    sender = threading.Thread(target=hooks)
    sender.start()
    try:
        wait_for(lambda: fetches, message="the burst's first fetch")
        wait_for(lambda: len(sent) >= SENT_DURING_THE_FETCH, message="hooks sent during the slow fetch")
        slow.set()
        wait_for(lambda: len(sent) >= SENT_DURING_THE_FETCH + SENT_AFTER_IT, message="hooks sent after it")
    finally:
        stop.set()
        sender.join()
    last = sent[-1]
    wait_for(lambda: fetches[-1] > last, message="the trailing fetch, once the burst is over")

    # While the burst went on, only its first trigger fetched; a sender stalled longer than the quiet
    # period (a very busy machine) really ended a burst there, and the next trigger may fetch again.
    pauses = sum(1 for a, b in itertools.pairwise(sent) if b - a > BURST_QUIET)
    during = [t for t in fetches if t <= last]
    assert len(during) <= 1 + pauses, f"{len(during)} fetches while one burst went on ({pauses} pauses)"
    assert len([t for t in fetches if t > last]) == 1
