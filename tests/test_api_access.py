"""Who may call what: every route the daemon serves, with every kind of credential, on a real daemon.

The table below is the access contract of the HTTP API (SPEC §8) and the dashboard. Requests go
to ``staging``, the environment the daemon has applied; "other" tokens are limited to
``production`` and "same" tokens to ``staging``. A token listing ``environments`` reads and acts
on those environments only, whatever its scopes; a token listing ``apps`` reads the registry
endpoint for those apps only. A credential that is missing or unknown gets 401, a token without
the scope or the environment gets 403 (the dashboard's pages answer 404 for an environment the
visitor may not see, as for one that does not exist).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.api.auth import hash_token
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.web.sessions import csrf_token
from tests.conftest import CANARY, World, make_world
from tests.daemon_support import DaemonProcess, start_daemon

pytestmark = pytest.mark.xdist_group("api-access")

APP = "customer-support-dashboard"
WEBHOOK_SECRET = "access-hook-secret-7Ghq"


@dataclass(frozen=True)
class Credential:
    token: str | None
    scopes: tuple[str, ...] = ()
    environments: tuple[str, ...] | None = None
    apps: tuple[str, ...] | None = None


# The columns of the table, in order.
CREDENTIALS = {
    "none": Credential(None),
    "wrong": Credential("not-a-configured-token"),
    "read": Credential("access-read", ("read",)),
    "sync": Credential("access-sync", ("sync",)),
    "admin": Credential("access-admin", ("admin",)),
    "other-read": Credential("access-prod-read", ("read",), ("production",)),
    "other-sync": Credential("access-prod-sync", ("sync",), ("production",)),
    "other-admin": Credential("access-prod-admin", ("admin",), ("production",)),
    "same-read": Credential("access-stg-read", ("read",), ("staging",)),
    "same-sync": Credential("access-stg-sync", ("sync",), ("staging",)),
    "same-admin": Credential("access-stg-admin", ("admin",), ("staging",)),
    "app": Credential("access-app", ("read",), ("staging",), (APP,)),
    "other-app-admin": Credential("access-other-app", ("admin",), ("staging",), ("another-app",)),
}
COLUMNS = tuple(CREDENTIALS)

STG = "/api/v1/environments/staging"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "{run}" is replaced by the id of a staging run
    expected: tuple[int, ...]  # one status per column of CREDENTIALS
    send: str = "bearer"  # how the credential travels: "bearer", "cookie" (the dashboard's session) or "form"
    json: bool = False  # a JSON body {"revision": <staging's applied revision>}
    accept_json: bool = False


ALL_200 = (200,) * 13
#                 none wrong read sync admin  o-read o-sync o-admin  s-read s-sync s-admin  app  o-app-admin
READ_ENV = (401, 401, 200, 200, 200, 403, 403, 403, 200, 200, 200, 200, 200)
SYNC_ENV = (401, 401, 403, 202, 202, 403, 403, 403, 403, 202, 202, 403, 202)
# Checks run within the request: the same callers as sync, answered 200 with the results.
CHECKS_ENV = tuple(200 if status == 202 else status for status in SYNC_ENV)
ADMIN_ENV = (401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 403, 200)
# A fetch concerns every environment: a token limited to some may not trigger one.
GENERIC_HOOK = (401, 401, 403, 202, 202, 403, 403, 403, 403, 403, 403, 403, 403)
REGISTRY_STAGING = (401, 401, 403, 403, 200, 403, 403, 403, 403, 403, 200, 200, 403)
# production runs nothing yet: who may look gets 404, everyone else is refused before the lookup.
REGISTRY_PRODUCTION = (401, 401, 403, 403, 404, 403, 403, 404, 403, 403, 403, 403, 403)
PAGE = (401, 401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)
PAGE_ENV = (401, 401, 200, 200, 200, 404, 404, 404, 200, 200, 200, 200, 200)
PAGE_SYNC = (401, 401, 403, 202, 202, 403, 404, 404, 403, 202, 202, 403, 202)
LOGIN = (401, 401, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303)

ROUTES = [
    Route("GET", "/healthz", ALL_200),
    Route("GET", "/readyz", ALL_200),
    Route("GET", "/metrics", ALL_200),
    Route("GET", "/api/v1/openapi.json", ALL_200),
    Route("GET", "/api/v1/environments", READ_ENV[:5] + (200,) * 8),
    Route("GET", STG, READ_ENV),
    Route("GET", f"{STG}/drift", READ_ENV),
    Route("GET", f"{STG}/drift?format=markdown", READ_ENV),
    Route("GET", f"{STG}/runs", READ_ENV),
    Route("GET", f"{STG}/runs/{{run}}", READ_ENV),
    Route("POST", f"{STG}/sync", SYNC_ENV),
    Route("POST", f"{STG}/checks", CHECKS_ENV),
    Route("POST", f"{STG}/pin", ADMIN_ENV, json=True),
    Route("POST", f"{STG}/unpin", ADMIN_ENV),
    Route("POST", "/hooks/github", (401,) * 13),
    Route("POST", "/hooks/gitlab", (401,) * 13),
    Route("POST", "/hooks/generic", GENERIC_HOOK),
    Route("GET", f"/api/v1/registry/staging/apps/{APP}", REGISTRY_STAGING),
    Route("GET", f"/api/v1/registry/production/apps/{APP}", REGISTRY_PRODUCTION),
    # The dashboard's session cookie works for reads, and for nothing else.
    Route("GET", "/api/v1/environments", READ_ENV[:5] + (200,) * 8, send="cookie"),
    Route("GET", f"{STG}/runs/{{run}}", READ_ENV, send="cookie"),
    Route("GET", f"/api/v1/registry/staging/apps/{APP}", REGISTRY_STAGING, send="cookie"),
    Route("POST", f"{STG}/sync", (401,) * 13, send="cookie"),
    Route("POST", f"{STG}/checks", (401,) * 13, send="cookie"),
    Route("POST", f"{STG}/pin", (401,) * 13, send="cookie", json=True),
    # The dashboard.
    Route("GET", "/", PAGE, send="cookie"),
    Route("GET", "/environments/staging", PAGE_ENV, send="cookie"),
    Route("POST", "/environments/staging/sync", PAGE_SYNC, send="cookie", accept_json=True),
    Route("POST", "/login", LOGIN, send="form"),
    Route("GET", "/static/dashboard.css", ALL_200),
]


@dataclass
class Served:
    daemon: DaemonProcess
    run_id: str
    applied: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[Served]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(tmp_path_factory.mktemp("access"), pg, monkeypatch, cli_git=False)
    tokens = [{"name": name, "hash": hash_token(c.token), "scopes": list(c.scopes),
               **({"environments": list(c.environments)} if c.environments is not None else {}),
               **({"apps": list(c.apps)} if c.apps is not None else {})}
              for name, c in CREDENTIALS.items() if c.scopes]
    world.configure(source={"webhook_secret": "${secret:ACCESS_WEBHOOK_SECRET}"}, api={"tokens": tokens})
    world.secrets["ACCESS_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    daemon = start_daemon(world.config, world.root / "data", env=world.secrets, name="access")
    daemon.token = "access-admin"
    try:
        staging = daemon.wait_env("staging", state="Synced")
        runs = daemon.get(f"{STG}/runs")["runs"]
        yield Served(daemon, runs[0]["id"], staging["applied_revision"])
    finally:
        daemon.kill()
        world.close()
        monkeypatch.undo()


def request(served: Served, route: Route, credential: Credential) -> httpx.Response:
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    data: dict[str, str] | None = None
    if credential.token is not None:
        if route.send == "bearer":
            headers["Authorization"] = f"Bearer {credential.token}"
        elif route.send == "cookie":
            cookies["reconciler_token"] = credential.token
            if route.method == "POST":
                data = {"csrf": csrf_token(credential.token)}
        else:
            data = {"token": credential.token, "next": "/"}
    if route.accept_json:
        headers["Accept"] = "application/json"
    with httpx.Client(base_url=served.daemon.url, cookies=cookies, timeout=20) as client:
        return client.request(route.method, route.path.replace("{run}", served.run_id), headers=headers,
                              data=data, json={"revision": served.applied} if route.json else None)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path} ({r.send})" for r in ROUTES])
def test_every_route_answers_every_credential_as_the_table_says(served: Served, route: Route) -> None:
    assert len(route.expected) == len(COLUMNS)
    seen = {}
    for column, credential in CREDENTIALS.items():
        response = request(served, route, credential)
        seen[column] = response.status_code
        if response.status_code == 200 and route.path.endswith("/pin"):
            unpinned = request(served, Route("POST", f"{STG}/unpin", ()), CREDENTIALS["admin"])
            assert unpinned.status_code == 200
        if route.path.startswith(("/api/", "/hooks/")) and response.status_code in (401, 403, 404):
            assert set(response.json()) == {"error", "detail"}
    assert seen == dict(zip(COLUMNS, route.expected, strict=True))


@pytest.mark.parametrize(("column", "listed"), [
    ("read", ["staging", "production"]), ("admin", ["staging", "production"]),
    ("other-read", ["production"]), ("other-admin", ["production"]),
    ("same-sync", ["staging"]), ("app", ["staging"]),
])
def test_the_environment_list_holds_only_what_the_token_sees(served: Served, column: str, listed: list[str]) -> None:
    response = request(served, Route("GET", "/api/v1/environments", ()), CREDENTIALS[column])
    assert [e["name"] for e in response.json()["environments"]] == listed


def test_an_admin_token_limited_to_production_cannot_read_staging_secrets(served: Served) -> None:
    response = request(served, Route("GET", f"/api/v1/registry/staging/apps/{APP}", ()), CREDENTIALS["other-admin"])
    assert response.status_code == 403
    assert response.json() == {"error": "token is not scoped to environment 'staging'", "detail": None}
    assert CANARY not in response.text


def test_a_token_scoped_to_the_environment_and_app_reads_its_secrets(served: Served) -> None:
    response = request(served, Route("GET", f"/api/v1/registry/staging/apps/{APP}", ()), CREDENTIALS["app"])
    assert response.json()["resources"]["crm-db"]["options"]["password"] == CANARY


# -- what refusals say ------------------------------------------------------------------------------

LONG = "n" * 3000


@pytest.mark.parametrize("path", [
    f"/api/v1/environments/{LONG}", f"/api/v1/environments/{LONG}/drift", f"/api/v1/environments/{LONG}/runs",
    f"/api/v1/environments/{LONG}/runs/x", f"{STG}/runs/{LONG}", f"/api/v1/registry/{LONG}/apps/{APP}",
    f"/api/v1/registry/staging/apps/{LONG}", f"/environments/{LONG}",
])
@pytest.mark.parametrize("column", ["admin", "same-admin", "app"])
def test_a_long_name_in_a_read_path_is_echoed_clipped(served: Served, path: str, column: str) -> None:
    response = request(served, Route("GET", path, (), send="cookie" if path.startswith("/env") else "bearer"),
                       CREDENTIALS[column])
    assert response.status_code in (403, 404)
    assert "n" * 101 not in response.text
    assert "n" * 100 + "…" in response.text


@pytest.mark.parametrize("action", ["sync", "checks", "pin", "unpin"])
@pytest.mark.parametrize("column", ["admin", "same-admin"])
def test_a_long_name_in_an_action_path_is_echoed_clipped(served: Served, action: str, column: str) -> None:
    response = request(served, Route("POST", f"/api/v1/environments/{LONG}/{action}", (), json=True),
                       CREDENTIALS[column])
    assert response.status_code in (403, 404)
    assert "n" * 101 not in response.text
    assert "n" * 100 + "…" in response.text


@pytest.mark.parametrize("hook", ["github", "gitlab", "generic"])
def test_a_hook_with_a_bad_signature_reveals_no_secret(served: Served, hook: str) -> None:
    response = httpx.post(f"{served.daemon.url}/hooks/{hook}", content=b"{}", timeout=20, headers={
        "X-Hub-Signature-256": "sha256=" + "0" * 64, "X-Gitlab-Token": "wrong",
        "X-Reconciler-Signature": "sha256=" + "0" * 64})
    assert response.status_code == 401
    assert "ACCESS_WEBHOOK_SECRET" not in response.text
    assert WEBHOOK_SECRET not in response.text
    assert "secret:" not in response.text


def test_a_webhook_secret_that_vanishes_is_not_named_to_the_caller(pyworld: World, tmp_path: Path) -> None:
    """``files:`` secrets can disappear under a running daemon; the hook's answer names nothing."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "VANISHING_HOOK_SECRET").write_text("vanishing-hook-value\n")
    pyworld.configure(source={"webhook_secret": "${secret:VANISHING_HOOK_SECRET}"},
                      secrets={"backends": ["env", f"files:{secrets_dir}"]})
    daemon = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        (secrets_dir / "VANISHING_HOOK_SECRET").unlink()
        for hook in ("github", "gitlab", "generic"):
            response = httpx.post(f"{daemon.url}/hooks/{hook}", content=b"{}", timeout=20,
                                  headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
            assert response.status_code == 503
            assert response.json() == {"error": "webhook signatures cannot be checked now; try again later",
                                       "detail": None}
        assert "source.webhook_secret" in daemon.logs()
    finally:
        daemon.kill()
