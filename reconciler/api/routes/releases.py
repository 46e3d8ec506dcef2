"""``GET /api/v1/releases``: the promotion view as JSON (read scope), for scripts and the dashboard's page.

Rows are the newest release tags and the tracked branch heads; columns the environments the token
sees. Built by ``app/promotion.py`` through ``reconciler.queries``; nothing is written.

Served under ``/api/v1/workspaces/{ws}`` for a named workspace and under ``/api/v1`` for the only
(or the token's own, or the default) workspace (``api/access.py``), like every environment route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query

from reconciler.api.access import API_PREFIXES, Access, Caller


def install(app: FastAPI, access: Access) -> None:
    for prefix in API_PREFIXES:
        _install(app, access, prefix)


def _install(app: FastAPI, access: Access, prefix: str) -> None:
    read = Depends(access.require("read"))

    @app.get(f"{prefix}/releases")
    def releases(limit: Annotated[int, Query(ge=1, le=100)] = 10, caller: Caller = read) -> dict[str, Any]:
        queries = caller.daemon.reconciler.queries
        visible = {env for env in queries.names() if caller.who.sees(env)}
        return {"workspace": caller.workspace, **queries.releases(limit, visible).as_json()}
