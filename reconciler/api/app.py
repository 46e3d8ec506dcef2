"""The HTTP API of SPEC §8 (FastAPI), served by ``reconciler run`` in the daemon's process.

Reads go through the application's read model (``app/queries.py``); ``sync`` goes through the daemon's run queue
(same gates as everywhere); ``checks`` runs the environment's declared checks within the request;
webhooks only ever trigger a fetch, coalesced with every other trigger. Errors are
``{"error": ..., "detail": ...}`` with the right status code: no stack traces, no secrets, no
credentials in URLs.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from reconciler.api import auth
from reconciler.api.errors import ApiError
from reconciler.app.queries import Queries
from reconciler.app.reconcile import Reconciler
from reconciler.config import Settings
from reconciler.errors import NotFoundError, ReconcilerError, SecretError, StoreError, clip
from reconciler.reports.drift import plan_json, plan_markdown
from reconciler.reports.status import status_json

log = structlog.get_logger(__name__)


class DaemonState(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def fetch_error(self) -> str | None: ...


class DaemonMetrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def webhooks(self) -> Counter: ...


class Daemon(Protocol):
    """What the API asks of the daemon (``daemon/supervisor.Daemon``): its parts and its two triggers."""

    @property
    def settings(self) -> Settings: ...

    @property
    def reconciler(self) -> Reconciler: ...

    @property
    def metrics(self) -> DaemonMetrics: ...

    @property
    def state(self) -> DaemonState: ...

    def request_sync(self, env: str, trigger: str = "api") -> bool: ...

    def request_fetch(self, source: str) -> None: ...


def create_app(daemon: Daemon) -> FastAPI:
    settings = daemon.settings
    reconciler = daemon.reconciler

    def queries() -> Queries:
        return reconciler.queries
    app = FastAPI(title="Reconciler", version="1", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    max_body = settings.api.max_body_bytes

    # -- errors ------------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", [])), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(_request: Request, _exc: ClientDisconnect) -> JSONResponse:
        # The client closed the connection (or sent a broken chunked body) before its body ended;
        # nobody reads this answer, but without a handler the daemon logs a stack trace.
        return _incomplete_body()

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "detail": None}, status_code=404)

    @app.exception_handler(StoreError)
    async def _store_down(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"error": "state store unavailable", "detail": str(exc)}, status_code=503)

    @app.exception_handler(ReconcilerError)
    async def _reconciler_error(_request: Request, exc: ReconcilerError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "detail": None}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unexpected_error", error_type=type(exc).__name__)
        return JSONResponse({"error": "internal error", "detail": None}, status_code=500)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > max_body
            except ValueError:
                return JSONResponse({"error": "invalid Content-Length", "detail": None}, status_code=400)
            if too_big:
                return JSONResponse({"error": "request body too large", "detail": {"limit": max_body}},
                                    status_code=413)
        elif request.method in ("POST", "PUT", "PATCH"):
            body = b""
            try:
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > max_body:
                        return JSONResponse({"error": "request body too large", "detail": {"limit": max_body}},
                                            status_code=413)
            except ClientDisconnect:
                return _incomplete_body()
            request._body = body
        return await call_next(request)

    # -- auth ----------------------------------------------------------------------------------------

    def principal(request: Request) -> auth.Principal | None:
        token = auth.bearer(request.headers.get("authorization"))
        if token is None and request.method == "GET":
            # The dashboard's session cookie; read-only requests only, so it cannot be used for CSRF.
            token = request.cookies.get("reconciler_token")
        return auth.authenticate(settings.api.tokens, token)

    def authenticated(request: Request) -> auth.Principal:
        who = principal(request)
        if who is None:
            raise ApiError(401, "missing or invalid token")
        return who

    def require(scope: str) -> Callable[[Request], auth.Principal]:
        """The caller, when its token has ``scope`` and sees the environment in the path (if any)."""

        def check(request: Request) -> auth.Principal:
            who = authenticated(request)
            if not who.allows(scope):
                raise ApiError(403, f"token lacks the '{scope}' scope")
            env = request.path_params.get("env")
            if env is not None and not who.sees(env):
                raise ApiError(403, f"token is not scoped to environment {clip(env)!r}")
            return who

        return check

    read = Depends(require("read"))
    sync = Depends(require("sync"))
    admin = Depends(require("admin"))

    def known(env: str) -> None:
        reconciler.spec(env)  # raises NotFoundError → 404

    # -- health and metrics --------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        store_ok = queries().store_reachable()
        ready = store_ok and daemon.state.ready
        body = {"ready": ready, "state_store": store_ok, "first_fetch_done": daemon.state.ready,
                "fetch_error": daemon.state.fetch_error}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- environments ----------------------------------------------------------------------------------

    @app.get("/api/v1/environments")
    def environments(who: auth.Principal = read) -> dict[str, Any]:
        return {"environments": [status_json(queries().status_row(env)) for env in queries().names() if who.sees(env)]}

    @app.get("/api/v1/environments/{env}", dependencies=[read])
    def environment(env: str) -> dict[str, Any]:
        known(env)
        row = queries().status_row(env)
        data = status_json(row)
        data["last_run"] = row.last_run.as_json() if row.last_run is not None else None
        return data

    @app.get("/api/v1/environments/{env}/drift", dependencies=[read])
    def drift(env: str, format: str = "json") -> Response:
        known(env)
        report = queries().drift_report(env)
        if format == "markdown":
            return PlainTextResponse(plan_markdown(report.plan, report.ref, report.first_seen, kind="drift"),
                                     media_type="text/markdown")
        body = plan_json(report.plan, report.ref, report.first_seen, kind="drift")
        body["checked_at"] = report.checked_at.isoformat() if report.checked_at else None
        return JSONResponse(body)

    @app.get("/api/v1/environments/{env}/runs", dependencies=[read])
    def runs(env: str, limit: Annotated[int, Query(ge=1)] = 50) -> dict[str, Any]:
        # A negative limit meant "no limit" to SQLite and a 500 (OverflowError) when huge.
        known(env)
        return {"environment": env, "runs": [r.as_json() for r in queries().runs(env, min(limit, 500))]}

    @app.get("/api/v1/environments/{env}/runs/{run_id}", dependencies=[read])
    def run(env: str, run_id: str) -> dict[str, Any]:
        record = queries().run(env, run_id)
        if record is None:
            raise ApiError(404, f"no run {clip(run_id)} in {clip(env)}")
        return record.as_json()

    @app.post("/api/v1/environments/{env}/sync", dependencies=[sync], status_code=202)
    def sync_now(env: str) -> dict[str, Any]:
        known(env)
        queued = daemon.request_sync(env, "api")
        return {"environment": env, "queued": queued,
                "detail": "run queued" if queued else "a run is already queued; it will pick up the latest state"}

    checking: dict[str, threading.Lock] = {}
    checking_guard = threading.Lock()

    @app.post("/api/v1/environments/{env}/checks", dependencies=[sync])
    def run_checks(env: str, check: Annotated[list[str] | None, Query(max_length=100)] = None) -> dict[str, Any]:
        """Run the environment's declared checks now and answer with their results (200 whether they pass).

        One run at a time per environment: a second request while one runs gets 409 rather than a
        second set of probes against the same databases and endpoints.
        """
        known(env)
        from reconciler.checks.runner import check_environment

        with checking_guard:
            lock = checking.setdefault(env, threading.Lock())
        if not lock.acquire(blocking=False):
            raise ApiError(409, f"the checks of {env} are running already; ask again when they finish")
        try:
            return check_environment(reconciler, env, reconciler.resolve_secret, check).as_json()
        finally:
            lock.release()

    @app.post("/api/v1/environments/{env}/pin", dependencies=[admin])
    async def pin(env: str, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "body must be JSON: {\"revision\": \"<tag, branch or commit>\"}") from None
        revision = body.get("revision") if isinstance(body, dict) else None
        if not isinstance(revision, str) or not revision or len(revision) > 255:
            raise ApiError(400, "body must be JSON: {\"revision\": \"<tag, branch or commit>\"}")
        known(env)
        commit = reconciler.pin(env, revision)
        daemon.request_sync(env, "pin")
        return {"environment": env, "pinned_revision": commit}

    @app.post("/api/v1/environments/{env}/unpin", dependencies=[admin])
    def unpin(env: str) -> dict[str, Any]:
        known(env)
        reconciler.unpin(env)
        daemon.request_fetch("unpin")
        return {"environment": env, "pinned_revision": None}

    # -- webhooks ----------------------------------------------------------------------------------------

    def hook_secret(key: str, source: str) -> str | None:
        """The value of ``source.<key>``; a secret that stopped resolving is the operator's to hear of.

        ``reconciler run`` refuses to start when it does not resolve, but a ``files:`` secret can
        vanish later. The caller is not authenticated yet, so the answer names neither the secret
        nor where it was looked for; the log does.
        """
        template = getattr(settings.source, key)
        if not template:
            return None
        try:
            return reconciler.resolve_secret(template)
        except SecretError as exc:
            log.error("api.webhook_secret_unavailable", key=f"source.{key}", error=str(exc))
            raise rejected(source, 503, "webhook signatures cannot be checked now; try again later") from None

    def accepted(source: str) -> dict[str, Any]:
        daemon.metrics.webhooks.labels(source, "accepted").inc()
        daemon.request_fetch(f"webhook:{source}")
        return {"accepted": True}

    def rejected(source: str, status: int, message: str) -> ApiError:
        daemon.metrics.webhooks.labels(source, "rejected").inc()
        return ApiError(status, message)

    @app.post("/hooks/github", status_code=202)
    async def github(request: Request) -> dict[str, Any]:
        body = await request.body()
        secret = hook_secret("webhook_secret", "github")
        if secret is None:
            raise rejected("github", 401, "webhook secret is not configured (source.webhook_secret)")
        if not auth.github_signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
            raise rejected("github", 401, "missing or bad X-Hub-Signature-256")
        if request.headers.get("x-github-event") == "ping":
            daemon.metrics.webhooks.labels("github", "ping").inc()
            return {"accepted": True, "detail": "pong"}
        return accepted("github")

    @app.post("/hooks/gitlab", status_code=202)
    async def gitlab(request: Request) -> dict[str, Any]:
        await request.body()
        key = "gitlab_token" if settings.source.gitlab_token else "webhook_secret"
        secret = hook_secret(key, "gitlab")
        if secret is None:
            raise rejected("gitlab", 401, "webhook token is not configured (source.gitlab_token)")
        if not auth.token_ok(secret, request.headers.get("x-gitlab-token")):
            raise rejected("gitlab", 401, "missing or bad X-Gitlab-Token")
        return accepted("gitlab")

    @app.post("/hooks/generic", status_code=202)
    async def generic(request: Request) -> dict[str, Any]:
        body = await request.body()
        who = principal(request)
        if who is not None:
            if not who.allows("sync"):
                raise rejected("generic", 403, "token lacks the 'sync' scope")
            if who.limited:
                # A fetch can move every environment; a token limited to some may not start one.
                raise rejected("generic", 403, "token is limited to some environments; a fetch concerns all of them")
            return accepted("generic")
        secret = hook_secret("webhook_secret", "generic")
        header = request.headers.get("x-reconciler-signature")
        if secret is None or not auth.github_signature_ok(secret, body, header):
            raise rejected("generic", 401, "missing or bad X-Reconciler-Signature (or bearer token)")
        return accepted("generic")

    # -- registry ------------------------------------------------------------------------------------------

    @app.get("/api/v1/registry/{env}/apps/{app_name}")
    def registry_app(env: str, app_name: str, request: Request) -> dict[str, Any]:
        # Secrets in the answer: the token must see this environment and this app whatever its
        # scopes, and be either made for them (environments and apps listed) or an admin token.
        who = authenticated(request)
        if not who.sees(env):
            raise ApiError(403, f"token is not scoped to environment {clip(env)!r}")
        if not who.sees_app(app_name):
            raise ApiError(403, f"token is not scoped to app {clip(app_name)!r}")
        made_for_it = who.environments is not None and who.apps is not None and who.allows("read")
        if not (made_for_it or who.allows("admin")):
            raise ApiError(403, "reading an app's resolved secrets needs a token that lists its environment "
                                "and app, or the 'admin' scope")
        found = reconciler.registry_app(env, app_name)
        if found is None:
            raise ApiError(404, f"app {clip(app_name)!r} is not deployed in {clip(env)!r}")
        return found

    return app


def _incomplete_body() -> JSONResponse:
    return JSONResponse({"error": "request body incomplete", "detail": None}, status_code=400)

