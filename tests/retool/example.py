"""The example desired state (SPEC §2's CRM example) as PlatformObjects, built by hand.

The renderer produces these from ``desired-state/``; the retool tests build them here so they
exercise the provider on its own. ``objects(env)`` gives one environment's objects, shaped the
way ``reconciler.core.render`` shapes them; ``Secrets`` resolves ``${secret:NAME}`` from a dict
and fingerprints values the way the engine does (HMAC-SHA256), so ``Sensitive`` values compare
by fingerprint as they do in production.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

from reconciler.core.changes import Change
from reconciler.core.objects import OPTIONAL_FIELDS, LiveState, ObjectKey, PlatformObject
from reconciler.providers.base import AppDeployment, ApplyContext
from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider
from reconciler.secrets.values import Sensitive

KEY = b"test-fingerprint-key"
SECRET_VALUES = {
    "CRM_DB_STAGING_PASSWORD": "stg-db-pass-1",
    "CRM_DB_PRODUCTION_PASSWORD": "prd-db-pass-1",
    "CRM_API_STAGING_TOKEN": "stg-api-token-1",
    "CRM_API_PRODUCTION_TOKEN": "prd-api-token-1",
    "SEGMENT_STAGING_KEY": "stg-segment-key-1",
    "SEGMENT_PRODUCTION_KEY": "prd-segment-key-1",
}
REFERENCE = re.compile(r"\$\{secret:([A-Za-z0-9_]+)\}")
APP = "customer-support-dashboard"
COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
RELEASES = {"staging": COMMIT[:7], "production": "v1.0.0"}
# Apply order (SPEC §5): environments, folders, resources, config, groups, permissions, apps.
ORDER = ["environment", "space", "folder", "resource", "config-variable", "group", "permission", "app"]


class Secrets:
    """A SecretResolver over a dict, which also fingerprints like the engine does."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(SECRET_VALUES if values is None else values)

    def resolve(self, template: str) -> str:
        return REFERENCE.sub(lambda m: self.values[m.group(1)], template)

    def sensitive(self, template: str) -> Sensitive:
        value = self.resolve(template)
        return Sensitive(template, "hmac-sha256:" + hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest())


def objects(env: str, secrets: Secrets) -> dict[ObjectKey, PlatformObject]:
    """The declared objects of ``env`` (staging or production)."""
    up = env.upper()
    s = secrets.sensitive
    out: dict[ObjectKey, PlatformObject] = {}

    def add(kind: str, name: str, fields: dict[str, Any]) -> None:
        out[(kind, name)] = PlatformObject(kind, name, fields)

    if env == "staging":
        add("environment", env, {"description": "Pre-release copies of every tool, with test data",
                                 "color": "#1D70B8"})
    else:
        add("environment", env, {"description": "End users and real data", "color": "#D4351C"})
    add("folder", "CRM", {})
    add("folder", "Support", {})
    add("resource", "crm-db", {
        "type": "postgresql",
        "description": "CRM database (read/write for support tools)",
        "folder": "CRM",
        "options": {
            "port": 5432,
            "ssl": True,
            "host": "db-staging.internal" if env == "staging" else "db.internal",
            "database": "crm",
            "username": "retool",
            "password": s(f"${{secret:CRM_DB_{up}_PASSWORD}}"),
        },
    })
    base_url = "https://api-staging.internal.example.com" if env == "staging" else "https://api.example.com"
    add("resource", "crm-api", {
        "type": "restapi",
        "description": "CRM REST API",
        "folder": "CRM",
        "options": {
            "base_url": base_url,
            "headers": {"Accept": "application/json"},
            "authorization": s(f"Bearer ${{secret:CRM_API_{up}_TOKEN}}"),
        },
    })
    add("resource", "segment", {
        "type": "restapi",
        "description": "Segment HTTP tracking API (product analytics)",
        "folder": None,
        "options": {"base_url": "https://api.segment.io/v1", "basic_username": s(f"${{secret:SEGMENT_{up}_KEY}}")},
    })
    add("config-variable", "API_CRM_BASE_URL",
        {"description": "Base URL of the CRM API", "secret": False, "value": base_url})
    add("config-variable", "SEGMENT_WRITE_KEY",
        {"description": "Segment write key for product analytics", "secret": True,
         "value": s(f"${{secret:SEGMENT_{up}_KEY}}")})
    add("group", "support-team", {"description": "Support engineers"})
    add("group", "platform-admins", {"description": "Platform team; may edit every tool"})

    def grant(group: str, object_type: str, name: str, access: str) -> None:
        add("permission", f"{group}/{object_type}/{name}",
            {"group": group, "object_type": object_type, "object": name, "access": access})

    for resource in ("crm-db", "crm-api", "segment"):
        grant("support-team", "resource", resource, "use")
        grant("platform-admins", "resource", resource, "edit")
    grant("support-team", "app", APP, "use")
    grant("platform-admins", "app", APP, "edit")
    grant("support-team", "folder", "Support", "use")
    add("app", APP, {
        "description": "Support agents' view of customers and their open tickets",
        "folder": "Support",
        "source_hash": "sha256:" + hashlib.sha256(b"app source v1").hexdigest(),
        "resources": ["crm-api", "crm-db"],
        "config": ["API_CRM_BASE_URL"],
    })
    return out


