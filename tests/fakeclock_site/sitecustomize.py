"""Loaded at start by the test suite's Python child processes under faketime (see tests/fakeclock.py).

With ``FAKETIME_DONT_FAKE_MONOTONIC=1`` libfaketime 0.9.10 fakes the date only, but answers every
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` — the call behind CPython's ``time.sleep`` — with
EINVAL. Here ``time.sleep`` waits with ``select()`` on a relative timeout instead, which libfaketime
passes through. Nothing changes outside faketime.
"""

from __future__ import annotations

import os
import select
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


if "faketime" in os.environ.get("LD_PRELOAD", "") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
    _sleep.__doc__ = time.sleep.__doc__
    time.sleep = _sleep
