"""Deny windows judged on a clock the test controls, never on the day the suite runs.

The example's production window (Friday 16:00 London time, 64 h) is checked with the CLI at set
instants; the daemon's retry when a window closes is checked in process with a clock the test
moves; a real daemon process is checked to follow ``RECONCILER_NOW``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from reconciler import clock
from reconciler.app.reconcile import Reconciler
from reconciler.daemon.supervisor import Daemon
from reconciler.errors import ConfigError
from tests.conftest import World, cli, cli_process, set_clock
from tests.daemon_support import start_daemon, wait_for

EXAMPLE_WINDOW = '    - {deny: "0 16 * * FRI", duration: 64h, timezone: Europe/London}'


def declare_window(world: World, window: str) -> None:
    """Replace production's deny window with ``window`` (a flow mapping) and commit."""
    spec = world.desired / "environments/production.yaml"
    text = spec.read_text()
    assert EXAMPLE_WINDOW in text
    spec.write_text(text.replace(EXAMPLE_WINDOW, f"    - {window}"))
    world.commit("Production's deny window for this test")


def release(world: World) -> None:
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")


class ManualClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


# -- the example's window, on set instants -------------------------------------------------------------


@pytest.mark.parametrize(("instant", "until"), [
    ("2026-12-04T16:00:00Z", "2026-12-07 08:00"),  # Friday 16:00 London: the window opens
    ("2026-12-05T12:00:00Z", "2026-12-07 08:00"),  # Saturday noon
    ("2026-11-30T07:40:00Z", "2026-11-30 08:00"),  # Monday 07:40, twenty minutes before it closes
])
def test_the_example_window_holds_a_release_from_friday_evening_to_monday_morning(
    pyworld: World, monkeypatch: pytest.MonkeyPatch, instant: str, until: str,
) -> None:
    release(pyworld)
    set_clock(monkeypatch, instant)
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 3, result.stderr
    assert f"inside a deny window until {until} UTC" in result.stderr
    assert pyworld.query("production", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]


@pytest.mark.parametrize("instant", ["2026-11-30T08:00:01Z", "2026-12-04T15:59:00Z"])
def test_outside_the_example_window_a_release_applies(
    pyworld: World, monkeypatch: pytest.MonkeyPatch, instant: str,
) -> None:
    release(pyworld)
    set_clock(monkeypatch, instant)
    result = cli(pyworld, "apply", "production")
    assert result.exit_code == 0, result.stderr


# -- the daemon's retry when a window closes ---------------------------------------------------------------


@pytest.fixture
def daemon_with(pyworld: World) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.stop(10)


def test_a_release_held_by_a_window_is_applied_when_the_window_closes_on_the_reconcilers_clock(
    pyworld: World, daemon_with: list[Daemon],
) -> None:
    """The window closes at 11:00 on the reconciler's clock, days away from the real date: the daemon
    retries when that clock reaches 11:00, not when the system clock does."""
    declare_window(pyworld, '{deny: "0 10 * * WED", duration: 1h, timezone: UTC}')
    pyworld.configure(source={"url": str(pyworld.repo), "poll_interval": "1h"})  # only the window retry may apply
    moment = ManualClock(dt.datetime(2026, 12, 2, 10, 59, 58, tzinfo=dt.UTC))
    r = pyworld.reconciler(clock=moment)
    assert r.reconcile("staging").result == "Succeeded"
    pyworld.tag("v1.0.0", "Release 1.0.0")
    daemon = Daemon(pyworld.settings(), r)
    daemon_with.append(daemon)
    daemon.start()

    def blocked() -> bool:
        status = r.status("production")
        return status.state == "Blocked" and "inside a deny window until 2026-12-02 11:00 UTC" in (status.reason or "")

    wait_for(blocked, message="production Blocked by its deny window")
    assert r.status("production").applied_revision is None
    moment.at = dt.datetime(2026, 12, 2, 11, 0, 5, tzinfo=dt.UTC)  # the window has closed

    wait_for(lambda: r.status("production").applied_ref == "v1.0.0",
             message="production to apply v1.0.0 once the window closed")
    runs = r.queries.runs("production")
    assert runs[0].result == "Succeeded"
    assert runs[0].trigger == "window-closed"
    assert {run.result for run in runs[1:]} == {"Blocked"}


class ClosingClock:
    """Reads 10:59:58 until production has been refused, then 11:00:05: the window closes at the worst
    moment, right after the gate looked and before the daemon plans its retry."""

    def __init__(self, refused: Callable[[], bool]) -> None:
        self.refused = refused

    def __call__(self) -> dt.datetime:
        if self.refused():
            return dt.datetime(2026, 12, 2, 11, 0, 5, tzinfo=dt.UTC)
        return dt.datetime(2026, 12, 2, 10, 59, 58, tzinfo=dt.UTC)


