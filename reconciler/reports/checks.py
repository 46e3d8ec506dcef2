"""Check results as text, JSON or Markdown (``reconciler check``; the API returns the JSON form)."""

from __future__ import annotations

import json
from io import StringIO

from reconciler.checks.results import CheckReport
from reconciler.core.revisions import short
from reconciler.durations import format_duration


def render_checks(fmt: str, report: CheckReport) -> str:
    if fmt == "json":
        return json.dumps(report.as_json(), indent=2, sort_keys=True)
    where = short(report.revision) + (f" ({report.ref})" if report.ref else "")
    failed = len(report.failed)
    summary = f"{len(report.results) - failed} passed, {failed} failed"
    if fmt == "markdown":
        lines = [f"**Checks of {report.environment}** at `{where}`: {summary}", "",
                 "| Check | Target | When | Result | Time | Detail |", "|---|---|---|---|---|---|"]
        for r in report.results:
            detail = r.detail.replace("|", "\\|").replace("\n", " ")
            result = "passed" if r.passed else "**FAILED**"
            lines.append(f"| {r.name} | {r.target} | {r.when} | {result} | {format_duration(r.duration)} | {detail} |")
        return "\n".join(lines) + "\n"
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=160, highlight=False)
    if not report.results:
        console.print(f"No checks are declared for {escape(report.environment)} at {escape(where)}.")
        return buffer.getvalue()
    style = "green" if failed == 0 else "bold red"
    console.print(f"Checks of {escape(report.environment)} at {escape(where)}: [{style}]{summary}[/]")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("CHECK", "TARGET", "WHEN", "RESULT", "TIME", "DETAIL"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        result = "[green]passed[/]" if r.passed else "[bold red]FAILED[/]"
        table.add_row(escape(r.name), escape(r.target), r.when, result, format_duration(r.duration), escape(r.detail))
    console.print(table)
    return buffer.getvalue()
