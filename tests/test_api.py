"""The HTTP API of a real daemon on loopback: scopes, errors, limits, metrics, the registry endpoint."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from reconciler.api.auth import hash_token
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.conftest import CANARY, World, shared_world
from tests.daemon_support import DaemonProcess, start_daemon

# One worker runs the module, so its one daemon (the module-scoped ``api``) starts once.
pytestmark = pytest.mark.xdist_group("api")

TOKENS = {"reader": "read-token-1", "syncer": "sync-token-1", "admin": "admin-token-1", "app": "app-token-1"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[DaemonProcess]:
    """One daemon for the module (starting one takes seconds): its tests only read, are refused, or put
    back what they change (a pin), so each sees staging as the daemon's first run left it."""
    with shared_world(tmp_path_factory, pg, "api") as world:
        world.configure(api={"tokens": [
            {"name": "reader", "hash": hash_token(TOKENS["reader"]), "scopes": ["read"]},
            {"name": "syncer", "hash": hash_token(TOKENS["syncer"]), "scopes": ["sync"]},
            {"name": "admin", "hash": hash_token(TOKENS["admin"]), "scopes": ["admin"]},
            {"name": "dashboard-app", "hash": hash_token(TOKENS["app"]), "scopes": ["read"],
             "environments": ["staging"], "apps": ["customer-support-dashboard"]},
        ], "max_body_bytes": 4096})
        d = start_daemon(world.config, world.root / "data", env=world.secrets)
        try:
            d.token = TOKENS["admin"]
            d.wait_env("staging", state="Synced")
            yield d
        finally:
            d.kill()


def call(d: DaemonProcess, method: str, path: str, token: str | None = None, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, d.url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


MUTATING = [("POST", "/api/v1/environments/staging/sync", "sync"),
            ("POST", "/api/v1/environments/staging/pin", "admin"),
            ("POST", "/api/v1/environments/staging/unpin", "admin")]


@pytest.mark.parametrize(("method", "path", "scope"), MUTATING)
def test_mutating_endpoints_refuse_missing_wrong_and_underscoped_tokens(
    api: DaemonProcess, method: str, path: str, scope: str
) -> None:
    missing = call(api, method, path)
    assert missing.status_code == 401
    assert missing.json() == {"error": "missing or invalid token", "detail": None}
    assert call(api, method, path, "not-a-token").status_code == 401
    weaker = TOKENS["reader"] if scope == "sync" else TOKENS["syncer"]
    refused = call(api, method, path, weaker)
    assert refused.status_code == 403
    assert refused.json()["error"] == f"token lacks the '{scope}' scope"


def test_reads_need_a_read_token(api: DaemonProcess) -> None:
    assert call(api, "GET", "/api/v1/environments").status_code == 401
    ok = call(api, "GET", "/api/v1/environments", TOKENS["reader"])
    assert ok.status_code == 200
    assert [e["name"] for e in ok.json()["environments"]] == ["staging", "production"]
    one = call(api, "GET", "/api/v1/environments/staging", TOKENS["reader"]).json()
    assert one["last_run"]["result"] == "Succeeded"
    assert call(api, "GET", "/api/v1/environments/qa", TOKENS["reader"]).status_code == 404


def test_runs_and_one_run(api: DaemonProcess) -> None:
    runs = call(api, "GET", "/api/v1/environments/staging/runs", TOKENS["reader"]).json()["runs"]
    run = call(api, "GET", f"/api/v1/environments/staging/runs/{runs[0]['id']}", TOKENS["reader"]).json()
    assert run["result"] == "Succeeded" and run["plan"] and run["applied"]
    missing = call(api, "GET", "/api/v1/environments/staging/runs/nope", TOKENS["reader"])
    assert missing.status_code == 404 and missing.json()["error"] == "no run nope in staging"


def test_pin_and_unpin_with_admin(api: DaemonProcess) -> None:
    applied = api.env("staging")["applied_revision"]
    pinned = call(api, "POST", "/api/v1/environments/staging/pin", TOKENS["admin"], json={"revision": applied})
    assert pinned.status_code == 200 and pinned.json()["pinned_revision"] == applied
    assert api.env("staging")["pinned_revision"] == applied
    bad = call(api, "POST", "/api/v1/environments/staging/pin", TOKENS["admin"], content=b"not json")
    assert bad.status_code == 400
    assert call(api, "POST", "/api/v1/environments/staging/unpin", TOKENS["admin"]).json()["pinned_revision"] is None


def test_request_bodies_are_size_limited(api: DaemonProcess) -> None:
    big = b"x" * 5000
    response = call(api, "POST", "/hooks/github", content=big)
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large", "detail": {"limit": 4096}}


def test_errors_carry_no_stack_trace(api: DaemonProcess) -> None:
    response = call(api, "GET", "/api/v1/environments/staging/runs?limit=notanumber", TOKENS["reader"])
    assert response.status_code == 422
    assert "Traceback" not in response.text
    assert response.json()["error"] == "invalid request"


def test_registry_endpoint_resolves_secrets_for_a_scoped_token_only(api: DaemonProcess) -> None:
    path = "/api/v1/registry/staging/apps/customer-support-dashboard"
    assert call(api, "GET", path).status_code == 401
    assert call(api, "GET", path, TOKENS["reader"]).status_code == 403
    assert call(api, "GET", "/api/v1/registry/production/apps/customer-support-dashboard",
                TOKENS["app"]).status_code == 403
    response = call(api, "GET", path, TOKENS["app"])
    assert response.status_code == 200
    body = response.json()
    assert body["resources"]["crm-db"]["options"]["password"] == CANARY  # resolved at request time
    assert body["config"]["SUPPORT_EMAIL"] == "support-staging@example.com"
    # ...and never stored: the registry database holds the reference, not the value.
    assert CANARY.encode() not in (api.data_dir / "registry.db").read_bytes()


def test_health_readiness_and_metrics(api: DaemonProcess) -> None:
    assert call(api, "GET", "/healthz").json() == {"status": "ok"}
    ready = call(api, "GET", "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = call(api, "GET", "/metrics").text
    assert 'reconciler_runs_total{environment="staging",result="Succeeded",workspace="default"} 1.0' in metrics
    assert "reconciler_last_fetch_age_seconds" in metrics
    applied = api.env("staging")["applied_revision"]
    labels = f'environment="staging",kind="applied",revision="{applied}",workspace="default"'
    assert f"reconciler_revision_info{{{labels}}} 1.0" in metrics


def test_token_hashes_not_tokens_are_configured(pyworld: World) -> None:
    text = pyworld.config.read_text() if pyworld.config.exists() else ""
    for token in TOKENS.values():
        assert token not in text
    assert hash_token("x") == "sha256:" + hashlib.sha256(b"x").hexdigest()


def test_a_token_scoped_to_environments_sees_only_those(api: DaemonProcess) -> None:
    listed = call(api, "GET", "/api/v1/environments", TOKENS["app"]).json()["environments"]
    assert [e["name"] for e in listed] == ["staging"]
    assert call(api, "GET", "/api/v1/environments/staging/runs", TOKENS["app"]).status_code == 200
    other = call(api, "GET", "/api/v1/environments/production", TOKENS["app"])
    assert other.status_code == 403
    assert other.json()["error"] == "token is not scoped to environment 'production'"
    assert call(api, "GET", "/api/v1/environments/production/drift", TOKENS["app"]).status_code == 403
