"""Running the suite under faketime: ``faketime '2026-12-05 12:00:00' make test`` must pass.

The suite must not depend on the day it runs; running it under libfaketime (``LD_PRELOAD``, inherited
by every child process) is how that is shown. libfaketime 0.9.10 (Debian 12) fakes more than the
date, and two of its side effects would hang tests for reasons that have nothing to do with dates:

* **The monotonic clock.** By default it fakes ``CLOCK_MONOTONIC`` too, but deadlines handed to the
  kernel (``sem_clockwait``, which every timed ``Lock.acquire``, ``Event.wait``, ``Thread.join`` of
  CPython 3.11 uses) stay absolute on the real clock: a 0.5 s wait becomes a wait of decades. The
  daemon's scheduler (apscheduler) waits that way, so drift checks, retries and the window-closed
  run would never come. ``prepare_children()`` therefore starts the test processes (pytest-xdist
  workers) and everything they start with ``FAKETIME_DONT_FAKE_MONOTONIC=1``: the date is faked,
  durations are real. In that mode libfaketime turns ``clock_nanosleep(CLOCK_MONOTONIC,
  TIMER_ABSTIME)`` — the call behind ``time.sleep`` — into EINVAL, so the same children get
  ``fakeclock_site/sitecustomize.py``, which makes ``time.sleep`` wait with ``select()``.
* **PostgreSQL.** libfaketime stops faking while it waits in ``epoll_wait``; PostgreSQL's SIGALRM
  handler interrupts exactly that wait, reads the real time, finds its faked deadline days away and
  re-arms: ``statement_timeout``, ``lock_timeout`` and the deadlock check never fire.
  ``on_the_real_clock()`` starts the test servers without libfaketime. A database server keeps a
  clock of its own anyway (in production it is another machine).

libfaketime reads its settings again every few seconds, so the pytest process that sets this up
follows within seconds; run the suite with ``-n`` as ``make test`` does, so that the tests run in
workers started with it from the beginning. Chromium is the exception: it works with libfaketime's
defaults and crawls with only the date faked (``browser_environment()``). Without faketime all of
this does nothing.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SITE = Path(__file__).resolve().parent / "fakeclock_site"


def under_faketime() -> bool:
    return "faketime" in os.environ.get("LD_PRELOAD", "")


def prepare_children() -> None:
    """Have the processes started from here on fake the date only (see the module docstring).

    libfaketime reads its settings again every few seconds, so this process follows too: its
    ``time.sleep`` is replaced here as well.
    """
    if not under_faketime() or os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
        return
    os.environ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    # libfaketime reads its settings from the environment again every 10 s, from whichever thread asks
    # the time; a test setting a variable at that moment (setenv) crashed a worker (SIGSEGV in getenv).
    # Read once, at start.
    os.environ["FAKETIME_CACHE_DURATION"] = str(365 * 24 * 3600)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{SITE}{os.pathsep}{path}" if path else str(SITE)
    runpy.run_path(str(SITE / "sitecustomize.py"))


def browser_environment() -> dict[str, str]:
    """The environment for Chromium: under faketime, libfaketime's defaults (the date and the monotonic
    clock faked), with which it works; with only the date faked it spends tens of seconds starting."""
    env = dict(os.environ)
    env.pop("FAKETIME_DONT_FAKE_MONOTONIC", None)
    return env


@contextmanager
def on_the_real_clock() -> Iterator[None]:
    """Processes started inside this block do not load libfaketime (a no-op without faketime)."""
    preload = os.environ.get("LD_PRELOAD")
    if preload is None or "faketime" not in preload:
        yield
        return
    kept = " ".join(p for p in preload.replace(":", " ").split() if "faketime" not in p)
    if kept:
        os.environ["LD_PRELOAD"] = kept
    else:
        del os.environ["LD_PRELOAD"]
    try:
        yield
    finally:
        os.environ["LD_PRELOAD"] = preload
