"""Workspaces (issue 13): many teams on one daemon, none able to reach or disturb another.

One real ``reconciler run`` on loopback serves five workspaces, each with its own Git repository
and registry: ``team-a`` and ``team-b`` are healthy, ``broken-yaml`` declares invalid YAML,
``failing`` has runs that fail (a secret that is not set), ``unreachable`` names a repository that
does not exist. Tokens: one per team workspace, and a top-level operator token that sees all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.source import workspace as gitwork
from tests.conftest import cli
from tests.daemon_support import DaemonProcess, start_daemon, wait_for

TOKENS = {"ops": "ops-token-0123456789", "team-a": "a-token-0123456789", "team-b": "b-token-0123456789"}
HOOK_SECRETS = {"team-a": "hook-secret-a", "team-b": "hook-secret-b"}
ENVIRONMENT = """kind: Environment
name: staging
track: {branch: main}
sync: {automatic: true, prune: true, drift_check_interval: 1h}
access: {edit: [admins], use: [admins]}
"""


def _hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def _write_repo(path: Path, groups: list[str], extra: dict[str, str] | None = None) -> str:
    folder = path / "desired-state"
    (folder / "environments").mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text("version: 1\nenvironments: [staging]\n")
    (folder / "environments" / "staging.yaml").write_text(ENVIRONMENT)
    (folder / "groups.yaml").write_text("\n---\n".join(f"kind: Group\nname: {g}" for g in groups) + "\n")
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    if not (path / ".git").exists():
        gitwork.init(path)
    return gitwork.commit_all(path, "desired state")


@dataclass
class Site:
    base: Path
    config: Path
    daemon: DaemonProcess

    def client(self, token: str | None = "ops") -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[token]}"} if token else {}
        return httpx.Client(base_url=self.daemon.url, headers=headers, timeout=30)

    def get(self, path: str, token: str = "ops") -> Any:
        with self.client(token) as c:
            response = c.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def env(self, ws: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/workspaces/{ws}/environments/staging")
        return result

    def wait_synced(self, ws: str, revision: str | None = None) -> dict[str, Any]:
        def synced() -> dict[str, Any] | None:
            env = self.env(ws)
            ok = env["state"] == "Synced" and (revision is None or env["applied_revision"] == revision)
            return env if ok else None

        return wait_for(synced, message=f"{ws}/staging to be Synced at {revision}")

    def metric(self, name: str) -> float:
        with self.client(None) as c:
            text = c.get("/metrics").text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def runs(self, ws: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/api/v1/workspaces/{ws}/environments/staging/runs")["runs"]
        return result


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("workspaces")
    _write_repo(base / "team-a", ["admins"])
    _write_repo(base / "team-b", ["admins"])
    _write_repo(base / "broken-yaml", ["admins"], {"bad.yaml": "kind: Group\nname: [unclosed\n"})
    _write_repo(base / "failing", ["admins"], {"config.yaml": (
        "kind: ConfigVariable\nname: TOKEN\nsecret: true\nvalues:\n  default: \"${secret:WS_TEST_NOT_SET}\"\n")})
    lines = [f'data_dir = "{base / "data"}"', "", "[state]", f'url = "sqlite:///{base / "state.db"}"', "",
             "[[api.tokens]]", 'name = "ops"', f'hash = "{_hash(TOKENS["ops"])}"', 'scopes = ["admin"]']
    for name in ("team-a", "team-b", "broken-yaml", "failing", "unreachable"):
        lines += ["", "[[workspaces]]", f'name = "{name}"', "[workspaces.source]",
                  f'url = "{base / name}"', 'poll_interval = "1h"']
        if name in HOOK_SECRETS:
            lines.append(f'webhook_secret = "{HOOK_SECRETS[name]}"')
            lines += ["[[workspaces.tokens]]", f'name = "{name}-admin"', f'hash = "{_hash(TOKENS[name])}"',
                      'scopes = ["admin"]']
    config = base / "reconciler.toml"
    config.write_text("\n".join(lines) + "\n")
    daemon = start_daemon(config, base / "data", env={"RECONCILER_LOG__FORMAT": "json"})
    found = Site(base, config, daemon)
    try:
        yield found
    finally:
        daemon.terminate()


def test_a_commit_in_one_workspace_never_fetches_or_runs_another(site: Site) -> None:
    site.wait_synced("team-a")
    site.wait_synced("team-b")
    b_runs = len(site.runs("team-b"))
    b_fetches = site.metric('reconciler_fetches_total{result="ok",workspace="team-b"}')
    a_fetches = site.metric('reconciler_fetches_total{result="ok",workspace="team-a"}')
    head = _write_repo(site.base / "team-a", ["admins", "analysts"])
    site.wait_synced("team-a", head)
    assert site.metric('reconciler_fetches_total{result="ok",workspace="team-a"}') > a_fetches
    assert len(site.runs("team-b")) == b_runs
    assert site.metric('reconciler_fetches_total{result="ok",workspace="team-b"}') == b_fetches


def test_a_webhook_for_one_workspace_fetches_that_workspace_only(site: Site) -> None:
    site.wait_synced("team-b")
    a_fetches = site.metric('reconciler_fetches_total{result="ok",workspace="team-a"}')
    b_fetches = site.metric('reconciler_fetches_total{result="ok",workspace="team-b"}')
    body = json.dumps({"ref": "refs/heads/main"}).encode()

    def signed(secret: str) -> dict[str, str]:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}

    with site.client(None) as c:
        # B's hook does not take A's secret.
        assert c.post("/hooks/team-b/github", content=body, headers=signed(HOOK_SECRETS["team-a"])).status_code == 401
        assert c.post("/hooks/team-b/github", content=body, headers=signed(HOOK_SECRETS["team-b"])).status_code == 202
    wait_for(lambda: site.metric('reconciler_fetches_total{result="ok",workspace="team-b"}') > b_fetches,
             message="team-b to fetch")
    assert site.metric('reconciler_fetches_total{result="ok",workspace="team-a"}') == a_fetches
    assert site.metric('reconciler_webhooks_total{outcome="rejected",source="github",workspace="team-b"}') == 1


def test_broken_workspaces_leave_the_others_synced_and_running(site: Site) -> None:
    with site.client() as c:
        broken = c.get("/api/v1/workspaces/broken-yaml/environments/staging")
    assert broken.status_code == 409 and "bad.yaml:3: invalid YAML" in broken.json()["error"]
    failing = wait_for(lambda: (lambda e: e if e["state"] == "Failed" else None)(site.env("failing")),
                       message="failing to fail")
    assert "WS_TEST_NOT_SET" in failing["reason"]
    with site.client() as c:
        response = c.get("/api/v1/workspaces/unreachable/environments")
    assert response.status_code == 503, response.text
    assert "not running" in response.json()["error"]
    # Meanwhile team-b takes a new commit as promptly as ever.
    site.wait_synced("team-b", _write_repo(site.base / "team-b", ["admins", "support"]))
    assert site.get("/readyz")["ready"] is True


def test_a_token_of_one_workspace_is_refused_everything_of_another(site: Site) -> None:
    site.wait_synced("team-b")
    refused = [
        ("GET", "/api/v1/workspaces/team-b/environments"),
        ("GET", "/api/v1/workspaces/team-b/environments/staging"),
        ("GET", "/api/v1/workspaces/team-b/environments/staging/drift"),
        ("GET", "/api/v1/workspaces/team-b/environments/staging/runs"),
        ("POST", "/api/v1/workspaces/team-b/environments/staging/sync"),
        ("POST", "/api/v1/workspaces/team-b/environments/staging/unpin"),
        ("POST", "/api/v1/workspaces/team-b/environments/staging/break-glass"),
        ("GET", "/api/v1/workspaces/team-b/releases"),
        ("GET", "/workspaces/team-b/promotion"),
        ("GET", "/api/v1/workspaces/team-b/registry/staging/apps/any"),
        ("POST", "/hooks/team-b/generic"),
        ("GET", "/workspaces/team-b/"),
        ("GET", "/workspaces/team-b/environments/staging"),
        ("GET", "/api/v1/workspaces/no-such-workspace/environments"),  # existing or not: 403
    ]
    with site.client("team-a") as c:
        answers = {(method, path): c.request(method, path).status_code for method, path in refused}
        assert answers == {key: 403 for key in refused}
        # Paths without a workspace are the token's own workspace's.
        own = c.get("/api/v1/environments").json()
        assert own["workspace"] == "team-a"
        assert c.get("/api/v1/workspaces").json()["workspaces"][0]["name"] == "team-a"
        assert [w["name"] for w in c.get("/api/v1/workspaces").json()["workspaces"]] == ["team-a"]
        home = c.get("/")
        assert home.status_code == 200 and 'data-api="/api/v1"' in home.text
        view = c.get("/api/v1/workspaces/team-a/releases").json()
        assert (view["workspace"], view["environments"]) == ("team-a", ["staging"])
        assert [r["commit"] for r in view["rows"]] == [site.env("team-a")["applied_revision"]]
        promotion = c.get("/workspaces/team-a/promotion")
        assert promotion.status_code == 200 and 'data-api="/api/v1/workspaces/team-a"' in promotion.text
    with site.client("ops") as c:
        names = [w["name"] for w in c.get("/api/v1/workspaces").json()["workspaces"]]
        assert names == ["team-a", "team-b", "broken-yaml", "failing"]  # unreachable is not running
        home = c.get("/").text
        assert 'href="/workspaces/team-a/"' in home and 'href="/workspaces/team-b/"' in home
        assert c.get("/api/v1/environments").status_code == 404  # several workspaces, none named default
        assert c.get("/api/v1/workspaces/team-b/environments/staging").status_code == 200


def test_break_glass_runs_in_its_own_workspace_only(site: Site) -> None:
    site.wait_synced("team-a")
    site.wait_synced("team-b")
    b_runs = len(site.runs("team-b"))
    # A deny window open at the daemon's clock (Wednesday 10:00 UTC) holds team-a's next revision.
    spec = site.base / "team-a" / "desired-state" / "environments" / "staging.yaml"
    spec.write_text(ENVIRONMENT.replace("drift_check_interval: 1h}", "drift_check_interval: 1h, "
                                        'windows: [{deny: "0 9 * * WED", duration: 3h, timezone: UTC}]}'))
    groups = site.base / "team-a" / "desired-state" / "groups.yaml"
    groups.write_text(groups.read_text() + "---\nkind: Group\nname: on-call\n")  # a change the window holds
    head = gitwork.commit_all(site.base / "team-a", "a deny window, and a change it holds")
    wait_for(lambda: site.env("team-a")["state"] == "Blocked" or None, message="team-a to be held by its window")
    with site.client("team-a") as c:
        response = c.post("/api/v1/workspaces/team-a/environments/staging/break-glass",
                          json={"reason": "INC-9: team-a hotfix"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["workspace"], answer["break_glass"]["who"]) == ("team-a", "token:team-a-admin")
    run = next(r for r in site.runs("team-a") if r["id"] == answer["run_id"])
    assert (run["workspace"], run["trigger"], run["revision"], run["break_glass"]["reason"]) == (
        "team-a", "break-glass", head, "INC-9: team-a hotfix")
    assert len(site.runs("team-b")) == b_runs
    assert all(r["break_glass"] is None for r in site.runs("team-b"))


def test_metrics_logs_and_run_records_carry_the_workspace(site: Site) -> None:
    site.wait_synced("team-a")
    assert site.metric('reconciler_runs_total{environment="staging",result="Succeeded",workspace="team-a"}') >= 1
    assert all(run["workspace"] == "team-a" for run in site.runs("team-a"))
    lines = [json.loads(line) for line in site.daemon.logs().splitlines() if line.startswith("{")]
    runs = [line for line in lines if line.get("environment") == "staging" and "trigger" in line]
    assert runs and all("workspace" in line for line in runs)
    assert {line["workspace"] for line in runs} >= {"team-a", "team-b"}


def test_cli_commands_take_the_workspace(site: Site) -> None:
    several = cli(None, "status", "--config", str(site.config))
    assert several.exit_code == 1
    assert "several workspaces are configured (team-a, team-b, broken-yaml, failing, unreachable); choose one " \
           "with --workspace NAME" in several.stderr
    unknown = cli(None, "status", "--config", str(site.config), "--workspace", "team-z")
    assert unknown.exit_code == 1 and "there is no workspace named 'team-z'" in unknown.stderr
    site.wait_synced("team-a")
    status = cli(None, "status", "--config", str(site.config), "--workspace", "team-a", "--format", "json")
    assert status.exit_code == 0, status.stderr
    [env] = json.loads(status.stdout)["environments"]
    assert env["state"] == "Synced" and env["applied_revision"] == site.env("team-a")["applied_revision"]
    releases = cli(None, "releases", "--config", str(site.config), "--workspace", "team-b", "--format", "json")
    assert releases.exit_code == 0, releases.stderr
    assert [r["commit"] for r in json.loads(releases.stdout)["rows"]] == [site.env("team-b")["applied_revision"]]
    assert cli(None, "releases", "--config", str(site.config)).exit_code == 1  # several: which one?
