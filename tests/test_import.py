"""``reconciler import``: what runs becomes a desired state that validates and plans no changes.

The platform is a real registry seeded by applying the example; the databases are real PostgreSQL
databases on the session's embedded server, given a schema by hand (tables, indexes, views,
functions, constraints, sequences, triggers). After an import into an empty folder, that folder is
committed to a new Git repository and planned against the same registry and databases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
import yaml

from reconciler.adopt.documents import LiveEnvironment, build
from reconciler.errors import ProviderError
from reconciler.providers.base import PlatformObject
from reconciler.providers.postgres.dumping import choose_pg_dump, clean_dump, dump_schema
from reconciler.providers.postgres.urls import with_database
from reconciler.source import workspace
from tests.conftest import World, cli

# Objects added by hand to staging's CRM database, beyond what the example declares.
BY_HAND = """
create sequence invoice_numbers start 1000 increment 5;
create table notes (
    id         serial primary key,
    ticket_id  bigint not null references tickets (id) on delete cascade,
    body       text not null check (length(body) > 0),
    invoice    integer default nextval('invoice_numbers'),
    unique (ticket_id, body)
);
create index notes_body_idx on notes (lower(body)) where body <> '';
create function ticket_age(t tickets) returns interval language sql stable as $$ select now() - t.opened_at $$;
create function trim_body() returns trigger language plpgsql as $$
begin
    new.body := trim(new.body);
    return new;
