"""The dashboard's promotion page (``GET /promotion``, ``GET /workspaces/{ws}/promotion``): a shell
that ``static/promotion.js`` fills.

The script reads ``GET {api}/releases`` (``api/routes/releases.py``, built by ``app/promotion.py``;
``{api}`` is ``/api/v1/workspaces/{ws}`` for a named workspace, else ``/api/v1``) and polls it like
the other pages, so the page, ``reconciler releases`` and the API show one read model.
``web/__init__.py`` routes here after checking the visitor may read that workspace.
"""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse

from reconciler.web.pages import Markup, asset_url, page, render


def promotion_page(header: Markup, refresh_seconds: int, api: str = "/api/v1", base: str = "",
                   workspace: str | None = None) -> HTMLResponse:
    """The page of one workspace's promotions: ``api`` is its API prefix, ``base`` its pages' prefix;
    ``workspace`` is named in the heading when the daemon serves several."""
    title = Markup(f" <small>· {html.escape(workspace)}</small>") if workspace else Markup("")
    body = render("promotion.html", css=asset_url("promotion.css"), js=asset_url("promotion.js"), api=api,
                  workspace=title)
    return page("Promotion · Reconciler", "promotion", body, header=header,
                data={"refresh": str(refresh_seconds), "api": api, "base": base})
