"""Injection through names and values: names that would reach registry tables, Retool objects,
URLs or PostgreSQL identifiers are refused by validation in plain words; values are free text and
are stored verbatim — applied, read back and compared with no drift, on a SQLite and on a
PostgreSQL registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml

from reconciler.desired.loader import load
from reconciler.errors import ValidationError
from reconciler.providers.registry import tables
from reconciler.source.trees import DirectoryTree
from tests.conftest import World, cli

NAME_RULE = "a name has 1 to 100 letters, digits, '.', '_' or '-', and starts with a letter or digit"
VARIABLE_RULE = "a variable name has 1 to 100 letters, digits or '_', and does not start with a digit"
SCHEMA_RULE = "a schema name has 1 to 63 lower-case letters, digits or '_', and does not start with a digit"
OPTION_RULE = "an option key has 1 to 100 letters, digits, '.', '_' or '-'"


def problems(folder: Path) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(folder))
    return [str(p) for p in caught.value.problems]


def add(folder: Path, document: dict[str, Any]) -> None:
    (folder / "extra.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


HOSTILE_NAMES = [
    "x'; drop table registry_groups; --",
    '"quoted"',
    "\u0441rm-db",  # Cyrillic es, looks like 'crm-db'
    "crm-db\u200b",  # a zero-width space at the end
    "crm\u2011db",  # a non-breaking hyphen
    "a" * 101,
    "../x",
    "a/b",
    "-leading-dash",
    "two words",
    "line\nbreak",
    "$(whoami)",
    "",
]


def shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:60]) + "..."


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_object_name_is_refused_in_plain_words(example_copy: Path, name: str) -> None:
    add(example_copy, {"kind": "Group", "name": name})
    assert problems(example_copy) == [f"extra.yaml:2: Group: name: {shown(name)} is not allowed; {NAME_RULE}"]


@pytest.mark.parametrize("name", ["API_KEY; DROP TABLE registry_config_variables", "1ST", "api-key", "\u0391PI"])
def test_a_hostile_variable_name_is_refused_in_plain_words(example_copy: Path, name: str) -> None:
    add(example_copy, {"kind": "ConfigVariable", "name": name, "values": {"default": "x"}})
    assert problems(example_copy) == [
        f"extra.yaml:2: ConfigVariable: name: {shown(name)} is not allowed; {VARIABLE_RULE}"]


def test_a_reference_to_a_lookalike_name_is_refused(example_copy: Path) -> None:
    app = example_copy / "apps/customer-support-dashboard.yaml"
    app.write_text(app.read_text().replace("resources: [crm-db, crm-api]", "resources: [\u0441rm-db, crm-api]"))
    assert problems(example_copy) == [
        "apps/customer-support-dashboard.yaml:7: App 'customer-support-dashboard': resources.0: '\u0441rm-db' is not "
        f"allowed; {NAME_RULE}"]


@pytest.mark.parametrize("schema", ["public; drop schema x", "Public", '"public"', "public.customers", "a" * 64,
                                    "pg_temp; select 1", ""])
def test_a_managed_schema_that_is_not_a_plain_identifier_is_refused(example_copy: Path, schema: str) -> None:
    database = example_copy / "databases/crm.yaml"
    database.write_text(database.read_text().replace("managed_schemas: [public]",
                                                     f"managed_schemas: [{json.dumps(schema)}]"))
    assert problems(example_copy) == [
        f"databases/crm.yaml:5: Database 'crm': managed_schemas.0: {shown(schema)} is not allowed; {SCHEMA_RULE}"]


def test_a_hostile_option_key_is_refused(example_copy: Path) -> None:
    add(example_copy, {"kind": "Resource", "name": "api", "type": "restapi",
                       "options": {"url'; drop table registry_resources; --": "x"}})
    assert problems(example_copy) == [
        "extra.yaml:5: Resource 'api': options: key \"url'; drop table registry_resources; --\" is not allowed; "
        f"{OPTION_RULE}"]


def test_an_option_shaped_like_a_stored_secret_is_refused(example_copy: Path) -> None:
    add(example_copy, {"kind": "Resource", "name": "api", "type": "restapi",
                       "options": {"headers": {"$sensitive": "${secret:CRM_DB_STAGING_PASSWORD}", "fingerprint": "x"}}})
    assert problems(example_copy) == [
        "extra.yaml:5: Resource 'api': a mapping with exactly the keys '$sensitive' and 'fingerprint' is reserved "
        "for stored secrets; rename a key"]


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf"])
def test_a_number_json_cannot_hold_is_refused(example_copy: Path, number: str) -> None:
    (example_copy / "extra.yaml").write_text(f"kind: Resource\nname: api\ntype: restapi\noptions:\n  ratio: {number}\n")
    assert problems(example_copy) == [f"extra.yaml:5: {number!r} is not a finite number; quote it if you mean text"]


# -- values are stored verbatim -------------------------------------------------------------------------

HOSTILE_VALUES = {
    "sql": "x'; drop table registry_config_variables; --",
    "or": "' OR '1'='1",
    "quotes": 'say "hi" and \'bye\'',
    "newlines": "line 1\nline 2\r\nline 3\ttabbed",
    "backslashes": "C:\\temp\\x00 and \\n (backslashes, not escapes)",
    "secret_like": "$(secret:X) {{secret:X}} %{secret:X} $secret:X and an unclosed ${secret:X",
    "json_like": '{"$sensitive": "x", "fingerprint": "y"}',
    "unicode": "e\u0301 \u00e9 \u202eevil\u202c \U0001f600 \u200b \ufeff",
    "html": "<script>alert(1)</script>",
    "long": "0123456789" * 990,
}
DESCRIPTION = "Robert'); DROP TABLE registry_resources;-- \"quoted\" \\ \n second line"
OPTIONS: dict[str, Any] = {
    "query": "select * from t where a = 'b'; drop table x; --",
    "nested": {"$ref": "not a reference", "deep": [None, True, 0, -0.0, 1e-300, 10**30, "\u00e9"]},
    "empty": "",
    "spaces": "   ",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, pyworld: World) -> Iterator[str]:
    """The registry database of ``pyworld``: the default SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        pyworld.configure(platform={"url": f"sqlite:///{pyworld.root / 'registry.db'}"})
        yield f"sqlite:///{pyworld.root / 'registry.db'}"
        return
    name = "registry_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pyworld.pg.url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = pyworld.pg.database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    pyworld.configure(platform={"url": url})
    yield url


