"""The declared side of a schema diff: a Database's SQL files loaded into a scratch database.

``PostgresProvider.plan`` calls ``DeclaredSchemas.get``. The SQL files of a ``Database`` (SPEC §2),
in lexical order, are run one statement at a time in a fresh scratch database created from
``template0`` on the target's server (or on a configured shadow server), the result is inspected
by the diff engine, and the scratch database is dropped, on success and on every error. Its
sessions carry the configured ``lock_timeout`` and ``statement_timeout`` like every other
(``sessions.py``). A
statement that fails raises ``SchemaError`` naming the file and the line inside that file.

Inspections are kept in memory, keyed by the caller's content key (the Git tree id of the schema
folder, or a hash of the files) together with the managed schemas and the server, so a drift check
of an unchanged revision only inspects the live database. With an ``InspectionCache``
(``cache.py``) they are also kept on disk, keyed by the files' content, the managed schemas, the
server's major version and the extensions it offers, and the engine's version: a new process
(every CLI command) skips loading a declared schema any process has seen before.

The scratch database is dropped in a background thread once it is inspected, so the diff does
not wait for the drop; ``settle()`` waits for pending drops (``PostgresProvider.plan`` calls it
before it returns, so no scratch database outlives a plan).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler import logs
from reconciler.errors import ProviderError, SchemaError
from reconciler.providers.postgres.diffing import Inspection, SchemaDiffEngine
from reconciler.providers.postgres.sessions import Timeouts, connect
from reconciler.providers.postgres.urls import safe_url, server_key, with_database

if TYPE_CHECKING:
    import psycopg

    from reconciler.providers.postgres.cache import InspectionCache

# psycopg and pglast are imported where a schema is really loaded or a server asked.

log = logs.get_logger(__name__)

# What a declared schema rendered on a server depends on besides the SQL: the major version (view
# definitions and defaults print differently) and the extensions it can create, at which versions.
SERVER_FACTS_QUERY = """
select current_setting('server_version_num')::int / 10000,
       (select md5(coalesce(string_agg(name || '=' || coalesce(default_version, ''), ',' order by name), ''))
        from pg_catalog.pg_available_extensions)
