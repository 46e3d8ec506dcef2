"""Leases: one run per environment across processes sharing a state store (SPEC §5).

``app/reconcile.py`` holds an environment's lease for the length of a run (``Leases.hold``): a
row naming the owner (host:pid) and an expiry, renewed by a heartbeat thread while a long step
runs. A lease that expired, or whose owner is a process of this host that no longer exists, can be
taken over. Leases are judged on the system clock every process shares.

Daemons sharing one state store (``app/replicas.py``) use the same rows under names no environment
can have (environment names start with a letter or digit): ``@leader`` for the leader lease and
``@replica:<hash of the owner>`` for each live daemon; and ``signals`` rows to tell each other
that the source moved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler import clock, logs
from reconciler.errors import ReconcilerError, StoreError
from reconciler.store import tables as t
from reconciler.store.store import OWNER, Store, _owner_alive, _utc

T = TypeVar("T")

log = logs.get_logger(__name__)

LEADER = "@leader"
MEMBER_PREFIX = "@replica:"


def member_key(owner: str) -> str:
    """The lease name of a daemon's membership row (owners can be longer than a lease name)."""
    return MEMBER_PREFIX + hashlib.sha256(owner.encode()).hexdigest()[:32]


@dataclass
class Held:
    """A lease as ``Leases.hold`` took it: held or not, and what went wrong releasing it."""

    held: bool
    warnings: list[str] = field(default_factory=list)


# How old a shared look may be when a workspace's replica asks (its tick is a second): the workspaces of
# one process then share about one read a second; this process's own writes make the next look read.
LOOK_MAX_AGE = 0.5


@dataclass(frozen=True)
class _Snapshot:
    at: float  # time.monotonic() of the read
    key: tuple[str, str]  # (lease, signal) it read
    rows: dict[str, list[Any]]  # workspace -> its membership rows and its ``lease`` row
    values: dict[str, str]  # workspace -> the value of its ``signal``