def test_a_window_closing_just_after_the_refusal_still_releases_the_revision(
    pyworld: World, daemon_with: list[Daemon],
) -> None:
    declare_window(pyworld, '{deny: "0 10 * * WED", duration: 1h, timezone: UTC}')
    pyworld.configure(source={"url": str(pyworld.repo), "poll_interval": "1h"})  # only the window retry may apply
    holder: list[Reconciler] = []
    r = pyworld.reconciler(clock=ClosingClock(lambda: bool(holder) and holder[0].status("production").state
                                              == "Blocked"))
    holder.append(r)
    assert r.reconcile("staging").result == "Succeeded"
    pyworld.tag("v1.0.0", "Release 1.0.0")
    daemon = Daemon(pyworld.settings(), r)
    daemon_with.append(daemon)
    daemon.start()

    wait_for(lambda: r.status("production").applied_ref == "v1.0.0",
             message="production to apply v1.0.0 after the window closed")
    runs = r.queries.runs("production")
    assert [(run.result, run.trigger) for run in runs] == [("Succeeded", "window-closed"), ("Blocked", "tag")]
    assert "inside a deny window until 2026-12-02 11:00 UTC" in (runs[1].reason or "")


# -- a real daemon process follows RECONCILER_NOW ------------------------------------------------------------


def test_a_daemon_judges_windows_on_the_clock_reconciler_now_sets(pyworld: World) -> None:
    declare_window(pyworld, '{deny: "0 10 * * WED", duration: 1h, timezone: UTC}')
    data = pyworld.root / "data"
    inside = start_daemon(pyworld.config, data, env={**pyworld.secrets, "RECONCILER_NOW": "2026-12-02T10:30:00Z"})
    try:
        inside.wait_env("staging", state="Synced")
        pyworld.tag("v1.0.0", "Release 1.0.0")
        production = inside.wait_env("production", state="Blocked")
        assert "inside a deny window until 2026-12-02 11:00 UTC" in production["reason"]
        assert production["applied_revision"] is None
        assert '"event": "clock.set_by_environment"' in inside.logs()
        assert '"now": "2026-12-02T10:3' in inside.logs()
        assert inside.terminate() == 0
    finally:
        inside.kill()
    after = start_daemon(pyworld.config, data, env={**pyworld.secrets, "RECONCILER_NOW": "2026-12-02T11:00:30Z"},
                         name="after")
    try:
        after.wait_env("production", state="Synced", applied_ref="v1.0.0")
    finally:
        after.kill()


# -- the variable itself -------------------------------------------------------------------------------------


def test_reconciler_now_starts_the_clock_at_that_instant_and_lets_it_run() -> None:
    start = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    running = clock.from_environment({"RECONCILER_NOW": "2026-12-02T11:00:00+01:00"})
    first = running()
    assert start <= first < start + dt.timedelta(minutes=5)
    wait_for(lambda: running() > first, message="the set clock to move on")
    assert clock.from_environment({}) is clock.system
    assert clock.from_environment({"RECONCILER_NOW": ""}) is clock.system


def test_processes_given_the_same_reconciler_now_since_share_one_clock() -> None:
    """The clock read RECONCILER_NOW an hour ago: every process started with the pair reads an hour later."""
    an_hour_ago = clock.system() - dt.timedelta(hours=1)
    shared = clock.from_environment({"RECONCILER_NOW": "2026-12-02T10:00:00Z",
                                     "RECONCILER_NOW_SINCE": f"{an_hour_ago.timestamp():.6f}"})
    reading = shared()
    assert dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC) <= reading < dt.datetime(2026, 12, 2, 11, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(("since", "value", "problem"), [
    ("", "friday", "RECONCILER_NOW='friday' is not an ISO 8601 date and time"),
    ("", "2026-12-02T10:00:00", "RECONCILER_NOW='2026-12-02T10:00:00' has no UTC offset"),
    ("yesterday", "2026-12-02T10:00:00Z", "RECONCILER_NOW_SINCE='yesterday' is not a time in Unix seconds"),
])
def test_a_bad_reconciler_now_is_refused_with_what_to_write(since: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        clock.from_environment({"RECONCILER_NOW": value, "RECONCILER_NOW_SINCE": since})


def test_the_cli_and_the_daemon_refuse_to_start_on_a_bad_reconciler_now(pyworld: World) -> None:
    for command in ("status", "run"):
        result = cli_process(command, "--config", str(pyworld.config), env={"RECONCILER_NOW": "friday 5pm"})
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            "error: RECONCILER_NOW='friday 5pm' is not an ISO 8601 date and time; for example "
            "RECONCILER_NOW=2026-12-02T10:00:00Z, or unset it to use the system clock")
