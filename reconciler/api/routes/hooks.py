"""``/hooks/github``, ``/hooks/gitlab``, ``/hooks/generic``: a push somewhere asks for a fetch.

A webhook only ever triggers a fetch, coalesced with every other trigger (Git events are
triggers, not truth: every run re-reads Git and live state). A GitHub or GitLab push that the last
fetch already brought, or to a branch the source does not fetch, is accepted without one. Each is
authenticated by its own signature or token; the generic one also takes an API token with the
``sync`` scope.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request

from reconciler.api import auth
from reconciler.api.access import Access
from reconciler.api.daemon import Daemon
from reconciler.api.errors import ApiError
from reconciler.errors import SecretError

log = structlog.get_logger(__name__)


def install(app: FastAPI, daemon: Daemon, access: Access) -> None:
    settings = daemon.settings

    def hook_secret(key: str, source: str) -> str | None:
        """The value of ``source.<key>``; a secret that stopped resolving is the operator's to hear of.

        ``reconciler run`` refuses to start when it does not resolve, but a ``files:`` secret can
        vanish later. The caller is not authenticated yet, so the answer names neither the secret
        nor where it was looked for; the log does.
        """
        template = getattr(settings.source, key)
        if not template:
            return None
        try:
            return daemon.reconciler.resolve_secret(template)
        except SecretError as exc:
            log.error("api.webhook_secret_unavailable", key=f"source.{key}", error=str(exc))
            raise rejected(source, 503, "webhook signatures cannot be checked now; try again later") from None

    def accepted(source: str, body: bytes | None = None) -> dict[str, Any]:
        push = _push(body) if body is not None else None
        if push is not None and not daemon.reconciler.push_is_news(*push):
            daemon.metrics.webhooks.labels(source, "known").inc()
            return {"accepted": True, "detail": "nothing new to fetch"}
        daemon.metrics.webhooks.labels(source, "accepted").inc()
        daemon.request_fetch(f"webhook:{source}")
        return {"accepted": True}

    def rejected(source: str, status: int, message: str) -> ApiError:
        daemon.metrics.webhooks.labels(source, "rejected").inc()
        return ApiError(status, message)

    @app.post("/hooks/github", status_code=202)
    async def github(request: Request) -> dict[str, Any]:
        body = await request.body()
        secret = hook_secret("webhook_secret", "github")
        if secret is None:
            raise rejected("github", 401, "webhook secret is not configured (source.webhook_secret)")
        if not auth.github_signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
            raise rejected("github", 401, "missing or bad X-Hub-Signature-256")
        if request.headers.get("x-github-event") == "ping":
            daemon.metrics.webhooks.labels("github", "ping").inc()
            return {"accepted": True, "detail": "pong"}
        return accepted("github", body)

    @app.post("/hooks/gitlab", status_code=202)
    async def gitlab(request: Request) -> dict[str, Any]:
        body = await request.body()
        key = "gitlab_token" if settings.source.gitlab_token else "webhook_secret"
        secret = hook_secret(key, "gitlab")
        if secret is None:
            raise rejected("gitlab", 401, "webhook token is not configured (source.gitlab_token)")
        if not auth.token_ok(secret, request.headers.get("x-gitlab-token")):
            raise rejected("gitlab", 401, "missing or bad X-Gitlab-Token")
        return accepted("gitlab", body)

    @app.post("/hooks/generic", status_code=202)
    async def generic(request: Request) -> dict[str, Any]:
        body = await request.body()
        who = access.principal(request)
        if who is not None:
            if not who.allows("sync"):
                raise rejected("generic", 403, "token lacks the 'sync' scope")
            if who.limited:
                # A fetch can move every environment; a token limited to some may not start one.
                raise rejected("generic", 403, "token is limited to some environments; a fetch concerns all of them")
            return accepted("generic")
        secret = hook_secret("webhook_secret", "generic")
        header = request.headers.get("x-reconciler-signature")
        if secret is None or not auth.github_signature_ok(secret, body, header):
            raise rejected("generic", 401, "missing or bad X-Reconciler-Signature (or bearer token)")
        return accepted("generic")



def _push(body: bytes) -> tuple[str, str] | None:
    """The ``ref`` and ``after`` of a GitHub or GitLab push event, when the body has both."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    ref, after = data.get("ref"), data.get("after")
    return (ref, after) if isinstance(ref, str) and isinstance(after, str) else None
