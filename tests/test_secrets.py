"""Secrets never leak: not in any output format, the state or registry database, logs, or errors."""

from __future__ import annotations

from tests.conftest import CANARY, World, cli, cli_process


def test_no_secret_in_any_output_format_or_database(pyworld: World) -> None:
    world = pyworld
    outputs = [cli(world, "apply", "staging", "--format", fmt).stdout for fmt in ("text", "json", "markdown")]
    world.tag("v1.0.0", "Release 1.0.0")
    outputs.append(cli(world, "apply", "production", "--format", "json").stdout)
    for fmt in ("text", "json", "markdown"):
        for command in (["plan", "staging"], ["drift"], ["status"], ["history", "staging"],
                        ["diff", "--base", "main", "--head", "main"]):
            result = cli(world, *command, "--format", fmt)
            outputs += [result.stdout, result.stderr]
    joined = "\n".join(outputs)
    assert CANARY not in joined
    for name in ("reconciler.db", "registry.db"):
        data = b""
        for path in (world.root / "data").glob(name + "*"):
            data += path.read_bytes()
        assert data, f"{name} was not written"
        assert CANARY.encode() not in data
    # Every secret of the world, not only the canary, stays out of the stores.
    state = (world.root / "data" / "reconciler.db").read_bytes()
    for key, value in world.secrets.items():
        if "URL" not in key:
            assert value.encode() not in state, key


def test_a_secret_shows_as_secret_in_plans(pyworld: World) -> None:
    result = cli(pyworld, "plan", "staging", "--format", "json")
    assert '"password": "(secret)"' in result.stdout


def test_debug_logs_carry_no_secret(pyworld: World) -> None:
    env = {"RECONCILER_LOG_LEVEL": "debug", **{k: v for k, v in pyworld.secrets.items()}}
    result = cli_process("apply", "staging", "--config", str(pyworld.config), env=env)
    assert result.exit_code == 0, result.stderr
    assert '"event"' in result.stderr  # logs were written
    assert CANARY not in result.stderr + result.stdout


def test_an_unreachable_database_url_is_not_echoed(pyworld: World) -> None:
    leaked = "Pa55-canary-in-url"
    env = {**pyworld.secrets, "CRM_DB_STAGING_ADMIN_URL": f"postgresql://admin:{leaked}@127.0.0.1:9/crm"}
    result = cli_process("plan", "staging", "--config", str(pyworld.config), env=env)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert leaked not in result.stderr + result.stdout


def test_a_missing_secret_names_the_secret_not_a_value(pyworld: World) -> None:
    result = cli_process("plan", "staging", "--config", str(pyworld.config), unset=["SEGMENT_STAGING_KEY"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: secret SEGMENT_STAGING_KEY is not set (searched: env)"
