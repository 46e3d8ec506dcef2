"""``Store``: every read and write of the state database (the only code that touches it).

A ``Store`` is one workspace's view of the database (``Store(url, workspace)``, or
``store.for_workspace(name)`` sharing the engine): every row it reads or writes is that workspace's,
so two workspaces' environments of one name never meet. Opening a database made before workspaces
migrates it first (``store/migrations.py``).

Called by ``app/`` only: the reconcile run (run records, progress, tags seen, fingerprints), the
leases (``store/leases.py``), the read model (``app/queries.py``: status, history, drift) and the
notifier's dedup keys. A run's result and an environment's status are written by one method,
``record``, which asks ``core.outcome.transition`` what the status becomes; a pin is an operator's
decision and has its own, ``set_pin``. Any SQLAlchemy URL works: a SQLite file
for one process, PostgreSQL for several daemons sharing leases. Database errors become
``StoreError`` (retryable): the message names the database (SQLite path, or PostgreSQL host and
database — never a password) and the cause in plain words (disk full, read-only, locked, corrupt,
unreachable, ...) with what to do.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler import clock, logs
from reconciler.core.outcome import (
    DriftChecked,
    EnvironmentStatus,
    EnvState,
    Event,
    RunOutcome,
    RunResult,
    repeats,
    transition,
)
from reconciler.core.releases import ReleaseRecord
from reconciler.errors import StoreError
from reconciler.sqlengines import create_tables, database_label, driver_error, engine_for
from reconciler.store import tables as t
from reconciler.store.migrations import migrate

log = logs.get_logger(__name__)
T = TypeVar("T")

OWNER = f"{socket.gethostname()}:{os.getpid()}"
_STATUS_COLUMNS = [column.name for column in t.environment_status.columns if column.name != "workspace"]
DEFAULT_WORKSPACE = t.DEFAULT_WORKSPACE


def _owner_alive(owner: str) -> bool:
    """False only when ``owner`` names a process of this host that has exited."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host: only the lease's expiry can tell
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def now() -> dt.datetime:
    """When a record is written: the product's clock (``RECONCILER_NOW`` may set it)."""
    return clock.now()


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RunRecord:
    id: str
    environment: str
    revision: str | None
    tree_id: str | None
    ref: str | None
    trigger: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    result: str
    reason: str | None
    plan: list[dict[str, Any]]
    applied: list[str]
    drift_after: int | None
    owner: str | None
    checks: list[dict[str, Any]] = field(default_factory=list)  # checks run after applying, in order
    workspace: str = DEFAULT_WORKSPACE
    break_glass: dict[str, Any] | None = None  # the deny window this run overrode: who, reason, gate, at

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "workspace": self.workspace, "environment": self.environment, "revision": self.revision,
            "tree_id": self.tree_id, "ref": self.ref, "trigger": self.trigger,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration, "result": self.result, "reason": self.reason,
            "plan": self.plan, "applied": self.applied, "drift_after": self.drift_after,
            "checks": self.checks, "break_glass": self.break_glass,
        }


