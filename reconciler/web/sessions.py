"""The dashboard's browser session: the token cookie, CSRF tokens and cross-site checks.

Called by the dashboard's routes (``reconciler.web``). A browser signs in once with an API
token; the token itself is the session (an HttpOnly, SameSite=Strict cookie), so a daemon
restart or a second daemon behind the same address keeps the session and nothing is stored
server-side. The API accepts the cookie for GET requests only; the dashboard's few POST forms
(sign out, sync now) carry a CSRF token derived from the session token with HMAC, so a page
on another site can neither read nor forge it, and requests a browser marks as cross-site are
refused before anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fastapi import Request, Response

from reconciler.api import auth
from reconciler.config import ApiToken

COOKIE = "reconciler_token"
MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf"
_CSRF_PURPOSE = b"reconciler dashboard csrf v1"
# Where a successful sign-in may send the browser back to: the dashboard's own pages only, so the
# login form cannot be used as an open redirect.
_NEXT = re.compile(r"/(workspaces/[a-z0-9][a-z0-9-]{0,39}/)?(environments/[A-Za-z0-9][A-Za-z0-9._-]{0,99}|promotion)?")


def session_token(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token or None


def principal(tokens: list[ApiToken] | auth.TokenTable, request: Request) -> auth.Principal | None:
    """Who the session cookie belongs to (``None`` when signed out or the token was revoked)."""
    return auth.authenticate(tokens, session_token(request))


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def csrf_ok(request: Request, presented: str | None) -> bool:
    token = session_token(request)
    if token is None or not presented:
        return False
    return hmac.compare_digest(csrf_token(token).encode(), presented.encode())


def cross_site(request: Request) -> bool:
    """True when the browser says the request comes from another site (``Sec-Fetch-Site``).

    Browsers compute the header from the address they see, so it holds behind a reverse proxy;
    clients that send no such header (curl, old browsers) still need a CSRF token for any action.
    """
    site = request.headers.get("sec-fetch-site")
    return site is not None and site not in ("same-origin", "none")


def safe_next(value: str | None) -> str:
    if value and _NEXT.fullmatch(value):
        return value
    return "/"


def sign_in(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=MAX_AGE, path="/",
                        secure=request.url.scheme == "https")


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
