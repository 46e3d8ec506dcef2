"""``/healthz``, ``/readyz`` and ``/metrics``: unauthenticated, for probes and Prometheus."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reconciler.api.daemon import Host


def install(app: FastAPI, host: Host) -> None:

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        running = host.workspaces
        configured = host.settings.workspace_names()
        if not running:  # no workspace could be built yet: nothing to serve, and no store to ask through
            return JSONResponse({"ready": False, "state_store": None, "first_fetch_done": False}, status_code=503)
        daemons = list(running.values())
        store_ok = daemons[0].reconciler.queries.store_reachable()  # one state database for every workspace
        if len(configured) == 1:
            state = daemons[0].state
            ready = store_ok and state.ready
            body = {"ready": ready, "state_store": store_ok, "first_fetch_done": state.ready,
                    "fetch_error": state.fetch_error}
            return JSONResponse(body, status_code=200 if ready else 503)
        # Several workspaces (decided by the configuration, running or not): one whose source cannot be
        # reached, or that cannot be built yet, must not take the others' API away, so the process is
        # ready once every running workspace has tried its first fetch; each configured one's state is
        # listed (without errors: this endpoint is unauthenticated and errors name sources).
        tried = all(d.state.ready or d.state.fetch_error is not None for d in daemons)
        ready = store_ok and tried
        each = {name: {"first_fetch_done": running[name].state.ready,
                       "fetch_failed": running[name].state.fetch_error is not None} if name in running
                else {"first_fetch_done": False, "fetch_failed": True} for name in configured}
        return JSONResponse({"ready": ready, "state_store": store_ok,
                             "first_fetch_done": all(d.state.ready for d in daemons), "workspaces": each},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(host.registry), media_type=CONTENT_TYPE_LATEST)

