"""The web dashboard in a real headless Chromium, against a real ``reconciler run`` on loopback.

The tests share one daemon (see ``conftest.py``): staging synced from ``main``, production synced
from the release tag v1.0.0. Each test signs in through the form with the daemon's generated
admin token, as a person would, and waits on what the page shows, never on the clock.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, StorageState, expect

from tests.browser.support import PHONE, SETTLE_MS, Site, sign_in
from tests.daemon_support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def state_badge(page: Page, env: str) -> Locator:
    return page.locator(f'tr[data-environment="{env}"] td[data-label="State"] .badge')


# -- signing in ------------------------------------------------------------------------------------------


def test_signed_out_visitors_get_the_sign_in_form(site: Site, context: BrowserContext) -> None:
    page = context.new_page()
    response = page.goto(site.url + "/")
    assert response is not None and response.status == 401
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("API token")).to_have_attribute("type", "password")
    assert page.locator("#environments").count() == 0


def test_a_wrong_token_is_refused_and_a_right_one_returns_to_the_page_asked_for(
    site: Site, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(site.url + "/environments/production")
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not valid, or it lacks the read scope.")
    page.get_by_label("API token").fill(site.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site.url + "/environments/production")
    expect(page.get_by_role("heading", level=1)).to_contain_text("production")


def test_signing_out_shows_the_sign_in_form_again(signed_in: Page, site: Site) -> None:
    signed_in.get_by_role("button", name="Sign out").click()
    expect(signed_in.get_by_role("heading", name="Sign in")).to_be_visible()
    assert signed_in.goto(site.url + "/").status == 401  # type: ignore[union-attr]


# -- the overview --------------------------------------------------------------------------------------------


def test_the_overview_lists_every_environment_with_its_state_refs_and_revisions(signed_in: Page, site: Site) -> None:
    page = signed_in
    expect(page.locator("#environment-rows tr")).to_have_count(2)
    expect(page.locator("#environment-rows th")).to_have_text(["staging", "production"])
    expect(state_badge(page, "staging")).to_have_text("Synced")
    expect(state_badge(page, "production")).to_have_text("Synced")
    for env, tracks, ref in (("staging", "main", "main"), ("production", "tag v*", "v1.0.0")):
        status = site.daemon.env(env)
        row = page.locator(f'tr[data-environment="{env}"]')
        expect(row.locator('td[data-label="Tracks"]')).to_have_text(tracks)
        applied = row.locator('td[data-label="Applied revision"]')
        expect(applied.locator("code")).to_have_text(status["applied_revision"][:12])
        expect(applied.locator("code")).to_have_attribute("title", status["applied_revision"])  # full id on hover
        expect(applied.locator(".ref")).to_have_text(ref)
        expect(row.locator('td[data-label="Desired revision"] code')).to_have_text(status["desired_revision"][:12])
        expect(row.locator('td[data-label="Drift"]')).to_have_text("0")
        expect(row.locator('td[data-label="Last run"] .badge')).to_have_text("Succeeded")
    expect(page.locator("#updated")).to_contain_text("Updated")


def test_every_request_of_the_dashboard_stays_on_the_daemon(site: Site, context: BrowserContext) -> None:
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = sign_in(context, site.url, site.token)
    expect(page.locator("#environment-rows tr")).to_have_count(2)
    page.goto(site.url + "/environments/production")
    expect(page.locator("#runs > li.run").first).to_be_visible()
    assert requested, "the page made no requests"
    assert [url for url in requested if not url.startswith(site.url + "/")] == []
    assert any("/static/dashboard.css" in url for url in requested)
    assert any("/static/dashboard.js" in url for url in requested)


def test_the_page_refreshes_itself_when_a_commit_lands(signed_in: Page, site: Site) -> None:
    page = signed_in
    applied = page.locator('tr[data-environment="staging"] td[data-label="Applied revision"] code')
    expect(applied).to_have_text(site.daemon.env("staging")["applied_revision"][:12])
    page.evaluate("window.stillTheSamePage = true")
    site.world.write("groups.yaml", (site.world.desired / "groups.yaml").read_text()
                     + "---\nkind: Group\nname: on-call\ndescription: Whoever holds the pager\n")
    commit = site.world.commit("Add the on-call group")
    expect(applied).to_have_text(commit[:12], timeout=SETTLE_MS)
    expect(applied).to_have_attribute("title", commit)
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, not reloaded


# -- an environment page ------------------------------------------------------------------------------------


def test_an_out_of_band_change_shows_in_the_drift_table(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(site.url + "/environments/production")
    expect(page.locator("#drift .all-clear")).to_have_text("No drift: live state matches the applied revision.")
    site.set_live("production", "SUPPORT_EMAIL", "oncall-hotfix@example.com")
    try:
        rows = page.locator(".drift-table tbody tr")
        expect(rows).to_have_count(1, timeout=SETTLE_MS)
        row = rows.first
        expect(row.locator("th code")).to_have_text("config-variable:SUPPORT_EMAIL:value")
        expect(row.locator("th .change")).to_have_text("changed")
        expect(row.locator('td[data-label="Declared (Git)"]')).to_have_text("support@example.com")
        expect(row.locator('td[data-label="Live"]')).to_have_text("oncall-hotfix@example.com")
        expect(row.locator('td[data-label="Risk"]')).to_have_text("safe")
        expect(row.locator('td[data-label="First seen"] time')).to_have_text(re.compile(r"^\d+s ago$"))
        expect(row.locator('td[data-label="To heal"]')).to_have_text("reconciler apply production")
        expect(page.locator("#drift-count")).to_have_text("1")
        expect(page.locator("#env-state .badge")).to_have_text("OutOfSync")
    finally:
        site.set_live("production", "SUPPORT_EMAIL", "support@example.com")
        site.daemon.wait_env("production", state="Synced", drift_count=0)
    expect(page.locator("#drift .all-clear")).to_be_visible(timeout=SETTLE_MS)


def test_the_run_timeline_shows_each_run_and_its_plan_on_request(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(site.url + "/environments/production")
    runs = site.daemon.get("/api/v1/environments/production/runs")["runs"]
    release = runs[-1]  # the first run: v1.0.0
    items = page.locator("#runs > li.run")
    expect(items).to_have_count(len(runs))
    run = items.last
    expect(run.locator(".run-head .badge")).to_have_text("Succeeded")
    facts = run.locator(".run-facts")
    expect(facts.locator("div", has_text="Trigger").locator("dd")).to_have_text("tag")
    expect(facts.locator("div", has_text="Revision").locator("dd code")).to_have_text(release["revision"][:12])
    expect(facts.locator("div", has_text="Revision").locator("dd .ref")).to_have_text("v1.0.0")
    planned = len(release["plan"])
    expect(facts.locator("div", has_text="Changes").locator("dd")).to_have_text(f"{planned} of {planned} applied")
    expect(facts.locator("div", has_text="Took").locator("dd")).to_have_text(re.compile(r"^\d+(\.\d)? (ms|s)$"))
    plan = run.locator("details.plan")
    expect(plan.locator("tbody tr")).to_have_count(0)  # closed until asked for
    plan.locator("summary").click()
    expect(plan.locator("summary")).to_have_text(f"Plan: {planned} changes")
    expect(plan.locator("tbody tr")).to_have_count(planned)
    group = plan.locator("tbody tr", has=page.locator("code", has_text="group:support-team"))
    expect(group.locator('td[data-label="Declared"]')).to_have_text(re.compile(r"description\s*Support engineers"))
    expect(group.locator('td[data-label="Applied"]')).to_have_text("yes")
    # The plan stays open while the page refreshes around it.
    before = page.locator("#updated").inner_text()
    expect(page.locator("#updated")).not_to_have_text(before, timeout=SETTLE_MS)
    expect(plan.locator("tbody tr")).to_have_count(planned)


def test_markup_in_descriptions_renders_as_text(signed_in: Page, site: Site) -> None:
    page = signed_in
    image = '<img src=x onerror="window.injected=1">'
    script = "<script>window.injected=2</script>"
    spec = site.world.desired / "environments/staging.yaml"
    spec.write_text(spec.read_text().replace("description: Pre-release copies of every tool, with test data",
                                             f"description: '{script}'"))
    site.world.write("groups.yaml", (site.world.desired / "groups.yaml").read_text()
                     + f"---\nkind: Group\nname: probe\ndescription: '{image}'\n")
    commit = site.world.commit("Descriptions with markup in them")
    site.daemon.wait_env("staging", state="Synced", applied_revision=commit, timeout=SETTLE_MS / 1000)
    page.goto(site.url + "/environments/staging")
    expect(page.locator(".description")).to_have_text(script)  # rendered by the server
    plan = page.locator("#runs > li.run").first.locator("details.plan")
    plan.locator("summary").click()
    probe = plan.locator("tbody tr", has=page.locator("code", has_text="group:probe"))
    expect(probe.locator('td[data-label="Declared"] dd')).to_have_text(image)  # rendered by the script
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.injected") is None


def test_sync_now_queues_a_run_from_the_environment_page(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(site.url + "/environments/staging")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^(Sync queued\.|A run is already queued.*)$"))
    expect(page.get_by_role("button", name="Sync now")).to_be_enabled()


def test_a_sync_without_the_pages_csrf_token_or_from_another_site_is_refused(site: Site) -> None:
    cookie = {"reconciler_token": site.token}
    path = "/environments/staging/sync"
    with httpx.Client(base_url=site.url, cookies=cookie, timeout=10) as client:
        page = client.get("/environments/staging").text
        match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert match is not None
        csrf = match.group(1)
        assert client.post(path, data={}).status_code == 403
        assert client.post(path, data={"csrf": "0" * 64}).status_code == 403
        assert client.post(path, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        accepted = client.post(path, data={"csrf": csrf}, headers={"Accept": "application/json"})
        assert accepted.status_code == 202
        assert accepted.json()["environment"] == "staging"
    assert httpx.post(site.url + path, data={"csrf": csrf}, timeout=10).status_code == 401  # no session


# -- a narrow screen ---------------------------------------------------------------------------------------


def no_horizontal_overflow(page: Page) -> None:
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width}px wide in a {inner}px window"


def inside_the_screen(page: Page, selector: str) -> None:
    """Every element matching ``selector`` is shown and lies within the window's width (nothing cut off)."""
    boxes = page.eval_on_selector_all(selector, """elements => elements.map(e => {
        const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return {left: r.left, right: r.right, shown: r.width > 0 && r.height > 0 && s.visibility !== 'hidden'};
    })""")
    assert boxes, f"nothing matches {selector}"
    width = page.evaluate("window.innerWidth")
    outside = [(index, box) for index, box in enumerate(boxes)
               if not box["shown"] or box["left"] < 0 or box["right"] > width + 0.5]
    assert outside == [], f"{selector}: hidden or cut off: {outside}"


