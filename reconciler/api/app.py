"""The HTTP API of SPEC §8 (FastAPI), served by ``reconciler run`` in the daemon's process.

``create_app`` assembles it: the body limit and error answers (``api/middleware.py``), then the
routes (``api/routes/``: health, environments, hooks, registry), each given the daemon it serves
(``api/daemon.py``) and the token checks (``api/access.py``). Reads go through the application's
read model (``app/queries.py``); ``sync`` goes through the daemon's run queue (same gates as
everywhere); webhooks only ever trigger a fetch, coalesced with every other trigger.
"""

from __future__ import annotations

from fastapi import FastAPI

from reconciler.api import middleware
from reconciler.api.access import Access
from reconciler.api.daemon import Daemon, Host, as_host
from reconciler.api.routes import environments, health, hooks, registry, releases

__all__ = ["Daemon", "Host", "create_app"]


def create_app(served: Daemon | Host) -> FastAPI:
    """The API of ``served``: every workspace of a ``Host``, or a lone supervisor's one workspace."""
    host = as_host(served)
    app = FastAPI(title="Reconciler", version="1", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    middleware.install_error_handlers(app)
    middleware.limit_body(app, host.settings.api.max_body_bytes)
    access = Access(host)
    # Each module adds its routes to the application itself (not an included APIRouter): one flat
    # route table, which is what the deploy checks read to match probes and ports with the API.
    health.install(app, host)
    environments.install(app, access)
    hooks.install(app, access)
    registry.install(app, access)
    releases.install(app, access)
    return app
