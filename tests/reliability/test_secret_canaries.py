"""A canary secret in every backend never shows up: logs at debug level, every output format, the
state and registry databases, API responses, error messages and crash output."""

from __future__ import annotations

import httpx

from tests.conftest import World, cli, cli_process
from tests.daemon_support import start_daemon

ENV_CANARY = "CanaryEnv-4f1b9"  # from the env backend
FILE_CANARY = "CanaryFile-8c2d7"  # from the files backend
URL_CANARY = "CanaryUrl-73a0e"  # the password inside a database URL (the embedded server trusts any)
DEAD_CANARY = "CanaryDead-11f4c"  # the password of a database URL that cannot be reached
CANARIES = (ENV_CANARY, FILE_CANARY, URL_CANARY, DEAD_CANARY)


def test_canaries_in_every_backend_never_leak(pyworld: World) -> None:
    secrets_dir = pyworld.root / "run-secrets"
    secrets_dir.mkdir()
    (secrets_dir / "SEGMENT_STAGING_KEY").write_text(FILE_CANARY + "\n")
    del pyworld.secrets["SEGMENT_STAGING_KEY"]
    import os

    os.environ.pop("SEGMENT_STAGING_KEY", None)
    pyworld.secrets["CRM_DB_STAGING_PASSWORD"] = ENV_CANARY
    pyworld.secrets["CRM_DB_PRODUCTION_ADMIN_URL"] = pyworld.databases["production"].replace(
        "postgresql://postgres@", f"postgresql://postgres:{URL_CANARY}@", 1)
    pyworld.configure(secrets={"backends": ["env", f"files:{secrets_dir}"]}, log={"level": "debug"})
    seen: list[str] = []
    d = start_daemon(pyworld.config, pyworld.root / "data", env=pyworld.secrets)
    try:
        d.wait_env("staging", state="Synced")
        pyworld.tag("v1.0.0", "Release 1.0.0")
        d.wait_env("production", state="Synced", applied_ref="v1.0.0")
        headers = {"Authorization": f"Bearer {d.token}"}
        for path in ("/api/v1/environments", "/api/v1/environments/staging", "/api/v1/environments/production",
                     "/api/v1/environments/staging/drift", "/api/v1/environments/staging/drift?format=markdown",
                     "/api/v1/environments/staging/runs", "/api/v1/environments/production/runs", "/metrics",
                     "/readyz", "/", "/api/v1/environments/nope"):
            seen.append(httpx.get(d.url + path, headers=headers, timeout=10).text)
        runs = httpx.get(d.url + "/api/v1/environments/staging/runs", headers=headers, timeout=10).json()["runs"]
        seen.append(httpx.get(d.url + f"/api/v1/environments/staging/runs/{runs[0]['id']}", headers=headers,
                              timeout=10).text)
        # The registry endpoint resolves secrets on purpose; calling it must not put them in the logs.
        registry = httpx.get(d.url + "/api/v1/registry/staging/apps/customer-support-dashboard", headers=headers,
                             timeout=10)
        assert ENV_CANARY in registry.text
    finally:
        assert d.terminate() == 0
    seen.append(d.logs())
    assert '"level": "debug"' in d.logs()
    for fmt in ("text", "json", "markdown"):
        for command in (["plan", "staging"], ["drift"], ["status"], ["history", "staging"], ["apply", "staging"],
                        ["history", "production"], ["diff", "--base", "main", "--head", "main"]):
            result = cli(pyworld, *command, "--format", fmt)
            seen += [result.stdout, result.stderr]
    # Error and crash output: an unreachable database whose URL carries a password.
    dead = f"postgresql://admin:{DEAD_CANARY}@127.0.0.1:9/crm"
    for debug in ("", "1"):
        failed = cli_process("apply", "staging", "--config", str(pyworld.config),
                             env={**pyworld.secrets, "CRM_DB_STAGING_ADMIN_URL": dead, "RECONCILER_LOG_LEVEL": "debug",
                                  "RECONCILER_DEBUG": debug, "SEGMENT_STAGING_KEY": FILE_CANARY})
        assert failed.exit_code == 1
        seen += [failed.stdout, failed.stderr]
    for name in ("reconciler.db", "reconciler.db-wal", "registry.db", "registry.db-wal"):
        path = pyworld.root / "data" / name
        if path.exists():
            seen.append(path.read_bytes().decode("latin-1"))
    everything = "\n".join(seen)
    leaks = {c: everything.count(c) for c in CANARIES if c in everything}
    assert leaks == {}, leaks
