"""The ``reconciler`` command line (SPEC §6): thin commands over ``app.Reconciler`` and its queries.

Exit codes: 0 success / nothing to do, 1 error, 2 changes or drift found (plan, drift, diff),
3 blocked by a gate (apply), 4 a declared check failed (check). Errors are one plain line on
stderr, never a traceback (set ``RECONCILER_DEBUG=1`` to see one). Output goes to stdout in the
chosen ``--format``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from reconciler import clock, logs
from reconciler.errors import ReconcilerError, ValidationError

if TYPE_CHECKING:
    from reconciler.app.needs import Needs
    from reconciler.config import Settings  # pydantic-settings: imported by the commands that read a config
    from reconciler.desired.state import DesiredState

app = typer.Typer(
    name="reconciler",
    help="GitOps reconciler for internal-tool platforms: drift reports, plans and gated promotion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
schemas_app = typer.Typer(help="JSON Schemas of the desired-state document kinds.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")

class LazyConsole:
    """A rich Console made on first use; plain text when rich is unavailable (``reconciler run``)."""

    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr
        self._console: Any = None

    def print(self, text: str, markup: bool = True, highlight: bool = False, end: str = "\n") -> None:
        if self._console is None:
            try:
                from rich.console import Console
            except ImportError:
                stream = sys.stderr if self.stderr else sys.stdout
                # Style tags go; an escaped "\[" is text (a TOML table name in a message, say).
                plain = re.sub(r"(?<!\\)\[/?[a-z ]+\]", "", text) if markup else text
                stream.write(plain.replace("\\[", "[") + end)
                return
            self._console = Console(stderr=self.stderr, highlight=False, soft_wrap=True)
        self._console.print(text, markup=markup, highlight=highlight, end=end)


out = LazyConsole(stderr=False)
err = LazyConsole(stderr=True)


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: $RECONCILER_CONFIG, ./reconciler.toml)."),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Repository path or URL (overrides source.url).")]
WorkspaceOpt = Annotated[str | None, typer.Option(
    "--workspace", "-w", envvar="RECONCILER_WORKSPACE",
    help="Workspace (default: the only one; required when [[workspaces]] declares several).")]


def esc(value: object) -> str:
    """User text inside rich markup: a '[' must not start a style tag."""
    return str(value).replace("[", "\\[")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/bold red] {esc(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


@contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn our errors into one line and exit 1; unexpected ones too, without a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except ValidationError as exc:
        if len(exc.problems) == 1:
            fail(f"desired state is invalid: {exc.problems[0]}")
        err.print(f"[bold red]error:[/bold red] {esc(exc.message.splitlines()[0])}")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(1) from None
    except ReconcilerError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {str(exc)[:300]} (set RECONCILER_DEBUG=1 for details)")


def settings_for(config: Path | None, source: str | None = None, workspace: str | None = None) -> Settings:
    """The settings of one workspace (``--workspace``, or the only one), ``--source`` overriding its source."""
    from reconciler.config import load_settings, source_override

    settings = load_settings(config)
    if source and not settings.workspaces:
        settings = load_settings(config, source={"url": source})
    settings = settings.for_workspace(workspace)
    if source and settings.workspaces:
        settings = source_override(settings, source)
    logs.configure(os.environ.get("RECONCILER_LOG_LEVEL", "error"), settings.log.format)
    clock.configure()
    return settings


def with_reconciler(config: Path | None, source: str | None, fn: Callable[[Any], int],
                    workspace: str | None = None) -> None:
    from reconciler.app.wiring import build_reconciler

    code = 0
    with errors_as_exit():
        reconciler = build_reconciler(settings_for(config, source, workspace))
        try:
            code = fn(reconciler)
        finally:
            reconciler.close()
    raise typer.Exit(code)


def destructive_policy(r: Any, env: str) -> str | None:
    """ENV's ``destructive_changes`` (reports say whether destructive changes need approval), if it can be read."""
    try:
        return str(r.spec(env).sync.destructive_changes)
    except ReconcilerError:
        return None


