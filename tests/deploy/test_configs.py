"""deploy/reconciler.toml, the systemd unit and deploy/README.md agree with the product: the
configuration loads, every secret it references reaches the daemon, every RECONCILER_* variable
and every metric named anywhere in deploy/ exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import config_path, load_settings
from reconciler.daemon.metrics import Metrics
from reconciler.desired.models import SECRET_REFERENCE
from reconciler.durations import parse_duration
from tests.deploy.support import DEPLOY, flatten, settings_field, toml

UNIT = DEPLOY / "systemd" / "reconciler.service"
CONFIG = DEPLOY / "reconciler.toml"

# The settings the daemon reads through its secret backends (reconciler/wiring.py,
# reconciler/api/app.py); every other value is used exactly as written, so a ${secret:...} in it
# would reach the database driver or the HTTP client as that literal text.
RESOLVED_KEYS = {
    "source.webhook_secret", "source.gitlab_token", "source.ssh_key_passphrase",
    "platform.token", "secrets.fingerprint_key",
}
# Sample values of what the unit's EnvironmentFile holds (deploy/README.md says what goes there).
ENVIRONMENT_FILE = {
    "RECONCILER_STATE__URL": "postgresql+psycopg://reconciler:placeholder@db.example.internal:5432/reconciler",
    "RECONCILER_NOTIFY__WEBHOOKS": json.dumps([{"url": "https://hooks.example.com/T0/B0", "format": "slack"}]),
}


def unit() -> list[tuple[str, str]]:
    """(key, value) pairs of the unit's [Service] section, in order (keys repeat)."""
    pairs, section = [], ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def unit_environment() -> dict[str, str]:
    env = {}
    for key, value in unit():
        if key == "Environment":
            for assignment in shlex.split(value):  # systemd's quoting, for the forms used here
                name, _, text = assignment.partition("=")
                env[name] = text
    return env


def credentials() -> dict[str, str]:
    return dict(value.split(":", 1) for key, value in unit() if key == "LoadCredential")


@pytest.fixture
def unit_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The settings of `reconciler run` under the unit: its Environment= and EnvironmentFile."""
    for name in [n for n in os.environ if n.upper().startswith("RECONCILER_")]:
        monkeypatch.delenv(name)
    for name, value in {**unit_environment(), **ENVIRONMENT_FILE}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RECONCILER_CONFIG", str(CONFIG))  # /etc/reconciler/reconciler.toml on the host
    return load_settings(config_path(None))


def test_the_production_config_loads_under_the_unit(unit_settings: Any) -> None:
    assert unit_settings.state_url.startswith("postgresql+psycopg://")
    assert unit_settings.platform.provider == "retool"
    assert unit_settings.notify.webhooks[0].format == "slack"


def test_the_unit_environment_names_real_settings() -> None:
    env = unit_environment()
    assert env["RECONCILER_CONFIG"] == "/etc/reconciler/reconciler.toml"
    for name in [*env, *ENVIRONMENT_FILE]:
        if name != "RECONCILER_CONFIG":
            settings_field(name)


def test_every_secret_of_the_config_is_a_credential_of_the_unit(unit_settings: Any) -> None:
    directory = "/run/credentials/reconciler.service"
    assert f"files:{directory}" in unit_settings.secrets.backends
    names = {n for v in flatten(toml(CONFIG.read_text())).values() if isinstance(v, str)
             for n in SECRET_REFERENCE.findall(v)}
    key = Path(unit_settings.source.ssh_key)
    assert key.parent == Path(directory)
    names |= {key.name, key.name + ".pub"}  # pygit2 reads the public key beside the private one
    assert names == set(credentials())
    assert all(source == f"/etc/reconciler/secrets/{name}" for name, source in credentials().items())


def test_the_unit_waits_for_a_clean_shutdown_and_may_write_the_data_dir(unit_settings: Any) -> None:
    values = dict(unit())
    assert parse_duration(values["TimeoutStopSec"] + "s") >= parse_duration(unit_settings.daemon.shutdown_timeout) + 10
    assert str(unit_settings.data_dir) in values["ReadWritePaths"].split()
    assert values["StateDirectory"] == unit_settings.data_dir.name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian package systemd)")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd-analyze verify: syntax, known keys, an executable ExecStart (here: this virtualenv's)."""
    exe = Path(sys.executable).parent / "reconciler"
    text = UNIT.read_text().replace("/opt/reconciler/.venv/bin/reconciler", str(exe))
    (tmp_path / "reconciler.service").write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "reconciler.service")],
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    (tmp_path / "reconciler.service").write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "reconciler.service")],
                          capture_output=True, text=True, check=False)
    assert "Unknown key 'NoNewPrivilege'" in done.stderr


@pytest.mark.parametrize("path", ["reconciler.toml", "kubernetes/base/reconciler.toml", "compose/reconciler.toml"])
def test_secret_references_only_where_the_daemon_resolves_them(path: str) -> None:
    settings = flatten(toml((DEPLOY / path).read_text()))
    misplaced = {k for k, v in settings.items() if isinstance(v, str) and SECRET_REFERENCE.search(v)} - RESOLVED_KEYS
    assert not misplaced, f"deploy/{path}: {sorted(misplaced)} are used as written; set them from the environment"


def deploy_texts() -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(DEPLOY.rglob("*")) if p.is_file() and p.suffix != ".pyc"}


def test_every_reconciler_variable_mentioned_in_deploy_is_a_setting() -> None:
    """Except RECONCILER_CONFIG (the file's path) and the variables Kubernetes makes for a Service
    named reconciler (RECONCILER_SERVICE_HOST, RECONCILER_PORT_...), which deploy/ names to explain
    why the pods turn them off."""
    names = {n for text in deploy_texts().values() for n in re.findall(r"\bRECONCILER_[A-Z_]+[A-Z]\b", text)}
    assert "RECONCILER_STATE__URL" in names
    service_links = re.compile(r"RECONCILER_(SERVICE_|PORT\b|PORT_)")
    for name in sorted(n for n in names - {"RECONCILER_CONFIG"} if not service_links.match(n)):
        settings_field(name)


def metric_names() -> set[str]:
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ()}
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names |= {family.name + s for s in suffixes.get(family.type, ())}
    return names


def test_every_metric_mentioned_in_deploy_exists() -> None:
    # Database names of the compose setup also start with reconciler_; they are not metrics.
    databases = set(re.findall(r"\breconciler_\w+", (DEPLOY / "compose" / "initdb.sql").read_text()))
    databases.add(re.search(r"POSTGRES_DB: (\w+)", (DEPLOY / "compose.yaml").read_text()).group(1))  # type: ignore[union-attr]
    mentioned = {}
    for path, text in deploy_texts().items():
        for name in set(re.findall(r"\breconciler_[a-z_]+[a-z]\b", text)) - databases:
            mentioned[name] = path.relative_to(DEPLOY)
    assert {"reconciler_up", "reconciler_runs_total", "reconciler_blocked"} <= set(mentioned)
    unknown = {name: str(where) for name, where in mentioned.items() if name not in metric_names()}
    assert not unknown, f"not metrics of reconciler/daemon/metrics.py: {unknown}"