class Store:
    def __init__(self, url: str, workspace: str = DEFAULT_WORKSPACE, *,
                 _engine: sa.engine.Engine | None = None) -> None:
        self.url = url
        self.workspace = workspace
        self.label = database_label(url)  # for messages: the path or host/database, never a password
        if _engine is not None:  # another workspace's view of a database already open
            self.engine = _engine
            return
        try:
            self.engine = engine_for(url)
            create_tables(t.metadata, self.engine)
            migrate(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"state database {self.label}: open failed: {driver_error(exc)}") from exc
        except OSError as exc:  # its folder cannot be created
            why = "a file of that name is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise StoreError(f"state database {self.label}: cannot create the folder {exc.filename}: {why}") from exc

    def for_workspace(self, workspace: str) -> Store:
        """The view of ``workspace`` on the same database (and engine: closing either closes both)."""
        return Store(self.url, workspace, _engine=self.engine)

    def _mine(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """The condition every statement of this store carries: rows of its workspace only."""
        return table.c.workspace == self.workspace

    def close(self) -> None:
        self.engine.dispose()

    def _tx(self, what: str, fn: Callable[[Connection], T]) -> T:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"state database {self.label}: {what} failed: {driver_error(exc)}") from exc

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    # -- runs ------------------------------------------------------------------------------

    def record(self, event: Event) -> str | None:
        """Write what ``event`` says, and the environment status it leads to, in one transaction.

        A ``RunOutcome`` starts a run record (``Progressing``), finishes the one it names, or adds a
        finished one — unless it repeats what the last run said (``core.outcome.repeats``); the
        status becomes what ``core.outcome.transition`` decides. Drift found by a run or a check
        updates the first-seen times. Return the id of the run record the outcome is under.
        """
        stamp = now()
        if isinstance(event, RunOutcome):
            what = "finish run" if event.run_id is not None else "start run"
        else:
            what = "record drift" if isinstance(event, DriftChecked) else "write status"

        def write(conn: Connection) -> str | None:
            previous = self._status(conn, event.environment)
            run_id: str | None = None
            if isinstance(event, RunOutcome):
                run_id = self._record_run(conn, event, previous, stamp)
                # A repeat (``core.outcome.repeats``) keeps the record it repeats, and that record's checks.
                if run_id is not None and event.checks and (event.run_id is not None or run_id != previous.last_run_id):
                    self._record_checks(conn, run_id, event)
                if run_id is not None and event.break_glass is not None:
                    self._record_override(conn, run_id, event, stamp)
                outcome = replace(event, run_id=run_id)
                status = transition(previous, outcome, stamp)
                if outcome.result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES) and outcome.verify is not None:
                    self._observe_drift(conn, event.environment, [i.as_json() for i in outcome.verify.drift], stamp)
            else:
                status = transition(previous, event, stamp)
                if isinstance(event, DriftChecked):
                    self._observe_drift(conn, event.environment, [i.as_json() for i in event.drift], stamp)
            if status != previous:
                self._write_status(conn, status, stamp)
            return run_id

        return self._tx(what, write)

    def _record_run(self, conn: Connection, outcome: RunOutcome, previous: EnvironmentStatus,
                    stamp: dt.datetime) -> str | None:
        if outcome.result == RunResult.BUSY:
            return None
        if outcome.run_id is not None:  # the run this outcome ends was started by an earlier record
            conn.execute(sa.update(t.runs).where(t.runs.c.id == outcome.run_id, self._mine(t.runs)).values(
                result=outcome.result.value, reason=outcome.reason, applied=list(outcome.applied),
                drift_after=outcome.drift_after, finished_at=stamp,
            ))
            return outcome.run_id
        if previous.last_run_id is not None:
            last = conn.execute(sa.select(t.runs.c.result, t.runs.c.revision, t.runs.c.reason)
                                .where(t.runs.c.id == previous.last_run_id, self._mine(t.runs))).first()
            if last is not None and repeats(outcome, last.result, last.revision, last.reason):
                return previous.last_run_id
        run_id = uuid.uuid4().hex
        done = outcome.result != RunResult.PROGRESSING
        plan = [i.as_json() for i in outcome.plan.items] if outcome.plan is not None else []
        if outcome.result == RunResult.NO_CHANGES:
            plan = []
        conn.execute(sa.insert(t.runs).values(
            id=run_id, workspace=self.workspace, environment=outcome.environment, revision=outcome.revision,
            tree_id=outcome.tree_id if outcome.result != RunResult.BLOCKED else None, ref=outcome.ref,
            trigger=outcome.trigger, started_at=stamp, finished_at=stamp if done else None,
            result=outcome.result.value, reason=outcome.reason, plan=plan, applied=list(outcome.applied),
            drift_after=None, owner=OWNER,
        ))
        return run_id

    def _record_checks(self, conn: Connection, run_id: str, outcome: RunOutcome) -> None:
        """The results of the checks a run ran (already redacted), in the order they ran."""
        conn.execute(sa.delete(t.run_checks).where(t.run_checks.c.run_id == run_id))
        conn.execute(sa.insert(t.run_checks), [
            {"run_id": run_id, "seq": seq, "workspace": self.workspace, "environment": outcome.environment,
             "tree_id": outcome.tree_id, "name": result["name"], "passed": bool(result.get("passed")), "result": result}
            for seq, result in enumerate(outcome.checks)
        ])

    def _record_override(self, conn: Connection, run_id: str, outcome: RunOutcome, stamp: dt.datetime) -> None:
        """Who broke the glass of a deny window for this run, and why (written once, with its start)."""
        assert outcome.break_glass is not None
        mine = self._mine(t.overrides)
        if conn.execute(sa.select(t.overrides.c.run_id).where(mine, t.overrides.c.run_id == run_id)).first() is None:
            conn.execute(sa.insert(t.overrides).values(
                workspace=self.workspace, run_id=run_id, environment=outcome.environment, gate="window",
                who=outcome.break_glass.who, reason=outcome.break_glass.reason, created_at=stamp))

    def _overrides(self, conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not run_ids:
            return {}
        rows = conn.execute(sa.select(t.overrides).where(self._mine(t.overrides), t.overrides.c.run_id.in_(run_ids)))
        return {r.run_id: {"gate": r.gate, "who": r.who, "reason": r.reason,
                           "at": (_utc(r.created_at) or now()).isoformat()} for r in rows}

    def _checks(self, conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not run_ids:
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        rows = conn.execute(sa.select(t.run_checks.c.run_id, t.run_checks.c.result)
                            .where(t.run_checks.c.run_id.in_(run_ids)).order_by(t.run_checks.c.seq))
        for run_id, result in rows:
            out.setdefault(run_id, []).append(dict(result))
        return out

    def checks_for(self, environment: str, tree_id: str) -> list[dict[str, Any]] | None:
        """The check results of the latest run in ``environment`` that ran checks on ``tree_id``; None if none did."""
        def read(conn: Connection) -> list[dict[str, Any]] | None:
            row = conn.execute(
                sa.select(t.runs.c.id).where(
                    self._mine(t.runs), t.runs.c.environment == environment, t.runs.c.tree_id == tree_id,
                    t.runs.c.id.in_(sa.select(t.run_checks.c.run_id).where(
                        self._mine(t.run_checks), t.run_checks.c.environment == environment,
                        t.run_checks.c.tree_id == tree_id)),
                ).order_by(t.runs.c.started_at.desc()).limit(1)
            ).first()
            return None if row is None else self._checks(conn, [row.id]).get(row.id, [])

        return self._tx("read checks", read)

    def record_applied(self, run_id: str, ids: list[str], offset: int) -> None:
        """Append the ids of one applied step; ``offset`` is how many were recorded before."""
        if not ids:
            return
        rows = [{"run_id": run_id, "seq": offset + index, "item_id": item} for index, item in enumerate(ids)]
        self._tx("record progress", lambda conn: conn.execute(sa.insert(t.run_changes), rows))

    def _progress(self, conn: Connection, run_ids: list[str]) -> dict[str, list[str]]:
        if not run_ids:
            return {}
        out: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
        rows = conn.execute(sa.select(t.run_changes.c.run_id, t.run_changes.c.item_id)
                            .where(t.run_changes.c.run_id.in_(run_ids)).order_by(t.run_changes.c.seq))
        for run_id, item in rows:
            out[run_id].append(item)
        return out

    def _runs_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
        """Records of ``rows``; an unfinished run's applied ids come from its progress rows."""
        progress = self._progress(conn, [r.id for r in rows if r.result == "Progressing"])
        checks = self._checks(conn, [r.id for r in rows])
        overrides = self._overrides(conn, [r.id for r in rows])
        return [replace(self._run_from_row(r, progress.get(r.id)), checks=checks.get(r.id, []),
                        break_glass=overrides.get(r.id)) for r in rows]

    @staticmethod
    def _run_from_row(row: Any, progress: list[str] | None = None) -> RunRecord:
        return RunRecord(
            id=row.id, workspace=row.workspace, environment=row.environment, revision=row.revision,
            tree_id=row.tree_id, ref=row.ref,
            trigger=row.trigger, started_at=_utc(row.started_at) or now(), finished_at=_utc(row.finished_at),
            result=row.result, reason=row.reason, plan=list(row.plan or []),
            applied=progress if progress is not None else list(row.applied or []),
            drift_after=row.drift_after, owner=row.owner,
        )

    def runs(self, environment: str, limit: int = 50) -> list[RunRecord]:
        return self._tx("list runs", lambda conn: self._runs_from_rows(conn, conn.execute(
            sa.select(t.runs).where(self._mine(t.runs), t.runs.c.environment == environment)
            .order_by(t.runs.c.started_at.desc()).limit(limit)
        ).all()))

    def run(self, run_id: str) -> RunRecord | None:
        found = self._tx("read run", lambda conn: self._runs_from_rows(conn, conn.execute(
            sa.select(t.runs).where(self._mine(t.runs), t.runs.c.id == run_id)).all()))
        return found[0] if found else None

    def unfinished_runs(self) -> list[RunRecord]:
        return self._tx("list unfinished runs", lambda conn: self._runs_from_rows(conn, conn.execute(
            sa.select(t.runs).where(self._mine(t.runs), t.runs.c.result == "Progressing")).all()))

    def abandoned(self, run: RunRecord) -> bool:
        """True when the process of an unfinished run is gone: dead on this host, or its lease lapsed."""
        if run.owner is None or not _owner_alive(run.owner):
            return True
        row = self._tx("read lease", lambda conn: conn.execute(
            sa.select(t.leases).where(self._mine(t.leases), t.leases.c.environment == run.environment)).first())
        return row is None or row.owner != run.owner or (_utc(row.expires_at) or clock.system()) < clock.system()

    def verified_in(self, environment: str, tree_id: str) -> bool:
        """True when ``tree_id`` synced and verified (zero drift) in ``environment`` at least once."""
        row = self._tx("check promotion", lambda conn: conn.execute(
            sa.select(t.runs.c.id).where(
                self._mine(t.runs), t.runs.c.environment == environment, t.runs.c.tree_id == tree_id,
                t.runs.c.result.in_(["Succeeded", "NoChanges"]),
            ).limit(1)
        ).first())
        return row is not None

    def last_good(self, environment: str, other_than: str) -> tuple[str, str | None] | None:
        """The revision (and ref) of the latest run in ``environment`` that Succeeded or found nothing to
        do — so its checks, if any ran, passed — at a revision other than ``other_than`` (rollback)."""
        row = self._tx("find last good run", lambda conn: conn.execute(
            sa.select(t.runs.c.revision, t.runs.c.ref).where(
                self._mine(t.runs), t.runs.c.environment == environment, t.runs.c.revision.is_not(None),
                t.runs.c.revision != other_than, t.runs.c.result.in_(["Succeeded", "NoChanges"]),
            ).order_by(t.runs.c.started_at.desc()).limit(1)
        ).first())
        return None if row is None else (str(row.revision), row.ref)

    def synced_since(self, environment: str, tree_id: str) -> dt.datetime | None:
        """When ``tree_id`` became Synced in ``environment`` after its last failed run there (the soak's start)."""
        def read(conn: Connection) -> dt.datetime | None:
            same = (self._mine(t.runs), t.runs.c.environment == environment, t.runs.c.tree_id == tree_id)
            failed = conn.execute(sa.select(sa.func.max(t.runs.c.started_at)).where(
                *same, t.runs.c.result == "Failed")).scalar()
            ok = sa.select(sa.func.min(t.runs.c.finished_at)).where(
                *same, t.runs.c.result.in_(["Succeeded", "NoChanges"]))
            if failed is not None:
                ok = ok.where(t.runs.c.started_at > failed)
            return _utc(conn.execute(ok).scalar())

        return self._tx("check soak", read)

    def run_counts(self) -> dict[tuple[str, str], int]:
        rows = self._tx("count runs", lambda conn: conn.execute(
            sa.select(t.runs.c.environment, t.runs.c.result, sa.func.count()).where(self._mine(t.runs)).group_by(
                t.runs.c.environment, t.runs.c.result)
        ).all())
        return {(r[0], r[1]): int(r[2]) for r in rows}

    # -- environment status ------------------------------------------------------------------

    @staticmethod
    def _status_from_row(row: Any) -> EnvironmentStatus:
        data = {key: row._mapping[key] for key in _STATUS_COLUMNS}
        for key in ("last_checked_at", "updated_at"):
            data[key] = _utc(data[key])
        data["state"] = EnvState(data["state"])
        return EnvironmentStatus(**data)

    def _status(self, conn: Connection, environment: str) -> EnvironmentStatus:
        row = conn.execute(
            sa.select(t.environment_status).where(self._mine(t.environment_status),
                                                  t.environment_status.c.environment == environment)
        ).first()
        return EnvironmentStatus(environment) if row is None else self._status_from_row(row)

    def status(self, environment: str) -> EnvironmentStatus:
        return self._tx("read status", lambda conn: self._status(conn, environment))

    def statuses(self) -> dict[str, EnvironmentStatus]:
        rows = self._tx("read statuses", lambda conn: conn.execute(
            sa.select(t.environment_status).where(self._mine(t.environment_status))).all())
        return {row.environment: self._status_from_row(row) for row in rows}

    def _write_status(self, conn: Connection, status: EnvironmentStatus, stamp: dt.datetime) -> None:
        """The one statement that writes an environment's status row (only ``record`` calls it)."""
        values = {key: getattr(status, key) for key in _STATUS_COLUMNS if key != "environment"}
        values["state"] = status.state.value
        values["updated_at"] = stamp
        where = (self._mine(t.environment_status), t.environment_status.c.environment == status.environment)
        exists = conn.execute(sa.select(t.environment_status.c.environment).where(*where)).first()
        if exists is None:
            conn.execute(sa.insert(t.environment_status).values(workspace=self.workspace,
                                                                environment=status.environment, **values))
        else:
            conn.execute(sa.update(t.environment_status).where(*where).values(**values))

    def set_pin(self, environment: str, revision: str | None) -> None:
        """Hold ``environment`` at ``revision`` (a full commit id), or release it with None."""

        # A pin is an operator's decision, not a status: it writes its own column and nothing else.
        def write(conn: Connection) -> None:
            where = (self._mine(t.environment_status), t.environment_status.c.environment == environment)
            if conn.execute(sa.select(t.environment_status.c.environment).where(*where)).first() is None:
                conn.execute(sa.insert(t.environment_status).values(workspace=self.workspace, environment=environment,
                                                                    pinned_revision=revision))
            else:
                conn.execute(sa.update(t.environment_status).where(*where).values(pinned_revision=revision))

        self._tx("write pin", write)

    # -- tags -------------------------------------------------------------------------------

    def tag_targets(self) -> dict[str, str]:
        rows = self._tx("read tags", lambda conn: conn.execute(
            sa.select(t.tags_seen).where(self._mine(t.tags_seen))).all())
        return {r.name: r.target for r in rows}

    def remember_tags(self, tags: Iterable[tuple[str, str]]) -> None:
        """Remember the first target seen for each tag name (a moved tag keeps its first target)."""
        def write(conn: Connection) -> None:
            known = {r.name for r in conn.execute(sa.select(t.tags_seen.c.name).where(self._mine(t.tags_seen)))}
            fresh = [{"workspace": self.workspace, "name": n, "target": tg, "first_seen": now()}
                     for n, tg in tags if n not in known]
            if fresh:
                conn.execute(sa.insert(t.tags_seen), fresh)

        self._tx("remember tags", write)

    # -- drift first-seen --------------------------------------------------------------------

    def _observe_drift(self, conn: Connection, environment: str, items: list[dict[str, Any]],
                       stamp: dt.datetime) -> None:
        """Remember the drift found now: a new item is first seen now; gone items are forgotten."""
        mine = (self._mine(t.drift_seen), t.drift_seen.c.environment == environment)
        rows = conn.execute(sa.select(t.drift_seen.c.item_id).where(*mine)).all()
        known = {r.item_id for r in rows}
        ids = {i["id"] for i in items}
        gone = [k for k in known if k not in ids]
        if gone:
            conn.execute(sa.delete(t.drift_seen).where(*mine, t.drift_seen.c.item_id.in_(gone)))
        for item in items:
            if item["id"] in known:
                conn.execute(sa.update(t.drift_seen).where(*mine, t.drift_seen.c.item_id == item["id"])
                             .values(last_seen=stamp, item=item))
            else:
                conn.execute(sa.insert(t.drift_seen).values(
                    workspace=self.workspace, environment=environment, item_id=item["id"], first_seen=stamp,
                    last_seen=stamp, item=item))

    def drift(self, environment: str) -> list[tuple[dict[str, Any], dt.datetime]]:
        """The drift last recorded for ``environment``, each item with when it was first seen."""
        rows = self._tx("read drift", lambda conn: conn.execute(
            sa.select(t.drift_seen).where(self._mine(t.drift_seen), t.drift_seen.c.environment == environment)
        ).all())
        return [(dict(r.item), _utc(r.first_seen) or now()) for r in rows]

    # -- fingerprints (FingerprintBook) -----------------------------------------------------

    def get(self, provider: str, scope: str) -> str | None:
        row = self._tx("read fingerprint", lambda conn: conn.execute(
            sa.select(t.fingerprints.c.fingerprint).where(
                self._mine(t.fingerprints), t.fingerprints.c.provider == provider, t.fingerprints.c.scope == scope)
        ).first())
        return row[0] if row is not None else None

    def put(self, provider: str, scope: str, fingerprint: str) -> None:
        def write(conn: Connection) -> None:
            conn.execute(sa.delete(t.fingerprints).where(
                self._mine(t.fingerprints), t.fingerprints.c.provider == provider, t.fingerprints.c.scope == scope))
            conn.execute(sa.insert(t.fingerprints).values(workspace=self.workspace, provider=provider, scope=scope,
                                                          fingerprint=fingerprint))

        self._tx("write fingerprint", write)

    # -- app releases (ReleaseBook) ----------------------------------------------------------

    def find_release(self, repository: str, app: str, *, key: str | None = None,
                     version: str | None = None) -> ReleaseRecord | None:
        """The release of ``app`` made from ``key`` (or with ``version``) in ``repository``, if any."""
        query = sa.select(t.releases).where(self._mine(t.releases), t.releases.c.repository == repository,
                                            t.releases.c.app == app)
        if key is not None:
            query = query.where(t.releases.c.key == key)
        if version is not None:
            query = query.where(t.releases.c.version == version)
        row = self._tx("read release", lambda conn: conn.execute(query.limit(1)).first())
        if row is None:
            return None
        return ReleaseRecord(repository=row.repository, app=row.app, key=row.key, version=row.version,
                             label=row.label, revision=row.revision, environment=row.environment,
                             branch=row.branch, commit=row.commit_sha, merged=bool(row.merged))

    def record_release(self, record: ReleaseRecord) -> None:
        """Write (or update: merged, branch) the row of ``record``."""
        def write(conn: Connection) -> None:
            where = (self._mine(t.releases), t.releases.c.repository == record.repository,
                     t.releases.c.app == record.app, t.releases.c.key == record.key)
            conn.execute(sa.delete(t.releases).where(*where))
            conn.execute(sa.insert(t.releases).values(
                workspace=self.workspace, repository=record.repository, app=record.app, key=record.key,
                version=record.version,
                label=record.label, revision=record.revision, environment=record.environment,
                branch=record.branch, commit_sha=record.commit, merged=record.merged, recorded_at=now()))

        self._tx("write release", write)

    # -- notification dedup --------------------------------------------------------------------

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is seen (used to send each notification once)."""
        def write(conn: Connection) -> bool:
            where = (self._mine(t.events), t.events.c.key == key)
            if conn.execute(sa.select(t.events.c.key).where(*where)).first() is not None:
                return False
            conn.execute(sa.insert(t.events).values(workspace=self.workspace, key=key, created_at=now()))
            return True

        try:
            return self._tx("record event", write)
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False
            raise

    def forget_events(self, prefix: str) -> int:
        """Forget the keys that start with ``prefix`` (so those events are sent again); return how many."""
        return int(self._tx("forget events", lambda conn: conn.execute(
            sa.delete(t.events).where(self._mine(t.events), t.events.c.key.startswith(prefix, autoescape=True))
        ).rowcount))
