"""Take the dashboard screenshots of ``docs/`` from a realistic state: ``python -m tests.browser.screenshots``.

Run on demand (not by pytest) from the repository root, after changing how the dashboard looks. It
starts an embedded PostgreSQL and a real ``reconciler run`` over the example repository, makes a
small history (two releases to production, three runs in staging, one out-of-band edit in
production), and writes ``overview.png`` and ``environment.png`` at 1280x800 and
``environment-narrow.png`` at 390 px wide into ``docs/screenshots/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.support import DESKTOP, PHONE, SETTLE_MS, Site, launch, sign_in, take_screenshots
from tests.conftest import ROOT

OUT = ROOT / "docs" / "screenshots"


def make_history(site: Site) -> None:
    world, daemon = site.world, site.daemon
    (world.desired / "databases/crm/004_phone.sql").write_text("alter table customers add column phone text;\n")
    commit = world.commit("Customers get a phone number")
    daemon.wait_env("staging", state="Synced", applied_revision=commit)
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text()
                + "---\nkind: Group\nname: on-call\ndescription: Whoever holds the pager this week\n")
    commit = world.commit("Add the on-call group")
    daemon.wait_env("staging", state="Synced", applied_revision=commit)
    world.tag("v1.1.0", "Release 1.1.0")
    daemon.wait_env("production", state="Synced", applied_ref="v1.1.0")
    site.set_live("production", "SUPPORT_EMAIL", "oncall-hotfix@example.com")
    daemon.wait_env("production", state="OutOfSync", drift_count=1)


def shoot(site: Site, executable: str) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            context = browser.new_context(viewport=DESKTOP)
            page = sign_in(context, site.url, site.token)
            expect(page.locator('tr[data-environment="production"] td[data-label="Drift"]')).to_have_text("1")
            written.append(OUT / "overview.png")
            page.screenshot(path=written[-1])
            page.goto(site.url + "/environments/production")
            expect(page.locator(".drift-table tbody tr")).to_have_count(1, timeout=SETTLE_MS)
            expect(page.locator("#runs > li.run")).to_have_count(2)
            page.locator("#runs > li.run details.plan summary").first.click()
            written.append(OUT / "environment.png")
            page.screenshot(path=written[-1])
            context.close()

            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
            page = sign_in(phone, site.url, site.token, "/environments/production")
            expect(page.locator(".drift-table tbody tr")).to_have_count(1, timeout=SETTLE_MS)
            written.append(OUT / "environment-narrow.png")
            page.screenshot(path=written[-1], full_page=True)
            phone.close()
        finally:
            browser.close()
    return written


def main() -> int:
    return take_screenshots(make_history, shoot)


if __name__ == "__main__":
    sys.exit(main())
