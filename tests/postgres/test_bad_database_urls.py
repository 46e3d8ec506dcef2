"""A Database URL secret that is not a postgresql:// URL: named by its reference, its value never shown.

The URL comes from a secret (``${secret:CRM_DB_STAGING_ADMIN_URL}``); when its value is a
keyword/value connection string, another scheme or a URL that cannot be parsed, plan and apply
exit 1 with one line naming the Database, the environment and the reference, and saying what a
good URL looks like. The value (it may hold a password) appears nowhere: not in stdout, stderr,
status or history.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import World, cli, cli_process

REFERENCE = "${secret:CRM_DB_STAGING_ADMIN_URL}"
EXPECTED = "(expected postgresql://user@host:5432/db or postgresql://user@/db?host=/socket/dir)"

BAD_URLS = {
    "keyword/value string": "host=db.internal port=5432 dbname=crm user=admin password=Pw-kv-6Yq1",
    "unclosed IPv6 bracket": "postgresql://admin:Pw-ipv6-3Rt8@[bad/crm",
    "port that is no number": "postgresql://admin:Pw-port-9Qe2@db.internal:54x32/crm",
    "another scheme": "mysql://admin:Pw-mysql-1Lp0@db.internal/crm",
}
PASSWORDS = ("Pw-kv-6Yq1", "Pw-ipv6-3Rt8", "Pw-port-9Qe2", "Pw-mysql-1Lp0")


def run(world: World, *args: str, url: str) -> tuple[int, str]:
    done = cli_process(*args, "--config", str(world.config), env={"CRM_DB_STAGING_ADMIN_URL": url})
    return done.exit_code, done.stdout + done.stderr


def assert_nothing_leaks(text: str, url: str) -> None:
    assert url not in text
    for password in PASSWORDS:
        assert password not in text
    assert "54x32" not in text and "Traceback" not in text and "unexpected" not in text


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_plan_names_the_database_and_the_reference(pyworld: World, url: str) -> None:
    code, output = run(pyworld, "plan", "staging", url=url)
    assert code == 1, output
    assert f"database crm (staging): the URL from {REFERENCE} is not " in output
    assert EXPECTED in output
    assert_nothing_leaks(output, url)


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_apply_fails_naming_the_reference_and_records_no_value(pyworld: World, url: str) -> None:
    code, output = run(pyworld, "apply", "staging", url=url)
    assert code == 1, output
    assert f"database crm (staging): the URL from {REFERENCE} is not " in output
    assert_nothing_leaks(output, url)
    # What the failed run left, read in process (the good URL is in our environment, as it is for an operator).
    status = cli(pyworld, "status", "--format", "json")
    staging = next(e for e in json.loads(status.stdout)["environments"] if e["name"] == "staging")
    assert staging["state"] == "Failed"
    assert REFERENCE in staging["reason"]
    history = cli(pyworld, "history", "staging", "--format", "json")
    assert_nothing_leaks(status.stdout + history.stdout, url)
    assert pyworld.query("staging", "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]