def _operator() -> str:
    """Who runs this command, as a break-glass record names them (the login name)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def _notify_break_glass(r: Any, outcome: Any) -> None:
    """Send the ``break-glass`` notification of a CLI run to the configured webhooks (the daemon does its own)."""
    from reconciler.daemon.notify import Notifier

    if not r.settings.notify.webhooks:
        return
    notifier = Notifier(r.settings, r)
    try:
        notifier.outcome(outcome)
        if not notifier.wait_idle(30.0):
            err.print("[yellow]warning:[/yellow] the break-glass notification is still being delivered; giving up")
    finally:
        notifier.close()


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- commands ------------------------------------------------------------------------------------


def desired_folder(path: Path | None, settings: Settings | None = None) -> Path:
    """The desired-state folder to read: PATH, else the configured source's folder when it is local, else
    ./desired-state when it holds a reconciler.yaml, else the current directory."""
    if path is not None:
        folder = path
    else:
        folder = Path("desired-state") if Path("desired-state/reconciler.yaml").exists() else Path(".")
        if settings is not None and "://" not in settings.source.url:
            configured = Path(settings.source.url) / settings.source.path
            if (configured / "reconciler.yaml").exists():
                folder = configured
    if not folder.exists():
        fail(f"{folder}: no such directory")
    if not folder.is_dir():
        fail(f"{folder}: not a directory")
    return folder


def load_folder(folder: Path, fmt: Format, settings: Settings | None = None) -> DesiredState:
    """The desired state in ``folder``; every problem printed (``fmt``) and exit 1 when it does not validate.
    With ``settings``, the platform topology's rules are checked too."""
    from reconciler.core.topology import shared_instance_problems
    from reconciler.desired.loader import load
    from reconciler.source.trees import DirectoryTree

    try:
        state = load(DirectoryTree(folder))
        if settings is not None:
            # The platform topology: what environments sharing one instance cannot declare differently.
            placement = settings.platform.placement(state.environment_order)
            problems = shared_instance_problems(state, placement)
            if problems:
                raise ValidationError(problems)
        return state
    except ValidationError as exc:
        if fmt == Format.json:
            emit(json.dumps({"valid": False, "problems": [
                {"file": p.file, "line": p.line, "message": p.message} for p in exc.problems]}, indent=2))
        else:
            err.print(f"[bold red]invalid:[/bold red] {esc(folder)} has {len(exc.problems)} problem"
                      f"{'s' if len(exc.problems) != 1 else ''}")
            for problem in exc.problems:
                err.print(f"  {problem}", markup=False)
        raise typer.Exit(1) from None
    except ReconcilerError as exc:
        fail(str(exc))


def check_secrets(state: DesiredState, env: str, settings: Settings, config: Path | None) -> Needs:
    """What ``env`` needs from the secret backends (desired state and configuration), looked up."""
    from reconciler.app.needs import check, configuration_uses
    from reconciler.config import config_path
    from reconciler.secrets.backends import backends_from_config

    with errors_as_exit():
        backends = backends_from_config(settings.secrets.backends)
        return check(state, env, backends, configuration_uses(settings, config_path(config)))


