"""The web dashboard served by ``reconciler run`` at ``/`` (SPEC §8); every asset comes from the daemon.

``reconciler.daemon.main`` calls ``mount_dashboard`` once, on the API's application. Routes:

- ``GET /``: every environment (state, tracked ref, desired and applied revision, drift, last run);
- ``GET /environments/{env}``: one environment's drift table and run timeline;
- ``GET /promotion``: release tags and branch heads by environment, and what blocks each next
  promotion (``web/promotion.py``, ``static/promotion.js``);
- ``POST /login``, ``POST /logout``: the session cookie (see ``sessions``);
- ``POST /environments/{env}/sync``: "Sync now" for sessions whose token has the ``sync`` scope,
  through the daemon's run queue like the API's sync (same gates);
- ``GET /static/{name}``: the stylesheet, the script and the icon.

Pages are shells (``pages``); ``static/dashboard.js`` fills them from the JSON API and polls it,
so there is one source of truth for what the dashboard shows and no second renderer to drift.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from reconciler.api import auth
from reconciler.api.daemon import Daemon
from reconciler.config import ApiToken
from reconciler.errors import ReconcilerError, clip
from reconciler.web import sessions
from reconciler.web.pages import Markup, asset_response, page, render, safe_color
from reconciler.web.promotion import promotion_page

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 3


def mount_dashboard(app: FastAPI, daemon: Daemon) -> None:
    reconciler = daemon.reconciler

    def tokens() -> list[ApiToken]:
        return daemon.settings.api.tokens

    def reader(request: Request) -> auth.Principal | None:
        """The visitor, when allowed to read (cookie, or a bearer token for scripted checks).

        Which environments it sees is each page's business: a page of an environment the token
        does not see answers 404, like one that does not exist.
        """
        who = auth.authenticate(tokens(), auth.bearer(request.headers.get("authorization"))
                                or sessions.session_token(request))
        return who if who is not None and who.allows("read") else None

    def names() -> list[str]:
        return reconciler.queries.names()

    def login_page(next_path: str, error: str | None = None) -> Response:
        alert = Markup(f'<p class="problem" role="alert">{html.escape(error)}</p>') if error else Markup("")
        body = render("login.html", error=alert, next=sessions.safe_next(next_path))
        return page("Sign in · Reconciler", "login", body, status=401)

    def header(request: Request, who: auth.Principal) -> Markup:
        token = sessions.session_token(request)
        if token is None:  # a bearer-token visitor has no session to sign out of
            return Markup("")
        return render("signed_in.html", csrf=sessions.csrf_token(token), who=who.name)

    def refused(message: str, status: int = 403) -> Response:
        body = render("message.html", heading="Refused", message=message)
        return page("Refused · Reconciler", "error", body, status=status)

    # -- pages ---------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def overview(request: Request) -> Response:
        who = reader(request)
        if who is None:
            return login_page("/")
        return page("Environments · Reconciler", "overview", render("overview.html"), header=header(request, who),
                    data={"refresh": str(REFRESH_SECONDS)})

    @app.get("/environments/{env}", include_in_schema=False)
    def environment(env: str, request: Request) -> Response:
        who = reader(request)
        if who is None:
            return login_page(f"/environments/{env}")
        if env not in names() or not who.sees(env):
            body = render("message.html", heading="Not found", message=f"There is no environment named {clip(env)!r}.")
            return page("Not found · Reconciler", "error", body, status=404, header=header(request, who))
        description, color = _spec_details(daemon, env)
        token = sessions.session_token(request)
        sync = Markup("")
        if token is not None and who.allows("sync"):
            message = "Sync requested." if request.query_params.get("synced") == "1" else ""
            sync = render("sync.html", name=env, csrf=sessions.csrf_token(token), message=message)
        described = Markup(f'<p class="description">{html.escape(description)}</p>') if description else Markup("")
        data = {"refresh": str(REFRESH_SECONDS), "environment": env}
        if color:
            data["color"] = color
        body = render("environment.html", name=env, description=described, sync=sync)
        return page(f"{env} · Reconciler", "environment", body, header=header(request, who), data=data)

    @app.get("/promotion", include_in_schema=False)
    def promotion(request: Request) -> Response:
        who = reader(request)
        if who is None:
            return login_page("/promotion")
        return promotion_page(header(request, who), REFRESH_SECONDS)

    # -- session -------------------------------------------------------------------------------------

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if sessions.cross_site(request):
            return refused("Sign-in from another site is not allowed.")
        form = await _form(request)
        token = form.get("token", "").strip()
        who = auth.authenticate(tokens(), token or None)
        if who is None or not who.allows("read"):
            log.info("dashboard.sign_in_refused")
            return login_page(form.get("next", "/"), "That token is not valid, or it lacks the read scope.")
        log.info("dashboard.signed_in", token_name=who.name)
        response = RedirectResponse(sessions.safe_next(form.get("next")), status_code=303)
        sessions.sign_in(response, request, token)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await _form(request)
        if sessions.cross_site(request) or not sessions.csrf_ok(request, form.get(sessions.CSRF_FIELD)):
            return refused("This sign-out form has expired; reload the page and try again.")
        response = RedirectResponse("/", status_code=303)
        sessions.sign_out(response)
        return response

    # -- actions -------------------------------------------------------------------------------------

    @app.post("/environments/{env}/sync", include_in_schema=False)
    async def sync_now(env: str, request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        form = await _form(request)

        def answer(status: int, message: str) -> Response:
            if wants_json:
                return JSONResponse({"error": message, "detail": None}, status_code=status)
            return refused(message, status)

        who = sessions.principal(tokens(), request)
        if who is None:
            return answer(401, "Your session has ended; sign in again.")
        if sessions.cross_site(request) or not sessions.csrf_ok(request, form.get(sessions.CSRF_FIELD)):
            return answer(403, "This form has expired; reload the page and try again.")
        if not who.allows("sync"):
            return answer(403, "Your token lacks the 'sync' scope.")
        if env not in names() or not who.sees(env):
            return answer(404, f"There is no environment named {clip(env)!r}.")
        queued = daemon.request_sync(env, "dashboard")
        log.info("dashboard.sync_requested", environment=env, token_name=who.name, queued=queued)
        detail = "Sync queued." if queued else "A run is already queued; it will pick up the latest state."
        if wants_json:
            return JSONResponse({"environment": env, "queued": queued, "detail": detail}, status_code=202)
        return RedirectResponse(f"/environments/{env}?synced=1", status_code=303)

    # -- assets --------------------------------------------------------------------------------------

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, v: str | None = None) -> Response:
        return asset_response(name, v)


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form's first value of each field (the dashboard's forms are tiny)."""
    raw = await request.body()
    try:
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10)
    except ValueError:  # more fields than any of our forms has: not one of ours
        return {}
    return {key: values[0] for key, values in parsed.items()}


def _spec_details(daemon: Daemon, env: str) -> tuple[str | None, str | None]:
    """The environment's description and colour from its declaration, when the tree is readable."""
    try:
        spec = daemon.reconciler.spec(env)
    except ReconcilerError:
        return None, None
    return spec.description or None, safe_color(spec.color)
