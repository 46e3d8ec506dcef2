"""``/api/v1/registry/{env}/apps/{app}``: what an app deployed in an environment uses, secrets resolved.

For apps on the registry platform to read their resources and config at start-up. The answer
holds secret values, so the token must be made for that environment and app, or be an admin's.
The read is a typed capability of the application (``app/queries.py``: ``Queries.registry_app``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from reconciler.api.access import API_PREFIXES, Access
from reconciler.api.errors import ApiError
from reconciler.errors import clip


def install(app: FastAPI, access: Access) -> None:
    for prefix in API_PREFIXES:
        _install(app, access, prefix)


def _install(app: FastAPI, access: Access, prefix: str) -> None:
    @app.get(f"{prefix}/registry/{{env}}/apps/{{app_name}}")
    def registry_app(env: str, app_name: str, request: Request) -> dict[str, Any]:
        # Secrets in the answer: the token must see this workspace, environment and app whatever its
        # scopes, and be either made for them (environments and apps listed) or an admin token.
        caller = access.caller(request)
        who = caller.who
        if not who.sees(env):
            raise ApiError(403, f"token is not scoped to environment {clip(env)!r}")
        if not who.sees_app(app_name):
            raise ApiError(403, f"token is not scoped to app {clip(app_name)!r}")
        made_for_it = who.environments is not None and who.apps is not None and who.allows("read")
        if not (made_for_it or who.allows("admin")):
            raise ApiError(403, "reading an app's resolved secrets needs a token that lists its environment "
                                "and app, or the 'admin' scope")
        found = caller.daemon.reconciler.queries.registry_app(env, app_name)
        if found is None:
            raise ApiError(404, f"app {clip(app_name)!r} is not deployed in {clip(env)!r}")
        return found

