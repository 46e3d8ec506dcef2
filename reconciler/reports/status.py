"""Status and run-history reports (``status``, ``history``, the API and the dashboard)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from reconciler.app.queries import RunRecord, StatusRow
from reconciler.core.outcome import EnvState, RunResult
from reconciler.core.revisions import short
from reconciler.durations import format_duration
from reconciler.reports.values import clip_words

STATE_STYLE: dict[str, str] = {
    EnvState.SYNCED: "green", EnvState.OUT_OF_SYNC: "yellow", EnvState.PROGRESSING: "cyan",
    EnvState.BLOCKED: "bold red", EnvState.FAILED: "bold red", EnvState.UNKNOWN: "dim",
}
RESULT_STYLE: dict[str, str] = {
    RunResult.SUCCEEDED: "green", RunResult.NO_CHANGES: "green", RunResult.FAILED: "bold red",
    RunResult.BLOCKED: "red", RunResult.INTERRUPTED: "yellow", RunResult.PROGRESSING: "cyan",
    RunResult.WAITING: "cyan",
}


def _count(value: int | None) -> str:
    return str(value) if value is not None else "-"


def run_summary(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "result": run.result, "trigger": run.trigger, "revision": run.revision,
            "ref": run.ref, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "duration_seconds": run.duration, "reason": run.reason, "checks": run.checks}


def checks_cell(run: RunRecord) -> str:
    """The checks a run ran, in a few characters: "2/2 passed", "failed: a, b", or "-"."""
    if not run.checks:
        return "-"
    failed = [c["name"] for c in run.checks if not c.get("passed")]
    return f"failed: {', '.join(failed)}" if failed else f"{len(run.checks)}/{len(run.checks)} passed"


def _took(check: dict[str, Any]) -> str:
    seconds = check.get("duration_seconds")
    return format_duration(seconds) if isinstance(seconds, int | float) else "-"


def failed_check_lines(environment: str, run: RunRecord | None) -> list[str]:
    """One line per failed check of ``run``: "production: check crm-api-health failed (5.00s): <error>"."""
    if run is None:
        return []
    return [f"{environment}: check {c['name']} failed ({_took(c)}): "
            f"{clip_words(c.get('error') or c.get('detail'), 200)}" for c in run.checks if not c.get("passed")]


def checks_table(run: RunRecord) -> str:
    """The checks ``run`` ran, one row each (the newest run's, under ``history``)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=160, highlight=False)
    console.print(f"Checks of run {run.id[:8]} ({escape(run.result)}, {run.started_at:%Y-%m-%d %H:%M:%S}):")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("CHECK", "TARGET", "WHEN", "RESULT", "TIME", "DETAIL"):
        table.add_column(column, overflow="fold")
    for c in run.checks:
        result = "[green]passed[/]" if c.get("passed") else "[bold red]FAILED[/]"
        detail = c.get("detail") if c.get("passed") else (c.get("error") or c.get("detail"))
        table.add_row(escape(str(c.get("name"))), escape(str(c.get("target") or "-")),
                      escape(str(c.get("when") or "-")), result, _took(c), escape(clip_words(detail, 200)))
    console.print(table)
    return buffer.getvalue()


def status_json(row: StatusRow) -> dict[str, Any]:
    status = row.status
    return {
        "name": status.environment,
        "state": status.state.value,
        "reason": status.reason,
        "tracked_ref": row.tracked_ref,
        "desired_revision": row.desired_revision,
        "desired_ref": row.desired_ref,
        "applied_revision": status.applied_revision,
        "applied_ref": status.applied_ref,
        "drift_count": status.drift_count,
        "pinned_revision": status.pinned_revision,
        "last_checked_at": status.last_checked_at.isoformat() if status.last_checked_at else None,
        "last_run": run_summary(row.last_run),
    }


def render_status(fmt: str, rows: list[StatusRow]) -> str:
    if fmt == "json":
        return json.dumps({"environments": [status_json(row) for row in rows]}, indent=2, sort_keys=True)
    if fmt == "markdown":
        lines = ["| Environment | State | Tracks | Desired | Applied | Drift | Last run | Reason |",
                 "|---|---|---|---|---|---|---|---|"]
        for row in rows:
            s, r = row.status, row.last_run
            applied = f"`{short(s.applied_revision)}`" + (f" ({s.applied_ref})" if s.applied_ref else "")
            last = f"{r.result} {r.started_at:%Y-%m-%d %H:%M}" if r else "-"
            reason = (s.reason or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {s.environment} | **{s.state}** | {row.tracked_ref or '-'} | "
                         f"`{short(row.desired_revision)}` | {applied} | {_count(s.drift_count)}"
                         f" | {last} | {reason} |")
        return "\n".join(lines) + "\n"
    from rich.console import Console
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=160, highlight=False)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ENVIRONMENT", "STATE", "TRACKS", "DESIRED", "APPLIED", "DRIFT", "LAST RUN", "CHECKS", "REASON"):
        table.add_column(column, overflow="fold")
    for row in rows:
        s, r = row.status, row.last_run
        applied = short(s.applied_revision) + (f" ({s.applied_ref})" if s.applied_ref else "")
        pinned = " [pinned]" if s.pinned_revision else ""
        last = f"[{RESULT_STYLE.get(r.result, '')}]{r.result}[/] {r.started_at:%H:%M:%S}" if r else "-"
        table.add_row(
            s.environment, f"[{STATE_STYLE.get(s.state, '')}]{s.state}[/]{pinned}", row.tracked_ref or "-",
            short(row.desired_revision), applied, str(s.drift_count) if s.drift_count is not None else "-",
            last, checks_cell(r) if r else "-", clip_words(s.reason, 120),
        )
    console.print(table)
    failures = [line for row in rows for line in failed_check_lines(row.status.environment, row.last_run)]
    if failures:
        from rich.markup import escape

        console.print("\nFailed checks of the last runs:")
        for line in failures:
            console.print(f"  {escape(line)}")
    return buffer.getvalue()


