"""``DesiredState``: every validated document of one desired-state folder at one revision."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.desired.models import (
    App,
    Check,
    ConfigVariable,
    Database,
    Environment,
    Group,
    Resource,
    RootConfig,
    Space,
)


@dataclass(frozen=True)
class SqlFile:
    path: str  # relative to the desired-state root, e.g. databases/crm/001_tables.sql
    text: str


@dataclass(frozen=True)
class AppSource:
    files: dict[str, bytes]  # path relative to the app's source folder → content
    hash: str  # sha256 over paths and contents, identical for Git trees and directories


@dataclass(frozen=True)
class DesiredState:
    root: RootConfig
    content_id: str  # Git tree id of the folder (or a content hash for a working directory)
    environments: dict[str, Environment] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    config: dict[str, ConfigVariable] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    spaces: dict[str, Space] = field(default_factory=dict)
    sql: dict[str, list[SqlFile]] = field(default_factory=dict)  # database name → files, lexical order
    app_sources: dict[str, AppSource] = field(default_factory=dict)
    locations: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    # (kind, name, field) → line of that field, for the few checks made after loading (engine/topology.py).
    field_lines: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (kind, name) → the line of each field path in its document (reports naming file:line: references.py)
    line_maps: dict[tuple[str, str], dict[tuple[str | int, ...], int]] = field(default_factory=dict)

    @property
    def environment_order(self) -> list[str]:
        return list(self.root.environments)

    def where(self, kind: str, name: str, path: tuple[str | int, ...] = ()) -> tuple[str, int]:
        """File and line of a document's field (of its deepest known prefix; the document's start at worst)."""
        file, start = self.locations[(kind, name)]
        lines = self.line_maps.get((kind, name), {})
        for cut in range(len(path), 0, -1):
            found = lines.get(tuple(path[:cut]))
            if found is not None:
                return file, found
        return file, start

    def document_count(self) -> int:
        return sum(
            len(d)
            for d in (self.environments, self.resources, self.config, self.databases, self.groups, self.apps,
                      self.checks, self.spaces)
        )
