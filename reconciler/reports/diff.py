"""The ``reconciler diff`` report in text, JSON or Markdown (pull-request comments); ``app/diff.py`` computes it."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from rich.console import Console
from rich.table import Table

from reconciler.core.changes import Risk
from reconciler.core.compare import EnvironmentDiff
from reconciler.core.revisions import short
from reconciler.reports.drift import CHANGE_MARK, RISK_STYLE
from reconciler.reports.values import md_cell, show


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
            lines += [f"### {d.environment}: {len(d.items)} change{'s' if len(d.items) != 1 else ''}", "",
                      "| | ID | New | Old | Risk |", "|---|---|---|---|---|"]
            for item in d.items:
                risk = f"**{item.risk.value}**" if item.risk != Risk.SAFE else item.risk.value
                lines.append(f"| {CHANGE_MARK[item.change]} | `{item.id}` | {md_cell(item.declared)} | "
                             f"{md_cell(item.live)} | {risk} |")
            statements = [i for i in d.items if i.sql]
            if statements:
                lines += ["", "<details><summary>Schema statements</summary>", "", "```sql"]
                lines += [(i.sql or "").strip().rstrip(";") + ";" for i in statements]
                lines += ["```", "", "</details>"]
            lines.append("")
        return "\n".join(lines)
    buffer = StringIO()
    console = Console(file=buffer, width=160, highlight=False)
    console.print(f"[bold]Diff {base} ({short(base_id)}) → {head} ({short(head_id)})[/bold]")
    for d in diffs:
        if not d.items:
            console.print(f"{d.environment}: no changes")
            continue
        table = Table(box=None, header_style="bold", title=f"{d.environment}: {len(d.items)} changes",
                      title_justify="left", pad_edge=False)
        for column in ("", "ID", "NEW", "OLD", "RISK"):
            table.add_column(column, overflow="fold")
        for item in d.items:
            table.add_row(CHANGE_MARK[item.change], item.id, show(item.declared, 40), show(item.live, 40),
                          f"[{RISK_STYLE[item.risk]}]{item.risk.value}[/]")
        console.print(table)
    return buffer.getvalue()