@app.command()
def validate(
    path: Annotated[Path | None, typer.Argument(help="Desired-state folder (default: ./desired-state or .).")] = None,
    env: Annotated[str | None, typer.Option(
        "--env", help="Also check that every secret and database URL ENV needs is set (see 'reconciler secrets').",
    )] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate a desired-state folder in a working tree (no daemon, no network).

    The config is not needed; given with ``--config`` (or read for ``--env``), its platform topology is
    checked too (what environments sharing one instance cannot declare differently). Exit 0 valid, 1
    invalid (every problem listed) or, with --env, a secret ENV needs is not set."""
    logs.configure("error")
    settings = None
    if env is not None or config is not None:
        with errors_as_exit():
            settings = settings_for(config, workspace=workspace)
    folder = desired_folder(path)
    state = load_folder(folder, fmt, settings)
    needs = check_secrets(state, env, settings, config) if env is not None and settings is not None else None
    if fmt == Format.json:
        from reconciler.reports.secrets import secrets_json

        data: dict[str, Any] = {"valid": True, "documents": state.document_count(),
                                "environments": state.environment_order}
        if needs is not None:
            data["secrets"] = secrets_json(needs)
        emit(json.dumps(data, indent=2))
    else:
        out.print(f"[green]valid:[/green] {esc(folder)} — {state.document_count()} documents, environments "
                  f"{' → '.join(state.environment_order)}")
        if needs is not None:
            from reconciler.reports.secrets import secrets_text, summary

            if needs.problems:
                err.print(secrets_text(needs), markup=False, end="")
            else:
                out.print(summary(needs), markup=False)
    raise typer.Exit(1 if needs is not None and needs.problems else 0)


@app.command("secrets")
def secrets_command(
    env: Annotated[str, typer.Argument(help="Environment.")],
    path: Annotated[Path | None, typer.Argument(
        help="Desired-state folder (default: the configured source's, else ./desired-state or .).")] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List every secret and database URL ENV needs, which backend serves each, which are missing, and where
    each is used (file:line). Values are never shown. Exit 0 all set, 1 otherwise."""
    from reconciler.reports.secrets import render_secrets

    with errors_as_exit():
        settings = settings_for(config, workspace=workspace)
    state = load_folder(desired_folder(path, settings), fmt)
    needs = check_secrets(state, env, settings, config)
    emit(render_secrets(fmt.value, needs))
    raise typer.Exit(1 if needs.problems else 0)


@app.command()
def plan(
    env: Annotated[str, typer.Argument(help="Environment.")],
    rev: Annotated[str | None, typer.Option("--rev", help="Revision to plan (default: what ENV tracks).")] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show what applying would change. Exit 0 no changes, 2 changes, 1 error."""
    from reconciler.reports.drift import render_plan

    def run(r: Any) -> int:
        target = r.target(env, rev)
        if target.revision is None:
            fail(f"{env}: nothing to plan yet ({target.gate.reason})")
        result = r.compute(env, target.revision).plan
        emit(render_plan(fmt.value, result, target.ref, policy=destructive_policy(r, env)))
        if not target.gate.allowed and fmt == Format.text:
            err.print(f"[yellow]note:[/yellow] apply would be blocked: {esc(target.gate.reason)}", markup=True)
        return 2 if result.items else 0

    with_reconciler(config, source, run, workspace)


@app.command()
def apply(
    env: Annotated[str, typer.Argument(help="Environment.")],
    rev: Annotated[str | None, typer.Option("--rev", help="Revision to apply (default: what ENV tracks).")] = None,
    approve: Annotated[
        list[str] | None,
        typer.Option("--approve", help="Approve a destructive drift id (repeatable; * suffix for a prefix)."),
    ] = None,
    break_glass: Annotated[
        str | None,
        typer.Option("--break-glass", metavar="REASON",
                      help="Emergency: apply even inside a deny window (only that gate yields). The reason and "
                           "who ran it are recorded with the run and notified."),
    ] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Reconcile once, with the same gates as the daemon. Exit 0 applied/nothing to do, 1 failed, 3 blocked."""
    from reconciler.core.gates import BreakGlass
    from reconciler.core.revisions import short
    from reconciler.reports.drift import render_plan

    glass = None
    if break_glass is not None:
        if not break_glass.strip():
            fail("--break-glass needs a reason, e.g. --break-glass \"INC-1234: payments down, hotfix\"; it is "
                 "recorded with the run and notified")
        glass = BreakGlass(f"cli:{_operator()}", break_glass.strip())

    def run(r: Any) -> int:
        outcome = r.reconcile(env, rev, trigger="break-glass" if glass else "cli", approvals=approve or [],
                              break_glass=glass)
        if outcome.break_glass is not None:
            _notify_break_glass(r, outcome)
        for warning in outcome.warnings:
            err.print(f"[yellow]warning:[/yellow] {esc(warning)}")
        if fmt == Format.json:
            emit(json.dumps({
                "environment": env, "result": outcome.result, "revision": outcome.revision, "ref": outcome.ref,
                "run_id": outcome.run_id, "reason": outcome.reason, "gate": outcome.gate,
                "applied": list(outcome.applied),
                "items": [i.as_json() for i in outcome.plan.items] if outcome.plan else [],
                "break_glass": {"who": outcome.break_glass.who, "reason": outcome.break_glass.reason}
                if outcome.break_glass is not None else None,
            }, indent=2, sort_keys=True))
            return int(outcome.exit_code)
        if outcome.plan is not None and outcome.plan.items:
            emit(render_plan("markdown" if fmt == Format.markdown else "text", outcome.plan, outcome.ref,
                             policy=destructive_policy(r, env)))
        where = f"{short(outcome.revision)}" + (f" ({outcome.ref})" if outcome.ref else "")
        if outcome.result == "Succeeded":
            count = len(outcome.applied)
            plural = "s" if count != 1 else ""
            out.print(f"[green]Succeeded:[/green] {esc(env)} is at {esc(where)}; {count} change{plural} "
                      f"applied and verified (run {outcome.run_id[:8]})")
        elif outcome.result == "NoChanges":
            out.print(f"[green]No changes:[/green] {esc(env)} already matches {esc(where)}")
        elif outcome.result == "Blocked":
            reason = esc(outcome.reason).replace("\n", "\n  ")
            err.print(f"[bold red]Blocked:[/bold red] {esc(env)} stays where it is. {reason}")
        elif outcome.result == "Busy":
            err.print(f"[yellow]Busy:[/yellow] {esc(outcome.reason or '')}")
        else:
            err.print(f"[bold red]Failed:[/bold red] {esc(env)} at {esc(where)}: {esc(outcome.reason)}"
                      + (f" ({len(outcome.applied)} changes were applied; see 'reconciler history {env}')"
                         if outcome.applied else ""))
        return int(outcome.exit_code)

    with_reconciler(config, source, run, workspace)


@app.command()
def drift(
    envs: Annotated[list[str] | None, typer.Argument(help="Environments (default: all).")] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Report drift of live state against each environment's current revision. Exit 0 none, 2 drift."""
    from reconciler.reports.drift import plan_json, render_plan

    def run(r: Any) -> int:
        names = envs or r.environments()
        found = False
        reports = []
        for name in names:
            _revision, ref = r.current_revision(name)
            result, first_seen = r.drift(name)
            found = found or bool(result.pending)  # what the instance owner applies is not this one's drift
            if fmt == Format.json:
                reports.append(plan_json(result, ref, first_seen, kind="drift"))
            else:
                emit(render_plan(fmt.value, result, ref, first_seen, kind="drift", policy=destructive_policy(r, name)))
        if fmt == Format.json:
            emit(json.dumps(reports[0] if envs and len(envs) == 1 else {"environments": reports},
                            indent=2, sort_keys=True))
        return 2 if found else 0

    with_reconciler(config, source, run, workspace)


@app.command()
def status(fmt: FormatOpt = Format.text, config: ConfigOpt = None, source: SourceOpt = None,
           workspace: WorkspaceOpt = None) -> None:
    """Per environment: tracked ref, desired and applied revision, state, drift count, last run.

    Exit 0 whenever the state database can be read (a full or read-only one included); 1 with one
    line naming the database and the cause when it cannot be opened or read."""
    from reconciler.reports.status import render_status

    def run(r: Any) -> int:
        emit(render_status(fmt.value, r.queries.status_rows()))
        return 0

    with_reconciler(config, source, run, workspace)


@app.command()
def releases(
    limit: Annotated[int, typer.Option(help="How many release tags (newest first); branch heads come after.",
                                       min=1, max=100)] = 10,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """The promotion view: release tags and branch heads by environment, and what blocks each next promotion."""
    from reconciler.reports.releases import render_releases

    def run(r: Any) -> int:
        emit(render_releases(fmt.value, r.queries.releases(limit)))
        return 0

    with_reconciler(config, source, run, workspace)


@app.command()
def history(
    env: Annotated[str, typer.Argument(help="Environment.")],
    limit: Annotated[int, typer.Option(help="Number of runs.")] = 20,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Past runs of ENV with trigger, revision and result."""
    from reconciler.reports.status import render_history

    def run(r: Any) -> int:
        r.spec(env)
        emit(render_history(fmt.value, env, r.queries.runs(env, limit)))
        return 0

    with_reconciler(config, source, run, workspace)


CHECK_FAILED = 4


@app.command()
def check(
    env: Annotated[str, typer.Argument(help="Environment.")],
    names: Annotated[
        list[str] | None, typer.Option("--check", help="Run only this check (repeatable; default: all of ENV's).")
    ] = None,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Run ENV's declared checks against what it runs now. Exit 0 all passed, 4 one failed, 1 error."""
    from reconciler.checks.runner import check_environment
    from reconciler.reports.checks import render_checks

    def run(r: Any) -> int:
        report = check_environment(r, env, r.resolve_secret, names)
        emit(render_checks(fmt.value, report))
        return 0 if report.passed else CHECK_FAILED

    with_reconciler(config, source, run, workspace)


@app.command()
def pin(
    env: Annotated[str, typer.Argument(help="Environment.")],
    rev: Annotated[str, typer.Argument(help="Revision (tag, branch or commit) to hold ENV at.")],
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Hold ENV at REV (rollback); newer revisions are reported, not applied, until unpin."""

    def run(r: Any) -> int:
        commit = r.pin(env, rev)
        out.print(f"{env} pinned at {commit[:12]} ({rev}); run 'reconciler apply {env}' to move it there now",
                  markup=False)
        return 0

    with_reconciler(config, source, run, workspace)


@app.command()
def unpin(env: Annotated[str, typer.Argument(help="Environment.")], config: ConfigOpt = None,
          source: SourceOpt = None, workspace: WorkspaceOpt = None) -> None:
    """Release a pin: ENV follows its tracked ref again."""

    def run(r: Any) -> int:
        r.spec(env)  # an unknown environment is an error, pinned or not
        if r.status(env).pinned_revision is None:
            out.print(f"{env} was not pinned; nothing changed (it follows its tracked ref)", markup=False)
            return 0
        r.unpin(env)
        out.print(f"{env} unpinned; it follows its tracked ref again", markup=False)
        return 0

    with_reconciler(config, source, run, workspace)


@app.command()
def diff(
    base: Annotated[str, typer.Option("--base", help="Base revision (e.g. origin/main).")],
    head: Annotated[str, typer.Option("--head", help="Head revision (e.g. HEAD).")],
    env: Annotated[str | None, typer.Argument(help="Only this environment.")] = None,
    fmt: FormatOpt = Format.text,
    shadow_url: Annotated[str | None, typer.Option(
        "--shadow-url", help="PostgreSQL server for the scratch databases that turn changed SQL files into "
        "statements and their risk (default: databases.shadow_url, else an embedded one started for the diff).",
        envvar="RECONCILER_SHADOW_URL")] = None,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Declared-state difference between two revisions, per environment (PR comments). Exit 0 none, 2 some."""
    from reconciler.app.diff import run_diff
    from reconciler.reports.diff import render_diff

    with errors_as_exit():
        settings = settings_for(config, source, workspace)
        found = run_diff(settings, base, head, env, shadow_url,
                         warn=lambda message: err.print(f"[yellow]warning:[/yellow] {esc(message)}"))
    emit(render_diff(fmt.value, found.environments, base, found.base_id, head, found.head_id))
    raise typer.Exit(2 if found.count else 0)


@app.command()
def run(
    config: ConfigOpt = None,
    source: SourceOpt = None,
    listen: Annotated[str | None, typer.Option(help="API address (overrides api.listen).")] = None,
) -> None:
    """Run the daemon: watch the repository, reconcile, check drift, serve the API."""
    from reconciler.config import load_settings
    from reconciler.daemon.main import run_daemon

    with errors_as_exit():
        settings = load_settings(config, source={"url": source} if source else {},
                                 api={"listen": listen} if listen else {})
        logs.configure(settings.log.level, settings.log.format)
        code = run_daemon(settings)
    raise typer.Exit(code)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the temporary directory (printed at the end).")] = False,
    config: ConfigOpt = None,
) -> None:
    """The whole flow on embedded defaults: Git repo, PostgreSQL, registry, SQLite state store."""
    from reconciler.demo import run_demo

    logs.configure(os.environ.get("RECONCILER_LOG_LEVEL", "error"))
    from rich.console import Console

    with errors_as_exit():
        clock.configure()
        code = run_demo(Console(highlight=False, soft_wrap=True), keep=keep)
    raise typer.Exit(code)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="New desired-state folder.")] = Path("desired-state"),
    config: ConfigOpt = None,
) -> None:
    """Scaffold a commented desired-state folder that validates, and a reconciler.toml beside it."""
    import shlex

    from reconciler.desired.loader import load
    from reconciler.scaffold import scaffold, write_config
    from reconciler.source.trees import DirectoryTree

    # The folder's parent is taken for the repository root: the configuration goes there, naming the
    # folder as source.path, and the commands below run there.
    root = directory.resolve().parent
    toml = root / "reconciler.toml"
    with errors_as_exit():
        written = scaffold(directory)
        state = load(DirectoryTree(directory))
        wrote_config = write_config(toml, directory.resolve().name)
    first = state.environment_order[0]
    shown = Path(os.path.relpath(toml)) if toml.is_relative_to(Path.cwd().resolve()) else toml
    out.print(f"wrote {len(written)} files to {esc(directory)} ({state.document_count()} documents, environments "
              f"{' → '.join(state.environment_order)})", highlight=False)
    if wrote_config:
        out.print(f"wrote {esc(shown)}: the daemon's configuration (registry platform, secrets from the "
                  "environment)", highlight=False)
    else:
        out.print(f"kept the existing {esc(shown)}; check that source.path names {esc(directory.resolve().name)}",
                  highlight=False)
    in_git = any((folder / ".git").exists() for folder in (root, *root.parents))
    folder = shlex.quote(directory.resolve().name)
    commit = (f"git add {folder} reconciler.toml && git commit -m 'Desired state'" if in_git else
              "git init -b main && git add -A && git commit -m 'Desired state'")
    steps = [
        (f"reconciler secrets {first}", f"every secret and database URL {first} needs, and which are missing"),
        (commit, "plans read committed revisions, not the working tree"),
        (f"reconciler plan {first}", f"what applying {first} would change"),
    ]
    moved = root != Path.cwd().resolve()
    out.print("Next, " + (f"in {esc(root)}:" if moved else "here:"), highlight=False)
    for number, (command, why) in enumerate(steps, 1):
        out.print(f"  # {number}. {why}\n  {command}", markup=False)


@app.command()
def explain(
    what: Annotated[str, typer.Argument(help="A drift id, a risk, a gate code, a state or a run result.")],
    config: ConfigOpt = None,
) -> None:
    """Explain a drift item, a risk rule, a gate, an environment state or a run result in plain words."""
    from reconciler.explain import GATES, RESULTS, RISKS, STATES
    from reconciler.explain import explain as explain_text

    text = explain_text(what)
    if text is None:
        names = sorted({*STATES, *RESULTS})
        fail(f"nothing known about {what!r}; try a drift id from a report, a risk ({', '.join(RISKS)}), "
             f"a gate ({', '.join(sorted(GATES))}) or a state or run result ({', '.join(names)})")
    out.print(text, markup=False)


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Argument(help="Where to write the *.schema.json files.")],
    config: ConfigOpt = None,
) -> None:
    """Write the JSON Schemas of the document kinds."""
    from reconciler.desired.schemas import export

    with errors_as_exit():
        written = export(directory)
    out.print(f"wrote {len(written)} schemas to {esc(directory)}")


