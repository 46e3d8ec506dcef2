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

With several workspaces, each has its pages under ``/workspaces/{ws}/`` (overview, environments,
promotion, sync) and ``/`` lists the workspaces the visitor's token may see (the only one it sees: that
workspace's overview). A token of another workspace is refused (403) every page of a workspace.

Pages are shells (``pages``); ``static/dashboard.js`` fills them from the JSON API and polls it,
so there is one source of truth for what the dashboard shows and no second renderer to drift.
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from reconciler import logs
from reconciler.api import auth
from reconciler.api.access import Access
from reconciler.api.daemon import Daemon, Host, as_host
from reconciler.api.errors import ApiError
from reconciler.errors import ReconcilerError, clip
from reconciler.web import sessions
from reconciler.web.pages import Markup, asset_response, page, render, safe_color
from reconciler.web.promotion import promotion_page

log = logs.get_logger(__name__)

REFRESH_SECONDS = 3


@dataclass(frozen=True)
class Place:
    """Where a page's workspace lives: its pages' prefix and its API's."""

    name: str
    daemon: Daemon
    base: str  # "" for the only (or default) workspace, else /workspaces/<name>
    api: str


def mount_dashboard(app: FastAPI, served: Daemon | Host) -> None:
    host = as_host(served)
    access = Access(host)  # the API's rules: which tokens, which workspaces they see, which one a path means
    several = len(host.settings.workspace_names()) > 1  # configured, running or not

    def tokens() -> auth.TokenTable:
        return access.tokens

    def visible(who: auth.Principal) -> list[str]:
        return access.visible(who)

    def resolve(ws: str | None, who: auth.Principal) -> Place | Response:
        """The workspace of a page (``ws`` from its path, else the one ``Access.default_workspace``
        names, as for the API), or the page refusing it."""
        name = ws if ws is not None else access.default_workspace(who)
        if name is None:
            return refused("Choose a workspace on the overview.", 404)
        if not who.sees_workspace(name):
            return refused(f"Your token is not scoped to workspace {clip(name)!r}.")
        try:
            daemon = access.served(name)
        except ApiError as exc:  # 404 for no such workspace, 503 for one that cannot be built yet
            heading = "Not found" if exc.status == 404 else "Not running"
            body = render("message.html", heading=heading, message=exc.error)
            return page(f"{heading} · Reconciler", "error", body, status=exc.status)
        base = f"/workspaces/{name}" if ws is not None else ""
        return Place(name, daemon, base, f"/api/v1{base}")

    def reader(request: Request) -> auth.Principal | None:
        """The visitor, when allowed to read (cookie, or a bearer token for scripted checks).

        Which environments it sees is each page's business: a page of an environment the token
        does not see answers 404, like one that does not exist.
        """
        who = auth.authenticate(tokens(), auth.bearer(request.headers.get("authorization"))
                                or sessions.session_token(request))
        return who if who is not None and who.allows("read") else None

    def names(where: Place) -> list[str]:
        return where.daemon.reconciler.queries.names()

    def login_page(next_path: str, error: str | None = None) -> Response:
        alert = Markup(f'<p class="problem" role="alert">{html.escape(error)}</p>') if error else Markup("")
        body = render("login.html", error=alert, next=sessions.safe_next(next_path))
        return page("Sign in · Reconciler", "login", body, status=401)

    def header(request: Request, who: auth.Principal, where: Place | None = None) -> Markup:
        """The signed-in bar: its links lead to the pages of the workspace shown (``where``), if any."""
        token = sessions.session_token(request)
        if token is None:  # a bearer-token visitor has no session to sign out of
            return Markup("")
        base = where.base if where is not None else ""
        return render("signed_in.html", csrf=sessions.csrf_token(token), who=who.name, base=base)

    def refused(message: str, status: int = 403) -> Response:
        body = render("message.html", heading="Refused", message=message)
        return page("Refused · Reconciler", "error", body, status=status)

    # -- pages ---------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        who = reader(request)
        if who is None:
            return login_page("/")
        names = visible(who)
        if several and len(names) != 1:
            return workspaces_page(request, who, names)
        return overview_page(request, who, None)

    @app.get("/workspaces/{ws}/", include_in_schema=False)
    def workspace_overview(ws: str, request: Request) -> Response:
        who = reader(request)
        if who is None:
            return login_page(f"/workspaces/{ws}/")
        return overview_page(request, who, ws)

    def workspaces_page(request: Request, who: auth.Principal, names: list[str]) -> Response:
        rows = []
        for name in names:
            daemon = host.workspaces.get(name)  # None while it cannot be built: still listed
            environments, states = 0, dict[str, int]()
            if daemon is not None:
                with contextlib.suppress(ReconcilerError):  # its state cannot be read now: still listed
                    environments, states = daemon.reconciler.queries.state_counts(who.sees)
            summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "—"
            rows.append(f'<tr data-workspace="{html.escape(name)}"><th scope="row"><a href="/workspaces/'
                        f'{html.escape(name)}/">{html.escape(name)}</a></th><td class="num">{environments}</td>'
                        f"<td>{html.escape(summary)}</td><td><a href=\"/workspaces/{html.escape(name)}/promotion\">"
                        "releases by environment</a></td></tr>")
        body = render("workspaces.html", rows=Markup("\n".join(rows)))
        return page("Workspaces · Reconciler", "workspaces", body, header=header(request, who))

    def overview_page(request: Request, who: auth.Principal, ws: str | None) -> Response:
        where = resolve(ws, who)
        if isinstance(where, Response):
            return where
        title = Markup(f" <small>· {html.escape(where.name)}</small>") if several else Markup("")
        body = render("overview.html", workspace=title, api=where.api)
        return page("Environments · Reconciler", "overview", body, header=header(request, who, where),
                    data={"refresh": str(REFRESH_SECONDS), "api": where.api, "base": where.base})

    @app.get("/environments/{env}", include_in_schema=False)
    def environment(env: str, request: Request) -> Response:
        return environment_page(env, request, None)

    @app.get("/workspaces/{ws}/environments/{env}", include_in_schema=False)
    def workspace_environment(ws: str, env: str, request: Request) -> Response:
        return environment_page(env, request, ws)

    def environment_page(env: str, request: Request, ws: str | None) -> Response:
        who = reader(request)
        base = f"/workspaces/{ws}" if ws is not None else ""
        if who is None:
            return login_page(f"{base}/environments/{env}")
        where = resolve(ws, who)
        if isinstance(where, Response):
            return where
        if env not in names(where) or not who.sees(env):
            body = render("message.html", heading="Not found", message=f"There is no environment named {clip(env)!r}.")
            return page("Not found · Reconciler", "error", body, status=404, header=header(request, who, where))
        description, color = _spec_details(where.daemon, env)
        token = sessions.session_token(request)
        sync = Markup("")
        if token is not None and who.allows("sync"):
            message = "Sync requested." if request.query_params.get("synced") == "1" else ""
            sync = render("sync.html", action=f"{where.base}/environments/{env}/sync", csrf=sessions.csrf_token(token),
                          message=message)
        described = Markup(f'<p class="description">{html.escape(description)}</p>') if description else Markup("")
        data = {"refresh": str(REFRESH_SECONDS), "environment": env, "api": where.api, "base": where.base}
        if color:
            data["color"] = color
        body = render("environment.html", name=env, description=described, sync=sync, home=f"{where.base}/",
                      api=where.api)
        return page(f"{env} · Reconciler", "environment", body, header=header(request, who, where), data=data)

    @app.get("/promotion", include_in_schema=False)
    def promotion(request: Request) -> Response:
        return promotion_view(request, None)

    @app.get("/workspaces/{ws}/promotion", include_in_schema=False)
    def workspace_promotion(ws: str, request: Request) -> Response:
        return promotion_view(request, ws)

    def promotion_view(request: Request, ws: str | None) -> Response:
        who = reader(request)
        if who is None:
            return login_page(f"/workspaces/{ws}/promotion" if ws is not None else "/promotion")
        where = resolve(ws, who)
        if isinstance(where, Response):
            return where
        return promotion_page(header(request, who, where), REFRESH_SECONDS, api=where.api, base=where.base,
                              workspace=where.name if several else None)

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
        return await sync_page(env, request, None)

    @app.post("/workspaces/{ws}/environments/{env}/sync", include_in_schema=False)
    async def workspace_sync_now(ws: str, env: str, request: Request) -> Response:
        return await sync_page(env, request, ws)

    async def sync_page(env: str, request: Request, ws: str | None) -> Response:
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
        where = resolve(ws, who)
        if isinstance(where, Response):
            return answer(where.status_code, "Your token may not act on this workspace." if where.status_code == 403
                          else "There is no such workspace.")
        if not who.allows("sync"):
            return answer(403, "Your token lacks the 'sync' scope.")
        if env not in names(where) or not who.sees(env):
            return answer(404, f"There is no environment named {clip(env)!r}.")
        queued = where.daemon.request_sync(env, "dashboard")
        log.info("dashboard.sync_requested", workspace=where.name, environment=env, token_name=who.name,
                 queued=queued)
        detail = "Sync queued." if queued else "A run is already queued; it will pick up the latest state."
        if wants_json:
            return JSONResponse({"environment": env, "queued": queued, "detail": detail}, status_code=202)
        return RedirectResponse(f"{where.base}/environments/{env}?synced=1", status_code=303)

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
