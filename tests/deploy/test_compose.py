"""deploy/compose.yaml: valid against the Compose specification, consistent with the product's
configuration keys and the example's secrets, and runnable: its seed script, its PostgreSQL
init script and two replicas with its configuration run here as real processes (Docker cannot
run here; the only adaptations are the paths and host names that exist only inside containers)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import jsonschema
import psycopg
import pytest
import yaml
from sqlalchemy.engine import make_url

from reconciler.config import load_settings
from reconciler.desired.models import SECRET_REFERENCE
from reconciler.durations import parse_duration
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.deploy.support import DEPLOY, ROOT, dockerfile, dockerfile_env, flatten, listen_port, settings_field

COMPOSE = DEPLOY / "compose.yaml"
CONFIG = DEPLOY / "compose" / "reconciler.toml"
LAPTOP_TOKEN = "laptop-admin-token"  # deploy/compose.yaml and deploy/README.md tell users this token
# The tests that share the two running replicas run on one xdist worker, so they start once.
LAPTOP_GROUP = pytest.mark.xdist_group("deploy-laptop")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the << merge keys
    return data


def replicas() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if name.startswith("reconciler-")}


def mount(volumes: list[str], target: str) -> str:
    """The source mounted at ``target`` in a service's short-syntax volume list."""
    for entry in volumes:
        source, container_path, *_ = entry.split(":")
        if container_path == target:
            return source
    raise AssertionError(f"nothing is mounted at {target}: {volumes}")


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, as vendored by check-jsonschema (a dev dependency)."""
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_the_compose_file_follows_the_compose_specification() -> None:
    jsonschema.validate(compose(), compose_schema())


def test_a_compose_specification_violation_is_caught() -> None:
    broken = compose()
    broken["services"]["reconciler-1"]["restrat"] = "always"
    with pytest.raises(jsonschema.ValidationError, match="restrat"):
        jsonschema.validate(broken, compose_schema())


def test_two_replicas_share_one_postgresql_state_store_and_registry() -> None:
    services = replicas()
    assert len(services) == 2
    first, second = services.values()
    assert first["environment"] == second["environment"]
    env = first["environment"]
    for name in ("RECONCILER_STATE__URL", "RECONCILER_PLATFORM__URL"):
        url = make_url(env[name])
        assert (url.drivername, url.host) == ("postgresql+psycopg", "postgres"), name
    settings = load_settings(CONFIG)
    data = [mount(s["volumes"], str(settings.data_dir)) for s in services.values()]
    assert len(set(data)) == 2, "each replica needs a data volume of its own (its clone cache)"
    for service in services.values():
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                         "seed": {"condition": "service_completed_successfully"}}


def test_every_variable_is_a_configuration_key_or_a_secret_the_example_uses() -> None:
    env = next(iter(replicas().values()))["environment"]
    referenced = {n for v in flatten(tomllib.loads(CONFIG.read_text())).values() if isinstance(v, str)
                  for n in SECRET_REFERENCE.findall(v)}
    for path in (ROOT / "desired-state").rglob("*.yaml"):
        referenced |= set(SECRET_REFERENCE.findall(path.read_text()))
    for name in env:
        if name.startswith("RECONCILER_"):
            settings_field(name)
        else:
            assert name in referenced, f"{name} is set but nothing refers to ${{secret:{name}}}"
    missing = referenced - set(env)
    assert not missing, f"secrets referenced but not set: {sorted(missing)}"


def test_ports_paths_and_grace_period_match_the_configuration() -> None:
    settings = load_settings(CONFIG)
    image_env = dockerfile_env()
    for service in replicas().values():
        for published in service["ports"]:
            assert int(published.rsplit(":", 1)[1]) == listen_port(settings.api.listen)
        assert mount(service["volumes"], image_env["RECONCILER_CONFIG"]) == "./compose/reconciler.toml"
        assert parse_duration(service["stop_grace_period"]) >= parse_duration(settings.daemon.shutdown_timeout) + 10
    # The seed writes the repository where the replicas' source.url reads it, through one volume.
    seed = compose()["services"]["seed"]
    repo_in_seed = Path(seed["entrypoint"][-1])
    volume = mount(seed["volumes"], "/var/lib/reconciler")
    source = Path(urlparse(settings.source.url).path)
    replica = next(iter(replicas().values()))
    replica_mount = next(v.split(":")[1] for v in replica["volumes"] if v.startswith(volume + ":"))
    assert source.relative_to(replica_mount) == repo_in_seed.relative_to("/var/lib/reconciler")
    for service in (seed, *replicas().values()):
        for entry in service["volumes"]:
            host = entry.split(":")[0]
            if host.startswith("."):
                assert (DEPLOY / host).exists(), f"{host} (relative to deploy/) does not exist"


# -- the setup, run for real ------------------------------------------------------------------------

def on_test_server(url: str, pg: EmbeddedPostgres) -> str:
    """A compose URL (host `postgres`) pointed at the test PostgreSQL's socket instead."""
    server = make_url(pg.url)
    return make_url(url).set(host=None, port=None, query=server.query).render_as_string(hide_password=False)


