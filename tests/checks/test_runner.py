"""The check runner on a real PostgreSQL and real HTTP servers on loopback.

SQL checks run read-only within their timeout; HTTP checks judge status and JSON; a check that
hangs fails cleanly at its timeout; every secret a check uses is redacted from what comes out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
import structlog

from reconciler.checks.prepared import HttpProbe, PreparedCheck, SqlProbe
from reconciler.checks.results import CheckResult
from reconciler.checks.runner import run_check
from reconciler.providers.postgres.embedded import EmbeddedPostgres
from reconciler.secrets.backends import Secrets, StaticBackend
from tests.checks.servers import CrmApi, crm_api, silent_server

CANARY = "canary-Zq8sW3pLx0-check-secret"


@pytest.fixture(scope="module")
def crm_url(pg: EmbeddedPostgres) -> str:
    name = f"checks_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = pg.database_url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table customers (id int primary key, email text not null)")
        conn.execute("insert into customers values (1, 'a@example.com'), (2, 'b@example.com')")
        conn.execute("create sequence ticket_numbers")
    return url


def secrets(**values: str) -> Any:
    return Secrets([StaticBackend(values)]).resolve


def sql_check(query: str, expect_true: bool = False, at_least: int | None = None, exactly: int | None = None,
              timeout: float = 10.0) -> PreparedCheck:
    probe = SqlProbe("crm", "${secret:CHECK_DB_URL}", query, expect_true, at_least, exactly)
    return PreparedCheck("crm-check", "staging", None, "after-apply", timeout, probe)


def run_sql(crm_url: str, check: PreparedCheck, **extra: str) -> CheckResult:
    return run_check(check, secrets(CHECK_DB_URL=crm_url, **extra))


def customers(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("select count(*) from customers").fetchone()
    assert row is not None
    return int(row[0])


# -- SQL ---------------------------------------------------------------------------------------------


def test_a_query_that_returns_true_passes(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("select exists (select 1 from customers)", expect_true=True))
    assert (result.passed, result.detail, result.error) == (True, "true", None)
    assert (result.name, result.kind, result.target) == ("crm-check", "sql", "database crm")
    assert result.duration >= 0


@pytest.mark.parametrize(("query", "error"), [
    ("select false", "returned False; expected true"),
    ("select null::boolean", "returned null; expected true"),
    ("select 1", "returned 1; expected true"),
    ("select true where false", "returned no rows; expected one whose first column is true"),
])
def test_a_query_that_does_not_return_true_fails(crm_url: str, query: str, error: str) -> None:
    result = run_sql(crm_url, sql_check(query, expect_true=True))
    assert (result.passed, result.error) == (False, error)


def test_row_counts(crm_url: str) -> None:
    assert run_sql(crm_url, sql_check("select * from customers", at_least=1)).detail == "2 rows"
    assert run_sql(crm_url, sql_check("select * from customers", exactly=2)).passed
    assert run_sql(crm_url, sql_check("select * from customers", exactly=3)).error == \
        "returned 2 rows; expected exactly 3"
    assert run_sql(crm_url, sql_check("select * from customers where id > 5", at_least=1)).error == \
        "returned 0 rows; expected at least 1"


def test_a_percent_sign_in_a_query_is_sql_not_a_placeholder(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("select * from customers where email like '%@example.com'", exactly=2))
    assert result.passed, result.error


def test_a_check_that_deletes_is_refused_by_the_read_only_transaction(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("delete from customers returning id", at_least=0))
    assert not result.passed
    assert result.error == "refused: a check runs read-only and this one writes (cannot execute DELETE in a " \
                           "read-only transaction)"
    assert customers(crm_url) == 2


def test_a_check_cannot_make_its_transaction_read_write(crm_url: str) -> None:
    query = "do $$ begin set transaction read write; delete from customers; end $$"
    result = run_sql(crm_url, sql_check(query, at_least=0))
    assert (result.passed, result.error) == (False, "the query failed: transaction read-write mode must be set "
                                                    "before any query")
    assert customers(crm_url) == 2


def test_a_check_that_writes_through_a_function_is_refused_too(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("select nextval('ticket_numbers')", at_least=0))
    assert result.error == "refused: a check runs read-only and this one writes (cannot execute nextval() in a " \
                           "read-only transaction)"
    create = run_sql(crm_url, sql_check("create table sneaky (id int)", at_least=0))
    assert create.error == "refused: a check runs read-only and this one writes (cannot execute CREATE TABLE in " \
                           "a read-only transaction)"


def test_a_slow_query_times_out_and_fails_cleanly(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("select pg_sleep(60)", at_least=0, timeout=1))
    assert (result.passed, result.error) == (False, "timed out after 1s (statement_timeout)")


def test_a_query_waiting_for_a_lock_times_out(crm_url: str) -> None:
    with psycopg.connect(crm_url) as holder:
        holder.execute("lock table customers in access exclusive mode")
        result = run_sql(crm_url, sql_check("select * from customers", at_least=0, timeout=1))
        holder.rollback()
    assert (result.passed, result.error) == (False, "timed out after waiting 0.9s for a lock another session holds "
                                                    "(lock_timeout)")


def test_a_database_that_never_answers_times_out_cleanly() -> None:
    with silent_server() as address:
        url = f"postgresql://checker@{address}/crm"
        result = run_check(sql_check("select true", expect_true=True, timeout=1), secrets(CHECK_DB_URL=url))
    assert not result.passed
    assert result.error is not None and result.error.startswith("cannot connect to database crm: ")
    assert "timeout" in result.error


def test_a_missing_secret_fails_the_check_and_names_the_secret() -> None:
    result = run_check(sql_check("select true", expect_true=True), secrets())
    assert (result.passed, result.error) == (False, "secret CHECK_DB_URL is not set (searched: static)")


def test_a_url_that_is_not_a_url_fails_without_quoting_it() -> None:
    result = run_check(sql_check("select true", expect_true=True), secrets(CHECK_DB_URL=f"host=db password={CANARY}"))
    assert not result.passed
    assert result.error == "the URL of database crm is not a postgresql:// URL (expected " \
                           "postgresql://user@host:5432/db or postgresql://user@/db?host=/socket/dir)"


def test_a_secret_in_a_query_never_appears_in_the_result(crm_url: str) -> None:
    query = "select cast('${secret:CHECK_TOKEN}' as integer)"
    result = run_sql(crm_url, sql_check(query, at_least=1), CHECK_TOKEN=CANARY)
    assert not result.passed
    assert result.error == 'the query failed: invalid input syntax for type integer: "(secret)"'
    assert CANARY not in repr(result)


def test_the_password_in_a_database_url_never_appears(crm_url: str) -> None:
    with silent_server() as address:
        url = f"postgresql://checker:{CANARY}@{address}/crm?password={CANARY}x"
        result = run_check(sql_check("select true", expect_true=True, timeout=1), secrets(CHECK_DB_URL=url))
    assert not result.passed
    assert CANARY not in repr(result)


# -- HTTP --------------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[CrmApi]:
    with crm_api() as server:
        yield server


def http_check(url: str, path: str = "/health", timeout: float = 10.0, **fields: Any) -> PreparedCheck:
    probe = HttpProbe(resource="crm-api", method=fields.pop("method", "GET"), url=url + path, path=path,
                      headers=fields.pop("headers", {"Accept": "application/json",
                                                     "Authorization": "Bearer ${secret:API_TOKEN}"}),
                      **fields)
    return PreparedCheck("api-health", "production", "customer-support-dashboard", "after-apply", timeout, probe)


def run_http(check: PreparedCheck) -> CheckResult:
    return run_check(check, secrets(API_TOKEN=CANARY))


def test_a_healthy_endpoint_passes_and_got_the_resources_credentials(api: CrmApi) -> None:
    result = run_http(http_check(api.url, json_path="$.status", value="ok", has_value=True))
    assert (result.passed, result.detail, result.target) == (True, 'HTTP 200, $.status = "ok"', "resource crm-api")
    assert api.requests[0].headers["Authorization"] == f"Bearer {CANARY}"
    assert CANARY not in repr(result)


def test_status_json_path_and_value_are_judged(api: CrmApi) -> None:
    assert run_http(http_check(api.url, status=204)).error == \
        'GET /health: expected status 204, got 200: {"status": "ok", "checks": [{"name": "db", "ok": true}]}'
    assert run_http(http_check(api.url, json_path="$.checks[0].ok", value=1, has_value=True)).error == \
        "GET /health: json_path $.checks[0].ok is true, expected 1"
    assert run_http(http_check(api.url, json_path="$.checks[0].ok", value=True, has_value=True)).passed
    assert run_http(http_check(api.url, json_path="$.version")).error == \
        "GET /health: json_path $.version matches nothing in the response"
    assert run_http(http_check(api.url, json_path="$.status")).detail == 'HTTP 200, $.status = "ok"'


def test_a_response_that_is_not_json_fails_a_json_path(api: CrmApi) -> None:
    api.routes["/text"] = (200, b"all good")
    assert run_http(http_check(api.url, path="/text", json_path="$.status")).error == \
        "GET /text: the response is not JSON, so json_path $.status cannot be read: all good"


def test_method_body_and_query_parameters_are_sent(api: CrmApi) -> None:
    check = http_check(api.url, method="POST", body='{"probe": "${secret:API_TOKEN}"}',
                       params={"source": "reconciler"})
    assert run_http(check).passed
    seen = api.requests[0]
    assert (seen.method, seen.path) == ("POST", "/health?source=reconciler")
    assert seen.body == f'{{"probe": "{CANARY}"}}'.encode()


def test_basic_credentials_of_a_resource_are_sent(api: CrmApi) -> None:
    check = http_check(api.url, headers={}, basic_auth=("support", "${secret:API_TOKEN}"))
    assert run_http(check).passed
    assert api.requests[0].headers["Authorization"].startswith("Basic ")


def test_a_resource_whose_authentication_cannot_be_reproduced_fails_the_check(api: CrmApi) -> None:
    problem = "resource crm-api uses oauth2 authentication, which checks cannot reproduce"
    result = run_http(http_check(api.url, problem=problem))
    assert (result.passed, result.error) == (False, problem)
    assert api.requests == []


def test_an_endpoint_that_never_answers_times_out_and_fails_cleanly() -> None:
    with silent_server() as address:
        result = run_http(http_check(f"http://{address}", timeout=1))
    assert (result.passed, result.error) == (False, "GET /health: no answer within 1s")


def test_an_unreachable_endpoint_fails_with_the_reason() -> None:
    with silent_server() as address:
        pass  # closed: nothing listens there any more
    result = run_http(http_check(f"http://{address}"))
    assert not result.passed
    assert result.error is not None and result.error.startswith("GET /health: ConnectError: ")


def test_secrets_in_url_headers_and_body_never_appear_in_any_output(api: CrmApi,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The endpoint echoes the request back in its error body: path, headers and body all hold the secret."""
    structlog.reset_defaults()
    check = http_check(api.url, path="/echo/${secret:API_TOKEN}", method="POST", body="token=${secret:API_TOKEN}",
                       headers={"Authorization": "Bearer ${secret:API_TOKEN}", "X-Token": "${secret:API_TOKEN}"})
    result = run_http(check)
    assert not result.passed
    assert api.requests[0].path == f"/echo/{CANARY}"  # the secret did reach the endpoint
    assert result.error is not None and result.error.startswith(
        "GET /echo/${secret:API_TOKEN}: expected status 200, got 500: ".replace("GET", "POST"))
    assert "(secret)" in result.error
    shown = json.dumps(result.__dict__) + repr(result) + str(result.as_json())
    captured = capsys.readouterr()
    assert CANARY not in shown + captured.out + captured.err