def context(
    env: str, secrets: Secrets, book: MemoryFingerprintBook, release: str | None = None, *,
    owner: bool = True, may_release: bool = True, revision: str = COMMIT,
) -> ApplyContext:
    """What the engine hands ``apply`` for ``env``: ``owner`` for the most protected environment on its
    instance, ``may_release`` for the app's first environment in promotion order."""
    deployment = AppDeployment(revision=revision, release=release or RELEASES[env], may_release=may_release)
    return ApplyContext(environment=env, secrets=secrets, fingerprints=book, deployments={APP: deployment},
                        owner=owner)


def diff(desired: dict[ObjectKey, PlatformObject], live: LiveState) -> dict[ObjectKey, tuple[Any, Any]]:
    """Key → (declared fields, live fields) for every object that differs (None when absent); a field
    compared only when declared (``OPTIONAL_FIELDS``: a group's members and privileges) is left out of
    the live fields when the declaration does not carry it, as ``core.drift`` does."""
    out: dict[ObjectKey, tuple[Any, Any]] = {}
    for key in desired.keys() | live.keys():
        mine = dict(desired[key].fields) if key in desired else None
        theirs = dict(live[key].fields) if key in live else None
        if mine is not None and theirs is not None:
            optional = OPTIONAL_FIELDS.get(key[0], frozenset())
            theirs = {k: v for k, v in theirs.items() if k in mine or k not in optional}
        if mine != theirs:
            out[key] = (mine, theirs)
    return out


def _order(key: ObjectKey) -> tuple[int, str]:
    return (ORDER.index(key[0]), key[1])


def reconcile(
    provider: RetoolProvider,
    ctx: ApplyContext,
    desired: dict[ObjectKey, PlatformObject],
    *,
    prune: bool = False,
) -> list[tuple[str, ObjectKey]]:
    """Read, diff and apply in SPEC order, as the engine would; return the changes applied.

    Like the engine, it reads what is declared (and ours) and prunes only objects that are ours.
    """
    live = provider.read(ctx.environment, declared=frozenset(desired), owner=ctx.owner)
    changes = diff(desired, live)
    applied: list[tuple[str, ObjectKey]] = []
    for key in sorted((k for k in changes if k in desired), key=_order):
        change = Change.UPDATE if key in live else Change.CREATE
        provider.apply(ctx, change, desired[key], live.get(key))
        applied.append((change.value, key))
    if prune:
        for key in sorted((k for k in changes if k not in desired and live[k].owned), key=_order, reverse=True):
            provider.apply(ctx, Change.DELETE, None, live[key])
            applied.append(("delete", key))
    return applied


def keys(items: Iterable[tuple[str, ObjectKey]]) -> set[ObjectKey]:
    return {key for _, key in items}
