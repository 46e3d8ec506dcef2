"""Database URLs as the postgres provider handles them: redacted for messages, re-targeted, adapted.

Database URLs are plain ``postgresql://`` URLs, over TCP (``postgresql://user:pw@db:5432/crm``)
or a unix socket (``postgresql://user@/crm?host=/run/postgresql``). Every module of the provider
goes through ``safe_url`` before a URL reaches a log line or an exception message, so a password
never leaves the process.
"""

from __future__ import annotations

from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
EXPECTED = "(expected postgresql://user@host:5432/db or postgresql://user@/db?host=/socket/dir)"


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        # A keyword/value connection string or another scheme: we do not guess where a password
        # could hide in it.
        raise ValueError("not a postgresql:// URL")
    return parts


def problem(url: str) -> str | None:
    """What is wrong with ``url`` as a database URL, as the end of a sentence; None when nothing is.

    Never quotes the URL or any part of it (it may hold a password): urllib's own messages do
    (``Port could not be cast to integer value as '54x32'``), so they are not passed on.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (parsed lazily: a port that is no number raises only here)
    except ValueError:
        return ("is not a postgresql:// URL: it cannot be parsed (check the host, the port and any [ ] around "
                "an IPv6 address)")
    if parts.scheme not in SCHEMES:
        return "is not a postgresql:// URL"
    return None


def safe_url(url: str) -> str:
    """Return ``url`` without its password (and without any ``password=`` query parameter)."""
    try:
        parts = _split(url)
    except ValueError:
        return "(database URL)"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{hostport}" if at else hostport
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not pair.lower().startswith("password=")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` on the same server with the same credentials."""
    parts = _split(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database, safe=""), parts.query, ""))


def database_name(url: str) -> str:
    """The database a URL names (libpq's default, the user name, is not guessed here)."""
    return _split(url).path.lstrip("/")


def server_key(url: str) -> str:
    """Identify the server behind ``url`` (no credentials, no database) for cache keys."""
    parts = _split(url)
    hostport = parts.netloc.rpartition("@")[2]
    host_params = "&".join(
        sorted(pair for pair in parts.query.split("&") if pair.startswith(("host=", "port=")))
    )
    return f"{hostport}?{host_params}"


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the psycopg 3 driver (``postgresql+psycopg://``)."""
    parts = _split(url)
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, parts.query, ""))
