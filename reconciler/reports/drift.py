"""Plan and drift reports (``plan``, ``drift``, ``apply`` output, the API's drift endpoint).

Text and Markdown show each change with its word (``+ create``, ``~ update``, ``- delete``), its id
and risk, and what changes in full: an update's live and declared values (the differing part marked),
a created or deleted object's fields one per line, a schema statement's SQL. A closing line counts
the changes and says what needs approval. JSON is the stable form (docs/json-output.md).
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import TYPE_CHECKING, Any

from reconciler import clock
from reconciler.core.changes import Change, DriftItem, Risk
from reconciler.core.plan import Plan
from reconciler.core.revisions import short
from reconciler.reports.values import (
    WIDTH,
    differing,
    display,
    excerpt,
    fields,
    md_code,
    md_highlighted,
    plural,
    printable,
    wrap,
)

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


def heal_advice(environment: str, items: list[DriftItem]) -> tuple[str | None, list[str]]:
    """The one command that heals what ``apply`` can (approving each destructive statement in it), and
    what only a person can do (undeclared objects while prune is off)."""
    mine = [i for i in items if i.deferred_to is None]  # instance-wide changes another run applies: _deferred
    by_hand = sorted({heal_command(environment, i) for i in mine
                      if i.change == Change.DELETE and i.kind != "schema" and not i.pruned})
    healable = [i for i in mine if not (i.change == Change.DELETE and i.kind != "schema" and not i.pruned)]
    if not healable:
        return None, by_hand
    approvals = [i.id for i in healable if i.kind == "schema" and i.risk == Risk.DESTRUCTIVE]
    command = f"reconciler apply {environment}" + "".join(f" --approve {shlex.quote(a)}" for a in approvals)
    return command, by_hand


def summary(items: list[DriftItem], policy: str | None = None, kind: str = "plan") -> str:
    """'3 to create, 2 to update, 1 to delete — 1 destructive, needs approval'.

    ``policy`` is the environment's ``destructive_changes``, when the caller knows it. Instance-wide
    changes another environment's run applies are not counted (they are listed apart)."""
    items = [i for i in items if i.deferred_to is None]
    counts = {change: sum(1 for i in items if i.change == change) for change in Change}
    words = [f"{counts[c]} to {c.value}" for c in Change if counts[c]]
    if kind == "drift":
        unpruned = sum(1 for i in items if i.change == Change.DELETE and i.kind != "schema" and not i.pruned)
        if unpruned:
            words = [w for w in words if not w.endswith("to delete")]
            deletes = counts[Change.DELETE] - unpruned
            words += ([f"{deletes} to delete"] if deletes else []) + [f"{unpruned} undeclared (prune is off)"]
    text = ", ".join(words) if words else "nothing to change"
    risks = []
    destructive = [i for i in items if i.risk == Risk.DESTRUCTIVE]
    if destructive:
        gated = any(i.kind == "schema" for i in destructive)
        note = {"require-approval": ", needs approval", "deny": ", refused here (destructive_changes: deny)",
                "allow": ", allowed here"}.get(policy or "", "") if gated else ""
        risks.append(f"{len(destructive)} destructive{note}")
    for risk in (Risk.LOCK_RISK, Risk.DATA_DEPENDENT):
        found = sum(1 for i in items if i.risk == risk)
        if found:
            risks.append(f"{found} {risk.value}")
    return text + (" — " + "; ".join(risks) if risks else "")


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


def _deferred(plan: Plan) -> dict[str, list[str]]:
    """Ids of the changes each instance owner applies for this environment (core/topology.py)."""
    out: dict[str, list[str]] = {}
    for item in plan.drift:
        if item.deferred_to is not None:
            out.setdefault(item.deferred_to, []).append(item.id)
    return out


def _left_alone(plan: Plan) -> list[DriftItem]:
    return [i for i in plan.unplanned if i.deferred_to is None]


