"""Database URLs: passwords never leave the provider; URLs are re-targeted and adapted."""

from __future__ import annotations

import pytest

from reconciler.providers.postgres.urls import safe_url, server_key, sqlalchemy_url, with_database


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
