"""The environment page's table of the last run's checks, in a real headless Chromium.

A daemon of its own (``site`` below): staging runs its checks after every apply, and declares one
that fails (an empty CRM has no customers) beside the example's passing one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.browser.support import Site
from tests.conftest import make_world
from tests.daemon_support import start_daemon

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

NO_CUSTOMERS = """kind: Check
name: staging-has-customers
environments: [staging]
sql:
  database: crm
  query: select exists (select 1 from customers)
  expect: true
"""


@pytest.fixture(scope="module")
def site(chromium: str, tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[Site]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(Path(tmp_path_factory.mktemp("checks-site")), pg, monkeypatch, cli_git=False)
    try:
        spec = world.desired / "environments" / "staging.yaml"
        spec.write_text(spec.read_text().replace("  automatic: true\n", "  automatic: true\n  run_checks: true\n"))
        world.write("checks/staging.yaml", NO_CUSTOMERS)
        world.commit("Staging runs its checks; staging must have customers")
        daemon = start_daemon(world.config, world.root / "data", env={**world.secrets, "RECONCILER_NOW": ""},
                              name="checks-daemon")
        try:
            daemon.wait_env("staging", state="Failed")
            yield Site(world, daemon)
        finally:
            daemon.kill()
    finally:
        world.close()
        monkeypatch.undo()


def test_the_environment_page_shows_each_check_of_the_last_run(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(site.url + "/environments/staging")
    rows = page.locator("#checks table.checks-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#checks-count")).to_have_text("2")
    passed = rows.filter(has=page.locator("code", has_text="dashboard-open-tickets"))
    expect(passed.locator('td[data-label="Result"]')).to_have_text("passed")
    expect(passed.locator('td[data-label="When"]')).to_have_text("after-schema")
    expect(passed.locator('td[data-label="Target"]')).to_have_text("database crm")
    failed = rows.filter(has=page.locator("code", has_text="staging-has-customers"))
    expect(failed.locator('td[data-label="Result"]')).to_have_text("failed")
    expect(failed.locator('td[data-label="Detail"] pre')).to_have_text("returned False; expected true")
    expect(failed.locator('td[data-label="Time"]')).to_have_text(re.compile(r"^\d+(\.\d)? (ms|s)$"))


def test_an_environment_with_no_run_yet_says_so(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(site.url + "/environments/production")  # no release tag yet: production never ran
    expect(page.locator("#checks")).to_have_text("No run yet.")
