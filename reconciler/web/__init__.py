"""The web dashboard served by ``reconciler run`` at ``/`` (every asset served by the daemon, no CDN)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from reconciler.daemon.supervisor import Daemon

COOKIE = "reconciler_token"

LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reconciler — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Reconciler</h1><form method="post" action="/login">
<label for="token">API token (scope <code>read</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>{error}</main></body></html>"""


def mount_dashboard(app: FastAPI, daemon: Daemon, require_read: Callable[[Request], Any]) -> None:
    from reconciler.api.app import ApiError

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        try:
            require_read(request)
        except ApiError:
            return HTMLResponse(LOGIN.format(error=""), status_code=401)
        rows = []
        for env in daemon.reconciler.environments():
            status = daemon.reconciler.store.status(env)
            rows.append(f"<tr><td>{html.escape(env)}</td><td>{html.escape(status.state)}</td>"
                        f"<td>{html.escape(status.applied_ref or '-')}</td></tr>")
        return HTMLResponse("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Reconciler</title>"
                            "</head><body><h1>Environments</h1><table>" + "".join(rows) + "</table></body></html>")

    @app.post("/login")
    async def login(request: Request) -> Response:
        from reconciler.api import auth

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        who = auth.authenticate(daemon.settings.api.tokens, token)
        if who is None or not who.allows("read"):
            return HTMLResponse(LOGIN.format(error="<p role='alert'>That token is not valid.</p>"), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return response