"""

SqlFile = tuple[str, str]  # (path relative to the desired-state root, SQL text)

SCRATCH_PREFIX = "reconciler_scratch_"


def content_hash(files: Sequence[SqlFile]) -> str:
    """A content key for ``files`` when the caller has no Git tree id at hand."""
    digest = hashlib.sha256()
    for path, sql in sorted(files):
        digest.update(path.encode() + b"\0" + sql.encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, min(offset, len(text)))) + 1


def load_file(conn: psycopg.Connection[tuple[object, ...]], path: str, sql: str) -> None:
    """Run every statement of one declared file on ``conn`` (autocommit), mapping errors to lines."""
    import psycopg
    from pglast import split
    from pglast.parser import ParseError

    try:
        slices = split(sql, only_slices=True)
    except ParseError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        offset = int(exc.args[1]) if len(exc.args) > 1 else 0
        raise SchemaError(f"{path}:{_line_at(sql, offset)}: {message}") from exc
    for part in slices:
        statement = sql[part]
        try:
            conn.execute(statement.encode())
        except psycopg.OperationalError as exc:
            raise ProviderError(f"{path}: the server failed while loading the declared schema: "
                                f"{exc.diag.message_primary or type(exc).__name__}") from exc
        except psycopg.Error as exc:
            position = exc.diag.statement_position
            offset = part.start + (int(position) - 1 if position else 0)
            # Skip the whitespace and comments pglast left in front of the statement.
            if not position:
                offset += len(statement) - len(statement.lstrip())
            message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
            raise SchemaError(f"{path}:{_line_at(sql, offset)}: {message}") from exc


_SHARED_CACHE: OrderedDict[tuple[str, tuple[str, ...], str], Inspection] = OrderedDict()
_SHARED_LOCK = threading.Lock()


class DeclaredSchemas:
    """Builds and caches inspections of declared schemas. Thread-safe."""

    def __init__(
        self,
        engine: SchemaDiffEngine,
        *,
        shadow_url: str | None = None,
        max_entries: int = 32,
        timeouts: Timeouts | None = None,
        shared: bool = False,
        store: InspectionCache | None = None,
    ) -> None:
        self.engine = engine
        self.shadow_url = shadow_url
        self.max_entries = max_entries
        self.timeouts = timeouts or Timeouts()
        self.store = store
        self._drops: list[threading.Thread] = []
        if shared:
            # One cache per process: every reconciler of this process (CLI, daemon, API) reuses the
            # declared schema of a content key, whichever provider object asks.
            self._cache, self._lock = _SHARED_CACHE, _SHARED_LOCK
        else:
            self._cache = OrderedDict()
            self._lock = threading.Lock()
        self.loads = 0  # how many times SQL files were really loaded (cache misses)
        self.stored = 0  # how many inspections came from the on-disk cache

    def get(
        self,
        target_url: str,
        files: Sequence[SqlFile],
        content_key: str,
        managed_schemas: Sequence[str],
        *,
        stored_key: str | None = None,
    ) -> Inspection:
        """The inspection of ``files`` as loaded on the target's (or the shadow) server.

        ``stored_key`` is the on-disk key when the caller already made it (``stored_key``).
        """
        server_url = self.shadow_url or target_url
        key = (content_key or content_hash(files), tuple(managed_schemas), server_key(server_url))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if self.store is not None and stored_key is None:
            stored_key = self.stored_key(target_url, files, managed_schemas)
        inspection = self.store.get(stored_key) if self.store is not None and stored_key else None
        if inspection is not None:
            with self._lock:
                self.stored += 1
        else:
            inspection = self.load(server_url, files, managed_schemas)
            if self.store is not None and stored_key:
                self.store.put(stored_key, inspection)
        with self._lock:
            self._cache[key] = inspection
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return inspection

    def stored_key(self, target_url: str, files: Sequence[SqlFile], managed_schemas: Sequence[str],
                   facts: tuple[object, object] | None = None) -> str:
        """The on-disk cache key: the files' content and everything else the inspection depends on.

        ``facts`` are the server's (``SERVER_FACTS_QUERY``) when the caller read them already, on
        the server the schema loads on (the shadow, or the target).
        """
        server_url = self.shadow_url or target_url
        if facts is None:
            import psycopg

            where = safe_url(server_url)
            try:
                with connect(server_url, self.timeouts) as conn:
                    row = conn.execute(SERVER_FACTS_QUERY.encode()).fetchone()
            except psycopg.Error as exc:
                raise ProviderError(f"cannot read the server version of {where}: {_first_line(exc)}") from exc
            facts = (row[0], row[1]) if row is not None else (None, None)
        major, extensions = facts
        return json.dumps({
            "engine": self.engine.name, "engine_version": engine_version(self.engine),
            "files": content_hash(files), "schemas": list(managed_schemas),
            "server": major, "extensions": extensions,
        }, sort_keys=True)

    def settle(self) -> None:
        """Wait until the scratch databases of finished loads are dropped."""
        with self._lock:
            drops, self._drops = self._drops, []
        for drop in drops:
            drop.join()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def load(self, server_url: str, files: Sequence[SqlFile], managed_schemas: Sequence[str]) -> Inspection:
        """Load ``files`` into a scratch database on ``server_url``, inspect it, drop it."""
        import psycopg

        scratch = SCRATCH_PREFIX + secrets.token_hex(6)
        where = safe_url(server_url)
        self._admin(server_url, f'CREATE DATABASE "{scratch}" TEMPLATE template0', where)
        self.loads += 1
        log.info("loading declared schema", server=where, scratch=scratch, files=len(files))
        try:
            scratch_url = with_database(server_url, scratch)
            try:
                conn = connect(scratch_url, self.timeouts)
            except psycopg.Error as exc:
                raise ProviderError(f"cannot connect to the scratch database on {where}: "
                                    f"{_first_line(exc)}") from exc
            with conn:
                conn.execute("SET client_min_messages = warning")
                # The scratch database is thrown away: do not wait for WAL flushes on each commit.
                conn.execute("SET synchronous_commit = off")
                for path, sql in sorted(files):
                    load_file(conn, path, sql)
            inspection = self.engine.inspect(scratch_url, managed_schemas)
        except BaseException:
            self._drop_quietly(server_url, scratch, where)
            raise
        # The inspection is all we need: the caller diffs while the scratch database goes.
        drop = threading.Thread(target=self._drop_quietly, args=(server_url, scratch, where),
                                name=f"drop-{scratch}")
        drop.start()
        with self._lock:
            self._drops.append(drop)
        return inspection

    def _drop_quietly(self, server_url: str, scratch: str, where: str) -> None:
        # The load already failed; a failing drop must not hide that error, so it is only logged.
        try:
            self._admin(server_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)', where)
        except (ProviderError, SchemaError) as exc:
            log.warning("scratch database not dropped", server=where, scratch=scratch, error=str(exc))

    def _admin(self, server_url: str, statement: str, where: str) -> None:
        import psycopg

        try:
            with connect(server_url, self.timeouts) as conn:
                conn.execute(statement.encode())
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SchemaError(
                f"the user of {where} may not create scratch databases for the declared schema; "
                "grant it CREATEDB or configure a shadow server"
            ) from exc
        except psycopg.Error as exc:
            raise ProviderError(f"{statement.split(' ')[0].lower()} database on {where} failed: "
                                f"{_first_line(exc)}") from exc


_ENGINE_VERSIONS: dict[str, str] = {}


def engine_version(engine: SchemaDiffEngine) -> str:
    """The versions of the engine's libraries and of the reconciler, and a digest of this package's
    code: an inspection or diff made by other code is never read back (its objects may have other
    fields, its statements other repairs)."""
    name = engine.name
    if name not in _ENGINE_VERSIONS:
        from importlib import metadata
        from pathlib import Path

        import reconciler

        code = hashlib.sha256()
        for path in sorted(Path(__file__).parent.glob("*.py")):
            code.update(path.name.encode() + b"\0" + path.read_bytes())
        parts = [f"reconciler={reconciler.__version__}", f"code={code.hexdigest()[:16]}",
                 f"format={getattr(engine, 'inspection_format', 0)}"]
        for library in getattr(engine, "libraries", ()):
            try:
                parts.append(f"{library}={metadata.version(library)}")
            except metadata.PackageNotFoundError:
                parts.append(f"{library}=?")
        _ENGINE_VERSIONS[name] = ",".join(parts)
    return _ENGINE_VERSIONS[name]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