def render_history(fmt: str, environment: str, runs: list[RunRecord]) -> str:
    if fmt == "json":
        return json.dumps({"environment": environment, "runs": [r.as_json() for r in runs]}, indent=2, sort_keys=True)
    if fmt == "markdown":
        lines = [f"### Runs of {environment}", "",
                 "| Started | Trigger | Revision | Result | Changes | Checks | Reason |",
                 "|---|---|---|---|---|---|---|"]
        for r in runs:
            reason = clip_words(r.reason, 200).replace("|", "\\|")
            lines.append(f"| {r.started_at:%Y-%m-%d %H:%M:%S} | {r.trigger} | `{short(r.revision)}` {r.ref or ''} | "
                         f"**{r.result}** | {len(r.applied)}/{len(r.plan)} | {checks_cell(r)} | {reason} |")
        return "\n".join(lines) + "\n"
    from rich.console import Console
    from rich.table import Table

    buffer = StringIO()
    console = Console(file=buffer, width=160, highlight=False)
    table = Table(box=None, header_style="bold", pad_edge=False, title=f"Runs of {environment}", title_justify="left")
    for column in ("STARTED", "TRIGGER", "REVISION", "RESULT", "APPLIED", "CHECKS", "TOOK", "RUN", "REASON"):
        table.add_column(column, overflow="fold")
    for r in runs:
        took = f"{r.duration:.2f}s" if r.duration is not None else "-"
        revision = short(r.revision) + (f" {r.ref}" if r.ref else "")
        table.add_row(f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.trigger, revision,
                      f"[{RESULT_STYLE.get(r.result, '')}]{r.result}[/]", f"{len(r.applied)}/{len(r.plan)}",
                      checks_cell(r), took,
                      r.id[:8], clip_words(r.reason, 100))
    console.print(table)
    newest = next((r for r in runs if r.checks), None)
    text = buffer.getvalue()
    return text + ("\n" + checks_table(newest) if newest is not None else "")
