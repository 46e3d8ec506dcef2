"""deploy/Dockerfile: hadolint finds nothing, the base is pinned by digest, and what the image
sets (user, port, health check, config path, data dir) agrees with the product and with the
Kubernetes and Compose manifests. Docker itself cannot run here, so the image is not built."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import app
from reconciler.config import config_path, load_settings
from tests.deploy.support import (
    DEPLOY,
    KUBERNETES,
    ROOT,
    dockerfile,
    dockerfile_env,
    kustomize,
    listen_port,
    route_paths,
    settings_field,
    tool,
)


def instructions(keyword: str) -> list[str]:
    return [rest for k, rest in dockerfile() if k == keyword]


def arg_defaults() -> dict[str, str]:
    return dict(rest.split("=", 1) for rest in instructions("ARG") if "=" in rest)


def expand(text: str) -> str:
    defaults = arg_defaults()
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], text)


def hadolint(path: Path, *options: str) -> list[dict[str, Any]]:
    done = subprocess.run([tool("hadolint"), "--format", "json", "--no-fail", *options, str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


def pod(overlay: str = "single") -> dict[str, Any]:
    objects = kustomize(KUBERNETES / "overlays" / overlay)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def test_hadolint_finds_nothing() -> None:
    """Every level, down to style: zero findings."""
    assert hadolint(DEPLOY / "Dockerfile") == []


def test_hadolint_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN apt-get update && apt-get install -y git\nUSER reconciler\n"
                   "ENTRYPOINT reconciler run\n")
    assert {f["code"] for f in hadolint(bad)} >= {"DL3008", "DL3009", "DL3015", "DL3025"}


def test_every_ignored_rule_is_justified_right_above() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    pragmas = [i for i, line in enumerate(lines) if line.startswith("# hadolint ignore=")]
    # An ignore is only allowed where hadolint would complain without it.
    assert {f["code"] for f in hadolint(DEPLOY / "Dockerfile", "--disable-ignore-pragma")} == {
        code for i in pragmas for code in lines[i].removeprefix("# hadolint ignore=").split(",")}
    for i in pragmas:
        above = lines[i - 1]
        assert above.startswith("# ") and len(above) > 20, f"line {i + 1}: say why the rule is ignored"


def test_the_base_image_is_pinned_by_digest() -> None:
    froms = instructions("FROM")
    assert len(froms) >= 2, "a build stage and a runtime stage"
    assert all(f.startswith("${PYTHON_IMAGE}@${PYTHON_DIGEST} AS ") for f in froms)
    defaults = arg_defaults()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", defaults["PYTHON_DIGEST"])
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", defaults["PYTHON_IMAGE"]) and python == ">=3.11"


def test_the_runtime_stage_installs_the_built_wheels_only() -> None:
    runs = instructions("RUN")
    assert any("pip wheel --wheel-dir /wheels ." in r for r in runs)
    assert any("--no-index --find-links=/wheels reconciler" in r and "from=build" in r for r in runs)


def test_the_user_is_the_non_root_user_of_the_pods() -> None:
    user = expand(instructions("USER")[-1])
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0
    security = pod()["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (uid, gid, gid)


def test_port_and_health_check_match_the_api(tmp_path: Path) -> None:
    exposed = [int(p) for p in instructions("EXPOSE")]
    healthcheck = instructions("HEALTHCHECK")[0]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", healthcheck)
    assert url is not None, healthcheck
    assert exposed == [int(url.group(1))]
    assert url.group(2) in route_paths()
    rendered = tmp_path / "reconciler.toml"
    rendered.write_text(next(o for o in kustomize(KUBERNETES / "overlays" / "single")
                             if o["kind"] == "ConfigMap")["data"]["reconciler.toml"])
    kubernetes = load_settings(rendered)
    compose = load_settings(DEPLOY / "compose" / "reconciler.toml")
    assert {listen_port(kubernetes.api.listen), listen_port(compose.api.listen)} == set(exposed)
    assert "--start-period=5m" in healthcheck, "the first clone happens before the API answers"


def test_the_environment_names_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dockerfile_env()
    monkeypatch.setenv("RECONCILER_CONFIG", env["RECONCILER_CONFIG"])
    assert config_path(None) == Path(env["RECONCILER_CONFIG"]), "the product no longer reads RECONCILER_CONFIG"
    for name in env:
        if name.startswith("RECONCILER_") and name != "RECONCILER_CONFIG":
            settings_field(name)


def test_paths_agree_with_the_manifests() -> None:
    env = dockerfile_env()
    spec = pod()
    container = spec["containers"][0]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"] == ["--config", env["RECONCILER_CONFIG"]]
    assert f"{env['HOME']}/.ssh/known_hosts" in mounts
    data_dir = "/var/lib/reconciler"
    assert instructions("WORKDIR")[-1] == data_dir and json.loads(instructions("VOLUME")[0]) == [data_dir]
    assert data_dir in mounts
    assert str(load_settings(DEPLOY / "compose" / "reconciler.toml").data_dir) == data_dir


def test_the_entrypoint_is_the_daemon_and_stops_on_sigterm() -> None:
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["reconciler", "run"]
    assert "reconciler" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert "run" in commands
    assert instructions("STOPSIGNAL") == ["SIGTERM"]


def test_the_build_context_sends_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore
    copied = {src.rstrip("/") for rest in instructions("COPY") if "--from" not in rest
              for src in rest.split()[:-1]}
    assert copied == included
