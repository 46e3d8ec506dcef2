"""``reconciler diff``: what merging one revision over another would change, per environment.

Reads both revisions from Git, validates the head, and reports declared-vs-declared differences
(no live state, no secrets needed — suitable for CI on pull requests).
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.config import Settings
from reconciler.desired.state import DesiredState
from reconciler.engine.changes import DriftItem, Risk
from reconciler.engine.compare import EnvironmentDiff, compare
from reconciler.errors import ValidationError
from reconciler.reports.drift import CHANGE_MARK, item_lines, md_value, summary
from reconciler.reports.values import md_code, plural, printable
from reconciler.source.repository import Repository
from reconciler.source.revisions import short


def _load(repo: Repository, settings: Settings, revision: str, required: bool) -> DesiredState | None:
    from reconciler.desired.loader import load

    tree = repo.tree(revision, settings.source.path)
    if not tree.exists() and not required:
        return None
    return load(tree)


def run_diff(
    settings: Settings, base: str, head: str, env: str | None, fmt: str, shadow_url: str | None = None
) -> tuple[int, str]:
    repo = Repository(settings.source.url, cache_dir=settings.data_dir / "cache", branches=settings.source.branches)
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
        _schema_statements(diffs, base_state, head_state, server)
    count = sum(len(d.items) for d in diffs)
    return (2 if count else 0), render_diff(fmt, diffs, base, base_id, head, head_id)


def _schema_statements(
    diffs: list[EnvironmentDiff], base: DesiredState | None, head: DesiredState, server_url: str
) -> None:
    """Replace per-file schema changes with the classified statements migra derives from them."""
    from reconciler.providers.postgres.provider import PostgresProvider

    provider = PostgresProvider()
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


def render_diff(fmt: str, diffs: list[EnvironmentDiff], base: str, base_id: str, head: str, head_id: str) -> str:
    if fmt == "json":
        data: dict[str, Any] = {
            "base": base_id, "head": head_id,
            "environments": [{"environment": d.environment, "items": [i.as_json() for i in d.items]} for d in diffs],
        }
        return json.dumps(data, indent=2, sort_keys=True)
    if fmt == "markdown":
        total = sum(len(d.items) for d in diffs)
        lines = [f"## Reconciler: {total} declared change{'s' if total != 1 else ''} "
                 f"({base} `{short(base_id)}` → {head} `{short(head_id)}`)", ""]
        for d in diffs:
            if not d.items:
                lines += [f"### {d.environment}: no changes", ""]
                continue
            lines += [f"### {d.environment}: {plural(len(d.items), 'change')}", "",
                      "| | ID | New | Old | Risk |", "|---|---|---|---|---|"]
            for item in d.items:
                risk = f"**{item.risk.value}**" if item.risk != Risk.SAFE else item.risk.value
                lines.append(f"| {CHANGE_MARK[item.change]} | {md_code(printable(item.id))} | "
                             f"{md_value(item, item.declared, item.live)} | {md_value(item, item.live, item.declared)} "
                             f"| {risk} |")
            statements = [i for i in d.items if i.sql]
            if statements:
                lines += ["", "<details><summary>Schema statements</summary>", "", "```sql"]
                lines += [(i.sql or "").strip().rstrip(";") + ";" for i in statements]
                lines += ["```", "", "</details>"]
            lines.append("")
        return "\n".join(lines)
    lines = [f"Diff {base} ({short(base_id)}) → {head} ({short(head_id)})"]
    for d in diffs:
        if not d.items:
            lines.append(f"{d.environment}: no changes")
            continue
        lines += ["", f"{d.environment}: {plural(len(d.items), 'change')}"]
        for item in d.items:
            lines += item_lines(item, labels=("old", "new"))
        lines.append(summary(d.items))
    return "\n".join(lines) + "\n"
