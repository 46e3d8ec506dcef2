"""What every platform provider offers the engine.

A platform provider reads the live state of one environment into ``PlatformObject``s (the same
shape the engine renders from Git) and applies one object change at a time. It never decides
what to change: the engine hands it a plan.

Object kinds and their fields (every value JSON-able; secrets as ``Sensitive``):

==================  =====================================  ============================================
kind                name                                   fields
==================  =====================================  ============================================
environment         the environment name                   description, color
folder              folder name                            (none)
resource            resource name                          type, description, folder, options (dict)
config-variable     variable name                          description, secret (bool), value
group               group name                             description
permission          ``<group>/<object_type>/<object>``     group, object_type (resource|app|folder),
                                                           object, access (use|edit|own)
app                 app name                               description, folder, source_hash,
                                                           resources (list), config (list)
==================  =====================================  ============================================

A resource's ``options`` are the shared options merged with this environment's options. Groups,
folders and resource definitions are shared by every environment on a platform such as Retool; the
per-environment parts (resource options, config values, permissions on resource configurations,
deployed apps) are what make one environment differ from another.

A live object says whether the reconciler owns it (``owned``: it created or adopted it, as the
provider's records show); prune never deletes one it does not own. ``read`` may be told which
objects are declared (``declared``), so that it reads no more than those and the ones it owns, and
whether the environment is the ``owner`` of the objects its instance shares with other environments
(the most protected environment hosted there applies them; the others leave them alone).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.engine.changes import Change, DriftItem
from reconciler.engine.releases import ReleaseRecord as ReleaseRecord

KINDS = ("environment", "folder", "resource", "config-variable", "group", "permission", "app")

ObjectKey = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class PlatformObject:
    kind: str
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    # Live objects only: False for an object the reconciler neither created nor adopted (never pruned).
    owned: bool = field(default=True, compare=False)

    @property
    def key(self) -> ObjectKey:
        return (self.kind, self.name)


LiveState = dict[ObjectKey, PlatformObject]


@dataclass(frozen=True)
class AppDeployment:
    """What a provider needs to deploy an app: its files and the release label to use."""

    revision: str  # full commit id of the revision being applied
    release: str  # release version: the tag in tag-tracked environments, the short commit otherwise
    files: Mapping[str, bytes] = field(default_factory=dict)
    # Whether this environment may make a new release of the app (the first environment of the app in
    # promotion order); later environments run the release an earlier one made, never their own.
    may_release: bool = True


class ReleaseBook(Protocol):
    """Remembers the app releases a provider made, so that later environments run the same one."""

    def find_release(self, repository: str, app: str, *, key: str | None = None,
                     version: str | None = None) -> ReleaseRecord | None: ...

    def record_release(self, record: ReleaseRecord) -> None: ...


class SecretResolver(Protocol):
    def resolve(self, template: str) -> str:
        """Return ``template`` with every ``${secret:NAME}`` replaced by its value."""
        ...


class FingerprintBook(Protocol):
    """Remembers fingerprints of write-only values a provider wrote (Retool secrets, options)."""

    def get(self, provider: str, scope: str) -> str | None: ...

    def put(self, provider: str, scope: str, fingerprint: str) -> None: ...


@dataclass
class ApplyContext:
    environment: str
    secrets: SecretResolver
    fingerprints: FingerprintBook
    # Apps to deploy in this run, by app name.
    deployments: dict[str, AppDeployment] = field(default_factory=dict)
    # The release book (the state store); None: the provider keeps releases in memory.
    releases: ReleaseBook | None = None
    # Whether this environment applies what its instance shares with other environments (see the
    # module docstring); False for a less protected environment on a shared instance.
    owner: bool = True


class PlatformProvider(Protocol):
    name: str

    def read(
        self, environment: str, *, declared: Collection[ObjectKey] | None = None, owner: bool = True
    ) -> LiveState:
        """Return the objects of ``environment`` that the platform holds (see the module docstring)."""
        ...

    def apply(
        self,
        ctx: ApplyContext,
        change: Change,
        desired: PlatformObject | None,
        live: PlatformObject | None,
    ) -> None:
        """Make one object match ``desired`` (create/update) or remove ``live`` (delete)."""
        ...

    def close(self) -> None: ...


class SchemaProvider(Protocol):
    """Plans and applies the schema of PostgreSQL databases (the ``postgres`` provider)."""

    def plan(
        self,
        database: str,
        url: str,
        files: list[tuple[str, str]],
        content_key: str,
        managed_schemas: list[str],
    ) -> list[DriftItem]:
        """Statements that turn the live schema at ``url`` into the declared one, classified."""
        ...

    def apply(self, database: str, url: str, items: list[DriftItem]) -> list[str]:
        """Run ``items`` (one transaction, then non-transactional ones); return the ids applied."""
        ...

    def check_url(self, url: str) -> str | None:
        """What is wrong with ``url`` as a database URL, as the end of a sentence ("is not a
        postgresql:// URL (expected ...)"), or None. Never quotes the URL: it may hold a password."""
        ...
