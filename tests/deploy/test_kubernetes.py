"""deploy/kubernetes: every overlay renders, validates against the Kubernetes schemas, and agrees
with the product's real configuration keys, HTTP routes and measured memory."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from reconciler.config import load_settings
from reconciler.durations import parse_duration
from tests.deploy.support import KUBERNETES, OVERLAYS, ROOT, kustomize, listen_port, route_paths, settings_field, toml

# The Kubernetes version the manifests are validated against: the oldest minor still supported
# by the major managed offerings when this was written. Raise it when that floor moves.
KUBERNETES_VERSION = "1.30.0"

# What the Secret `reconciler-secrets` holds for the keys passed as environment variables: the
# shapes deploy/README.md tells operators to store (placeholders, not real credentials).
SECRET_SAMPLES = {
    "STATE_DB_URL": "postgresql+psycopg://reconciler:placeholder@postgres.example.internal:5432/reconciler",
    "API_TOKENS": json.dumps([{"name": "ci", "hash": "sha256:" + "0" * 64, "scopes": ["read", "sync"]}]),
    "NOTIFY_WEBHOOKS": json.dumps([{"url": "https://hooks.example.com/T000/B000", "format": "slack"}]),
}

# monitoring.coreos.com/v1 ServiceMonitor is a CRD, absent from the built-in schemas. This is the
# part of its published schema that our object uses (field names and types from the
# prometheus-operator API reference); unknown fields are refused, as the API server would drop them.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^(([0-9]+)m)?(([0-9]+)s)?$"},
                        },
                    },
                },
            },
        },
    },
}


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["reconciler"]
    return dict(containers[0])


def config_toml(objects: list[dict[str, Any]]) -> str:
    return str(one(objects, "ConfigMap")["data"]["reconciler.toml"])


def mounts(objects: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """mountPath → (volumeMount, volume)."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m, volumes[m["volumeName"] if "volumeName" in m else m["name"]])
            for m in container(objects)["volumeMounts"]}


