"""``/api/v1/environments``: status, drift, runs (reads), and sync, checks, pin, unpin, break-glass (SPEC §8).

Each route is served twice: under ``/api/v1/workspaces/{ws}`` for a named workspace and under
``/api/v1`` for the only (or the token's own, or the default) workspace (``api/access.py``);
``GET /api/v1/workspaces`` lists the workspaces the token may see.

Reads go through ``app/queries.py``; ``sync`` goes through the daemon's run queue (the same gates
as everywhere); pin and unpin are the application's, followed by a run or a fetch; break-glass
(admin, with a reason) is a run that may override a deny window and nothing else.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from reconciler.api.access import API_PREFIXES, Access, Caller
from reconciler.api.errors import ApiError
from reconciler.app.queries import Queries
from reconciler.errors import clip
from reconciler.reports.drift import plan_json, plan_markdown
from reconciler.reports.status import status_json

REVISION_BODY = "body must be JSON: {\"revision\": \"<tag, branch or commit>\"}"
BREAK_GLASS_BODY = ("body must be JSON: {\"reason\": \"<why the deny window must be overridden now>\"} "
                    "(a reason is required; it is recorded with the run and notified)")


def install(app: FastAPI, access: Access) -> None:
    @app.get("/api/v1/workspaces")
    def workspaces(request: Request) -> dict[str, Any]:
        who = access.authenticated(request)
        if not who.allows("read"):
            raise ApiError(403, "token lacks the 'read' scope")
        out = []
        running = access.host.workspaces
        for name in (name for name in access.visible(who) if name in running):  # one not built yet: not listed
            count, states = running[name].reconciler.queries.state_counts(who.sees)
            out.append({"name": name, "environments": count, "states": states})
        return {"workspaces": out}

    checking: dict[tuple[str, str], threading.Lock] = {}
    checking_guard = threading.Lock()
    for prefix in API_PREFIXES:
        _install(app, access, prefix, checking, checking_guard)


def _install(app: FastAPI, access: Access, prefix: str, checking: dict[tuple[str, str], threading.Lock],
             checking_guard: threading.Lock) -> None:
    read = Depends(access.require("read"))
    sync = Depends(access.require("sync"))
    admin = Depends(access.require("admin"))

    def q(caller: Caller) -> Queries:
        return caller.daemon.reconciler.queries

    @app.get(f"{prefix}/environments")
    def environments(caller: Caller = read) -> dict[str, Any]:
        queries = q(caller)
        return {"workspace": caller.workspace, "environments": [
            status_json(queries.status_row(env)) for env in queries.names() if caller.who.sees(env)]}

    @app.get(f"{prefix}/environments/{{env}}")
    def environment(env: str, caller: Caller = read) -> dict[str, Any]:
        q(caller).known(env)
        row = q(caller).status_row(env)
        data = status_json(row)
        data["last_run"] = row.last_run.as_json() if row.last_run is not None else None
        return data

    @app.get(f"{prefix}/environments/{{env}}/drift")
    def drift(env: str, format: str = "json", caller: Caller = read) -> Response:
        q(caller).known(env)
        report = q(caller).drift_report(env)
        if format == "markdown":
            return PlainTextResponse(plan_markdown(report.plan, report.ref, report.first_seen, kind="drift"),
                                     media_type="text/markdown")
        body = plan_json(report.plan, report.ref, report.first_seen, kind="drift")
        body["checked_at"] = report.checked_at.isoformat() if report.checked_at else None
        return JSONResponse(body)

    @app.get(f"{prefix}/environments/{{env}}/runs")
    def runs(env: str, limit: Annotated[int, Query(ge=1)] = 50, caller: Caller = read) -> dict[str, Any]:
        # A negative limit meant "no limit" to SQLite and a 500 (OverflowError) when huge.
        q(caller).known(env)
        return {"environment": env, "runs": [r.as_json() for r in q(caller).runs(env, min(limit, 500))]}

    @app.get(f"{prefix}/environments/{{env}}/runs/{{run_id}}")
    def run(env: str, run_id: str, caller: Caller = read) -> dict[str, Any]:
        record = q(caller).run(env, run_id)
        if record is None:
            raise ApiError(404, f"no run {clip(run_id)} in {clip(env)}")
        return record.as_json()

    @app.post(f"{prefix}/environments/{{env}}/sync", status_code=202)
    def sync_now(env: str, caller: Caller = sync) -> dict[str, Any]:
        q(caller).known(env)
        queued = caller.daemon.request_sync(env, "api")
        return {"environment": env, "queued": queued,
                "detail": "run queued" if queued else "a run is already queued; it will pick up the latest state"}

    @app.post(f"{prefix}/environments/{{env}}/checks")
    def run_checks(env: str, check: Annotated[list[str] | None, Query(max_length=100)] = None,
                   caller: Caller = sync) -> dict[str, Any]:
        """Run the environment's declared checks now and answer with their results (200 whether they pass).

        One run at a time per environment: a second request while one runs gets 409 rather than a
        second set of probes against the same databases and endpoints.
        """
        q(caller).known(env)
        from reconciler.checks.runner import check_environment

        with checking_guard:
            lock = checking.setdefault((caller.workspace, env), threading.Lock())
        if not lock.acquire(blocking=False):
            raise ApiError(409, f"the checks of {env} are running already; ask again when they finish")
        reconciler = caller.daemon.reconciler
        try:
            return check_environment(reconciler, env, reconciler.resolve_secret, check).as_json()
        finally:
            lock.release()

    @app.post(f"{prefix}/environments/{{env}}/break-glass")
    async def break_glass(env: str, request: Request, caller: Caller = admin) -> JSONResponse:
        """Reconcile now, overriding a deny window (only that gate): admin scope and a reason required.

        The run happens in the request (an emergency wants its answer); its record names the token
        and the reason, and the daemon notifies a ``break-glass`` event.
        """
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, BREAK_GLASS_BODY) from None
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise ApiError(400, BREAK_GLASS_BODY)
        q(caller).known(env)
        outcome = await run_in_threadpool(caller.daemon.break_glass, env, f"token:{caller.who.name}", reason.strip())
        if outcome.result == "Busy":
            raise ApiError(409, outcome.reason or f"another run is applying {env}; try again shortly")
        return JSONResponse({
            "workspace": caller.workspace, "environment": env, "result": outcome.result, "run_id": outcome.run_id,
            "revision": outcome.revision,
            "ref": outcome.ref, "reason": outcome.reason, "gate": outcome.gate, "applied": list(outcome.applied),
            "break_glass": {"who": outcome.break_glass.who, "reason": outcome.break_glass.reason}
            if outcome.break_glass is not None else None,
            "warnings": list(outcome.warnings),
        }, status_code=200)

    @app.post(f"{prefix}/environments/{{env}}/pin")
    async def pin(env: str, request: Request, caller: Caller = admin) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, REVISION_BODY) from None
        revision = body.get("revision") if isinstance(body, dict) else None
        if not isinstance(revision, str) or not revision or len(revision) > 255:
            raise ApiError(400, REVISION_BODY)
        q(caller).known(env)
        commit = caller.daemon.reconciler.pin(env, revision)
        caller.daemon.request_sync(env, "pin")
        return {"environment": env, "pinned_revision": commit}

    @app.post(f"{prefix}/environments/{{env}}/unpin")
    def unpin(env: str, caller: Caller = admin) -> dict[str, Any]:
        q(caller).known(env)
        caller.daemon.reconciler.unpin(env)
        caller.daemon.request_fetch("unpin")
        return {"environment": env, "pinned_revision": None}

