"""What the app asks of the providers: protocols over the core's types, and nothing else.

A platform provider reads the live state of one environment into ``PlatformObject``s (the same
shape the core renders from Git, see ``reconciler.core.objects``) and applies one object change at
a time. A schema provider plans and applies the schema of managed PostgreSQL databases. Neither
decides what to change: the core hands them a plan. Providers never import the state store: what
they must remember between runs (fingerprints of write-only values, the app releases they made)
goes through the ``FingerprintBook`` and ``ReleaseBook`` the app passes in ``ApplyContext``.

A live object says whether the reconciler owns it (``owned``: it created or adopted it, as the
provider's records show); prune never deletes one it does not own. ``read`` may be told which
objects are declared (``declared``), so that it reads no more than those and the ones it owns, and
whether the environment is the ``owner`` of the objects its instance shares with other environments
(the most protected environment hosted there applies them; the others leave them alone:
``reconciler.core.topology``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reconciler.core.changes import Change, DriftItem
from reconciler.core.objects import LiveState, ObjectKey, PlatformObject
from reconciler.core.releases import ReleaseRecord as ReleaseRecord


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

    def compare(
        self,
        database: str,
        server_url: str,
        old_files: list[tuple[str, str]],
        new_files: list[tuple[str, str]],
        managed_schemas: list[str],
    ) -> list[DriftItem]:
        """Statements turning the schema ``old_files`` declare into the one ``new_files`` declare
        (both loaded into scratch databases on ``server_url``; no live database is read)."""
        ...

    def check_url(self, url: str) -> str | None:
        """What is wrong with ``url`` as a database URL, as the end of a sentence ("is not a
        postgresql:// URL (expected ...)"), or None. Never quotes the URL: it may hold a password."""
        ...

    def warm_up(self) -> None:
        """Load ahead of time what the first plan needs (the daemon calls it once at start)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AppDirectory(Protocol):
    """A platform that can tell what an app deployed in an environment uses (the registry provider):
    its resources and config with secrets as ``Sensitive``, for ``GET /api/v1/registry/{env}/apps/{app}``."""

    def app_details(self, environment: str, app: str) -> dict[str, Any] | None: ...


@runtime_checkable
class HandEditable(Protocol):
    """A platform whose live config values can be changed behind Git's back (the registry provider):
    ``reconciler demo`` uses it to show drift being found and healed."""

    def edit_config_value(self, environment: str, name: str, value: str) -> None: ...


class SourceControlRepository(Protocol):
    """A Git repository the platform deploys from (Retool's Source Control), as providers see it.

    ``reconciler.source.branches.BranchRepository`` is the implementation; wiring builds it, so
    providers never import ``source`` (only source/ touches Git).
    """

    display_url: str

    def head(self, branch: str) -> str | None: ...

    def is_merged(self, branch: str, into: str) -> bool: ...

    def contains(self, commit: str, into: str) -> bool: ...

    def read(self, branch: str, path: str) -> bytes | None: ...

    def merge(self, branch: str, into: str, message: str) -> str: ...