def mi(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


@pytest.fixture(scope="module", params=[p.name for p in OVERLAYS])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    name = request.param
    return name, kustomize(KUBERNETES / "overlays" / name)


@pytest.fixture
def pod_settings(overlay: tuple[str, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The daemon's settings as a pod of this overlay loads them: the rendered reconciler.toml with
    the container's environment (Secret values replaced by SECRET_SAMPLES)."""
    _, objects = overlay
    for name in [k for k in os.environ if k.upper().startswith("RECONCILER_")]:
        monkeypatch.delenv(name)
    for entry in container(objects).get("env", []):
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
        else:
            monkeypatch.setenv(entry["name"], SECRET_SAMPLES[entry["valueFrom"]["secretKeyRef"]["key"]])
    path = tmp_path / "reconciler.toml"
    path.write_text(config_toml(objects))
    return load_settings(path)


def test_there_are_a_single_and_an_ha_overlay() -> None:
    assert [p.name for p in OVERLAYS] == ["ha", "single"]


def test_every_object_validates_against_the_kubernetes_schemas(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """Strict schemas: an unknown or misplaced field is an error, not silently dropped."""
    name, objects = overlay
    checked = set()
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: see the ServiceMonitor test
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        checked.add(obj["kind"])
    assert checked == {"Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment",
                       "PodDisruptionBudget", "NetworkPolicy"}


def test_a_schema_violation_is_caught() -> None:
    """The validator is not a rubber stamp: a misspelt field in a Deployment fails."""
    objects = kustomize(KUBERNETES / "overlays" / "single")
    deployment = one(objects, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_service_monitor_scrapes_metrics_through_the_service(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    monitor = one(objects, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    service = one(objects, "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] in route_paths()
        assert parse_duration(endpoint["scrapeTimeout"]) < parse_duration(endpoint["interval"])


def test_overlays_run_one_and_three_replicas() -> None:
    replicas = {p.name: one(kustomize(p), "Deployment")["spec"]["replicas"] for p in OVERLAYS}
    assert replicas == {"single": 1, "ha": 3}


def test_every_environment_variable_is_a_real_configuration_key(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    names = [e["name"] for e in container(objects).get("env", [])]
    assert names, "the container sets no environment variables"
    for name in names:
        settings_field(name)  # raises, naming the variable, when it sets nothing


def test_a_misspelt_environment_variable_is_refused() -> None:
    with pytest.raises(AssertionError, match="RECONCILER_STATE__URI: no configuration key 'uri' under state"):
        settings_field("RECONCILER_STATE__URI")
    with pytest.raises(AssertionError, match="no configuration key 'state_url' under the top level"):
        settings_field("RECONCILER_STATE_URL")


def test_the_pod_configuration_loads_with_a_postgresql_state_store(pod_settings: Any) -> None:
    assert pod_settings.state_url.startswith("postgresql+psycopg://")
    assert pod_settings.api.tokens, "without tokens every pod would generate its own admin token"
    # Every replica must fingerprint secrets with one shared key, not one generated per pod.
    assert pod_settings.secrets.fingerprint_key == "${secret:FINGERPRINT_KEY}"


def test_the_state_url_and_tokens_come_from_the_secret(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    env = {e["name"]: e for e in container(objects)["env"]}
    for name, key in (("RECONCILER_STATE__URL", "STATE_DB_URL"), ("RECONCILER_API__TOKENS", "API_TOKENS")):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref.get("optional", False)) == ("reconciler-secrets", key, False)


def test_ports_and_probes_match_the_api(overlay: tuple[str, list[dict[str, Any]]], pod_settings: Any) -> None:
    _, objects = overlay
    main = container(objects)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": listen_port(pod_settings.api.listen)}
    assert pod_settings.api.listen.startswith("0.0.0.0:"), "the API must listen beyond the pod's loopback"
    routes = route_paths()
    probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {k: p["path"] for k, p in probes.items()} == {
        "startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe in probes.values():
        assert probe["path"] in routes
        assert probe["port"] in ports
    service = one(objects, "Service")
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    policy = one(objects, "NetworkPolicy")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["http"]


def test_the_config_file_and_secrets_are_where_the_daemon_reads_them(
        overlay: tuple[str, list[dict[str, Any]]], pod_settings: Any) -> None:
    _, objects = overlay
    main = container(objects)
    mounted = mounts(objects)
    config_path = main["args"][main["args"].index("--config") + 1]
    mount, volume = mounted[config_path]
    assert volume["configMap"]["name"].startswith("reconciler-config") and mount["subPath"] == "reconciler.toml"
    assert [b for b in pod_settings.secrets.backends if b.startswith("files:")] == ["files:/run/secrets"]
    mount, volume = mounted["/run/secrets"]
    assert mount["readOnly"] is True
    assert volume["secret"]["secretName"] == "reconciler-secrets"
    assert Path(pod_settings.source.ssh_key).parent == Path("/run/secrets")


def test_the_root_filesystem_is_read_only_and_the_data_dir_a_volume(
        overlay: tuple[str, list[dict[str, Any]]], pod_settings: Any) -> None:
    _, objects = overlay
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    main = container(objects)
    assert main["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                       "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False, "Service links add RECONCILER_* variables to the environment"
    writable = {path for path, (mount, _) in mounts(objects).items() if not mount.get("readOnly")}
    assert writable == {str(pod_settings.data_dir), "/tmp"}
    for path in writable:
        assert "emptyDir" in mounts(objects)[path][1]


def test_shutdown_fits_in_the_grace_period(overlay: tuple[str, list[dict[str, Any]]], pod_settings: Any) -> None:
    _, objects = overlay
    grace = one(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert parse_duration(pod_settings.daemon.shutdown_timeout) + 10 <= grace


def test_replicas_share_the_retool_rate_limit(overlay: tuple[str, list[dict[str, Any]]], pod_settings: Any) -> None:
    """Each replica paces itself; together they stay within what one replica is allowed."""
    _, objects = overlay
    replicas = one(objects, "Deployment")["spec"]["replicas"]
    single = toml(config_toml(kustomize(KUBERNETES / "overlays" / "single")))["platform"]["requests_per_minute"]
    assert replicas * pod_settings.platform.requests_per_minute <= single


def test_selectors_select_the_pods(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": one(objects, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    }
    for constraint in deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        selectors[f"topologySpread {constraint['topologyKey']}"] = constraint["labelSelector"]["matchLabels"]
    for kind, selector in selectors.items():
        assert selector and selector.items() <= labels.items(), f"{kind} selector {selector} misses pods {labels}"


def measured_rss_mb() -> list[int]:
    """Every measured RSS figure in docs/benchmarks.md's tables (not the "< 120 MB" goals).

    The benchmarks write MiB as "MB" (bench/benchkit.rss_mb reads kB from /proc and divides by 1024)."""
    figures = []
    for line in (ROOT / "docs" / "benchmarks.md").read_text().splitlines():
        if "RSS" in line and line.startswith("|"):
            figures += [int(n) for n in re.findall(r"(?<!< )\b(\d+) MB", line)]
    return figures


def test_memory_is_sized_from_the_measured_rss(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """Requests cover the largest measured RSS with headroom, and the comment cites real figures."""
    _, objects = overlay
    figures = measured_rss_mb()
    assert figures, "docs/benchmarks.md has no RSS figure any more; size the pods from a new one"
    peak_mib = max(figures)
    resources = container(objects)["resources"]
    assert mi(resources["requests"]["memory"]) >= 1.5 * peak_mib
    assert mi(resources["limits"]["memory"]) >= 4 * peak_mib
    cited = {int(n) for n in re.findall(r"(\d+) MB", (KUBERNETES / "base" / "deployment.yaml").read_text())}
    missing = cited - set(figures)
    assert cited and not missing, f"deployment.yaml cites {missing} MB, not in docs/benchmarks.md"