def create_compose_databases(pg: EmbeddedPostgres) -> None:
    """What the postgres image does on a new volume: POSTGRES_USER, POSTGRES_DB, then initdb.sql."""
    postgres_env = compose()["services"]["postgres"]["environment"]
    user, database = postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"]
    statements = [s.strip() for s in (DEPLOY / "compose" / "initdb.sql").read_text().split(";")]
    statements = [s for s in ("\n".join(line for line in s.splitlines() if not line.startswith("--"))
                              for s in statements) if s.strip()]
    names = [database, *(re.search(r"CREATE DATABASE (\w+)", s).group(1) for s in statements)]  # type: ignore[union-attr]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        for name in names:
            conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"do $$ begin create role {user} login superuser; "
                     "exception when duplicate_object then null; end $$")
        conn.execute(f"create database {database} owner {user}")
    with psycopg.connect(on_test_server(f"postgresql://{user}@postgres/{database}", pg), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[list[DaemonProcess]]:
    root = tmp_path_factory.mktemp("laptop")
    repo = root / "repo"
    seed = [sys.executable, str(DEPLOY / "compose" / "seed.py"), str(ROOT / "desired-state"), str(repo)]
    seeded = subprocess.run(seed, capture_output=True, text=True, check=False)
    assert seeded.returncode == 0, seeded.stderr
    create_compose_databases(pg)
    env = {name: on_test_server(value, pg) if value.startswith("postgresql") else value
           for name, value in next(iter(replicas().values()))["environment"].items()}
    env["RECONCILER_SOURCE__URL"] = f"file://{repo}"
    daemons: list[DaemonProcess] = []
    try:
        for name in replicas():
            data_dir = root / name / "data"
            own = {**env, "RECONCILER_DATA_DIR": str(data_dir)}
            daemon = start_daemon(CONFIG, data_dir, own, timeout=60, name=name)
            daemon.token = LAPTOP_TOKEN
            daemons.append(daemon)
        yield daemons
    finally:
        for daemon in daemons:
            daemon.kill()


def test_the_seed_publishes_an_edit_once(tmp_path: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(ROOT / "desired-state", example)
    seed = [sys.executable, str(DEPLOY / "compose" / "seed.py"), str(example), str(tmp_path / "repo")]
    heads = [subprocess.run(seed, capture_output=True, text=True, check=True).stdout]
    heads.append(subprocess.run(seed, capture_output=True, text=True, check=True).stdout)
    (example / "groups.yaml").write_text((example / "groups.yaml").read_text() + "\n# edited\n")
    heads.append(subprocess.run(seed, capture_output=True, text=True, check=True).stdout)
    assert heads[0] == heads[1] != heads[2]


def ready(url: str) -> bool:
    return httpx.get(url, timeout=5).status_code == 200


@LAPTOP_GROUP
def test_both_replicas_become_ready_and_staging_syncs(laptop: list[DaemonProcess]) -> None:
    for daemon in laptop:
        url = daemon.url + "/readyz"
        wait_for(functools.partial(ready, url), 60, message=f"{url} to answer 200")
    first, second = laptop
    synced = first.wait_env("staging", timeout=120, state="Synced")
    # One state store: the other replica reports the same applied revision.
    assert second.wait_env("staging", timeout=30, state="Synced")["applied_revision"] == synced["applied_revision"]


@LAPTOP_GROUP
def test_the_image_healthcheck_command_passes_against_a_replica(laptop: list[DaemonProcess]) -> None:
    healthcheck = next(rest for keyword, rest in dockerfile() if keyword == "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    assert command[0] == "python"
    target = laptop[0].url.removeprefix("http://")
    script = command[-1].replace("127.0.0.1:8080", target)
    assert script != command[-1], "the HEALTHCHECK probes another address than 127.0.0.1:8080"
    assert subprocess.run([sys.executable, *command[1:-1], script], check=False).returncode == 0
    closed = command[-1].replace("127.0.0.1:8080", "127.0.0.1:9")
    assert subprocess.run([sys.executable, *command[1:-1], closed], capture_output=True, check=False).returncode != 0


@LAPTOP_GROUP
def test_replicas_stop_cleanly_on_sigterm(laptop: list[DaemonProcess]) -> None:
    assert [daemon.terminate(60) for daemon in laptop] == [0, 0]
