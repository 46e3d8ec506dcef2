"""Declared-state difference between two revisions (``reconciler diff``), pure.

Used for pull-request previews, where secrets are not available: secret-bearing values are
compared by their templates (a changed reference shows as a change; a rotated value does not,
since Git never holds it). Schema changes are listed per SQL file here; ``schema_statements``
in the CLI adds migra's statements when a PostgreSQL server is at hand.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.drift import diff_objects
from reconciler.core.render import render
from reconciler.desired.state import DesiredState
from reconciler.secrets.values import Sensitive


def template_sensitive(template: str) -> Sensitive:
    return Sensitive(template=template, fingerprint="template:" + hashlib.sha256(template.encode()).hexdigest())


@dataclass
class EnvironmentDiff:
    environment: str
    items: list[DriftItem] = field(default_factory=list)


def compare(
    base: DesiredState | None, head: DesiredState, environments: list[str] | None = None
) -> list[EnvironmentDiff]:
    """What merging ``head`` over ``base`` would change, per environment (declared vs declared)."""
    envs = environments or head.environment_order
    out = []
    for env in envs:
        new = render(head, env, template_sensitive) if env in head.environments else None
        old = render(base, env, template_sensitive) if base is not None and env in base.environments else None
        items = diff_objects(new.objects if new else {}, old.objects if old else {}, prune=True)
        old_sql = {(d.name, f.path): f.text for d in (old.databases if old else []) for f in d.files}
        new_sql = {(d.name, f.path): f.text for d in (new.databases if new else []) for f in d.files}
        for key in sorted(set(old_sql) | set(new_sql)):
            database, path = key
            if old_sql.get(key) == new_sql.get(key):
                continue
            change = Change.CREATE if key not in old_sql else Change.DELETE if key not in new_sql else Change.UPDATE
            items.append(DriftItem(
                id=f"{database}:sql-file:{path}", kind="schema-file", name=database, field=path, change=change,
                declared=f"{len(new_sql.get(key, ''))} bytes" if key in new_sql else None,
                live=f"{len(old_sql[key])} bytes" if key in old_sql else None,
                risk=Risk.SAFE, phase=Phase.SCHEMA_ADDITIVE,
            ))
        out.append(EnvironmentDiff(env, items))
    return out
