"""Credentials of the HTTP API: bearer tokens with scopes, and webhook signatures.

Tokens are configured as ``sha256:<hex>`` hashes (the token itself is never stored): the top-level
``[[api.tokens]]`` see every workspace, a workspace's ``[[workspaces.tokens]]`` that workspace only
(``Principal.workspace``). Every
comparison is constant-time (``hmac.compare_digest``), and every token is compared so the time
taken does not reveal which one nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from reconciler.config import ApiToken, Settings

SCOPES = ("read", "sync", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    environments: frozenset[str] | None
    apps: frozenset[str] | None
    workspace: str | None = None  # a workspace's own token sees that workspace only; None: every workspace

    def sees_workspace(self, workspace: str) -> bool:
        return self.workspace is None or self.workspace == workspace

    def sees(self, environment: str) -> bool:
        """Tokens listing ``environments`` read and act on those only; others on every environment."""
        return self.environments is None or environment in self.environments

    def sees_app(self, app: str) -> bool:
        """Tokens listing ``apps`` read the registry endpoint for those apps only."""
        return self.apps is None or app in self.apps

    @property
    def limited(self) -> bool:
        """Whether the token is limited to some environments (it may not act on all of them at once)."""
        return self.environments is not None

    def allows(self, scope: str) -> bool:
        # admin implies sync implies read.
        rank = SCOPES.index(scope)
        return any(s in self.scopes for s in SCOPES[rank:])


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


TokenTable = list[tuple[ApiToken, str | None]]


def token_table(settings: Settings) -> TokenTable:
    """Every token of the configuration with the workspace it belongs to (None: the top level's)."""
    table: TokenTable = [(token, None) for token in settings.api.tokens]
    for workspace in settings.workspaces:
        table += [(token, workspace.name) for token in workspace.tokens]
    return table


def authenticate(tokens: list[ApiToken] | TokenTable, token: str | None) -> Principal | None:
    if token is None:
        return None
    presented = hash_token(token).encode()
    found: ApiToken | None = None
    owner: str | None = None
    for entry in tokens:
        candidate, workspace = entry if isinstance(entry, tuple) else (entry, None)
        if hmac.compare_digest(presented, candidate.hash.lower().encode()):
            found, owner = candidate, workspace
    if found is None:
        return None
    return Principal(
        name=found.name,
        scopes=frozenset(found.scopes),
        environments=frozenset(found.environments) if found.environments is not None else None,
        apps=frozenset(found.apps) if found.apps is not None else None,
        workspace=owner,
    )


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def token_ok(secret: str, header: str | None) -> bool:
    """GitLab's ``X-Gitlab-Token``: the shared secret itself, compared in constant time."""
    if not header:
        return False
    # Compare digests, so neither the content nor the length of the secret shows in the timing.
    expected = hashlib.sha256(secret.encode()).digest()
    return hmac.compare_digest(expected, hashlib.sha256(header.encode("utf-8", "replace")).digest())
