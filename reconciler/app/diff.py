"""``reconciler diff``: what merging one revision over another would change, per environment (the PR preview).

Reads both revisions from Git through the repository ``app/wiring.py`` builds (with the source's
ssh key), validates the head, and reports declared-vs-declared differences (``core/compare.py``:
no live state, no secret values needed — suitable for CI on pull requests). Changed SQL files are
turned into classified statements by the schema provider wiring builds, on a PostgreSQL server for
scratch databases: ``--shadow-url`` or ``databases.shadow_url``, else an embedded one started for
the diff in a temporary directory (``temporary_server``). When that cannot start, ``warn`` says so
in one line and the files are shown by size. Writes nothing but caches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.config import Settings
from reconciler.core.changes import DriftItem
from reconciler.core.compare import EnvironmentDiff, compare
from reconciler.desired.state import DesiredState
from reconciler.errors import ProviderError, ValidationError
from reconciler.providers.base import SchemaProvider
from reconciler.source.repository import Repository


def _load(repo: Repository, settings: Settings, revision: str, required: bool) -> DesiredState | None:
    from reconciler.desired.loader import load

    tree = repo.tree(revision, settings.source.path)
    if not tree.exists() and not required:
        return None
    return load(tree)


@dataclass(frozen=True)
class Diff:
    base_id: str
    head_id: str
    environments: list[EnvironmentDiff]

    @property
    def count(self) -> int:
        return sum(len(d.items) for d in self.environments)


def run_diff(settings: Settings, base: str, head: str, env: str | None, shadow_url: str | None = None,
             warn: Callable[[str], None] | None = None) -> Diff:
    from reconciler.app.wiring import build_repository, build_secrets

    repo = build_repository(settings, build_secrets(settings))
    base_id, head_id = repo.resolve(base), repo.resolve(head)
    head_state = _load(repo, settings, head_id, required=True)
    assert head_state is not None
    try:
        base_state = _load(repo, settings, base_id, required=False)
    except ValidationError:
        base_state = None  # an invalid base is compared as empty; the head is what must be valid
    diffs = compare(base_state, head_state, [env] if env else None)
    server = shadow_url or settings.databases.shadow_url
    if server:
        _with_schema(settings, server, diffs, base_state, head_state)
    elif any(i.kind == "schema-file" for d in diffs for i in d.items):
        from reconciler.providers.postgres.embedded import temporary_server

        try:
            with temporary_server() as embedded:
                _with_schema(settings, embedded.url, diffs, base_state, head_state)
        except ProviderError as exc:
            if warn is not None:
                warn(f"schema changes are shown as SQL file sizes: the embedded PostgreSQL did not start "
                     f"({str(exc).splitlines()[0]}); give --shadow-url to use a server")
    return Diff(base_id, head_id, diffs)


def _with_schema(settings: Settings, server: str, diffs: list[EnvironmentDiff], base: DesiredState | None,
                 head: DesiredState) -> None:
    from reconciler.app.wiring import build_schema

    schema = build_schema(settings, server)
    try:
        _schema_statements(schema, diffs, base, head, server)
    finally:
        schema.close()


def _schema_statements(
    provider: SchemaProvider, diffs: list[EnvironmentDiff], base: DesiredState | None, head: DesiredState,
    server_url: str,
) -> None:
    """Replace per-file schema changes with the classified statements the schema provider derives from them."""
    statements: dict[str, list[DriftItem]] = {}
    for name, database in head.databases.items():
        new = [(f.path, f.text) for f in head.sql.get(name, [])]
        old = [(f.path, f.text) for f in base.sql.get(name, [])] if base is not None else []
        if new != old:
            statements[name] = provider.compare(name, server_url, old, new, database.managed_schemas)
    for d in diffs:
        kept = [i for i in d.items if not (i.kind == "schema-file" and i.name in statements)]
        touched = {i.name for i in d.items if i.kind == "schema-file" and i.name in statements}
        d.items = kept + [item for name in sorted(touched) for item in statements[name]]


