"""The dashboard's server side, in process: sessions, CSRF, scopes, redirects, headers and assets.

No browser is needed here (these run without Chromium): the FastAPI app of a real ``Daemon`` over
the example repository, driven through Starlette's test client. What a browser shows is tested
in ``test_dashboard.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reconciler.api.auth import hash_token
from reconciler.daemon.main import http_app
from reconciler.daemon.supervisor import Daemon
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.web.pages import asset
from tests.conftest import make_world

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

TOKENS = {"reader": "dashboard-read-token", "syncer": "dashboard-sync-token"}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[TestClient]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(Path(tmp_path_factory.mktemp("pages")), pg, monkeypatch, cli_git=False)
    world.configure(api={"tokens": [
        {"name": "reader", "hash": hash_token(TOKENS["reader"]), "scopes": ["read"]},
        {"name": "syncer", "hash": hash_token(TOKENS["syncer"]), "scopes": ["sync"]},
    ]})
    daemon = Daemon(world.settings(), world.reconciler())
    with warnings.catch_warnings():
        # Starlette announces that its test client will move off httpx; it works the same today.
        warnings.simplefilter("ignore", UserWarning)
        from fastapi.testclient import TestClient
    try:
        with TestClient(http_app(daemon), base_url="http://127.0.0.1:8080") as client:
            yield client
    finally:
        daemon.queue.stop(5)
        world.close()
        monkeypatch.undo()


@pytest.fixture
def client(app: TestClient) -> TestClient:
    app.cookies.clear()
    return app


def sign_in(client: TestClient, who: str, next_path: str = "/") -> str:
    """Sign in through the form; return the CSRF token of the page it lands on."""
    response = client.post("/login", data={"token": TOKENS[who], "next": next_path})
    assert response.status_code == 200, response.text
    found = CSRF.search(response.text)
    assert found is not None
    return found.group(1)


def test_the_session_cookie_is_http_only_and_same_site_strict(client: TestClient) -> None:
    response = client.post("/login", data={"token": TOKENS["reader"]}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("reconciler_token=dashboard-read-token;")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie


@pytest.mark.parametrize("asked", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                   "/environments/../api/v1/environments", "javascript:alert(1)"])
def test_signing_in_returns_only_to_the_dashboards_own_pages(client: TestClient, asked: str) -> None:
    response = client.post("/login", data={"token": TOKENS["reader"], "next": asked}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_signing_in_returns_to_the_environment_page_asked_for(client: TestClient) -> None:
    response = client.post("/login", data={"token": TOKENS["reader"], "next": "/environments/staging"},
                           follow_redirects=False)
    assert response.headers["location"] == "/environments/staging"


def test_a_sign_in_posted_from_another_site_is_refused(client: TestClient) -> None:
    response = client.post("/login", data={"token": TOKENS["reader"]}, headers={"Sec-Fetch-Site": "cross-site"},
                           follow_redirects=False)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_a_read_only_session_has_no_sync_button_and_cannot_sync(client: TestClient) -> None:
    csrf = sign_in(client, "reader")
    page = client.get("/environments/staging")
    assert page.status_code == 200
    assert 'id="sync-form"' not in page.text
    refused = client.post("/environments/staging/sync", data={"csrf": csrf}, headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json() == {"error": "Your token lacks the 'sync' scope.", "detail": None}


def test_a_sync_session_gets_the_sync_button(client: TestClient) -> None:
    sign_in(client, "syncer")
    page = client.get("/environments/staging")
    assert 'id="sync-form"' in page.text
    assert 'action="/environments/staging/sync"' in page.text


def test_signing_out_needs_the_pages_csrf_token(client: TestClient) -> None:
    csrf = sign_in(client, "reader")
    assert client.post("/logout", data={"csrf": "f" * 64}).status_code == 403
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert 'reconciler_token=""' in response.headers["set-cookie"]


def test_an_unknown_environment_gets_a_not_found_page(client: TestClient) -> None:
    sign_in(client, "reader")
    response = client.get("/environments/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no environment named &#x27;nowhere&#x27;." in response.text


@pytest.mark.parametrize("path", ["/", "/environments/staging"])
def test_pages_allow_scripts_styles_and_requests_from_this_origin_only(client: TestClient, path: str) -> None:
    sign_in(client, "reader")
    response = client.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text  # no inline script: the policy would refuse it anyway


def test_signed_out_pages_show_the_form_and_no_data(client: TestClient) -> None:
    response = client.get("/environments/production")
    assert response.status_code == 401
    assert '<input type="hidden" name="next" value="/environments/production">' in response.text
    assert "End users and real data" not in response.text  # production's description


def test_assets_are_served_with_a_content_version(client: TestClient) -> None:
    script = asset("dashboard.js")
    assert script is not None
    versioned = client.get(f"/static/dashboard.js?v={script.version}")
    assert versioned.status_code == 200
    assert versioned.headers["content-type"] == "text/javascript; charset=utf-8"
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/static/dashboard.js").headers["cache-control"] == "no-cache"
    assert client.get("/static/dashboard.css").headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize("path", ["/static/pages.py", "/static/..%2Fpages.py", "/static/%2E%2E%2Fsessions.py",
                                  "/static/layout.html", "/static/.hidden.css", "/static/nothing.css"])
def test_nothing_but_the_static_assets_is_served_from_static(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
