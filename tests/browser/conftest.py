"""Fixtures of the dashboard's browser tests: one daemon and one Chromium per module, a signed-in page per test.

Starting a daemon and syncing both environments takes seconds, so the browser tests of a module
share one (``site``); a test that changes live state puts it back before it ends. The module signs
in through the form once and gives each test a fresh browser context holding that session.
Without a Chromium binary every test that needs one is skipped, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, StorageState, sync_playwright

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.browser.support import DESKTOP, Site, chromium_path, launch, sign_in, start_site
from tests.conftest import make_world


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (/usr/bin/chromium); install Debian's chromium, as .ci/run does")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch(playwright, chromium)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(chromium: str, tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[Site]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(Path(tmp_path_factory.mktemp("site")), pg, monkeypatch, cli_git=False)
    try:
        started = start_site(world)
        yield started
        started.daemon.kill()
    finally:
        world.close()
        monkeypatch.undo()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport=DESKTOP)
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def session(site: Site, browser: Browser) -> StorageState:
    """The cookies of one sign-in through the form with the daemon's generated admin token."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        sign_in(context, site.url, site.token)
        state = context.storage_state()
    finally:
        context.close()
    return state


@pytest.fixture
def signed_in(site: Site, browser: Browser, session: StorageState) -> Iterator[Page]:
    """A 1280x800 page of a signed-in session, on the overview."""
    context = browser.new_context(viewport=DESKTOP, storage_state=session)
    page = context.new_page()
    page.goto(site.url + "/")
    yield page
    context.close()
