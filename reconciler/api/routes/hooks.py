"""``/hooks/github``, ``/hooks/gitlab``, ``/hooks/generic``: a push somewhere asks for a fetch.

A webhook only ever triggers a fetch, coalesced with every other trigger (Git events are
triggers, not truth: every run re-reads Git and live state). A GitHub or GitLab push that the last
fetch already brought, or to a branch the source does not fetch, is accepted without one. Each is
authenticated by its own signature or token; the generic one also takes an API token with the
``sync`` scope.

Each workspace has its own: ``/hooks/{ws}/github`` (and gitlab, generic) checks that workspace's
secrets and fetches that workspace's source only. ``/hooks/github`` is the only (or ``default``)
workspace's, as before; with several workspaces and none named ``default`` it answers 404.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request

from reconciler import logs
from reconciler.api import auth
from reconciler.api.access import Access
from reconciler.api.daemon import Daemon
from reconciler.api.errors import ApiError
from reconciler.errors import SecretError

log = logs.get_logger(__name__)


PREFIXES = ("/hooks/{ws}", "/hooks")


def install(app: FastAPI, access: Access) -> None:
    for prefix in PREFIXES:
        _install(app, access, prefix)


def _install(app: FastAPI, access: Access, prefix: str) -> None:
    def target(request: Request) -> Daemon:
        """The workspace the hook is for; before any credential is checked, so it names no workspace
        that is not in the path (and a signature made with one workspace's secret fails another's)."""
        name = request.path_params.get("ws")
        if name is None:
            name = access.default_workspace(None)
            if name is None:
                raise ApiError(404, "several workspaces are served here; send hooks to /hooks/{workspace}/...")
        return access.served(name)

    def hook_secret(daemon: Daemon, key: str, source: str) -> str | None:
        """The value of ``source.<key>``; a secret that stopped resolving is the operator's to hear of.

        ``reconciler run`` refuses to start when it does not resolve, but a ``files:`` secret can
        vanish later. The caller is not authenticated yet, so the answer names neither the secret
        nor where it was looked for; the log does.
        """
        template = getattr(daemon.settings.source, key)
        if not template:
            return None
        try:
            return daemon.reconciler.resolve_secret(template)
        except SecretError as exc:
            log.error("api.webhook_secret_unavailable", key=f"source.{key}", error=str(exc))
            raise rejected(daemon, source, 503, "webhook signatures cannot be checked now; try again later") from None

    def accepted(daemon: Daemon, source: str, body: bytes | None = None) -> dict[str, Any]:
        push = _push(body) if body is not None else None
        if push is not None and not daemon.reconciler.push_is_news(*push):
            daemon.metrics.webhooks.labels(source, "known").inc()
            return {"accepted": True, "detail": "nothing new to fetch"}
        daemon.metrics.webhooks.labels(source, "accepted").inc()
        daemon.request_fetch(f"webhook:{source}")
        return {"accepted": True}

    def rejected(daemon: Daemon, source: str, status: int, message: str) -> ApiError:
        daemon.metrics.webhooks.labels(source, "rejected").inc()
        return ApiError(status, message)

    @app.post(f"{prefix}/github", status_code=202)
    async def github(request: Request) -> dict[str, Any]:
        daemon = target(request)
        body = await request.body()
        secret = hook_secret(daemon, "webhook_secret", "github")
        if secret is None:
            raise rejected(daemon, "github", 401, "webhook secret is not configured (source.webhook_secret)")
        if not auth.github_signature_ok(secret, body, request.headers.get("x-hub-signature-256")):
            raise rejected(daemon, "github", 401, "missing or bad X-Hub-Signature-256")
        if request.headers.get("x-github-event") == "ping":
            daemon.metrics.webhooks.labels("github", "ping").inc()
            return {"accepted": True, "detail": "pong"}
        return accepted(daemon, "github", body)

    @app.post(f"{prefix}/gitlab", status_code=202)
    async def gitlab(request: Request) -> dict[str, Any]:
        daemon = target(request)
        body = await request.body()
        key = "gitlab_token" if daemon.settings.source.gitlab_token else "webhook_secret"
        secret = hook_secret(daemon, key, "gitlab")
        if secret is None:
            raise rejected(daemon, "gitlab", 401, "webhook token is not configured (source.gitlab_token)")
        if not auth.token_ok(secret, request.headers.get("x-gitlab-token")):
            raise rejected(daemon, "gitlab", 401, "missing or bad X-Gitlab-Token")
        return accepted(daemon, "gitlab", body)

    @app.post(f"{prefix}/generic", status_code=202)
    async def generic(request: Request) -> dict[str, Any]:
        body = await request.body()
        who = access.principal(request)
        if who is not None:
            _name, daemon = access.workspace(request, who)  # 403 for another workspace's token
            if not who.allows("sync"):
                raise rejected(daemon, "generic", 403, "token lacks the 'sync' scope")
            if who.limited:
                # A fetch can move every environment; a token limited to some may not start one.
                raise rejected(daemon, "generic", 403,
                               "token is limited to some environments; a fetch concerns all of them")
            return accepted(daemon, "generic")
        daemon = target(request)
        secret = hook_secret(daemon, "webhook_secret", "generic")
        header = request.headers.get("x-reconciler-signature")
        if secret is None or not auth.github_signature_ok(secret, body, header):
            raise rejected(daemon, "generic", 401, "missing or bad X-Reconciler-Signature (or bearer token)")
        return accepted(daemon, "generic")


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
