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
        daemons = list(host.workspaces.values())
        store_ok = daemons[0].reconciler.queries.store_reachable()  # one state database for every workspace
        if len(daemons) == 1:
            state = daemons[0].state
            ready = store_ok and state.ready
            body = {"ready": ready, "state_store": store_ok, "first_fetch_done": state.ready,
                    "fetch_error": state.fetch_error}
            return JSONResponse(body, status_code=200 if ready else 503)
        # Several workspaces: one whose source cannot be reached must not take the others' API away,
        # so the process is ready once every workspace has tried its first fetch; each one's state is
        # listed (without errors: this endpoint is unauthenticated and errors name sources).
        tried = all(d.state.ready or d.state.fetch_error is not None for d in daemons)
        ready = store_ok and tried
        each = {name: {"first_fetch_done": d.state.ready, "fetch_failed": d.state.fetch_error is not None}
                for name, d in host.workspaces.items()}
        return JSONResponse({"ready": ready, "state_store": store_ok,
                             "first_fetch_done": all(d.state.ready for d in daemons), "workspaces": each},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(host.registry), media_type=CONTENT_TYPE_LATEST)

