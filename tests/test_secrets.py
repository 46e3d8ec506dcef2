"""Secrets never leak: not in any output format, the state or registry database, logs, or errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.core.changes import Change
from reconciler.core.drift import diff_objects
from reconciler.core.objects import PlatformObject
from reconciler.secrets.values import Sensitive
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


# -- a live value is never printed where a secret is declared, or where it looks like one -------------

TOKEN = "tok_live_5f2c9a77e1"


def _secret(template: str) -> Sensitive:
    return Sensitive(template=template, fingerprint="f" + template)


@pytest.mark.parametrize(("declared", "live"), [
    # a header rotated by hand in the platform, shown in clear by its API
    ({"options": {"headers": {"authorization": _secret("Bearer ${secret:T}")}}},
     {"options": {"headers": {"authorization": f"Bearer {TOKEN}"}}}),
    # headers as a list of pairs, one more pair live than declared
    ({"options": {"headers": [["authorization", _secret("Bearer ${secret:T}")]]}},
     {"options": {"headers": [["authorization", f"Bearer {TOKEN}"], ["x-extra", "1"]]}}),
    # a secret configuration variable whose live value differs
    ({"secret": True, "value": _secret("${secret:SEGMENT}")}, {"secret": True, "value": TOKEN}),
    # declared in clear (not a secret in Git), but the live side's key says it is one
    ({"options": {"host": "crm.internal"}}, {"options": {"host": "crm.internal", "api_key": TOKEN}}),
])
def test_a_live_secret_is_never_shown_in_a_drift_item(declared: dict[str, Any], live: dict[str, Any]) -> None:
    items = diff_objects({("resource", "crm"): PlatformObject("resource", "crm", declared)},
                         {("resource", "crm"): PlatformObject("resource", "crm", live)}, prune=False)

    assert items, "the difference is still reported"
    assert TOKEN not in json.dumps([i.as_json() for i in items], default=str)


@pytest.mark.parametrize("fields", [
    {"options": {"password": TOKEN, "host": "db"}},
    {"options": {"headers": {"Authorization": f"Bearer {TOKEN}"}}},
    {"secret": True, "value": TOKEN},
])
def test_an_undeclared_objects_secrets_are_not_shown(fields: dict[str, Any]) -> None:
    items = diff_objects({}, {("resource", "by-hand"): PlatformObject("resource", "by-hand", fields, owned=False)},
                         prune=False)

    assert [i.change for i in items] == [Change.DELETE]
    assert TOKEN not in json.dumps([i.as_json() for i in items], default=str)
