"""The promotion page in headless Chromium: revisions by environment and what holds the next promotion.

The module's own daemon (``site``): staging and production run v1.0.0; a commit then lands on main,
which staging applies and production, released by tags, cannot run until one is cut.
"""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import SETTLE_MS, Site


def test_the_promotion_page_shows_where_each_revision_runs_and_what_blocks_the_next(
    signed_in: Page, site: Site,
) -> None:
    page = signed_in
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.get_by_role("link", name="Promotion").click()
    expect(page.get_by_role("heading", name="Promotion", exact=True)).to_be_visible()
    expect(page.locator("#release-head th")).to_have_text(["Revision", "staging", "production"])
    released = page.locator('#release-rows tr[data-revision="v1.0.0"]')
    expect(released.locator('td[data-environment="production"] .cell-state')).to_have_text("runs")
    expect(released.locator('td[data-environment="production"]')).to_contain_text("verified")

    site.world.write("groups.yaml", (site.world.desired / "groups.yaml").read_text()
                     + "---\nkind: Group\nname: auditors\n")
    commit = site.world.commit("Add auditors")
    site.daemon.wait_env("staging", state="Synced", applied_revision=commit)

    head = page.locator('#release-rows tr[data-revision="main"]')
    expect(head.locator("th .rev-meta").first).to_have_text(f"branch {commit[:12]}", timeout=SETTLE_MS)
    expect(head.locator('td[data-environment="staging"] .cell-state')).to_have_text("runs", timeout=SETTLE_MS)
    expect(head.locator('td[data-environment="production"] .cell-state')).to_have_text("blocked: not-a-tag")
    upcoming = page.locator('#next-list li[data-revision="main"]')
    expect(upcoming).to_contain_text("main → production: blocked by not-a-tag")
    expect(upcoming.locator("code.unblock")).to_have_text(
        f"git tag -a vX.Y.Z {commit[:12]} -m 'Release X.Y.Z' && git push origin vX.Y.Z")
    assert errors == []


def test_signed_out_visitors_of_the_promotion_page_get_the_sign_in_form(site: Site, context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(site.url + "/promotion")
    assert response is not None and response.status == 401
    expect(page.get_by_label("API token")).to_be_visible()
    page.get_by_label("API token").fill(site.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Promotion", exact=True)).to_be_visible()  # back where they asked
    assert page.url == site.url + "/promotion"
    page.close()


