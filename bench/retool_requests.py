"""Benchmark: Retool API requests of a no-op run (issue 15) — counts, not times.

A generated desired state with 50 resources, 20 groups, 10 apps, 10 configuration variables and 5
folders (staging and production, one Retool instance hosting both, apps through Source Control) is
reconciled into the fake Retool of ``tests/retool/fake`` (validated request by request against
Retool's OpenAPI document). Once both environments are synced, the requests of a further run that
has nothing to do are counted — ``Reconciler.reconcile`` (read, plan, nothing applied), for each
environment — first on an instance holding only what Reconciler manages, then after someone has
made ``--unmanaged`` objects by hand of each kind (groups with grants on their apps, resources
configured in both environments, apps protected in Source Control, folders, variables).

Goal (issue 15): no read proportional to unmanaged objects. A list is read once per collection and
followed page by page (Retool pages hold up to 100 items), so the only growth allowed is one page
per 100 objects of a collection; grants are read only for declared or owned groups, never per
object. Run with::

    .venv/bin/python bench/retool_requests.py [--unmanaged 200] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from benchkit import ROOT, argument_parser, code_version, machine, quiet_logs, write_section

from reconciler.app.wiring import build_reconciler
from reconciler.config import load_settings
from reconciler.source import workspace
from tests.daemon_support import to_toml
from tests.retool.fake import FakeRetool, FakeSourceControl

RESOURCES, GROUPS, APPS, VARIABLES, FOLDERS = 50, 20, 10, 10, 5
HEADING = "## Retool: requests of a no-op run"


def desired_state(root: Path) -> None:
    """The generated desired state: every app uses resources, variables and groups; prune is on."""
    root.mkdir(parents=True)
    (root / "reconciler.yaml").write_text("version: 1\nenvironments: [staging, production]\n")
    (root / "environments.yaml").write_text(
        "kind: Environment\nname: staging\ntrack: {branch: main}\nsync: {prune: true}\n"
        "access: {use: [group-00], edit: [group-01]}\n---\n"
        "kind: Environment\nname: production\n"
        "track: {tag: 'v*', from_branch: main, promoted_from: staging}\nsync: {prune: true}\n"
        "access: {use: [group-00], edit: [group-01]}\n")
    docs = []
    for i in range(RESOURCES):
        folder = f"folder-{i % FOLDERS}"
        if i % 2:
            docs.append(f"kind: Resource\nname: api-{i:02}\ntype: restapi\nfolder: {folder}\n"
                        "environments:\n"
                        f"  staging: {{options: {{base_url: 'https://api-{i}.staging.example.com'}}}}\n"
                        f"  production: {{options: {{base_url: 'https://api-{i}.example.com'}}}}\n")
        else:
            docs.append(f"kind: Resource\nname: db-{i:02}\ntype: postgresql\nfolder: {folder}\n"
                        "options: {port: 5432, database: app, username: retool}\nenvironments:\n"
                        f"  staging: {{options: {{host: db-{i}.staging.internal, "
                        "password: '${secret:BENCH_STAGING_PASSWORD}'}}\n"
                        f"  production: {{options: {{host: db-{i}.internal, "
                        "password: '${secret:BENCH_PRODUCTION_PASSWORD}'}}\n")
    (root / "resources.yaml").write_text("---\n".join(docs))
    (root / "variables.yaml").write_text("---\n".join(
        f"kind: ConfigVariable\nname: VAR_{i:02}\ndescription: Variable {i}\n"
        f"values: {{default: 'staging-{i}', production: 'production-{i}'}}\n" for i in range(VARIABLES)))
    (root / "groups.yaml").write_text("---\n".join(
        f"kind: Group\nname: group-{i:02}\ndescription: Group {i}\n" for i in range(GROUPS)))
    apps = []
    for i in range(APPS):
        source = root / "apps" / f"app-{i:02}"
        source.mkdir(parents=True)
        (source / "app.json").write_text(f'{{"name": "app-{i:02}"}}\n')
        apps.append(f"kind: App\nname: app-{i:02}\nfolder: folder-{i % FOLDERS}\nsource: apps/app-{i:02}\n"
                    f"resources: [api-{2 * i + 1:02}, db-{2 * i:02}]\nconfig: [VAR_{i:02}]\n"
                    f"access: {{use: [group-{(2 * i) % GROUPS:02}], edit: [group-{(2 * i + 1) % GROUPS:02}]}}\n")
    (root / "apps.yaml").write_text("---\n".join(apps))


def make_by_hand(fake: FakeRetool, count: int) -> None:
    """``count`` objects of each kind made in Retool by hand (through its API, as a person's clicks would)."""
    headers = {"Authorization": f"Bearer {fake.token}"}
    api = f"{fake.url}/api/v2"
    envs = [fake.env_id("staging"), fake.env_id("production")]
    with httpx.Client(headers=headers, timeout=60) as client:
        def post(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = client.post(api + path, json=body)
            answer.raise_for_status()
            data: dict[str, object] = answer.json()["data"] if "data" in answer.json() else answer.json()
            return data

        apps = [fake.add_app(f"hand-app-{i:03}") for i in range(count)]
        for i in range(count):
            group = post("/groups", {"name": f"hand-group-{i:03}"})
            post("/permissions/grant", {"subject": {"type": "group", "id": group["id"]},
                                        "object": {"type": "app", "id": apps[i]}, "access_level": "use"})
            post("/folders", {"name": f"hand-folder-{i:03}", "folder_type": "app"})
            resource = post("/resources", {"type": "restapi", "display_name": f"hand-api-{i:03}",
                                           "options": {"base_url": f"https://hand-{i}.example.com"}})
            post("/resource_configurations", {"resource_id": resource["id"], "environment_id": envs[0],
                                              "options": {"base_url": f"https://hand-{i}.staging.example.com"}})
            post("/configuration_variables", {"name": f"HAND_{i:03}", "secret": False, "values": [
                {"environment_id": env, "value": str(i)} for env in envs]})


def count_noop(fake: FakeRetool, reconcile: object, env: str) -> Counter[str]:
    fake.clear_calls()
    outcome = reconcile(env)  # type: ignore[operator]
    if outcome.result != "NoChanges" or fake.writes():
        raise SystemExit(f"{env}: expected a no-op run, got {outcome.result} ({outcome.reason}); "
                         f"writes: {[(c.method, c.path) for c in fake.writes()]}")
    return Counter(f"{c.method} {c.template or c.path}" for c in fake.calls)


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--unmanaged", type=int, default=200, help="hand-made objects of each kind")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a Markdown file")
    args = parser.parse_args()
    quiet_logs()
    base = Path(tempfile.mkdtemp(prefix="bench-retool-"))
    fake = FakeRetool()
    fake.start()
    try:
        source_control = FakeSourceControl(base / "retool-source.git")
        fake.reset(source_control=source_control, manifest_name="production")
        for i in range(APPS):
            fake.add_app(f"app-{i:02}")
        repo = base / "repo"
        desired_state(repo / "desired-state")
        workspace.init(repo)
        workspace.commit_all(repo, "Generated desired state")
        os.environ.update(BENCH_STAGING_PASSWORD="bench-staging", BENCH_PRODUCTION_PASSWORD="bench-production",
                          RETOOL_TOKEN=fake.token)
        config = base / "reconciler.toml"
        config.write_text(to_toml({
            "data_dir": str(base / "data"), "source": {"url": str(repo)}, "secrets": {"backends": ["env"]},
            "platform": {"provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}",
                         "manifest": "production", "source_control": {"url": source_control.url},
                         "requests_per_minute": 60_000, "deploy_poll_interval": "10ms"},
        }))
        r = build_reconciler(load_settings(config))
        try:
            for env in ("staging", "production"):
                if env == "production":
                    workspace.tag(repo, "v1.0.0", "Release 1.0.0")
                outcome = r.reconcile(env)
                if outcome.result != "Succeeded":
                    raise SystemExit(f"{env}: the first run ended {outcome.result}: {outcome.reason}")
            managed = {env: count_noop(fake, r.reconcile, env) for env in ("staging", "production")}
            make_by_hand(fake, args.unmanaged)
            crowded = {env: count_noop(fake, r.reconcile, env) for env in ("staging", "production")}
        finally:
            r.close()
        fake.assert_clean()
    finally:
        fake.stop()
        shutil.rmtree(base, ignore_errors=True)

    rows = sorted(set().union(*managed.values(), *crowded.values()))
    lines = [
        HEADING, "",
        f"Issue 15's goal: a run with nothing to do makes no read proportional to objects Reconciler does not "
        f"manage. A generated desired state of {RESOURCES} resources, {GROUPS} groups, {APPS} apps, {VARIABLES} "
        f"configuration variables and {FOLDERS} folders, staging and production on one Retool instance (the "
        "fake in `tests/retool/fake`, pages of 100), both synced; then the requests of one more run of each "
        f"environment (`NoChanges`, zero writes), before and after {args.unmanaged} hand-made objects of each "
        "kind (groups each granted an app, resources configured in both environments, apps protected in "
        "Source Control, folders, variables). Counts, not times: machine-independent. "
        f"Measured on {machine()}; code: {code_version()}.", "",
        "| request | staging | staging, + unmanaged | production | production, + unmanaged |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| `{row}` | {managed['staging'][row]} | {crowded['staging'][row]} | "
                     f"{managed['production'][row]} | {crowded['production'][row]} |")
    totals = [sum(c.values()) for c in (managed["staging"], crowded["staging"], managed["production"],
                                        crowded["production"])]
    lines.append(f"| **total** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} |")
    grown = {row: crowded[env][row] - managed[env][row] for env in managed for row in rows
             if crowded[env][row] != managed[env][row]}
    # A hand-made resource has two configurations (the default environment's and staging's): the
    # largest collection grows by 2 x unmanaged objects, so by at most that many pages of 100.
    pages = math.ceil(2 * args.unmanaged / 100)
    met = all(row.startswith("GET ") and "{" not in row and extra <= pages for row, extra in grown.items())
    lines += ["", "Requests that grew with the hand-made objects (each a list read once per run, now longer by "
              f"some pages of 100; at most {pages} allowed): "
              f"{', '.join(f'`{k}` +{v}' for k, v in sorted(grown.items())) or 'none'}. Goal: "
              + ("met." if met else "**missed**."),
              "", f"Most requests are grant reads: {GROUPS} declared groups x 3 object types (app, folder, "
              "resource configuration), one `listObjects` each, whatever the instance holds. At the default "
              f"`requests_per_minute = 45` a no-op run of this instance spends about {totals[0] * 60 / 45:.0f} s "
              "waiting on the limiter; self-hosted Retool allows 300 a minute "
              f"(about {totals[0] * 60 / 300:.0f} s).",
              "", "Reproduce with:", "", "```",
              f".venv/bin/python bench/retool_requests.py --unmanaged {args.unmanaged} --write docs/benchmarks.md",
              "```", ""]
    text = "\n".join(lines)
    sys.stdout.write(text)
    if args.write:
        write_section(args.write if args.write.is_absolute() else ROOT / args.write, HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
