"""The dashboard's promotion page (``GET /promotion``): a shell that ``static/promotion.js`` fills.

The script reads ``GET /api/v1/releases`` (``api/routes/releases.py``, built by
``app/promotion.py``) and polls it like the other pages, so the page, ``reconciler releases`` and
the API show one read model. ``web/__init__.py`` routes here after checking the visitor may read.
"""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from reconciler.web.pages import Markup, asset_url, page, render


def promotion_page(header: Markup, refresh_seconds: int) -> HTMLResponse:
    body = render("promotion.html", css=asset_url("promotion.css"), js=asset_url("promotion.js"))
    return page("Promotion · Reconciler", "promotion", body, header=header, data={"refresh": str(refresh_seconds)})
