"""The product's one clock: what "now" is for every decision that depends on the date and time.

Deny windows (``reconcile.py`` asks ``engine/gates``), the daemon's retry when a window closes
(``daemon/supervisor.py``), run records, drift first-seen times (``store/``) and the ages in
reports all read ``now()``. Durations (timeouts, backoff, burst gaps) are not dates and keep using
``time.monotonic``; leases between processes keep using the system clock (``system()``), which
every process shares.

Normally ``now()`` is the system clock in UTC. ``RECONCILER_NOW`` set to an ISO 8601 instant with
a UTC offset (``2026-12-02T10:00:00Z``) makes the clock read that instant when the process starts and
run at real speed from there: a rehearsal aid ("what does production do on Wednesday at 10:00?") and
what the test suite uses so that no test depends on the day it runs. ``RECONCILER_NOW_SINCE`` (the
system time, in Unix seconds, at which the clock read ``RECONCILER_NOW``) gives several processes
one clock: a daemon and the CLI commands run beside it then agree on the time, and records made by
one follow those made by another. The CLI and the daemon call ``configure()`` once at start; it
checks the variables and logs a warning when the clock is set. In-process code can replace the
clock with ``use()`` (tests), and ``Reconciler(clock=...)`` still takes a clock of its own.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping

from reconciler import logs
from reconciler.errors import ConfigError, clip

log = logs.get_logger(__name__)

Clock = Callable[[], dt.datetime]

ENV_VAR = "RECONCILER_NOW"
SINCE_VAR = "RECONCILER_NOW_SINCE"


def system() -> dt.datetime:
    """The system clock, in UTC."""
    return dt.datetime.now(dt.UTC)


class Shifted:
    """The system clock moved by a fixed offset: it reads ``at`` when the system clock reads ``since``
    (by default, now), and runs at real speed."""

    def __init__(self, at: dt.datetime, since: dt.datetime | None = None) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock's instant needs a UTC offset")
        self.offset = at - (since if since is not None else system())

    def __call__(self) -> dt.datetime:
        return system() + self.offset

    def __repr__(self) -> str:
        return f"Shifted({self.offset})"


_current: Clock = system


def now() -> dt.datetime:
    """The current time on the product's clock (UTC)."""
    return _current()


def use(clock: Clock) -> Clock:
    """Make ``clock`` the process's clock; return the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


def parse_instant(text: str) -> dt.datetime:
    """``RECONCILER_NOW``'s value as an aware UTC datetime, or a ConfigError saying what to write."""
    example = "for example RECONCILER_NOW=2026-12-02T10:00:00Z"
    try:
        instant = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{ENV_VAR}={clip(text, 40)!r} is not an ISO 8601 date and time; "
                          f"{example}, or unset it to use the system clock") from None
    if instant.tzinfo is None:
        raise ConfigError(f"{ENV_VAR}={clip(text, 40)!r} has no UTC offset; add one ('Z' or '+01:00'), {example}")
    return instant.astimezone(dt.UTC)


def from_environment(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock ``RECONCILER_NOW`` (and ``RECONCILER_NOW_SINCE``) ask for: the system clock when unset or empty."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "")
    if not value.strip():
        return system
    at = parse_instant(value)
    since_text = env.get(SINCE_VAR, "").strip()
    if not since_text:
        return Shifted(at)
    try:
        since = dt.datetime.fromtimestamp(float(since_text), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise ConfigError(f"{SINCE_VAR}={clip(since_text, 40)!r} is not a time in Unix seconds (such as "
                          f"1796205600.5); unset it to start the clock at {ENV_VAR} when the process starts") from None
    return Shifted(at, since)


def configure(environ: Mapping[str, str] | None = None) -> Clock:
    """Set the process's clock from ``RECONCILER_NOW`` (CLI and daemon start); warn when it is set."""
    clock = from_environment(environ)
    use(clock)
    if isinstance(clock, Shifted):
        log.warning("clock.set_by_environment", variable=ENV_VAR, now=clock().isoformat(),
                    system_time=system().isoformat(),
                    note="deny windows, retries and records follow this clock, not the system clock")
    return clock