@app.command("import")
def import_(
    envs: Annotated[list[str], typer.Option(
        "--env", help="Environment to read (repeatable), in promotion order, lowest first.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the desired state into.")],
    database: Annotated[list[str] | None, typer.Option(
        "--database", help="Managed database to dump (repeatable): NAME or NAME:schema,schema (default schema "
        "public). Its URL comes from the secret NAME_DATABASE_URL_ENV.")] = None,
    branch: Annotated[str, typer.Option(help="Branch the environments will track.")] = "main",
    force: Annotated[bool, typer.Option(help="Overwrite files that already exist in --out.")] = False,
    fmt: FormatOpt = Format.text,
    config: ConfigOpt = None,
) -> None:
    """Write the desired state of what already runs: the platform's objects and each database's schema.

    Every secret value becomes a ${secret:NAME} reference; the names to provide are listed, never
    the values. Exit 0 written and valid, 1 error (nothing written) or written but invalid."""
    from reconciler.adopt.importer import parse_database, run_import

    if fmt == Format.markdown:
        fail("import reports as text or json (--format text|json)")
    with errors_as_exit():
        settings = settings_for(config)
        requests = [parse_database(spec) for spec in database or []]
        result = run_import(settings, envs, out_dir, requests, force=force, branch=branch)
    if fmt == Format.json:
        emit(json.dumps({
            "out": str(result.out), "written": result.written, "documents": result.documents,
            "secrets": [{"name": s.name, "used_in": s.used_in, "provided": s.provided} for s in result.secrets],
            "notes": result.notes, "valid": not result.problems,
            "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in result.problems],
        }, indent=2))
        raise typer.Exit(1 if result.problems else 0)
    out.print(f"[green]wrote[/green] {len(result.written)} files to {esc(out_dir)}: {result.documents} documents, "
              f"environments {esc(' → '.join(envs))}")
    if result.secrets:
        missing = sum(1 for s in result.secrets if not s.provided)
        out.print(f"\nSecrets the documents reference ({len(result.secrets)}, {missing} not set yet; names only):")
        width = max(len(s.name) for s in result.secrets)
        for secret in result.secrets:
            state = "set    " if secret.provided else "missing"
            out.print(f"  {secret.name:<{width}}  {state}  {', '.join(secret.used_in)}", markup=False)
    if result.notes:
        out.print(f"\nNot imported as it runs ({len(result.notes)}); the first plan will show these:")
        for note in result.notes:
            out.print(f"  - {note}", markup=False)
    if result.problems:
        err.print(f"\n[bold red]invalid:[/bold red] the written folder has {len(result.problems)} problem"
                  f"{'s' if len(result.problems) != 1 else ''}; fix them before committing")
        for problem in result.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(1)
    expected = "the changes noted above" if result.notes else "no changes"
    out.print(f"\nNext: provide the missing secrets, commit {esc(out_dir)} to the repository the reconciler "
              f"reads, then 'reconciler plan {esc(envs[0])}' ({expected} expected).")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