end $$;
create trigger notes_trim before insert or update on notes for each row execute function trim_body();
create materialized view tickets_per_customer as select customer_id, count(*) as tickets from tickets group by 1;
create view long_notes as select n.id, n.body from notes n where length(n.body) > 200;
comment on table notes is 'What agents wrote about a ticket';
"""


def seed(world: World) -> None:
    """The example applied to staging and released to production: the registry and databases hold it."""
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0


def provide_database_urls(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL_STAGING", world.databases["staging"])
    monkeypatch.setenv("CRM_DATABASE_URL_PRODUCTION", world.databases["production"])


def adopt(world: World, folder: Path) -> None:
    """Point the reconciler at a new repository whose desired state is ``folder``."""
    repo = world.root / "adopted"
    shutil.copytree(folder, repo / "desired-state")
    workspace.init(repo)
    workspace.commit_all(repo, "Adopt what runs")
    world.configure(source={"url": str(repo)})


def written_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def test_an_imported_registry_validates_and_plans_no_changes(pyworld: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = pyworld
    seed(world)
    provide_database_urls(world, monkeypatch)
    out = world.root / "imported"

    result = cli(world, "import", "--env", "staging", "--env", "production", "--database", "crm", "--out", str(out))

    assert result.exit_code == 0, result.stdout + result.stderr
    assert cli(None, "validate", str(out)).exit_code == 0
    adopt(world, out)
    staging = cli(world, "plan", "staging", "--format", "json")
    assert json.loads(staging.stdout)["items"] == []
    assert staging.exit_code == 0
    production = cli(world, "plan", "production", "--rev", "main", "--format", "json")
    assert json.loads(production.stdout)["items"] == []
    assert production.exit_code == 0


def test_an_import_writes_per_environment_options_once_and_secret_references(
    pyworld: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = pyworld
    seed(world)
    provide_database_urls(world, monkeypatch)
    out = world.root / "imported"

    result = cli(world, "import", "--env", "staging", "--env", "production", "--database", "crm", "--out", str(out),
                 "--format", "json")

    assert result.exit_code == 0, result.stderr
    crm_db = yaml.safe_load((out / "resources/crm-db.yaml").read_text())
    assert crm_db["options"] == {"port": 5432, "ssl": True, "database": "crm", "username": "retool"}
    assert crm_db["environments"] == {
        "staging": {"options": {"host": "db-staging.internal", "password": "${secret:CRM_DB_STAGING_PASSWORD}"}},
        "production": {"options": {"host": "db.internal", "password": "${secret:CRM_DB_PRODUCTION_PASSWORD}"}},
    }
    variables = {d["name"]: d for d in yaml.safe_load_all((out / "config/variables.yaml").read_text())}
    assert variables["SUPPORT_EMAIL"]["values"] == {"staging": "support-staging@example.com",
                                                    "production": "support@example.com"}
    database = yaml.safe_load((out / "databases/crm.yaml").read_text())
    assert database["environments"] == {"staging": {"url": "${secret:CRM_DATABASE_URL_STAGING}"},
                                        "production": {"url": "${secret:CRM_DATABASE_URL_PRODUCTION}"}}
    report = json.loads(result.stdout)
    assert {s["name"] for s in report["secrets"]} == {
        "CRM_DB_STAGING_PASSWORD", "CRM_DB_PRODUCTION_PASSWORD", "CRM_API_STAGING_TOKEN", "CRM_API_PRODUCTION_TOKEN",
        "SEGMENT_STAGING_KEY", "SEGMENT_PRODUCTION_KEY", "CRM_DATABASE_URL_STAGING", "CRM_DATABASE_URL_PRODUCTION",
    }
    assert all(s["provided"] for s in report["secrets"])
    assert report["notes"] == []
    leaked = [v for v in [*world.secrets.values(), *world.databases.values()]
              if v in written_text(out) or v in result.stdout or v in result.stderr]
    assert leaked == []


def test_a_hand_made_schema_is_imported_as_sql_that_reloads_to_the_same_schema(
    pyworld: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = pyworld
    assert cli(world, "apply", "staging").exit_code == 0
    with psycopg.connect(world.databases["staging"], autocommit=True) as conn:
        conn.execute(BY_HAND)
    monkeypatch.setenv("CRM_DATABASE_URL_STAGING", world.databases["staging"])
    out = world.root / "imported"

    result = cli(world, "import", "--env", "staging", "--database", "crm", "--out", str(out))

    assert result.exit_code == 0, result.stdout + result.stderr
    adopt(world, out)
    plan = cli(world, "plan", "staging", "--format", "json")
    assert json.loads(plan.stdout)["items"] == []
    # Beyond what the diff engine compares: loaded into an empty database, the file dumps the same.
    reloaded = "reloaded_" + Path(world.databases["staging"].split("?")[0]).name
    with psycopg.connect(world.pg.url, autocommit=True) as conn:
        conn.execute(f"create database {reloaded}")
    sql = (out / "databases/crm/schema.sql").read_text()
    with psycopg.connect(with_database(world.pg.url, reloaded), autocommit=True) as conn:
        conn.execute(sql.encode())
    assert dump_schema(with_database(world.pg.url, reloaded), ["public"]) == dump_schema(
        world.databases["staging"], ["public"])
    for name in ("notes_body_idx", "ticket_age", "trim_body", "notes_trim", "tickets_per_customer", "long_notes",
                 "invoice_numbers", "notes_ticket_id_fkey", "notes_body_check"):
        assert name in sql


def test_existing_files_are_not_overwritten_without_force(pyworld: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = pyworld
    seed(world)
    out = world.root / "imported"
    (out / "resources").mkdir(parents=True)
    (out / "resources/crm-db.yaml").write_text("# mine\n")

    refused = cli(world, "import", "--env", "staging", "--out", str(out))

    assert refused.exit_code == 1
    assert f"{out / 'resources/crm-db.yaml'} already exists" in refused.stderr
    assert "--force" in refused.stderr
    assert (out / "resources/crm-db.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in out.rglob("*")) == ["crm-db.yaml", "resources"]
    forced = cli(world, "import", "--env", "staging", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "kind: Resource" in (out / "resources/crm-db.yaml").read_text()


def test_every_missing_database_url_is_named_before_anything_is_read(pyworld: World) -> None:
    out = pyworld.root / "imported"

    result = cli(pyworld, "import", "--env", "staging", "--env", "production", "--database", "crm", "--out", str(out))

    assert result.exit_code == 1
    assert "CRM_DATABASE_URL_STAGING, CRM_DATABASE_URL_PRODUCTION" in result.stderr
    assert not out.exists()


def test_values_a_platform_hides_or_shows_in_clear_become_secret_references() -> None:
    hidden = object()  # what Retool's provider reads for a masked value
    staging = LiveEnvironment("staging", {
        ("environment", "staging"): PlatformObject("environment", "staging", {"description": "", "color": None}),
        ("resource", "billing-api"): PlatformObject("resource", "billing-api", {
            "type": "restapi", "description": "", "folder": None,
            "options": {"base_url": "https://billing.example.com", "authorization": "Bearer tok-Zq8sW3pLx0",
                        "api_key": hidden, "headers": {"X-Api-Token": "hdr-Zq8sW3pLx0"},
                        "oauth2_token_url": "https://billing.example.com/token", "cookies_to_forward": ["session"]},
        }),
        ("config-variable", "STRIPE_KEY"): PlatformObject("config-variable", "STRIPE_KEY", {
            "description": "", "secret": True, "value": "sk-Zq8sW3pLx0"}),
    })

    imported = build([staging])

    text = b"\n".join(imported.files.values()).decode()
    assert "Zq8sW3pLx0" not in text
    resource = yaml.safe_load(imported.files["resources/billing-api.yaml"])
    assert resource["options"] == {
        "base_url": "https://billing.example.com",
        "authorization": "Bearer ${secret:BILLING_API_AUTHORIZATION_STAGING}",
        "api_key": "${secret:BILLING_API_API_KEY_STAGING}",
        "headers": {"X-Api-Token": "${secret:BILLING_API_HEADERS_X_API_TOKEN_STAGING}"},
        "oauth2_token_url": "https://billing.example.com/token",
        "cookies_to_forward": ["session"],
    }
    variable = yaml.safe_load(imported.files["config/variables.yaml"])
    assert variable["values"] == {"staging": "${secret:STRIPE_KEY_STAGING}"}
    assert sorted(imported.secrets) == ["BILLING_API_API_KEY_STAGING", "BILLING_API_AUTHORIZATION_STAGING",
                                        "BILLING_API_HEADERS_X_API_TOKEN_STAGING", "STRIPE_KEY_STAGING"]


def test_a_value_several_environments_share_is_written_once() -> None:
    def env(name: str, url: str, password: str) -> LiveEnvironment:
        return LiveEnvironment(name, {
            ("config-variable", "API_URL"): PlatformObject("config-variable", "API_URL", {
                "description": "", "secret": False, "value": url}),
            ("resource", "db"): PlatformObject("resource", "db", {
                "type": "postgresql", "description": "", "folder": None,
                "options": {"host": url, "port": 5432, "password": password}}),
        })

    imported = build([env("dev", "https://a", "pw-1"), env("staging", "https://a", "pw-1"),
                      env("production", "https://b", "pw-2")])

    variable = yaml.safe_load(imported.files["config/variables.yaml"])
    assert variable["values"] == {"default": "https://a", "production": "https://b"}
    resource = yaml.safe_load(imported.files["resources/db.yaml"])
    assert resource["options"] == {"port": 5432}
    assert resource["environments"] == {
        "dev": {"options": {"host": "https://a", "password": "${secret:DB_PASSWORD_DEV}"}},
        "staging": {"options": {"host": "https://a", "password": "${secret:DB_PASSWORD_STAGING}"}},
        "production": {"options": {"host": "https://b", "password": "${secret:DB_PASSWORD_PRODUCTION}"}},
    }
    assert b"pw-1" not in b"".join(imported.files.values())


def test_what_the_format_cannot_express_is_left_out_with_a_note() -> None:
    def grant(group: str, object_type: str, name: str, access: str) -> PlatformObject:
        return PlatformObject("permission", f"{group}/{object_type}/{name}",
                              {"group": group, "object_type": object_type, "object": name, "access": access})

    objects = {
        ("group", "ops"): PlatformObject("group", "ops", {"description": ""}),
        ("resource", "a"): PlatformObject("resource", "a", {"type": "restapi", "description": "", "folder": None,
                                                            "options": {}}),
        ("resource", "b"): PlatformObject("resource", "b", {"type": "restapi", "description": "", "folder": None,
                                                            "options": {}}),
        ("resource", "Billing DB"): PlatformObject("resource", "Billing DB", {"type": "restapi", "description": "",
                                                                              "folder": None, "options": {}}),
        ("folder", "Unused"): PlatformObject("folder", "Unused", {}),
    }
    for permission in (grant("ops", "resource", "a", "use"), grant("ops", "folder", "Unused", "use")):
        objects[permission.key] = permission

    imported = build([LiveEnvironment("staging", objects)])

    assert "resources/Billing DB.yaml" not in imported.files
    assert sorted(imported.notes) == sorted([
        "Resource 'Billing DB' left out: name: a name has 1 to 100 letters, digits, '.', '_' or '-', and starts "
        "with a letter or digit (rename it in the platform, then import again)",
        "permission ops/folder/Unused (staging) left out: the format has no place for use access on a folder",
        "staging: group ops has different access to different resources (a: use); environment access is the "
        "same for every resource, so these grants were left out",
        "folder Unused (staging) holds no imported resource or app; the format declares folders through them, "
        "so it was left out",
        "environment staging was not found on the platform; its declaration will plan as a create",
    ])
    environment = yaml.safe_load(imported.files["environments/staging.yaml"])
    assert "access" not in environment


def fake_pg_dump(tmp_path: Path, version: str) -> Path:
    """A stand-in pg_dump that reports ``version`` and records its arguments and PGPASSWORD."""
    script = tmp_path / f"pg_dump_{version}"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) {version}"; exit 0; fi
printf '%s\\n' "$@" > "{tmp_path}/argv"
printf '%s' "$PGPASSWORD" > "{tmp_path}/password"
echo "CREATE SCHEMA public;"
""")
    script.chmod(0o755)
    return script