def test_a_390px_screen_shows_everything_without_sideways_scrolling(
    site: Site, browser: Browser, session: StorageState
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  storage_state=session)
    try:
        page = context.new_page()
        page.goto(site.url + "/")
        expect(page.locator("#environment-rows tr")).to_have_count(2)
        no_horizontal_overflow(page)
        for selector in ("#environment-rows th a", '#environment-rows td[data-label="State"] .badge',
                         '#environment-rows td[data-label="Applied revision"] code',
                         '#environment-rows td[data-label="Drift"]', "#updated"):
            inside_the_screen(page, selector)
        page.goto(site.url + "/environments/production")
        site.set_live("production", "API_CRM_BASE_URL",
                      "https://a-very-long-hostname-that-nobody-would-type.internal.example.com/v2/crm/api/base")
        try:
            expect(page.locator(".drift-table tbody tr")).to_have_count(1, timeout=SETTLE_MS)
            expect(page.locator("#runs > li.run").first).to_be_visible()
            page.locator("#runs > li.run details.plan summary").first.click()
            no_horizontal_overflow(page)
            for selector in ("h1", "#env-state .badge", "#env-facts dd", ".drift-table tbody th code",
                             '.drift-table td[data-label="Live"]', '.drift-table td[data-label="To heal"] code',
                             "#runs > li.run", ".plan-table tbody tr", "#sync-form button"):
                inside_the_screen(page, selector)
        finally:
            site.set_live("production", "API_CRM_BASE_URL", "https://api.example.com")
            wait_for(lambda: site.daemon.env("production")["drift_count"] == 0, timeout=SETTLE_MS / 1000,
                     message="production's drift to clear")
    finally:
        context.close()