def _age(first: dt.datetime | None, now: dt.datetime) -> str:
    if first is None:
        return "-"
    seconds = max(0, int((now - first).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


CHANGE_WORD = {Change.CREATE: "+ create", Change.UPDATE: "~ update", Change.DELETE: "- delete"}
LABEL = 10  # width of the field labels under an item, in text


def item_lines(item: DriftItem, since: str | None = None, labels: tuple[str, str] = ("live", "declared"),
               group: str | None = None) -> list[str]:
    """One item in text: a header (change, id, risk, group), then what changes, one field per line.
    ``labels`` name the old and the new value of an update (``diff`` compares revisions: old and new)."""
    risk = f"  ({item.risk.value})" if item.risk != Risk.SAFE else ""
    seen = f"  first seen {since}" if since else ""
    together = f"  group {group}" if group else ""
    lines = [f"{CHANGE_WORD[item.change]}  {printable(item.id)}{risk}{together}{seen}"]
    indent = 6
    if item.sql:
        for row in item.sql.strip().splitlines():
            lines.append(" " * indent + wrap(printable(row), indent)[0])
            lines += wrap(printable(row), indent)[1:]
        return lines
    if item.change == Change.UPDATE:
        old, new = display(item.live), display(item.declared)
        column = indent + LABEL
        pairs = [(labels[0], old), (labels[1], new)]
        for label, text in pairs:
            lines.append(" " * indent + label.ljust(LABEL) + "\n".join(wrap(text, column)))
        if old != new and isinstance(item.declared, str) and isinstance(item.live, str):
            prefix, suffix = differing(old, new)
            if len(old) <= WIDTH - column and len(new) <= WIDTH - column:
                lines.append(" " * (column + prefix) + "^" * max(1, len(new) - prefix - suffix))
            else:
                # Wrapped values: the differing part with its context, so nobody has to compare by eye.
                lines.append(" " * indent + "change".ljust(LABEL) + "\n".join(wrap(
                    f"{excerpt(old, prefix, len(old) - suffix)} → {excerpt(new, prefix, len(new) - suffix)}",
                    column)))
        return lines
    value = item.declared if item.change == Change.CREATE else item.live
    rows = fields(value)
    width = max([len(k) for k, _ in rows] + [LABEL - 2]) + 2
    for key, text in rows:
        lines.append(" " * indent + key.ljust(width) + "\n".join(wrap(text, indent + width)))
    return lines


def plan_text(plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
              kind: str = "plan", console: Console | None = None, policy: str | None = None) -> str:
    items = plan.items if kind == "plan" else plan.drift
    lines = [_title(plan, ref, kind)]
    if items:
        lines.append("")
    now = clock.now()
    groups = _groups(items)
    number = {group: str(n) for n, group in enumerate(groups, 1)}
    for item in items:
        since = _age(first_seen.get(item.id), now) if first_seen is not None else None
        lines += item_lines(item, since if since != "-" else None, group=number.get(str(item.detail.get("group"))))
    notes = []
    for group, members in groups.items():
        notes.append(f"Group {number[group]} [{group}], {GROUPS_NOTE}:")
        notes += [f"    {item.id} ({item.risk.value})" for item in members]
    for owner, ids in _deferred(plan).items():
        notes.append(f"{plural(len(ids), 'instance-wide change')} applied with {owner}: " + ", ".join(ids))
    left = _left_alone(plan)
    if kind == "plan" and left:
        notes.append(f"{plural(len(left), 'undeclared object')} left alone (prune is off): "
                     + ", ".join(i.id for i in left))
    if items or notes:
        lines += ["", *notes]
    if items:
        lines.append(summary(items, policy, kind))
    if kind == "drift" and items:
        command, by_hand = heal_advice(plan.environment, items)
        if command:
            lines.append(f"To heal: {command}")
        for step in by_hand:
            lines.append(f"By hand: {step}")
    text = "\n".join(lines) + "\n"
    if console is not None:
        console.print(text, markup=False, highlight=False, end="")
        return ""
    return text


def md_value(item: DriftItem, value: Any, other: Any) -> str:
    """One side of an item in a Markdown cell: whole, an update's differing part in bold, fields one per line."""
    if value is None:
        return "-"
    if item.change == Change.UPDATE and isinstance(value, str) and isinstance(other, str):
        return md_highlighted(printable(value), printable(other))
    if isinstance(value, dict):
        return "<br>".join(f"{md_code(k)}: {md_code(v)}" if k else md_code(v) for k, v in fields(value)) or "-"
    return md_code(display(value))


def plan_markdown(plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
                  kind: str = "plan", policy: str | None = None) -> str:
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
            row = (f"| {CHANGE_WORD[item.change]} | {md_code(printable(item.id))} | "
                   f"{md_value(item, item.declared, item.live)} | {md_value(item, item.live, item.declared)} "
                   f"| {risk} |")
            if groups:
                row += f" {number.get(str(item.detail.get('group')), '')} |"
            if first_seen is not None:
                seen = first_seen.get(item.id)
                row += f" {seen:%Y-%m-%d %H:%M} UTC |" if seen else " - |"
            lines.append(row)
        lines += ["", f"**{summary(items, policy, kind)}**", ""]
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
            command, by_hand = heal_advice(plan.environment, items)
            if command:
                lines += [f"To heal: `{command}`", ""]
            if by_hand:
                lines += ["Not healed by apply (prune is off):", "", *[f"- {step}" for step in by_hand], ""]
    for owner, ids in _deferred(plan).items():
        lines += [f"_{plural(len(ids), 'instance-wide change')} applied with {owner}: "
                  + ", ".join(f"`{i}`" for i in ids) + "_", ""]
    left = _left_alone(plan)
    if kind == "plan" and left:
        lines += [f"_{plural(len(left), 'undeclared object')} left alone (prune is off): "
                  + ", ".join(f"`{i.id}`" for i in left) + "_", ""]
    return "\n".join(lines)


def render_plan(fmt: str, plan: Plan, ref: str | None = None, first_seen: dict[str, dt.datetime] | None = None,
                kind: str = "plan", policy: str | None = None) -> str:
    """``plan`` (or, with ``kind="drift"``, its drift) as text, JSON or Markdown; ``policy`` is the
    environment's ``destructive_changes`` when known (it says whether destructive changes need approval)."""
    if fmt == "json":
        return json.dumps(plan_json(plan, ref, first_seen, kind), indent=2, sort_keys=True)
    if fmt == "markdown":
        return plan_markdown(plan, ref, first_seen, kind, policy)
    return plan_text(plan, ref, first_seen, kind, policy=policy)
