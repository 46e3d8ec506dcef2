"""``reconciler validate``: every error class of SPEC §2, with file and line, all reported at once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reconciler.desired.loader import load
from reconciler.errors import ValidationError
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE, cli


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, target)
    return target


def problems(folder: Path) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(folder))
    return [str(p) for p in caught.value.problems]


def edit(folder: Path, relative: str, old: str, new: str) -> None:
    path = folder / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


def test_the_example_is_valid() -> None:
    result = cli(None, "validate", str(EXAMPLE))
    assert result.exit_code == 0
    assert "15 documents" in result.stdout
    assert "staging → production" in result.stdout


def test_bad_yaml_names_file_and_line(folder: Path) -> None:
    edit(folder, "groups.yaml", "description: Support engineers", "description: [unclosed")
    assert problems(folder) == ["groups.yaml:4: invalid YAML: did not find expected ',' or ']' "
                                "(parsing a flow sequence started on line 3)"]


def test_unknown_field_points_at_its_line(folder: Path) -> None:
    edit(folder, "environments/production.yaml", "  prereleases: false", "  prerelease: false")
    found = problems(folder)
    assert found == ["environments/production.yaml:9: Environment 'production': unknown field 'track.prerelease' "
                     "(check the spelling; unknown fields are not allowed)"]


def test_missing_required_field(folder: Path) -> None:
    edit(folder, "resources/segment.yaml", "type: restapi\n", "")
    assert problems(folder) == ["resources/segment.yaml:1: Resource 'segment': missing required field 'type'"]


def test_a_resource_type_retools_api_cannot_create_is_refused_at_its_line(folder: Path) -> None:
    edit(folder, "resources/segment.yaml", "type: restapi\n", "type: s3\n")
    assert problems(folder) == ["resources/segment.yaml:3: Resource 'segment': type 's3' cannot be created through "
                                "Retool's API; use one of dbServer, mysql, postgresql, redshift, restapi, snowflake"]


def test_unknown_kind(folder: Path) -> None:
    (folder / "extra.yaml").write_text("kind: Dashboard\nname: x\n")
    assert problems(folder) == ["extra.yaml:1: unknown kind 'Dashboard' (known kinds: App, Check, ConfigVariable, "
                                "Database, Environment, Group, Resource, Space)"]


def test_duplicate_name(folder: Path) -> None:
    (folder / "more-groups.yaml").write_text("kind: Group\nname: support-team\n")
    found = problems(folder)
    assert found == ["more-groups.yaml:2: duplicate Group 'support-team' (first declared at groups.yaml:2)"]


def test_reference_to_undeclared_objects(folder: Path) -> None:
    edit(folder, "apps/customer-support-dashboard.yaml", "resources: [crm-db, crm-api]", "resources: [crm-db, crm-apx]")
    edit(folder, "apps/customer-support-dashboard.yaml", "config: [API_CRM_BASE_URL, SUPPORT_EMAIL]",
         "config: [API_CRM_BASE_URL, SUPPORT_MAIL]")
    edit(folder, "apps/customer-support-dashboard.yaml", "databases: [crm]", "databases: [crmx]")
    edit(folder, "apps/customer-support-dashboard.yaml", "  use: [support-team]", "  use: [support-crew]")
    edit(folder, "resources/crm-db.yaml", "  staging:\n", "  stagin:\n")
    found = problems(folder)
    assert "apps/customer-support-dashboard.yaml:7: App 'customer-support-dashboard': reference to undeclared " \
           "resource 'crm-apx'" in found
    assert "apps/customer-support-dashboard.yaml:8: App 'customer-support-dashboard': reference to undeclared " \
           "config variable 'SUPPORT_MAIL'" in found
    assert "apps/customer-support-dashboard.yaml:9: App 'customer-support-dashboard': reference to undeclared " \
           "database 'crmx'" in found
    assert "apps/customer-support-dashboard.yaml:11: App 'customer-support-dashboard': reference to undeclared " \
           "group 'support-crew'" in found
    assert any(p.startswith("resources/crm-db.yaml:10: Resource 'crm-db': unknown environment 'stagin'") for p in found)
    assert len(found) >= 5  # every problem at once, not the first only


def test_app_environment_without_config_value(folder: Path) -> None:
    edit(folder, "config/variables.yaml", "  default: support-staging@example.com\n", "")
    found = problems(folder)
    assert found == ["apps/customer-support-dashboard.yaml:8: App 'customer-support-dashboard': config variable "
                     "'SUPPORT_EMAIL' has no value for environment 'staging'"]


def test_literal_secret_is_an_error(folder: Path) -> None:
    edit(folder, "config/variables.yaml", '  production: "${secret:SEGMENT_PRODUCTION_KEY}"', "  production: abc123")
    edit(folder, "resources/crm-db.yaml", 'password: "${secret:CRM_DB_PRODUCTION_PASSWORD}"', "password: hunter2")
    found = problems(folder)
    assert "config/variables.yaml:22: ConfigVariable 'SEGMENT_WRITE_KEY': a secret variable's value must be a " \
           "${secret:NAME} reference, not a literal" in found
    assert any(p.startswith("resources/crm-db.yaml:21: Resource 'crm-db': option 'password' holds a literal secret")
               for p in found)


def test_schema_path_outside_the_root(folder: Path) -> None:
    edit(folder, "databases/crm.yaml", "schema: databases/crm ", "schema: ../../etc ")
    found = problems(folder)
    assert found == ["databases/crm.yaml:4: Database 'crm': schema '../../etc' is outside the desired-state folder; "
                     "use a path relative to it"]


def test_schema_path_behind_a_symlink(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.move(folder / "databases" / "crm", outside)
    os.symlink(outside, folder / "databases" / "crm")
    found = problems(folder)
    assert found == ["databases/crm.yaml:4: Database 'crm': schema 'databases/crm' goes through the symbolic link "
                     "'databases/crm'; links are not followed"]


def test_sql_that_does_not_parse(folder: Path) -> None:
    edit(folder, "databases/crm/002_tickets.sql", "create index tickets_customer_id_idx", "create indx tickets_idx")
    assert problems(folder) == ['databases/crm/002_tickets.sql:13: SQL does not parse: syntax error at or near "indx"']


def test_newer_format_version_is_refused(folder: Path) -> None:
    edit(folder, "reconciler.yaml", "version: 1", "version: 2")
    found = problems(folder)
    assert found == ["reconciler.yaml:2: reconciler.yaml: version: format version 2 is newer than this reconciler "
                     "understands (1); upgrade reconciler"]


def test_several_problems_reported_at_once_by_the_cli(folder: Path) -> None:
    edit(folder, "groups.yaml", "description: Support engineers", "descripton: Support engineers")
    edit(folder, "resources/segment.yaml", "type: restapi\n", "")
    result = cli(None, "validate", str(folder))
    assert result.exit_code == 1
    assert "has 2 problems" in result.stderr
    assert "groups.yaml:3: Group 'support-team': unknown field 'descripton'" in result.stderr
    assert "resources/segment.yaml:1: Resource 'segment': missing required field 'type'" in result.stderr


def test_json_output_lists_problems(folder: Path) -> None:
    edit(folder, "resources/segment.yaml", "type: restapi\n", "")
    result = cli(None, "validate", str(folder), "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"valid": False, "problems": [
        {"file": "resources/segment.yaml", "line": 1, "message": "Resource 'segment': missing required field 'type'"}]}


def test_yaml_inside_app_source_is_not_desired_state(folder: Path) -> None:
    (folder / "apps" / "customer-support-dashboard" / "more.yaml").write_text("kind: NotOurs\n: [bad yaml\n")
    assert load(DirectoryTree(folder)).document_count() == 15


def test_every_problem_at_once_across_the_structural_and_the_reference_checks(folder: Path) -> None:
    """A YAML error, an unknown field, a literal secret and bad SQL do not hide an undeclared group, and a
    broken document's names are not echoed as undeclared references (the app uses crm-api and
    SUPPORT_EMAIL, whose documents are broken)."""
    edit(folder, "resources/crm-api.yaml", "description: CRM REST API", "description: [CRM REST API")
    edit(folder, "config/variables.yaml", "description: Where the dashboard", "descripton: Where the dashboard")
    edit(folder, "resources/crm-db.yaml", 'password: "${secret:CRM_DB_STAGING_PASSWORD}"', "password: hunter2")
    edit(folder, "databases/crm/002_tickets.sql", "create table", "create tabel")
    edit(folder, "environments/production.yaml", "  use: [support-team]", "  use: [suport-team]")
    assert problems(folder) == [
        "config/variables.yaml:11: ConfigVariable 'SUPPORT_EMAIL': unknown field 'descripton' (check the "
        "spelling; unknown fields are not allowed)",
        'databases/crm/002_tickets.sql:4: SQL does not parse: syntax error at or near "tabel"',
        "environments/production.yaml:20: Environment 'production': reference to undeclared group 'suport-team'",
        "resources/crm-api.yaml:5: invalid YAML: did not find expected ',' or ']' (parsing a flow sequence "
        "started on line 4)",
        "resources/crm-db.yaml:15: Resource 'crm-db': option 'password' holds a literal secret; reference it as "
        "${secret:NAME} and provide the value through a secret backend",
    ]
    result = cli(None, "validate", str(folder))
    assert result.exit_code == 1
    assert "has 5 problems" in result.stderr


def test_the_other_documents_of_a_broken_file_are_still_checked(folder: Path) -> None:
    edit(folder, "groups.yaml", "description: Support engineers", "description: [Support engineers")
    edit(folder, "groups.yaml", "name: platform-admins\n", "name: platform-admins\nmembres: []\n")
    assert problems(folder) == [
        "groups.yaml:4: invalid YAML: did not find expected ',' or ']' (parsing a flow sequence started on line 3)",
        "groups.yaml:7: Group 'platform-admins': unknown field 'membres' (check the spelling; unknown fields are "
        "not allowed)",
    ]


def test_an_unknown_field_does_not_hide_the_rest_of_its_document(folder: Path) -> None:
    edit(folder, "apps/customer-support-dashboard.yaml", "description:", "descripton:")
    edit(folder, "apps/customer-support-dashboard.yaml", "  use: [support-team]", "  use: [suport-team]")
    assert problems(folder) == [
        "apps/customer-support-dashboard.yaml:3: App 'customer-support-dashboard': unknown field 'descripton' "
        "(check the spelling; unknown fields are not allowed)",
        "apps/customer-support-dashboard.yaml:11: App 'customer-support-dashboard': reference to undeclared "
        "group 'suport-team'",
    ]


def test_a_misspelt_field_that_changes_the_meaning_raises_no_echo(folder: Path) -> None:
    """Without its misspelt 'environments', the app would need production too, where crm-db is not configured;
    that would be an echo of the typo, not a second problem."""
    edit(folder, "apps/customer-support-dashboard.yaml", "environments: [staging, production]",
         "environment: [staging]")
    edit(folder, "resources/crm-db.yaml", "  production:\n    options:\n      host: db.internal\n      database: crm\n"
         "      username: retool\n      password: \"${secret:CRM_DB_PRODUCTION_PASSWORD}\"\n", "")
    assert problems(folder) == [
        "apps/customer-support-dashboard.yaml:6: App 'customer-support-dashboard': unknown field 'environment' "
        "(check the spelling; unknown fields are not allowed)",
    ]


def test_a_broken_reconciler_yaml_does_not_hide_the_other_problems(folder: Path) -> None:
    edit(folder, "reconciler.yaml", "version: 1", "version: [1")
    edit(folder, "environments/production.yaml", "  use: [support-team]", "  use: [suport-team]")
    found = problems(folder)
    assert [p.split(": ")[0] for p in found] == ["environments/production.yaml:20", "reconciler.yaml:3"]
    assert found[0].endswith("reference to undeclared group 'suport-team'")


def test_with_a_config_an_app_declared_for_part_of_a_shared_retool_instance_is_refused(
    folder: Path, tmp_path: Path,
) -> None:
    edit(folder, "apps/customer-support-dashboard.yaml", "environments: [staging, production]",
         "environments: [staging]")
    shutil.rmtree(folder / "checks")  # the example's checks look at the app in production
    shared = tmp_path / "shared.toml"
    shared.write_text('[platform]\nprovider = "retool"\nhost = "https://retool.example.com"\n'
                      'token = "${secret:RETOOL_TOKEN}"\n')
    separate = tmp_path / "separate.toml"
    separate.write_text('[platform]\nprovider = "retool"\n' + "".join(
        f'[[platform.instances]]\nname = "{env}"\nhost = "https://{env}.retool.example.com"\n'
        f'token = "${{secret:RETOOL_{env.upper()}_TOKEN}}"\nenvironments = ["{env}"]\n'
        for env in ("staging", "production")))

    refused = cli(None, "validate", str(folder), "--config", str(shared))

    assert refused.exit_code == 1
    assert ("apps/customer-support-dashboard.yaml:6: App 'customer-support-dashboard': environments staging, "
            "production share instance 'retool'") in refused.stderr
    assert "missing: production" in refused.stderr
    assert cli(None, "validate", str(folder)).exit_code == 0  # without a config the topology is unknown
    assert cli(None, "validate", str(folder), "--config", str(separate)).exit_code == 0
