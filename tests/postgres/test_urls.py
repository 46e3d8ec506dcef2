"""Database URLs: passwords never leave the provider; URLs are re-targeted and adapted."""

from __future__ import annotations

import pytest

from reconciler.errors import ConfigError
from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.urls import problem, safe_url, server_key, sqlalchemy_url, with_database


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("postgresql://admin:s3cret@db.internal:5432/crm", "postgresql://admin@db.internal:5432/crm"),
        ("postgresql://admin@/crm?host=/run/postgresql", "postgresql://admin@/crm?host=/run/postgresql"),
        ("postgresql://admin@db/crm?password=s3cret&sslmode=require", "postgresql://admin@db/crm?sslmode=require"),
        ("host=db password=s3cret", "(database URL)"),
    ],
)
def test_safe_url_drops_the_password(url: str, safe: str) -> None:
    assert safe_url(url) == safe


def test_with_database_keeps_credentials_and_socket() -> None:
    assert with_database("postgresql://a:pw@/crm?host=/tmp/s", "scratch") == "postgresql://a:pw@/scratch?host=/tmp/s"


def test_server_key_ignores_credentials_and_database() -> None:
    assert server_key("postgresql://a:pw@db:5432/crm") == server_key("postgresql://b@db:5432/other")


def test_sqlalchemy_url_uses_psycopg3() -> None:
    assert sqlalchemy_url("postgresql://a@/crm?host=/tmp/s") == "postgresql+psycopg://a@/crm?host=/tmp/s"


@pytest.mark.parametrize(
    "url",
    ["postgresql://admin:s3cret@db.internal:5432/crm", "postgres://admin@/crm?host=/run/postgresql",
     "postgresql://admin@[::1]:5432/crm"],
)
def test_a_postgresql_url_has_no_problem(url: str) -> None:
    assert problem(url) is None


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("host=db password=s3cret", "is not a postgresql:// URL"),
        ("mysql://admin:s3cret@db/crm", "is not a postgresql:// URL"),
        ("postgresql://u:s3cret@[bad/x", "is not a postgresql:// URL: it cannot be parsed (check the host, the port "
                                         "and any [ ] around an IPv6 address)"),
        ("postgresql://u:s3cret@db:54x32/crm", "is not a postgresql:// URL: it cannot be parsed (check the host, "
                                               "the port and any [ ] around an IPv6 address)"),
    ],
)
def test_a_url_that_is_not_one_is_described_without_quoting_it(url: str, said: str) -> None:
    assert problem(url) == said


def test_the_provider_refuses_a_url_that_is_not_one_naming_the_database_only() -> None:
    with pytest.raises(ConfigError) as raised:
        PostgresProvider().plan("crm", "host=db password=s3cret", [], "k", ["public"])
    assert str(raised.value) == ("database crm: its URL is not a postgresql:// URL (expected "
                                 "postgresql://user@host:5432/db or postgresql://user@/db?host=/socket/dir)")
