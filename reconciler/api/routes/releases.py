"""``GET /api/v1/releases``: the promotion view as JSON (read scope), for scripts and the dashboard's page.

Rows are the newest release tags and the tracked branch heads; columns the environments the token
sees. Built by ``app/promotion.py`` through ``reconciler.queries``; nothing is written.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query

from reconciler.api import auth
from reconciler.api.access import Access
from reconciler.api.daemon import Daemon


def install(app: FastAPI, daemon: Daemon, access: Access) -> None:
    read = Depends(access.require("read"))

    @app.get("/api/v1/releases")
    def releases(limit: Annotated[int, Query(ge=1, le=100)] = 10, who: auth.Principal = read) -> dict[str, Any]:
        queries = daemon.reconciler.queries
        visible = {env for env in queries.names() if who.sees(env)}
        return queries.releases(limit, visible).as_json()
