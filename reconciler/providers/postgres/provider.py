"""The ``postgres`` provider: the engine's only way to read and change a managed database's schema.

The engine calls, per ``Database`` and environment:

* ``plan(database, url, files, content_key, managed_schemas)`` - the drift between the declared
  SQL files and the live database, as classified ``DriftItem``s in apply order (kind
  ``schema``, ids ``<database>:<action>:<object>``, phase ``SCHEMA_ADDITIVE`` or
  ``SCHEMA_DESTRUCTIVE``);
* ``apply(database, url, items)`` - run the SQL of the given items (one transaction, then the
  non-transactional statements) and return the ids applied. Verifying is planning again: what
  remains is drift.

Every session on a managed database carries ``lock_timeout`` and ``statement_timeout`` from the
settings. Reading the live schema is retried like a schema change when a lock held by another
session makes it time out (``attempts`` tries, exponential backoff); after the last try the
``LockTimeoutError`` names the Database, the locked relation and the session holding it, so a
held lock ends plan, drift and apply after about ``lock_timeout`` times ``attempts``.

The first ``plan`` after an ``apply`` of the same database checks convergence: a statement that was
just applied and is proposed again means the diff engine cannot converge on this schema, which
raises ``SchemaError`` instead of letting the reconciler loop.

The declared side is cached per content key (the Git tree id of the schema folder), so a drift
check of an unchanged revision only inspects the live database; with ``cache_dir`` also on disk
(``cache.py``), so a new process skips loading a declared schema any process has seen. The live
database is inspected while the declared schema loads (two threads). With the disk cache, ``plan``
first reads a fingerprint of the live catalogs (``catalog.py``): when neither they nor the declared
schema changed since a plan of any process, that plan's diff is reused and nothing is inspected.
Between the additive and the destructive step of a run the app calls ``plan`` again and applies
what remains: items computed before the additive step may depend on objects that step changed (see
docs/schema-management.md). Deciding whether destructive statements may run is the core's gate,
not the provider's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reconciler import logs
from reconciler.core.changes import DriftItem, Risk
from reconciler.errors import ConfigError, LockTimeoutError, ProviderError, SchemaError
from reconciler.providers.postgres import catalog, urls
from reconciler.providers.postgres.cache import InspectionCache
from reconciler.providers.postgres.declared import SERVER_FACTS_QUERY, DeclaredSchemas, SqlFile, content_hash
from reconciler.providers.postgres.diffing import Inspection, MigraEngine, SchemaDiff, SchemaDiffEngine
from reconciler.providers.postgres.sessions import ApplySettings, connect
from reconciler.providers.postgres.urls import safe_url, server_key

# psycopg, pglast (classify, locks) and the apply machinery are imported by the methods that use
# them: building a provider costs nothing for commands that never touch a database.

log = logs.get_logger(__name__)


class PostgresProvider:
    """Plans, applies and verifies the schemas of managed PostgreSQL databases."""

    name = "postgres"

    def __init__(
        self,
        *,
        engine: SchemaDiffEngine | None = None,
        shadow_url: str | None = None,
        settings: ApplySettings | None = None,
        cache_size: int = 32,
        shared_cache: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.settings = settings or ApplySettings()
        self.engine: SchemaDiffEngine = engine or MigraEngine(self.settings.timeouts)
        store = InspectionCache(cache_dir) if cache_dir is not None else None
        # Diffs in a folder of their own: a new one each time the live catalogs changed must not
        # push declared schemas (much dearer to rebuild) out of theirs.
        self.diffs = InspectionCache(cache_dir / "diffs", max_entries=256) if cache_dir is not None else None
        self.declared = DeclaredSchemas(self.engine, shadow_url=shadow_url, max_entries=cache_size,
                                        timeouts=self.settings.timeouts, shared=shared_cache, store=store)
        self._applied: dict[tuple[str, str], frozenset[str]] = {}
        self._lock = threading.Lock()
        self.reused = 0  # plans answered from a stored diff (live catalogs and declared schema unchanged)

    def plan(
        self,
        database: str,
        url: str,
        files: Sequence[SqlFile],
        content_key: str,
        managed_schemas: Sequence[str],
    ) -> list[DriftItem]:
        """Drift of the live database at ``url`` against the declared ``files``, in apply order.

        The first plan after an ``apply`` also checks convergence: a statement that was just
        applied successfully and is proposed again means the diff engine cannot express this
        change, and applying it again would loop; that raises ``SchemaError``.
        """
        self._require_url(database, url)
        keys = self._keys(database, url, files, managed_schemas)
        store = self.diffs
        diff = store.get(_diff_key(url, keys[0], keys[1]), SchemaDiff) if store is not None and keys else None
        diff_reused = diff is not None
        if diff is None:
            try:
                with ThreadPoolExecutor(1, thread_name_prefix=f"declared-{database}") as pool:
                    # The declared schema loads (mostly the server's work) while the live one is read.
                    declared_side = pool.submit(self.declared.get, url, files, content_key, managed_schemas,
                                                stored_key=keys[1] if keys else None)
                    try:
                        live = self._inspect_live(database, url, managed_schemas)
                    finally:
                        declared = declared_side.result()
                diff = self.engine.diff(live, declared)
            finally:
                self.declared.settle()
            if store is not None and keys and live.catalog:
                # Keyed by the catalogs as the inspection saw them, in its own snapshot.
                store.put(_diff_key(url, live.catalog, keys[1]), diff)
        else:
            with self._lock:
                self.reused += 1
        if diff.statements:
            from reconciler.providers.postgres.classify import classify

            items = classify(database, diff)
        else:
            items = []  # nothing to classify: no parser to load
        with self._lock:
            just_applied = self._applied.pop((database, url), frozenset())
        repeated = [i.id for i in items if i.sql in just_applied]
        if repeated:
            raise SchemaError(
                f"the schema of {database} does not converge: {', '.join(repeated)} "
                "were applied and are still reported as drift (a limit of the diff engine; "
                "see docs/schema-engine-limits.md)"
            )
        log.info("schema planned", database=database, url=safe_url(url), items=len(items),
                 destructive=sum(1 for i in items if i.risk == Risk.DESTRUCTIVE), live_unchanged=diff_reused)
        return items

    def _keys(self, database: str, url: str, files: Sequence[SqlFile],
              managed_schemas: Sequence[str]) -> tuple[str, str] | None:
        """The live catalogs' fingerprint and the declared schema's on-disk key, read on one short
        connection (two with a shadow server); None without a disk cache or when they cannot be
        read (the full path then reports what is wrong)."""
        if self.declared.store is None:
            return None
        import psycopg

        timeouts = self.settings.timeouts
        try:
            with connect(url, timeouts) as conn:
                live = catalog.fingerprint(lambda sql, params: conn.execute(sql.encode(), params).fetchall())
                facts = None
                if self.declared.shadow_url is None:
                    row = conn.execute(SERVER_FACTS_QUERY.encode()).fetchone()
                    facts = (row[0], row[1]) if row is not None else None
            declared = self.declared.stored_key(url, files, managed_schemas, facts)
        except (psycopg.Error, ProviderError) as exc:
            log.debug("live catalogs not fingerprinted; inspecting", database=database, error=str(exc))
            return None
        return live, declared

    @staticmethod
    def check_url(url: str) -> str | None:
        """What is wrong with ``url`` as a database URL (the end of a sentence), or None; never quotes it."""
        problem = urls.problem(url)
        return f"{problem} {urls.EXPECTED}" if problem else None

    @staticmethod
    def _require_url(database: str, url: str) -> None:
        problem = urls.problem(url)
        if problem is not None:
            raise ConfigError(f"database {database}: its URL {problem} {urls.EXPECTED}")

    def _inspect_live(self, database: str, url: str, managed_schemas: Sequence[str]) -> Inspection:
        settings = self.settings
        for attempt in range(1, settings.attempts + 1):
            try:
                return self.engine.inspect(url, managed_schemas)
            except LockTimeoutError as exc:
                if attempt < settings.attempts:
                    delay = settings.delay(attempt)
                    log.warning("reading the live schema waited too long for a lock; retrying", database=database,
                                attempt=attempt, retry_in=delay)
                    time.sleep(delay)
                    continue
                # Reading needs only ACCESS SHARE, which nothing but ACCESS EXCLUSIVE blocks.
                from reconciler.providers.postgres import locks

                found = locks.holders_at(url, settings.timeouts, schemas=managed_schemas,
                                         modes=[locks.ACCESS_EXCLUSIVE])
                raise LockTimeoutError(
                    f"{locks.describe(database, found)}; the live schema could not be read ({settings.gave_up()})",
                    delay=settings.max_backoff,
                ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def apply(
        self,
        database: str,
        url: str,
        items: Sequence[DriftItem],
        *,
        settings: ApplySettings | None = None,
    ) -> list[str]:
        """Run ``items`` (all of one database, in plan order); return the ids applied."""
        foreign = [i.id for i in items if i.kind != "schema" or i.name != database]
        if foreign:
            raise SchemaError(f"items of another database or kind passed to {database}: {', '.join(foreign)}")
        self._require_url(database, url)
        from reconciler.providers.postgres.apply import apply_items

        applied = apply_items(url, items, settings or self.settings, database=database)
        by_id = {i.id: i for i in items}
        with self._lock:
            self._applied[(database, url)] = frozenset(by_id[i].sql or "" for i in applied)
        return applied

    def warm_up(self) -> None:
        """Import the diff engine now, so the first plan after a daemon starts does not pay for it."""
        from reconciler.providers.postgres.diffing import warm_up

        warm_up()

    def close(self) -> None:
        """Nothing to close: connections are opened per call."""

    def compare(
        self,
        database: str,
        server_url: str,
        old_files: Sequence[SqlFile],
        new_files: Sequence[SqlFile],
        managed_schemas: Sequence[str],
    ) -> list[DriftItem]:
        """Statements turning the schema ``old_files`` declare into the one ``new_files`` declare.

        For pull-request previews (``reconciler diff``): both sides are loaded into scratch
        databases on ``server_url`` (or the shadow server) and diffed; no live database is read.
        """
        from reconciler.providers.postgres.classify import classify

        try:
            old = self.declared.get(server_url, old_files, content_hash(old_files), managed_schemas)
            new = self.declared.get(server_url, new_files, content_hash(new_files), managed_schemas)
            return classify(database, self.engine.diff(old, new))
        finally:
            self.declared.settle()


def _diff_key(url: str, live_catalog: str, declared_key: str) -> str:
    """Where the diff of this declared schema against these live catalogs is kept: a schema diff is
    a function of the two (the declared key names the engine and this package's code)."""
    return json.dumps({"diff": 1, "server": server_key(url), "live": live_catalog, "declared": declared_key},
                      sort_keys=True)
