"""``reconciler demo``: the whole flow on embedded defaults, narrated for a newcomer.

A temporary Git repository is made from the example ``desired-state/``; an embedded PostgreSQL
(pgserver) holds the CRM database of staging and production; the built-in registry plays the
platform; a SQLite file is the state store. Every step calls the same ``Reconciler`` the CLI and
the daemon use.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from reconciler.app.reconcile import Reconciler
from reconciler.checks.runner import check_environment
from reconciler.config import Settings, load_settings
from reconciler.core import gates
from reconciler.core.outcome import RunOutcome
from reconciler.core.revisions import short
from reconciler.reports.checks import render_checks
from reconciler.reports.drift import render_plan
from reconciler.reports.status import render_status
from reconciler.secrets.backends import EnvBackend, Secrets, StaticBackend
from reconciler.source import workspace

EXAMPLE = Path(__file__).resolve().parent.parent / "desired-state"
KIND_LABEL = {"schema": "schema statement", "config-variable": "config variable"}


def example_folder() -> Path:
    if (EXAMPLE / "reconciler.yaml").exists():
        return EXAMPLE
    raise FileNotFoundError("the example desired-state/ folder is not next to the package; run from a checkout")


class Demo:
    def __init__(self, console: Console, root: Path) -> None:
        self.console = console
        self.root = root
        self.repo = root / "repo"
        self.step_no = 0

    def step(self, title: str, why: str) -> None:
        self.step_no += 1
        self.console.print()
        self.console.rule(f"[bold]Step {self.step_no}. {title}", align="left")
        self.console.print(why, style="dim")

    def show_outcome(self, outcome: RunOutcome) -> None:
        where = short(outcome.revision) + (f" ({outcome.ref})" if outcome.ref else "")
        style = {"Succeeded": "green", "NoChanges": "green", "Blocked": "bold red", "Failed": "bold red"}
        items = outcome.plan.items if outcome.plan is not None else []
        if len(items) > 12:
            # A first apply creates everything: a count per kind reads better than 30 rows.
            counts: dict[str, int] = {}
            for item in items:
                counts[item.kind] = counts.get(item.kind, 0) + 1
            summary = ", ".join(f"{n} {KIND_LABEL.get(kind, kind)}{'s' if n != 1 else ''}"
                                for kind, n in counts.items())
            self.console.print(f"Plan: {len(items)} changes — {summary}")
        elif outcome.plan is not None and items:
            self.console.print(render_plan("text", outcome.plan, outcome.ref), end="", markup=False)
        line = f"[{style.get(outcome.result, '')}]{outcome.result}[/]: {outcome.environment} at {where}"
        if outcome.result == "Succeeded":
            count = len(outcome.applied)
            line += f" — {count} change{'s' if count != 1 else ''} applied, then verified: zero drift"
        elif outcome.reason:
            line += f" — {outcome.reason}"
        self.console.print(line)


def _in_window(reconciler: Reconciler, env: str) -> bool:
    return not gates.check_window(reconciler.spec(env), reconciler.clock()).allowed


@contextmanager
def _workspace(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def run_demo(console: Console, keep: bool = False) -> int:
    from reconciler.app.wiring import Overrides, build_reconciler
    from reconciler.providers.postgres.embedded import EmbeddedPostgres

    with _workspace(keep) as root:
        demo = Demo(console, root)
        console.print(Panel.fit(
            "[bold]Reconciler demo[/bold]\n"
            "Git declares two environments of an internal-tools platform:\n"
            "[cyan]staging[/cyan] follows the branch main; [cyan]production[/cyan] follows\n"
            "release tags v*, which must pass promotion gates. Everything runs\n"
            "locally: a temporary Git repo, an embedded PostgreSQL for the CRM\n"
            "database, the built-in registry as the platform, a SQLite state store.",
        ))

        demo.step("Commit the desired state", "The example desired-state/ folder becomes the first commit on main.")
        shutil.copytree(example_folder(), demo.repo / "desired-state")
        workspace.init(demo.repo)
        first = workspace.commit_all(demo.repo, "Declare staging and production")
        console.print(f"repository {demo.repo}, main at {short(first)}")

        with EmbeddedPostgres(root / "pg") as server:
            admin = server.url
            import psycopg

            with psycopg.connect(admin, autocommit=True) as conn:
                for name in ("crm_staging", "crm_production"):
                    conn.execute(f"create database {name}")
            demo_secrets = {
                "CRM_DB_STAGING_ADMIN_URL": server.database_url("crm_staging"),
                "CRM_DB_PRODUCTION_ADMIN_URL": server.database_url("crm_production"),
                "CRM_DB_STAGING_PASSWORD": secrets.token_urlsafe(16),
                "CRM_DB_PRODUCTION_PASSWORD": secrets.token_urlsafe(16),
                "CRM_API_STAGING_TOKEN": secrets.token_urlsafe(16),
                "CRM_API_PRODUCTION_TOKEN": secrets.token_urlsafe(16),
                "SEGMENT_STAGING_KEY": secrets.token_urlsafe(16),
                "SEGMENT_PRODUCTION_KEY": secrets.token_urlsafe(16),
            }
            settings: Settings = load_settings(None, data_dir=str(root / "data"), source={"url": str(demo.repo)})
            demo_backends = Secrets([StaticBackend(demo_secrets), EnvBackend()])
            reconciler = build_reconciler(settings, Overrides(secrets=demo_backends))
            try:
                return _narrate(demo, reconciler)
            finally:
                reconciler.close()
                if keep:
                    console.print(f"\nKept {root} (the PostgreSQL server is stopped).", markup=False)
                else:
                    console.print("\nThe temporary directory is removed now; 'reconciler demo --keep' keeps it "
                                  "(the repository, the state database, the registry) to look at afterwards.",
                                  markup=False)


def _narrate(demo: Demo, r: Reconciler) -> int:
    console = demo.console
    clock_note = None
    if _in_window(r, "production"):
        # The example forbids Friday-evening releases; keep the demo's clock out of that window.
        fixed = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
        r.clock = lambda: fixed
        clock_note = ("It is inside production's deny window right now, so the demo runs with its clock at a "
                      "Wednesday noon.")

    demo.step("Validate", "Every document is checked: fields, references, secrets, SQL. Errors would name file:line.")
    state = r.head_state("main")
    console.print(f"[green]valid[/green]: {state.document_count()} documents, environments "
                  f"{' → '.join(state.environment_order)}")

    demo.step("Apply staging", "staging tracks main: its head is applied — schema first, then resources, config, "
              "groups, permissions and the app. Secrets show as (secret); only their fingerprints are kept.")
    outcome = r.reconcile("staging", trigger="demo")
    demo.show_outcome(outcome)
    if outcome.result != "Succeeded":
        return 1

    demo.step("Release v1.0.0 to production", "An operator tags main. The tag passes the gates: it is on main, and the "
              "same desired state already synced and verified in staging (promoted_from).")
    if clock_note:
        console.print(clock_note, style="yellow")
    workspace.tag(demo.repo, "v1.0.0", "Release 1.0.0\n\nFirst release of the support tools.\n")
    demo.show_outcome(r.reconcile("production", trigger="demo"))

    demo.step("A schema change flows to staging", "A pull request adds customers.phone and an index. Merged to main, "
              "it reaches staging on the next reconcile; production does not move.")
    sql = demo.repo / "desired-state" / "databases" / "crm" / "004_phone.sql"
    sql.write_text("alter table customers add column phone text;\n"
                   "create index customers_phone_idx on customers (phone);\n")
    workspace.commit_all(demo.repo, "Add customers.phone")
    demo.show_outcome(r.reconcile("staging", trigger="demo"))

    demo.step("Check staging", "Declared checks say what 'it works' means beyond 'live equals Git': here, the "
              "dashboard's open-tickets query runs against the new schema ('reconciler check staging').")
    checked = check_environment(r, "staging", r.resolve_secret)
    console.print(render_checks("text", checked), end="")
    if not checked.passed:
        return 1

    demo.step("A destructive change is blocked in production", "The next pull request drops customers.plan. staging "
              "allows destructive changes; production requires an approval in the release tag.")
    path = demo.repo / "desired-state" / "databases" / "crm" / "001_customers.sql"
    path.write_text(path.read_text().replace("    plan        text not null default 'free',\n", ""))
    workspace.commit_all(demo.repo, "Drop customers.plan (moved to billing)")
    demo.show_outcome(r.reconcile("staging", trigger="demo"))
    workspace.tag(demo.repo, "v1.1.0", "Release 1.1.0\n")
    blocked = r.reconcile("production", trigger="demo")
    demo.show_outcome(blocked)
    console.print(f"[dim]exit code of 'reconciler apply production' here: {blocked.exit_code}; the column is "
                  "still there and production stays at v1.0.0.[/dim]")

    demo.step("Approve it with a tag trailer", "The operator cuts v1.1.1 with "
              "'Approve: crm:drop-column:public.customers.plan' "
              "in the annotated tag message.")
    workspace.tag(demo.repo, "v1.1.1", "Release 1.1.1\n\nApprove: crm:drop-column:public.customers.plan\n")
    demo.show_outcome(r.reconcile("production", trigger="demo"))

    demo.step("Someone edits production by hand", "SUPPORT_EMAIL is changed in the platform, outside Git. production "
              "has self_heal off, so a drift check reports it to on-call instead of reverting it.")
    r.edit_live("production", "SUPPORT_EMAIL", "oops@example.com")
    report, first_seen = r.check_drift("production")
    console.print(render_plan("text", report, r.status("production").applied_ref, first_seen, kind="drift"),
                  end="", markup=False)

    demo.step("Heal it", "'reconciler apply production' re-applies the running release.")
    demo.show_outcome(r.reconcile("production", trigger="demo"))

    demo.step("Status", "What 'reconciler status' shows on-call: every environment, its revisions and state.")
    console.print(render_status("text", r.queries.status_rows()), end="")
    console.print("\n[bold green]Done.[/bold green] Next: 'reconciler run --source PATH' keeps doing this on every "
                  "commit "
                  "and tag; see README.md.")
    return 0
