"""Who is calling the API, and whether they may: the request dependencies every route uses.

A bearer token (or, for GETs only, the dashboard's session cookie) is matched against
``[[api.tokens]]`` (``api/auth.py``); ``Access.require(scope)`` is a FastAPI dependency that
answers 401 without a valid token and 403 when the token lacks the scope or does not see the
environment in the path.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from reconciler.api import auth
from reconciler.api.errors import ApiError
from reconciler.config import Settings
from reconciler.errors import clip


class Access:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def principal(self, request: Request) -> auth.Principal | None:
        token = auth.bearer(request.headers.get("authorization"))
        if token is None and request.method == "GET":
            # The dashboard's session cookie; read-only requests only, so it cannot be used for CSRF.
            token = request.cookies.get("reconciler_token")
        return auth.authenticate(self.settings.api.tokens, token)

    def authenticated(self, request: Request) -> auth.Principal:
        who = self.principal(request)
        if who is None:
            raise ApiError(401, "missing or invalid token")
        return who

    def require(self, scope: str) -> Callable[[Request], auth.Principal]:
        """The caller, when its token has ``scope`` and sees the environment in the path (if any)."""

        def check(request: Request) -> auth.Principal:
            who = self.authenticated(request)
            if not who.allows(scope):
                raise ApiError(403, f"token lacks the '{scope}' scope")
            env = request.path_params.get("env")
            if env is not None and not who.sees(env):
                raise ApiError(403, f"token is not scoped to environment {clip(env)!r}")
            return who

        return check
