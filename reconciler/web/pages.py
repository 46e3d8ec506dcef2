"""HTML pages and static assets of the dashboard, from the package's ``templates/`` and ``static/``.

Called by the dashboard's routes (``reconciler.web``). Pages are small shells: the server fills
in what it knows when the page is asked for (the environment's name and description, whether
the visitor may sync, the CSRF token) and ``static/dashboard.js`` renders the live data from the
JSON API. Every value put into a template is HTML-escaped unless it is ``Markup`` built here;
every response carries a Content-Security-Policy that allows scripts, styles and requests to this
origin only, so even a missed escape could not run a script.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from fastapi.responses import HTMLResponse, Response

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".svg": "image/svg+xml"}
# An environment's colour comes from users' YAML and ends up in CSS: only plain hex colours pass.
_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{3}){1,2}")


class Markup(str):
    """Text that is already HTML and goes into a template as it is."""

    __slots__ = ()


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    version: str


@cache
def _template(name: str) -> Template:
    return Template(resources.files("reconciler.web").joinpath("templates", name).read_text("utf-8"))


@cache
def asset(name: str) -> Asset | None:
    """A file of ``static/`` (by plain name only), with a content hash for cache-busting URLs."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in ASSET_TYPES:
        return None
    path = resources.files("reconciler.web").joinpath("static", name)
    if not path.is_file():
        return None
    body = path.read_bytes()
    return Asset(body, ASSET_TYPES[suffix], hashlib.sha256(body).hexdigest()[:12])


def asset_url(name: str) -> str:
    found = asset(name)
    return f"/static/{name}?v={found.version}" if found else f"/static/{name}"


def render(template: str, /, **values: str) -> Markup:
    """Fill a template: plain strings are escaped, ``Markup`` goes in as it is."""
    filled = {key: value if isinstance(value, Markup) else html.escape(value) for key, value in values.items()}
    return Markup(_template(template).substitute(filled))


def page(title: str, kind: str, body: Markup, *, status: int = 200, header: Markup = Markup(""),
         data: dict[str, str] | None = None) -> HTMLResponse:
    """A whole page: the layout around ``body``; ``data`` becomes ``data-*`` attributes of ``<body>``."""
    attributes = "".join(f' data-{key}="{html.escape(value)}"' for key, value in (data or {}).items())
    document = render("layout.html", title=title, page=kind, body_data=Markup(attributes), body=body,
                      header=header, css=asset_url("dashboard.css"), js=asset_url("dashboard.js"),
                      icon=asset_url("favicon.svg"))
    return HTMLResponse(document, status_code=status, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


def asset_response(name: str, version: str | None) -> Response:
    found = asset(name)
    if found is None:
        return Response("not found\n", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)
    # A versioned URL names one exact content, so browsers may keep it; an unversioned one is checked.
    caching = "public, max-age=31536000, immutable" if version == found.version else "no-cache"
    return Response(found.body, media_type=found.media_type,
                    headers={**SECURITY_HEADERS, "Cache-Control": caching, "ETag": f'"{found.version}"'})


def safe_color(value: object) -> str | None:
    return value if isinstance(value, str) and _COLOR.fullmatch(value) else None
