"""SQLAlchemy engines for the reconciler's own databases (the state store and the built-in registry).

Both are "any SQLAlchemy URL": a SQLite file by default (WAL, a busy timeout so several processes
can share it, a small page cache, the parent folder created), PostgreSQL for several replicas.
Used by ``store/`` and ``providers/registry/`` — each remains the only code that reads and writes
its own tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def engine_for(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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


def driver_error(exc: BaseException) -> str:
    """The driver error's class name: what went wrong, without a URL or a credential."""
    return type(getattr(exc, "orig", None) or exc).__name__
