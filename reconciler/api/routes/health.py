"""``/healthz``, ``/readyz`` and ``/metrics``: unauthenticated, for probes and Prometheus."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reconciler.api.daemon import Daemon


def install(app: FastAPI, daemon: Daemon) -> None:

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        store_ok = daemon.reconciler.queries.store_reachable()
        ready = store_ok and daemon.state.ready
        body = {"ready": ready, "state_store": store_ok, "first_fetch_done": daemon.state.ready,
                "fetch_error": daemon.state.fetch_error}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)

