"""Helpers of the dashboard's browser tests: Debian's Chromium driven by Playwright, and a daemon to look at.

``tests/browser/conftest.py`` and the screenshot script use them. Chromium is the system's
(``/usr/bin/chromium``, as ``.ci/run`` installs it); Playwright never downloads a browser here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect

from reconciler.providers.registry import RegistryProvider
from tests.conftest import World
from tests.daemon_support import DaemonProcess, start_daemon
from tests.fakeclock import browser_environment

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Long enough for a daemon run plus one poll of the page (every 3 s) on a loaded machine; a deadline,
# never a fixed wait.
SETTLE_MS = 60_000


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def launch(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, env=browser_environment())


@dataclass
class Site:
    """A running daemon over the example repository, with staging and production both synced."""

    world: World
    daemon: DaemonProcess

    @property
    def url(self) -> str:
        return self.daemon.url

    @property
    def token(self) -> str:
        return self.daemon.token

    def registry(self) -> RegistryProvider:
        return RegistryProvider(self.world.settings().registry_url)

    def set_live(self, env: str, variable: str, value: str) -> None:
        """An out-of-band edit of a config variable in the platform (what a drift check finds)."""
        registry = self.registry()
        try:
            registry.edit_config_value(env, variable, value)
        finally:
            registry.close()


def quick_drift_checks(world: World) -> None:
    """Production as declared, except drift is checked every 2 s and no deny window can hold a release.

    Production does not self-heal, so an out-of-band edit stays visible; the example's Friday-evening
    window would otherwise make these tests depend on the day they run.
    """
    path = world.desired / "environments/production.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    spec["sync"]["drift_check_interval"] = "2s"
    spec["sync"]["windows"] = []
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    world.commit("Production: check drift every 2s, no deny window")


def start_site(world: World) -> Site:
    """Start ``reconciler run``; wait for staging to sync, release v1.0.0 and wait for production."""
    quick_drift_checks(world)
    # The page shows ages ("12s ago") against the browser's clock, so the daemon keeps the system clock
    # (an empty RECONCILER_NOW); with no deny window declared, the day the tests run does not matter.
    daemon = start_daemon(world.config, world.root / "data", env={**world.secrets, "RECONCILER_NOW": ""},
                          name="dashboard-daemon")
    try:
        daemon.wait_env("staging", state="Synced")
        world.tag("v1.0.0", "Release 1.0.0")
        daemon.wait_env("production", state="Synced", applied_ref="v1.0.0")
    except BaseException:
        daemon.kill()
        raise
    return Site(world, daemon)


def sign_in(context: BrowserContext, url: str, token: str, path: str = "/") -> Page:
    """Open ``path`` signed out, and sign in through the form as a person would."""
    page = context.new_page()
    page.goto(url + path)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def take_screenshots(make_history: Callable[[Site], None], shoot: Callable[[Site, str], list[Path]]) -> int:
    """The body of a screenshot script (``python -m tests.browser.screenshots`` and the like): an embedded
    PostgreSQL and a real daemon over the example, ``make_history`` on it, then ``shoot`` in Chromium."""
    import tempfile

    import pytest
    import structlog

    from reconciler.providers.postgres.embedded import EmbeddedPostgres
    from tests.conftest import ROOT, make_world

    log = structlog.get_logger(__name__)
    executable = chromium_path()
    if executable is None:
        log.error("screenshots.no_chromium", hint="apt-get install chromium")
        return 1
    with tempfile.TemporaryDirectory(prefix="reconciler-screenshots-") as tmp:
        root = Path(tmp)
        monkeypatch = pytest.MonkeyPatch()
        world: World | None = None
        try:
            with EmbeddedPostgres(root / "pg") as pg:
                (root / "world").mkdir()
                world = make_world(root / "world", pg, monkeypatch, cli_git=False)
                site = start_site(world)
                try:
                    make_history(site)
                    for path in shoot(site, executable):
                        log.info("screenshots.written", path=str(path.relative_to(ROOT)))
                finally:
                    site.daemon.terminate()
        finally:
            if world is not None:
                world.close()
            monkeypatch.undo()
    return 0