def test_hostile_values_round_trip_through_the_registry_with_no_drift(pyworld: World, registry_url: str) -> None:
    variables = [{"kind": "ConfigVariable", "name": f"HOSTILE_{key.upper()}", "description": DESCRIPTION,
                  "values": {"default": value}} for key, value in HOSTILE_VALUES.items()]
    resource = {"kind": "Resource", "name": "hostile-api", "type": "restapi", "description": DESCRIPTION,
                "options": OPTIONS}
    pyworld.write("hostile.yaml", yaml.safe_dump_all([*variables, resource], sort_keys=False))
    commit = pyworld.commit("Values that look like SQL, markup, escapes and secrets")

    applied = cli(pyworld, "apply", "staging")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    drift = cli(pyworld, "drift", "staging")
    assert (drift.exit_code, drift.stdout.splitlines()[0]) == (
        0, f"Drift in staging against {commit[:12]} (main): no drift")

    engine = sa.create_engine(registry_url)
    try:
        with engine.connect() as conn:
            stored = {row.name: (row.value, row.description) for row in conn.execute(
                sa.select(tables.config_variables).where(tables.config_variables.c.environment == "staging"))}
            resource_row = conn.execute(sa.select(tables.resources).where(
                tables.resources.c.environment == "staging", tables.resources.c.name == "hostile-api")).one()
            groups = conn.execute(sa.select(sa.func.count()).select_from(tables.groups)).scalar_one()
    finally:
        engine.dispose()
    for key, value in HOSTILE_VALUES.items():
        assert stored[f"HOSTILE_{key.upper()}"] == (value, DESCRIPTION), key
    assert (resource_row.options, resource_row.description) == (OPTIONS, DESCRIPTION)
    assert groups == 2  # registry_groups is intact, with staging's two groups
