"""When the daemon tries a failed run again: backoff with jitter, never sooner than the failure asks.

The supervisor calls ``Backoff.delay`` after every failed run with the run's ``retry_after``, which
the app takes from the error (``TemporaryError.delay``: a Retool ``Retry-After``, a rate limit, a
failed fetch). The schedule itself is tenacity's: ``daemon.retry_delays`` in turn, then the last
one for ever (``wait_chain``), each stretched by up to a tenth at random (``wait_random``) so
replicas and environments that failed together do not all come back in the same instant.
"""

from __future__ import annotations

import tenacity

JITTER = 0.1  # up to this fraction of the delay is added at random


class Backoff:
    def __init__(self, delays: list[float]) -> None:
        if not delays:
            raise ValueError("at least one retry delay")
        self._schedule = tenacity.wait_chain(*[tenacity.wait_fixed(d) for d in delays])

    def delay(self, attempt: int, asked: float | None = None) -> float:
        """Seconds to wait before try ``attempt`` + 1 (``attempt`` failures so far, from 1)."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = max(attempt, 1)
        base = max(self._schedule(state), asked or 0.0)
        return base + tenacity.wait_random(0, base * JITTER)(state)
