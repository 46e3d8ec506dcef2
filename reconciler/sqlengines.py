"""SQLAlchemy engines for the reconciler's own databases (the state store and the built-in registry).

Both are "any SQLAlchemy URL": a SQLite file by default (WAL, a busy timeout so several processes
can share it, a small page cache, the parent folder created), PostgreSQL for several replicas.
Used by ``store/`` and ``providers/registry/`` — each remains the only code that reads and writes
its own tables. Both wrap driver errors in their own exception with ``database_label`` (which
database: a SQLite path, or a PostgreSQL host and database, never a password) and
``driver_error`` (what went wrong, in a plain sentence with what to do).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reconciler.errors import clip


def parse_url(url: str) -> sa.engine.URL:
    """``url`` parsed; ``ArgumentError`` (whose text never quotes the URL: it may hold a password) when
    it is not a SQLAlchemy URL."""
    try:
        return sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # a bad port is a ValueError that quotes it
        raise sa.exc.ArgumentError("not a valid SQLAlchemy URL") from exc


def engine_for(url: str) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-512")  # 512 KiB per connection: the tables are small
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def create_tables(metadata: sa.MetaData, engine: Engine) -> None:
    """CREATE the tables that are missing; another process creating them at the same moment is fine."""
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.OperationalError as exc:
            if "already exists" not in str(exc.orig) or attempt == 4:
                raise
        except sa.exc.IntegrityError:
            if attempt == 4:
                raise


def database_label(url: str) -> str:
    """Which database ``url`` names, for messages: a SQLite file's path, or PostgreSQL's host, port
    and database with the user — never the password, which is all a URL may hold that is secret."""
    try:
        parsed = parse_url(url)
    except sa.exc.ArgumentError:
        return "(a URL that does not parse)"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.database or ":memory:"
    host = parsed.host or str(parsed.query.get("host") or "localhost")
    where = f"{host}:{parsed.port}" if parsed.port else host
    user = f" (user {parsed.username})" if parsed.username else ""
    kind = "PostgreSQL" if backend == "postgresql" else backend
    return f"{kind} {where}/{parsed.database or ''}{user}"


# SQLite's result codes (sqlite3.Error.sqlite_errorname), by prefix, and what the person reading the
# error should do about each. Extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_IOERR_WRITE, ...) share
# the advice of their primary code.
_SQLITE = (
    ("SQLITE_FULL", "the disk is full", "free space on the disk that holds it"),
    ("SQLITE_READONLY", "the database is read-only",
     "make the file and its folder writable for the user running the reconciler (and check the file system "
     "is not mounted read-only and the file is not immutable)"),
    ("SQLITE_CANTOPEN", "the file cannot be opened",
     "check that the path names a file (not a folder) in a folder that exists and is writable"),
    ("SQLITE_BUSY", "the database is locked by another process",
     "it stayed locked longer than 30 s; retry, or stop the process that holds it (a forgotten 'sqlite3' shell?)"),
    ("SQLITE_LOCKED", "the database is locked by another connection", "retry"),
    ("SQLITE_CORRUPT", "the file is corrupt",
     "restore it from a backup, or move it aside to start again with an empty history"),
    ("SQLITE_NOTADB", "the file is not a SQLite database (or is corrupt)",
     "check the path, restore the file from a backup, or move it aside to start again with an empty history"),
    ("SQLITE_IOERR", "the disk failed a read or write", "check the disk, its free space and the kernel log"),
    ("SQLITE_PERM", "the operating system refused access", "check the file's permissions"),
)

# PostgreSQL SQLSTATE classes and codes (psycopg's ``sqlstate``) that have a plain meaning here.
_SQLSTATE = (
    ("53100", "the PostgreSQL server's disk is full", "free space on the database server"),
    ("53", "the PostgreSQL server is out of resources", "check its memory, disk and max_connections"),
    ("25006", "the database accepts no writes (a standby, or default_transaction_read_only is on)",
     "point the URL at the primary server"),
    ("28", "the server refused the credentials", "check the user and password in the URL"),
    ("3D000", "the database does not exist", "create it (CREATE DATABASE) or fix the database name in the URL"),
    ("55P03", "the database is locked by another session", "retry, or find the session that holds the lock"),
    ("40P01", "a deadlock with another session", "retry"),
    ("57P", "the server is shutting down or restarting", "retry when it is back"),
    ("08", "the connection to the server failed", "is the server running and reachable from here?"),
)

# libpq's connection failures carry no SQLSTATE; their messages are stable enough to read.
_CONNECT = (
    ("connection refused", "nothing accepts connections at that address (connection refused)",
     "is the server running, and are the host and port right?"),
    ("failed to resolve host", "the host name does not resolve", "check the host in the URL"),
    ("could not translate host name", "the host name does not resolve", "check the host in the URL"),
    ("password authentication failed", "the server refused the password", "check the user and password in the URL"),
    ("no password supplied", "the server wants a password and the URL has none", "add the password to the URL"),
    ("does not exist", "the database or user does not exist", "check the database name and user in the URL"),
    ("timeout expired", "the connection timed out", "is the server reachable from here (network, firewall)?"),
    ("timed out", "the connection timed out", "is the server reachable from here (network, firewall)?"),
    ("no such file or directory", "no server listens on that socket", "is the server running, and is the socket "
     "folder (?host=) right?"),
    ("server closed the connection", "the server closed the connection (it restarted or shut down)",
     "retry when it is back"),
    ("terminating connection", "the server closed the connection (it restarted or shut down)",
     "retry when it is back"),
)

_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return clip(_CREDENTIALS.sub(r"\1***@", line), 200)


def driver_error(exc: BaseException) -> str:
    """What went wrong with a database, in a plain sentence that ends with what to do.

    Reads the driver's own error (SQLite's result code, PostgreSQL's SQLSTATE, libpq's connection
    message) under SQLAlchemy's wrapper. Never includes the URL (it may hold a password) or SQL.
    """
    orig = getattr(exc, "orig", None) or exc
    message = _first_line(str(orig))
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorname", "") or ""
        for prefix, what, todo in _SQLITE:
            if code.startswith(prefix):
                return f"{what} (SQLite: {message}); {todo}"
        return f"SQLite error {code or type(orig).__name__}: {message}"
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        for prefix, what, todo in _SQLSTATE:
            if sqlstate.startswith(prefix):
                return f"{what} (PostgreSQL {sqlstate}: {message}); {todo}"
        return f"PostgreSQL error {sqlstate}: {message}"
    lowered = str(orig).lower()
    for needle, what, todo in _CONNECT:
        if needle in lowered:
            return f"{what}; {todo}"
    if isinstance(exc, sa.exc.NoSuchModuleError):
        return "the URL names a database kind SQLAlchemy does not know; use sqlite:/// or postgresql+psycopg://"
    if isinstance(exc, sa.exc.ArgumentError):
        return "the URL is not a valid SQLAlchemy URL (e.g. sqlite:////var/lib/reconciler/reconciler.db)"
    if isinstance(exc, sa.exc.TimeoutError):
        return "every connection of the pool stayed busy; retry"
    if orig is not exc or isinstance(orig, sa.exc.DBAPIError):
        return f"{type(orig).__name__}: {message}" if message else type(orig).__name__
    return type(exc).__name__  # SQLAlchemy's own text may quote the URL or the statement
