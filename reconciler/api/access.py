"""Who is calling the API, and whether they may: the request dependencies every route uses.

A bearer token (or, for GETs only, the dashboard's session cookie) is matched against
``[[api.tokens]]`` and every workspace's ``[[workspaces.tokens]]`` (``api/auth.py``);
``Access.require(scope)`` is a FastAPI dependency that answers 401 without a valid token and 403
when the token lacks the scope, belongs to another workspace, or does not see the environment in
the path. It hands the route a ``Caller``: the token and the supervisor of the workspace the
request is for.

Which workspace: ``{ws}`` in the path (``/api/v1/workspaces/{ws}/...``), else — the paths of a
single-workspace daemon, kept for old clients — the only workspace, or the token's own workspace,
or the one named ``default``; with none of these the answer is 404 naming the workspaces the
token may see. A token of another workspace gets 403 for a workspace whether it exists or not, so
the answer does not tell which workspaces exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from reconciler.api import auth
from reconciler.api.daemon import Daemon, Host
from reconciler.api.errors import ApiError
from reconciler.config import DEFAULT_WORKSPACE
from reconciler.errors import clip

# Where every /api/v1 route is served: under a named workspace, and without one for the only (or
# default) workspace (``Access.default_workspace``).
API_PREFIXES = ("/api/v1/workspaces/{ws}", "/api/v1")


@dataclass(frozen=True)
class Caller:
    """An authenticated request: who, and the workspace it is for."""

    who: auth.Principal
    workspace: str
    daemon: Daemon


class Access:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.tokens = auth.token_table(host.settings)

    def principal(self, request: Request) -> auth.Principal | None:
        token = auth.bearer(request.headers.get("authorization"))
        if token is None and request.method == "GET":
            # The dashboard's session cookie; read-only requests only, so it cannot be used for CSRF.
            token = request.cookies.get("reconciler_token")
        return auth.authenticate(self.tokens, token)

    def authenticated(self, request: Request) -> auth.Principal:
        who = self.principal(request)
        if who is None:
            raise ApiError(401, "missing or invalid token")
        return who

    def visible(self, who: auth.Principal | None) -> list[str]:
        """The workspaces ``who`` may see (every one for a top-level token), in configuration order."""
        return [name for name in self.host.settings.workspace_names() if who is None or who.sees_workspace(name)]

    def default_workspace(self, who: auth.Principal | None) -> str | None:
        """The workspace a path without ``{ws}`` is for, or None when that is ambiguous. Decided by the
        configured workspaces, running or not: one that cannot be built yet answers 503 (``served``),
        never hands its requests to another."""
        names = self.host.settings.workspace_names()
        if len(names) == 1:
            return names[0]
        if who is not None and who.workspace is not None:
            return who.workspace
        return DEFAULT_WORKSPACE if DEFAULT_WORKSPACE in names else None

    def workspace(self, request: Request, who: auth.Principal | None) -> tuple[str, Daemon]:
        """The workspace ``request`` is for and its supervisor; 403 for a workspace ``who`` may not
        see (existing or not), 404 for one that does not exist or a path that names none."""
        name = request.path_params.get("ws")
        if name is None:
            name = self.default_workspace(who)
            if name is None:
                choices = ", ".join(self.visible(who)) or "none"
                raise ApiError(404, "several workspaces are served here; use /api/v1/workspaces/{workspace}/... "
                                    f"(workspaces: {choices})")
        if who is not None and not who.sees_workspace(name):
            raise ApiError(403, f"token is not scoped to workspace {clip(name)!r}")
        return name, self.served(name)

    def served(self, name: str) -> Daemon:
        """The supervisor of workspace ``name``: 503 while a configured one cannot be built, else 404."""
        daemon = self.host.workspaces.get(name)
        if daemon is not None:
            return daemon
        if name in self.host.settings.workspace_names():
            raise ApiError(503, f"workspace {clip(name)!r} is not running yet (its source or platform could not "
                                "be opened; the daemon keeps trying); try again later")
        raise ApiError(404, f"no workspace named {clip(name)!r}")

    def caller(self, request: Request) -> Caller:
        """Any authenticated caller of the workspace in the path (routes that judge scopes themselves)."""
        who = self.authenticated(request)
        name, daemon = self.workspace(request, who)
        return Caller(who, name, daemon)

    def require(self, scope: str) -> Callable[[Request], Caller]:
        """The caller, when its token sees the workspace, has ``scope`` and sees the environment in the path."""

        def check(request: Request) -> Caller:
            caller = self.caller(request)
            if not caller.who.allows(scope):
                raise ApiError(403, f"token lacks the '{scope}' scope")
            env = request.path_params.get("env")
            if env is not None and not caller.who.sees(env):
                raise ApiError(403, f"token is not scoped to environment {clip(env)!r}")
            return caller

        return check