class _Board:
    """One process's last read of the replica rows of its workspaces on one database (see ``Leases.look``).

    It reads only the workspaces that asked in this process, never another daemon's workspaces that
    share the database: rows of a workspace stay that workspace's, as every statement of the store
    keeps them (``Store._mine``), here for a set of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: _Snapshot | None = None
        self._workspaces: set[str] = set()

    def invalidate(self) -> None:
        with self._lock:
            self._last = None

    def snapshot(self, store: Store, lease: str, signal: str) -> tuple[dict[str, list[Any]], dict[str, str]]:
        with self._lock:  # one reader at a time: the others take what it read
            last = self._last
            if (last is None or last.key != (lease, signal) or store.workspace not in self._workspaces
                    or time.monotonic() - last.at > LOOK_MAX_AGE):
                self._workspaces.add(store.workspace)
                last = self._last = self._read(store, sorted(self._workspaces), lease, signal)
            return last.rows, last.values

    @staticmethod
    def _read(store: Store, workspaces: list[str], lease: str, signal: str) -> _Snapshot:
        def read(conn: Connection) -> tuple[Sequence[Any], Sequence[Any]]:
            rows = conn.execute(sa.select(t.leases.c.workspace, t.leases.c.environment, t.leases.c.owner,
                                          t.leases.c.expires_at).where(
                t.leases.c.workspace.in_(workspaces),
                sa.or_(t.leases.c.environment.startswith(MEMBER_PREFIX), t.leases.c.environment == lease))).all()
            values = conn.execute(sa.select(t.signals.c.workspace, t.signals.c.value)
                                  .where(t.signals.c.workspace.in_(workspaces), t.signals.c.name == signal)).all()
            return rows, values

        at = time.monotonic()
        rows, values = store._tx("read replicas", read)
        by_workspace: dict[str, list[Any]] = {}
        for row in rows:
            by_workspace.setdefault(row.workspace, []).append(row)
        return _Snapshot(at, (lease, signal), by_workspace, {row.workspace: str(row.value) for row in values})


_BOARDS: weakref.WeakKeyDictionary[sa.engine.Engine, _Board] = weakref.WeakKeyDictionary()
_BOARDS_LOCK = threading.Lock()


def _board(engine: sa.engine.Engine) -> _Board:
    with _BOARDS_LOCK:
        board = _BOARDS.get(engine)
        if board is None:
            board = _BOARDS[engine] = _Board()
        return board


class Leases:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _write(self, what: str, fn: Callable[[Connection], T]) -> T:
        """A write through the store; the process's next replica look reads again (it may change it)."""
        try:
            return self.store._tx(what, fn)
        finally:
            _board(self.store.engine).invalidate()

    def acquire(self, environment: str, ttl: float, owner: str = OWNER) -> bool:
        """Take (or renew) the lease on ``environment``; False when another live owner holds it."""
        stamp = clock.system()  # leases are shared between processes: the system clock, never a set one
        expires = stamp + dt.timedelta(seconds=ttl)

        mine = self.store._mine(t.leases)

        def take(conn: Connection) -> bool:
            updated = conn.execute(sa.update(t.leases).where(
                mine, t.leases.c.environment == environment,
                sa.or_(t.leases.c.owner == owner, t.leases.c.expires_at < stamp),
            ).values(owner=owner, expires_at=expires))
            if updated.rowcount:
                return True
            exists = conn.execute(sa.select(t.leases.c.owner)
                                  .where(mine, t.leases.c.environment == environment)).first()
            if exists is not None:
                if not _owner_alive(exists.owner):
                    # The holder was a process on this host that no longer exists (kill -9).
                    conn.execute(sa.update(t.leases).where(
                        mine, t.leases.c.environment == environment, t.leases.c.owner == exists.owner,
                    ).values(owner=owner, expires_at=expires))
                    log.warning("lease.taken_from_dead_owner", environment=environment, previous=exists.owner)
                    return True
                return False
            conn.execute(sa.insert(t.leases).values(workspace=self.store.workspace, environment=environment,
                                                    owner=owner, expires_at=expires))
            return True

        try:
            taken = self.store._tx("take lease", take)
        except StoreError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False  # another process inserted the lease row first
            raise
        if taken:  # a lease refused changed nothing: the shared look stays good (a follower asks every tick)
            _board(self.store.engine).invalidate()
        return taken

    def look(self, lease: str, signal: str) -> tuple[list[str], str | None, str | None]:
        """The owners of live membership rows (not expired, not a dead process of this host), sorted; who
        holds ``lease`` now (no row, expired or a dead owner: nobody); the value last posted to ``signal`` (or None).

        What a replica reads every second in every workspace. The workspaces of one process share one
        read (``_Board``): 20 workspaces on a PostgreSQL store, reading for themselves, cost the idle
        daemon 4 to 6 % of a core.
        """
        stamp = clock.system()
        rows, values = _board(self.store.engine).snapshot(self.store, lease, signal)
        ws = self.store.workspace
        live = [row for row in rows.get(ws, ()) if (_utc(row.expires_at) or stamp) >= stamp
                and _owner_alive(row.owner)]
        members = sorted(row.owner for row in live if row.environment.startswith(MEMBER_PREFIX))
        holder = next((str(row.owner) for row in live if row.environment == lease), None)
        return members, holder, values.get(ws)

    def post(self, name: str, value: str) -> None:
        """Set the signal ``name`` to ``value`` for every process sharing the store to read."""
        stamp = clock.system()

        def upsert(conn: Connection) -> None:
            if not conn.execute(sa.update(t.signals).where(self.store._mine(t.signals), t.signals.c.name == name)
                                .values(value=value, updated_at=stamp)).rowcount:
                conn.execute(sa.insert(t.signals).values(workspace=self.store.workspace, name=name, value=value,
                                                         updated_at=stamp))

        try:
            self._write("post signal", upsert)
        except StoreError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            self._write("post signal", upsert)  # another process inserted the row first: update it

    def release(self, environment: str, owner: str = OWNER) -> None:
        self._write("release lease", lambda conn: conn.execute(
            sa.delete(t.leases).where(self.store._mine(t.leases), t.leases.c.environment == environment,
                                      t.leases.c.owner == owner)
        ))

    @contextmanager
    def hold(self, environment: str, ttl: float, ttl_text: str | None = None) -> Iterator[Held]:
        """Hold ``environment``'s lease while the block runs, renewing it every ``ttl``/3 seconds.

        Failing to release the row (the state database is full, read-only or gone) is a warning,
        not an error: the row expires after ``ttl``, and a process of this host takes over a dead
        owner's row at once.
        """
        if not self.acquire(environment, ttl):
            yield Held(held=False)
            return
        done = threading.Event()
        heartbeat = threading.Thread(target=self._renew, args=(environment, ttl, done), daemon=True,
                                     name=f"lease-{environment}")
        heartbeat.start()
        held = Held(held=True)
        try:
            yield held
        finally:
            done.set()
            heartbeat.join(timeout=5)
            try:
                self.release(environment)
            except ReconcilerError as exc:
                log.warning("lease.release_failed", environment=environment, error=str(exc), expires_in=ttl)
                held.warnings.append(f"could not release the lease on {environment} ({exc}); it expires by itself "
                                     f"within {ttl_text or _seconds(ttl)}")

    def _renew(self, environment: str, ttl: float, done: threading.Event) -> None:
        """Keep the lease while a long step runs (a lock wait, a slow migration)."""
        while not done.wait(ttl / 3):
            try:
                self.acquire(environment, ttl)
            except ReconcilerError as exc:
                log.warning("lease.renew_failed", environment=environment, error=str(exc))


def _seconds(ttl: float) -> str:
    return f"{ttl:g}s"
