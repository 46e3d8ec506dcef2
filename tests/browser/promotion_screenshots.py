"""Take the promotion page's screenshots of ``docs/``: ``python -m tests.browser.promotion_screenshots``.

Run on demand (not by pytest) from the repository root, after changing how the page looks. It starts
an embedded PostgreSQL and a real ``reconciler run`` over the example repository, releases v1.0.0
and v1.1.0 to production, pins production at v1.1.0, cuts v1.2.0 (which staging then runs), and
writes ``promotion.png`` at 1280x800 and ``promotion-narrow.png`` at 390 px wide into ``docs/screenshots/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.support import DESKTOP, PHONE, SETTLE_MS, Site, launch, sign_in, take_screenshots
from tests.conftest import ROOT, cli

OUT = ROOT / "docs" / "screenshots"


def make_history(site: Site) -> None:
    world, daemon = site.world, site.daemon
    world.write("groups.yaml", (world.desired / "groups.yaml").read_text()
                + "---\nkind: Group\nname: on-call\ndescription: Whoever holds the pager this week\n")
    commit = world.commit("Add the on-call group")
    daemon.wait_env("staging", state="Synced", applied_revision=commit)
    world.tag("v1.1.0", "Release 1.1.0")
    daemon.wait_env("production", state="Synced", applied_ref="v1.1.0")
    assert cli(world, "pin", "production", "v1.1.0").exit_code == 0
    (world.desired / "databases/crm/004_phone.sql").write_text("alter table customers add column phone text;\n")
    commit = world.commit("Customers get a phone number")
    world.tag("v1.2.0", "Release 1.2.0")
    daemon.wait_env("staging", state="Synced", applied_revision=commit)


def shoot(site: Site, executable: str) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            context = browser.new_context(viewport=DESKTOP)
            page = sign_in(context, site.url, site.token, "/promotion")
            row = page.locator('#release-rows tr[data-revision="v1.2.0"]')
            expect(row.locator('td[data-environment="staging"] .cell-state')).to_have_text("runs", timeout=SETTLE_MS)
            written.append(OUT / "promotion.png")
            page.screenshot(path=written[-1], full_page=True)
            context.close()

            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
            page = sign_in(phone, site.url, site.token, "/promotion")
            expect(page.locator('#next-list li[data-revision="v1.2.0"]')).to_be_visible(timeout=SETTLE_MS)
            written.append(OUT / "promotion-narrow.png")
            page.screenshot(path=written[-1], full_page=True)
            phone.close()
        finally:
            browser.close()
    return written


def main() -> int:
    return take_screenshots(make_history, shoot)


if __name__ == "__main__":
    sys.exit(main())