def test_a_failed_check_does_not_stop_the_next(api: CrmApi, crm_url: str) -> None:
    from reconciler.checks.runner import run_checks

    resolve = secrets(API_TOKEN=CANARY, CHECK_DB_URL=crm_url)
    broken = replace(http_check(api.url), probe=replace(http_check(api.url).probe, url="http://[::1"))
    results = run_checks([broken, sql_check("select true", expect_true=True)], resolve)
    assert [r.passed for r in results] == [False, True]


def test_a_secret_cut_by_the_snippets_length_is_redacted_whole(api: CrmApi) -> None:
    """The body is shortened for the message after redaction: a cut through the secret leaves no piece of it."""
    api.routes["/padded"] = (500, b"x" * 190 + CANARY.encode() + b" and more")
    result = run_http(http_check(api.url, path="/padded"))
    assert result.error == "GET /padded: expected status 200, got 500: " + "x" * 190 + "(secret) a…"
    assert CANARY[:6] not in repr(result)


def test_a_resolved_value_cannot_smuggle_in_a_second_statement(crm_url: str) -> None:
    """Validation parses the query with its references as placeholders; the runner parses it again once they
    are resolved, so a secret (or config value) holding '; commit; delete ...' never reaches PostgreSQL."""
    check = sql_check("select ${secret:FRAGMENT}", at_least=0)
    result = run_sql(crm_url, check, FRAGMENT="1; commit; delete from customers")
    assert (result.passed, result.error) == (False, "the query holds 3 statements; a check runs exactly one")
    assert customers(crm_url) == 2


def test_a_resolved_value_that_breaks_the_query_is_not_quoted(crm_url: str) -> None:
    result = run_sql(crm_url, sql_check("select ${secret:FRAGMENT}", at_least=0), FRAGMENT="(" + CANARY)
    assert result.error == "the query does not parse once its references are resolved; check the values of its " \
                           "${secret:...} and ${config:...} references"
