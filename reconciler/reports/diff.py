"""The ``reconciler diff`` report in text, JSON or Markdown (pull-request comments); ``app/diff.py`` computes it."""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.changes import Risk
from reconciler.core.compare import EnvironmentDiff
from reconciler.core.revisions import short
from reconciler.reports.drift import CHANGE_MARK, item_lines, md_value, summary
from reconciler.reports.values import md_code, plural, printable


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
