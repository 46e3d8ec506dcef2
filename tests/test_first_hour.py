"""From nothing to a first plan: ``init`` writes a configuration and says what to run next; ``secrets ENV``
(and ``validate --env ENV``) list every secret an environment needs, all at once, values never shown."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from reconciler.config import load_settings
from reconciler.desired.loader import load
from reconciler.desired.references import environment_uses
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.source.trees import DirectoryTree
from tests.conftest import CANARY, EXAMPLE, cli, cli_process, set_clock
from tests.daemon_support import to_toml

STAGING_SECRETS = ["CRM_API_STAGING_TOKEN", "CRM_DB_STAGING_ADMIN_URL", "CRM_DB_STAGING_PASSWORD",
                   "SEGMENT_STAGING_KEY"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, with no configuration and no secret of the example set."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("RECONCILER_") or n in STAGING_SECRETS
                 or n.startswith(("CRM_", "SEGMENT_", "APP_DB_", "ANALYTICS_"))]:
        monkeypatch.delenv(name)
    return tmp_path


def example(root: Path) -> Path:
    target = root / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


def next_commands(stdout: str) -> list[str]:
    """The commands ``init`` prints after 'Next': the lines that are not comments."""
    tail = stdout[stdout.index("Next"):].splitlines()[1:]
    return [line.strip() for line in tail if line.strip() and not line.strip().startswith("#")]


def test_init_writes_a_configuration_that_loads_and_holds_no_credential(here: Path) -> None:
    result = cli(None, "init")
    assert result.exit_code == 0, result.stderr
    settings = load_settings(here / "reconciler.toml")
    assert settings.source.path == "desired-state"
    assert settings.source.url == "."
    assert settings.platform.provider == "registry"
    assert settings.secrets.backends == ["env"]
    # Nothing that would pass for a credential: no token hash, webhook secret, key or password.
    assert settings.api.tokens == []
    assert settings.source.webhook_secret is None and settings.platform.token is None
    assert settings.secrets.fingerprint_key is None and settings.state.url is None
    text = (here / "reconciler.toml").read_text()
    assert not [line for line in text.splitlines() if "sha256:" in line and not line.lstrip().startswith("#")]
    assert next_commands(result.stdout) == [
        "reconciler secrets staging",
        "git init -b main && git add -A && git commit -m 'Desired state'",
        "reconciler plan staging",
    ]


def test_init_keeps_an_existing_configuration(here: Path) -> None:
    (here / "reconciler.toml").write_text("[log]\nlevel = 'debug'\n")
    result = cli(None, "init")
    assert result.exit_code == 0, result.stderr
    assert (here / "reconciler.toml").read_text() == "[log]\nlevel = 'debug'\n"
    assert "kept the existing reconciler.toml" in result.stdout


def test_init_inside_a_repository_says_to_commit_the_two(here: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(here)], check=True)
    result = cli(None, "init", "infra")
    assert result.exit_code == 0, result.stderr
    assert next_commands(result.stdout)[1] == "git add infra reconciler.toml && git commit -m 'Desired state'"
    assert load_settings(here / "reconciler.toml").source.path == "infra"


def test_from_init_to_a_first_plan_with_the_printed_commands(
    here: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch)
    commands = next_commands(cli(None, "init").stdout)

    first = cli(None, "secrets", "staging")
    assert first.exit_code == 1
    missing = ["ANALYTICS_STAGING_KEY", "APP_DB_STAGING_ADMIN_URL", "APP_DB_STAGING_PASSWORD"]
    assert [line.split()[0] for line in first.stdout.splitlines() if "MISSING" in line] == missing

    name = f"app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    monkeypatch.setenv("APP_DB_STAGING_ADMIN_URL", pg.database_url(name))
    monkeypatch.setenv("APP_DB_STAGING_PASSWORD", CANARY)
    monkeypatch.setenv("ANALYTICS_STAGING_KEY", "analytics-" + uuid.uuid4().hex)
    ready = cli(None, "secrets", "staging")
    assert ready.exit_code == 0, ready.stdout
    assert "staging needs 3 secrets (with 1 database URL); every one is set" in ready.stdout

    git_env = {**os.environ, "GIT_AUTHOR_NAME": "New User", "GIT_AUTHOR_EMAIL": "new@example.com",
               "GIT_COMMITTER_NAME": "New User", "GIT_COMMITTER_EMAIL": "new@example.com"}
    subprocess.run(["bash", "-c", commands[1]], cwd=here, env=git_env, check=True, capture_output=True)
    plan = cli_process(*commands[2].split()[1:], cwd=here)
    assert plan.exit_code == 2, plan.stderr
    assert "Plan for staging at" in plan.stdout
    assert "app:create-table:public.accounts" in plan.stdout
    assert CANARY not in plan.stdout + plan.stderr


def test_secrets_lists_every_secret_its_backend_and_where_it_is_used(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example(here)
    files = here / "run-secrets"
    files.mkdir()
    (files / "CRM_API_STAGING_TOKEN").write_text("token-from-a-file\n")
    monkeypatch.setenv("CRM_DB_STAGING_PASSWORD", CANARY)
    (here / "reconciler.toml").write_text(to_toml({
        "source": {"webhook_secret": "${secret:WEBHOOK_SECRET}"},
        "secrets": {"backends": [f"files:{files}", "env"]},
    }))

    result = cli(None, "secrets", "staging", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    found = {s["name"]: (s["status"], s["backend"], [(u["file"], u["line"], u["document"], u["field"])
                                                      for u in s["uses"]]) for s in report["secrets"]}
    assert found == {
        "CRM_API_STAGING_TOKEN": ("set", f"files:{files}", [
            ("resources/crm-api.yaml", 13, "Resource 'crm-api'", "environments.staging.options.authorization")]),
        "CRM_DB_STAGING_PASSWORD": ("set", "env", [
            ("resources/crm-db.yaml", 15, "Resource 'crm-db'", "environments.staging.options.password")]),
        "CRM_DB_STAGING_ADMIN_URL": ("missing", None, [
            ("databases/crm.yaml", 7, "Database 'crm'", "environments.staging.url")]),
        "SEGMENT_STAGING_KEY": ("missing", None, [
            ("config/variables.yaml", 21, "ConfigVariable 'SEGMENT_WRITE_KEY'", "values.staging"),
            ("resources/segment.yaml", 8, "Resource 'segment'",
             "options.basic_username (through ${config:SEGMENT_WRITE_KEY})")]),
        "WEBHOOK_SECRET": ("missing", None, [("reconciler.toml", 3, "configuration", "source.webhook_secret")]),
    }
    assert report["missing"] == ["SEGMENT_STAGING_KEY", "CRM_DB_STAGING_ADMIN_URL", "WEBHOOK_SECRET"]
    assert report["complete"] is False
    assert [s["database_url"] for s in report["secrets"] if s["name"] == "CRM_DB_STAGING_ADMIN_URL"] == [True]

    text = cli(None, "secrets", "staging")
    assert text.exit_code == 1
    assert re.search(r"CRM_DB_STAGING_ADMIN_URL +MISSING +database URL\n +databases/crm.yaml:7 +Database 'crm', "
                     r"environments.staging.url", text.stdout)
    assert re.search(r"CRM_DB_STAGING_PASSWORD +set \(env\)", text.stdout)
    assert "staging needs 5 secrets (with 1 database URL); 3 missing" in text.stdout
    for fmt in ("text", "json", "markdown"):
        shown = cli(None, "secrets", "staging", "--format", fmt)
        assert CANARY not in shown.stdout + shown.stderr
        assert "token-from-a-file" not in shown.stdout + shown.stderr


def test_secrets_exit_zero_when_every_one_is_set(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(here)
    for name in STAGING_SECRETS:
        monkeypatch.setenv(name, CANARY)
    monkeypatch.setenv("CRM_DB_STAGING_ADMIN_URL", f"postgresql://tools:{CANARY}@db-staging.internal/crm")
    result = cli(None, "secrets", "staging")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("staging needs 4 secrets (with 1 database URL); every one is set")
    assert CANARY not in result.stdout


def test_a_database_url_that_is_no_url_is_named_without_its_value(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(here)
    for name in STAGING_SECRETS:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("CRM_DB_STAGING_ADMIN_URL", f"host=db user=tools password={CANARY}")
    result = cli(None, "secrets", "staging", "--format", "json")
    assert result.exit_code == 1
    bad = [s for s in json.loads(result.stdout)["secrets"] if s["status"] != "set"]
    assert [(s["name"], s["status"]) for s in bad] == [("CRM_DB_STAGING_ADMIN_URL", "not-a-url")]
    assert bad[0]["detail"].startswith("the URL of database crm is not a postgresql:// URL")
    assert CANARY not in result.stdout


def test_an_empty_secret_is_reported(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(here)
    for name in STAGING_SECRETS:
        monkeypatch.setenv(name, "postgresql://db/crm")
    monkeypatch.setenv("SEGMENT_STAGING_KEY", "")
    result = cli(None, "secrets", "staging")
    assert result.exit_code == 1
    assert re.search(r"SEGMENT_STAGING_KEY +EMPTY\n +the value in env is empty", result.stdout)


def test_validate_env_lists_every_missing_secret_at_once(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example(here)
    monkeypatch.setenv("CRM_DB_STAGING_PASSWORD", CANARY)
    result = cli(None, "validate", "--env", "staging")
    assert result.exit_code == 1
    assert "valid: desired-state — 15 documents" in result.stdout
    assert [line.split()[0] for line in result.stderr.splitlines() if "MISSING" in line] == [
        "SEGMENT_STAGING_KEY", "CRM_DB_STAGING_ADMIN_URL", "CRM_API_STAGING_TOKEN"]
    assert CANARY not in result.stdout + result.stderr
    data = json.loads(cli(None, "validate", "--env", "staging", "--format", "json").stdout)
    assert data["valid"] is True
    assert data["secrets"]["missing"] == ["SEGMENT_STAGING_KEY", "CRM_DB_STAGING_ADMIN_URL", "CRM_API_STAGING_TOKEN"]

    for name in STAGING_SECRETS:
        monkeypatch.setenv(name, "postgresql://db/crm")
    ready = cli(None, "validate", "--env", "staging")
    assert ready.exit_code == 0, ready.stderr
    assert "staging needs 4 secrets (with 1 database URL); every one is set" in ready.stdout
    assert cli(None, "validate").exit_code == 0  # without --env, secrets are not looked at


def test_secrets_of_an_unknown_environment(here: Path) -> None:
    example(here)
    result = cli(None, "secrets", "prod")
    assert result.exit_code == 1
    assert "unknown environment 'prod' (declared: staging, production)" in result.stderr


def test_a_secret_in_an_http_check_is_listed_for_the_environments_it_runs_in(here: Path) -> None:
    folder = example(here)
    (folder / "checks/token.yaml").write_text(
        "kind: Check\nname: api-token\nenvironments: [production]\n"
        "http:\n  resource: crm-api\n  path: /health\n  headers:\n    X-Probe: '${secret:PROBE_TOKEN}'\n")
    production = json.loads(cli(None, "secrets", "production", "--format", "json").stdout)
    uses = [(u["file"], u["line"], u["document"], u["field"]) for s in production["secrets"]
            if s["name"] == "PROBE_TOKEN" for u in s["uses"]]
    assert uses == [("checks/token.yaml", 8, "Check 'api-token'", "http.headers.X-Probe")]
    staging = json.loads(cli(None, "secrets", "staging", "--format", "json").stdout)
    assert "PROBE_TOKEN" not in [s["name"] for s in staging["secrets"]]


def test_an_environment_override_replaces_the_shared_option_and_its_secret(tmp_path: Path) -> None:
    folder = example(tmp_path)
    (folder / "resources/crm-db.yaml").write_text(
        "kind: Resource\nname: crm-db\ntype: postgresql\n"
        "options: {password: '${secret:SHARED_PASSWORD}', port: 5432}\n"
        "environments:\n"
        "  staging: {options: {password: '${secret:STAGING_PASSWORD}'}}\n"
        "  production: {options: {host: db.internal}}\n")
    state = load(DirectoryTree(folder))
    staging = [(u.secret, u.field) for u in environment_uses(state, "staging") if u.file == "resources/crm-db.yaml"]
    production = [(u.secret, u.field) for u in environment_uses(state, "production")
                  if u.file == "resources/crm-db.yaml"]
    assert staging == [("STAGING_PASSWORD", "environments.staging.options.password")]
    assert production == [("SHARED_PASSWORD", "options.password")]


def test_the_readme_shows_every_first_hour_command_and_each_exists() -> None:
    """README's 'Using it' names init, secrets, explain, schemas export, demo --keep, run --listen and
    diff --shadow-url, and every command and option it shows is one the CLI accepts."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Using it"):readme.index("## Documentation")]
    lines = [line.split("#")[0].strip() for line in section.splitlines() if line.startswith("reconciler ")]
    shown = {" ".join(word for word in line.split()[1:3] if not word.startswith("-")) for line in lines}
    for needed in ("init", "secrets staging", "explain crm:drop-column:public.customers.legacy_notes",
                   "schemas export", "demo", "run", "validate"):
        assert needed in shown, needed
    for flag in ("demo --keep", "run --listen", "--shadow-url", "validate --env"):
        assert any(flag in line for line in lines), flag
    for line in lines:
        words = [w for w in line.split() if w != "&&"][1:]
        command = words[:2] if words[0] == "schemas" else words[:1]
        help_text = cli(None, *command, "--help").stdout
        for option in [w.split("=")[0] for w in words if w.startswith("--")]:
            assert option in help_text, (line, option)
