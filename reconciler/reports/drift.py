"""Plan and drift reports (``plan``, ``drift``, ``apply`` output, the API's drift endpoint)."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from typing import TYPE_CHECKING, Any

from reconciler import clock
from reconciler.core.changes import Change, DriftItem, Risk
from reconciler.core.plan import Plan
from reconciler.core.revisions import short
from reconciler.reports.values import md_cell, show

if TYPE_CHECKING:
    from rich.console import Console

RISK_STYLE = {Risk.SAFE: "green", Risk.DESTRUCTIVE: "bold red", Risk.LOCK_RISK: "yellow",
              Risk.DATA_DEPENDENT: "magenta"}
CHANGE_MARK = {Change.CREATE: "+", Change.UPDATE: "~", Change.DELETE: "-"}


def heal_command(environment: str, item: DriftItem) -> str:
    if item.deferred_to is not None:
        return f"applied with {item.deferred_to} (reconciler apply {item.deferred_to}, under its gates)"
    if item.change == Change.DELETE and item.kind != "schema" and not item.pruned:
        return f"remove {item.kind} {item.name} in the platform, or declare it in Git"
    if item.kind == "schema" and item.risk == Risk.DESTRUCTIVE:
        return f"reconciler apply {environment} --approve {item.id}"
    return f"reconciler apply {environment}"


def plan_json(plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
              kind: str = "plan") -> dict[str, Any]:
    items = plan.items if kind == "plan" else plan.drift

    def one(item: DriftItem) -> dict[str, Any]:
        out = item.as_json()
        if item.detail.get("group"):
            out["group"] = item.detail["group"]
        if first_seen is not None and item.id in first_seen:
            out["first_seen"] = first_seen[item.id].isoformat()
        out["heal"] = heal_command(plan.environment, item)
        return out

    data: dict[str, Any] = {
        "environment": plan.environment,
        "revision": plan.revision,
        "ref": ref,
        "items": [one(i) for i in items],
    }
    if kind == "plan":
        data["not_applied"] = [one(i) for i in plan.unplanned]
    return data


def _title(plan: Plan, ref: str | None, kind: str) -> str:
    where = f"{short(plan.revision)}" + (f" ({ref})" if ref else "")
    items = plan.items if kind == "plan" else plan.drift
    if kind == "plan":
        what = f"{len(items)} change{'s' if len(items) != 1 else ''}" if items else "no changes"
        return f"Plan for {plan.environment} at {where}: {what}"
    what = f"{len(items)} drift item{'s' if len(items) != 1 else ''}" if items else "no drift"
    return f"Drift in {plan.environment} against {where}: {what}"


def _groups(items: list[DriftItem]) -> dict[str, list[DriftItem]]:
    """Schema statements that run together in the destructive step, by group (its first destructive id)."""
    groups: dict[str, list[DriftItem]] = {}
    for item in items:
        if item.detail.get("group"):
            groups.setdefault(str(item.detail["group"]), []).append(item)
    return groups


GROUPS_NOTE = ("run together in the destructive step, after the apps, once every destructive id in the group "
               "is approved")


def _age(first: dt.datetime | None, now: dt.datetime) -> str:
    if first is None:
        return "-"
    seconds = max(0, int((now - first).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def plan_text(plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
              kind: str = "plan", console: Console | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    items = plan.items if kind == "plan" else plan.drift
    buffer = StringIO()
    out = console or Console(file=buffer, width=160, highlight=False)
    out.print(f"[bold]{_title(plan, ref, kind)}[/bold]")
    groups = _groups(items)
    number = {group: str(n) for n, group in enumerate(groups, 1)}
    if items:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("", width=1)
        table.add_column("ID", overflow="fold")
        table.add_column("DECLARED", overflow="fold", max_width=40)
        table.add_column("LIVE", overflow="fold", max_width=40)
        table.add_column("RISK")
        if groups:
            table.add_column("GROUP")
        if first_seen is not None:
            table.add_column("SINCE")
        now = clock.now()
        for item in items:
            row = [CHANGE_MARK[item.change], item.id, show(item.declared, 40), show(item.live, 40),
                   f"[{RISK_STYLE[item.risk]}]{item.risk.value}[/]"]
            if groups:
                row.append(number.get(str(item.detail.get("group")), ""))
            if first_seen is not None:
                row.append(_age(first_seen.get(item.id), now))
            table.add_row(*row)
        out.print(table)
    for group, members in groups.items():
        out.print(f"Group {number[group]} [{group}], {GROUPS_NOTE}:", markup=False)
        for item in members:
            out.print(f"    {item.id} ({item.risk.value})", markup=False, highlight=False)
    for owner, ids in _deferred(plan).items():
        out.print(f"[cyan]{len(ids)} instance-wide changes applied with {owner}:[/cyan] " + ", ".join(ids))
    left = _left_alone(plan)
    if kind == "plan" and left:
        out.print(f"[yellow]{len(left)} undeclared objects left alone (prune is off):[/yellow] "
                  + ", ".join(i.id for i in left))
    if kind == "drift" and items:
        commands = sorted({heal_command(plan.environment, i) for i in items})
        out.print("To heal: " + "; ".join(commands))
    return buffer.getvalue() if console is None else ""


def plan_markdown(plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
                  kind: str = "plan") -> str:
    items = plan.items if kind == "plan" else plan.drift
    lines = [f"### {_title(plan, ref, kind)}", ""]
    groups = _groups(items)
    number = {group: str(n) for n, group in enumerate(groups, 1)}
    if items:
        header = ("| | ID | Declared | Live | Risk |" + (" Group |" if groups else "")
                  + (" First seen |" if first_seen is not None else ""))
        lines += [header, "|---|---|---|---|---|" + ("---|" if groups else "")
                  + ("---|" if first_seen is not None else "")]
        for item in items:
            risk = f"**{item.risk.value}**" if item.risk != Risk.SAFE else item.risk.value
            row = (f"| {CHANGE_MARK[item.change]} | `{item.id}` | {md_cell(item.declared)} | {md_cell(item.live)} "
                   f"| {risk} |")
            if groups:
                row += f" {number.get(str(item.detail.get('group')), '')} |"
            if first_seen is not None:
                seen = first_seen.get(item.id)
                row += f" {seen:%Y-%m-%d %H:%M} UTC |" if seen else " - |"
            lines.append(row)
        lines.append("")
        for group, members in groups.items():
            lines += [f"Group {number[group]} (`{group}`), {GROUPS_NOTE}:", ""]
            lines += [f"- `{item.id}` ({item.risk.value})" for item in members]
            lines.append("")
        statements = [i for i in items if i.sql]
        if statements:
            lines += ["<details><summary>SQL</summary>", "", "```sql"]
            lines += [i.sql.strip().rstrip(";") + ";" for i in statements if i.sql]
            lines += ["```", "", "</details>", ""]
        if kind == "drift":
            commands = sorted({heal_command(plan.environment, i) for i in items})
            lines += ["To heal:", "", *[f"- `{c}`" for c in commands], ""]
    for owner, ids in _deferred(plan).items():
        lines += [f"_{len(ids)} instance-wide changes applied with {owner}: " + ", ".join(f"`{i}`" for i in ids)
                  + "_", ""]
    left = _left_alone(plan)
    if kind == "plan" and left:
        lines += [f"_{len(left)} undeclared objects left alone (prune is off): "
                  + ", ".join(f"`{i.id}`" for i in left) + "_", ""]
    return "\n".join(lines)


def _deferred(plan: Plan) -> dict[str, list[str]]:
    """Ids of the changes each instance owner applies for this environment (engine/topology.py)."""
    out: dict[str, list[str]] = {}
    for item in plan.drift:
        if item.deferred_to is not None:
            out.setdefault(item.deferred_to, []).append(item.id)
    return out


def _left_alone(plan: Plan) -> list[DriftItem]:
    return [i for i in plan.unplanned if i.deferred_to is None]


def render_plan(fmt: str, plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
                kind: str = "plan") -> str:
    if fmt == "json":
        return json.dumps(plan_json(plan, ref, first_seen, kind), indent=2, sort_keys=True)
    if fmt == "markdown":
        return plan_markdown(plan, ref, first_seen, kind)
    return plan_text(plan, ref, first_seen, kind)