def test_pg_dump_gets_the_password_from_the_environment_never_the_command_line(tmp_path: Path) -> None:
    script = fake_pg_dump(tmp_path, "16.2")

    sql = dump_schema("postgresql://crm:pw-Zq8sW3pLx0@db.internal:5432/crm", ["public", "audit"], pg_dump=script)

    argv = (tmp_path / "argv").read_text()
    assert "pw-Zq8sW3pLx0" not in argv
    assert (tmp_path / "password").read_text() == "pw-Zq8sW3pLx0"
    assert "--schema=public\n--schema=audit\n" in argv
    assert sql == "CREATE SCHEMA IF NOT EXISTS public;\n"


def test_a_server_newer_than_every_pg_dump_is_refused_with_what_to_install(tmp_path: Path) -> None:
    old = fake_pg_dump(tmp_path, "15.18")

    with pytest.raises(ProviderError) as refused:
        choose_pg_dump(16, [old])

    assert str(refused.value) == (f"the newest pg_dump found ({old}, version 15) is older than the server "
                                  "(version 16); install the PostgreSQL 16 client tools")
    assert choose_pg_dump(15, [old, fake_pg_dump(tmp_path, "16.2")]).name == "pg_dump_16.2"


def test_a_dump_is_made_fit_to_load_after_other_files() -> None:
    raw = ("\\restrict abc\n-- Dumped from database version 16.2\nSET statement_timeout = 0;\nSET lock_timeout = 0;\n"
           "SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n"
           "CREATE SCHEMA audit;\nCREATE TABLE audit.log (id integer);\n\\unrestrict abc\n")

    assert clean_dump(raw) == ("SET check_function_bodies = false;\nCREATE SCHEMA IF NOT EXISTS audit;\n"
                               "CREATE TABLE audit.log (id integer);\n")
