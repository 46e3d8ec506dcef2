"""The promotion view as text (80 columns), Markdown and JSON: ``reconciler releases`` and the API.

Rows are release tags and branch heads, newest first; columns are environments in promotion order.
A cell says whether the environment runs the revision, ran it, or what holds it back; below the
table, each revision's next promotion: the gate, the reason and what unblocks it.
"""

from __future__ import annotations

import json
import textwrap
from io import StringIO

from reconciler.app.promotion import Cell
from reconciler.app.queries import PromotionView
from reconciler.core.revisions import short

WIDTH = 80


def _when(value: object) -> str:
    return f"{value:%m-%d %H:%M}" if value is not None else ""


def _cell_lines(cell: Cell) -> list[str]:
    if cell.state == "runs":
        lines = ["runs"]
    elif cell.state == "ran":
        lines = [f"ran {_when(cell.ran_at)}"]
    elif cell.state == "blocked":
        assert cell.blocker is not None
        lines = [f"blocked: {cell.blocker.gate}"]
    else:
        lines = ["next"]
    if cell.verified_at is not None:
        lines.append(f"verified {_when(cell.verified_at)}")
    if cell.checks:
        lines.append(f"checks {cell.checks}")
    return lines


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"    {label}", subsequent_indent="      ",
                         break_on_hyphens=False, break_long_words=False) or [f"    {label}"]


def next_lines(view: PromotionView) -> list[str]:
    """Each revision's next promotion, wrapped at 80 columns."""
    lines: list[str] = []
    for row in view.rows:
        upcoming = row.next
        if upcoming is None:
            continue
        if upcoming.blocker is not None:
            lines.append(f"  {row.name} → {upcoming.environment}: blocked by {upcoming.blocker.gate}")
            lines += _wrapped("why: ", upcoming.blocker.reason)
            lines += _wrapped("unblock: ", upcoming.blocker.unblock)
        else:
            lines.append(f"  {row.name} → {upcoming.environment}: no gate holds it")
            lines += _wrapped("how: ", upcoming.next_step or "")
    return lines


def render_releases(fmt: str, view: PromotionView) -> str:
    if fmt == "json":
        return json.dumps(view.as_json(), indent=2, sort_keys=True)
    if fmt == "markdown":
        return _markdown(view)
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=WIDTH, highlight=False)
    table = Table(box=None, header_style="bold", pad_edge=False, title="Releases and branch heads, newest first",
                  title_justify="left")
    table.add_column("REVISION", overflow="fold", no_wrap=False)
    for env in view.environments:
        table.add_column(env.upper(), overflow="fold")
    for index, row in enumerate(view.rows):
        if index:
            table.add_row(*[""] * (len(view.environments) + 1))  # a blank line between revisions
        revision = [row.name, f"{row.kind} {short(row.commit)[:8]}"]
        if row.tree_id:
            revision.append(f"tree {row.tree_id[:8]}")
        table.add_row(escape("\n".join(revision)), *(escape("\n".join(_cell_lines(c))) for c in row.cells))
    if not view.rows:
        console.print("No release tags or tracked branches yet.")
    else:
        console.print(table)
    out = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    upcoming = next_lines(view)
    if upcoming:
        out += "\nNext promotions\n" + "\n".join(upcoming) + "\n"
    return out


def _markdown(view: PromotionView) -> str:
    header = "| Revision | " + " | ".join(view.environments) + " |"
    lines = ["### Releases and branch heads", "", header, "|" + "---|" * (len(view.environments) + 1)]
    for row in view.rows:
        cells = ["<br>".join(_cell_lines(c)) for c in row.cells]
        lines.append(f"| **{row.name}** `{short(row.commit)}` | " + " | ".join(cells) + " |")
    upcoming = [row for row in view.rows if row.next is not None]
    if upcoming:
        lines += ["", "**Next promotions**", ""]
        for row in upcoming:
            cell = row.next
            assert cell is not None
            if cell.blocker is not None:
                reason = cell.blocker.reason.replace("\n", " ")
                lines.append(f"- **{row.name} → {cell.environment}**: blocked by `{cell.blocker.gate}` — {reason}; "
                             f"unblock: `{cell.blocker.unblock}`")
            else:
                lines.append(f"- **{row.name} → {cell.environment}**: no gate holds it — `{cell.next_step}`")
    return "\n".join(lines) + "\n"
