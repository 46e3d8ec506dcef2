"""Declared-schema inspections and schema diffs kept on disk, so no process does the same work twice.

``DeclaredSchemas`` (``declared.py``) asks ``InspectionCache.get`` before it loads SQL files into a
scratch database, and ``put``s what it inspected after. ``PostgresProvider.plan`` keeps the
``SchemaDiff`` of a declared schema against a live database's catalogs as they were
(``catalog.py``), and reuses it while neither changed. The folder is created by whoever builds the
``PostgresProvider`` (``<data_dir>/cache/schemas`` for the CLI and the daemon).

* **Content-addressed.** The caller's key is a digest of everything the inspection depends on
  (the SQL files' paths and text, the managed schemas, the server's major version and the
  extensions it offers, the diff engine and its version); an entry's file name is that digest,
  so an entry never changes once written and two processes writing the same key write the same
  bytes.
* **Safe under concurrent processes.** An entry is written to a temporary file in the same folder
  and renamed into place (``os.replace`` is atomic): a reader sees a whole entry or none. Eviction
  and reading may race; a vanished entry is a miss.
* **Never trusted when damaged.** Each file holds a format line, the SHA-256 of its payload and the
  payload (a pickle of the ``Inspection`` or ``SchemaDiff``). A file that is short, has another
  format, does not match its digest, fails to unpickle or holds something else than the caller
  asked for is ignored, removed and rebuilt by
  the caller. The folder is as private as the data directory (mode 0700): whoever can write there
  can already change the state database.
* **Bounded.** After each write, entries beyond ``max_entries`` or ``max_bytes`` are removed, least
  recently used first (a hit refreshes the file's modification time).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import TypeVar

from reconciler import logs
from reconciler.providers.postgres.diffing import Inspection, SchemaDiff, engine_imports

log = logs.get_logger(__name__)

MAGIC = b"reconciler-inspection 1\n"
_DIGEST_BYTES = 64  # hex SHA-256
_SUFFIXES = {"Inspection": ".inspection", "SchemaDiff": ".diff"}

Entry = TypeVar("Entry", Inspection, SchemaDiff)


class InspectionCache:
    """A folder of pickled ``Inspection``s and ``SchemaDiff``s named by content key. Thread- and process-safe."""

    def __init__(self, folder: Path, *, max_entries: int = 64, max_bytes: int = 512 << 20) -> None:
        self.folder = Path(folder)
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def _path(self, key: str, kind: type[Inspection | SchemaDiff]) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}{_SUFFIXES[kind.__name__]}"

    def get(self, key: str, kind: type[Entry] = Inspection) -> Entry | None:  # type: ignore[assignment]
        """The ``kind`` stored under ``key``, or None (missing, damaged, unreadable or of another kind)."""
        path = self._path(key, kind)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        inspection = _decode(data, kind)
        if inspection is None:
            log.warning("schema cache entry damaged; ignored and rebuilt", entry=path.name)
            _remove(path)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used
        return inspection

    def put(self, key: str, inspection: Inspection | SchemaDiff) -> None:
        """Store ``inspection`` under ``key`` (best effort: a full or read-only disk only costs speed)."""
        try:
            payload = pickle.dumps(inspection, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            log.warning("declared schema not cached: it does not serialise", error=str(exc))
            return
        data = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(temporary, self._path(key, type(inspection)))
            except BaseException:
                _remove(Path(temporary))
                raise
        except OSError as exc:
            log.warning("declared schema not cached", folder=str(self.folder), error=str(exc))
            return
        self._evict()

    def _evict(self) -> None:
        entries: list[tuple[float, int, Path]] = []
        try:
            paths = [p for p in self.folder.iterdir() if p.suffix in _SUFFIXES.values()]
        except OSError:
            return
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        entries.sort(reverse=True)  # newest first
        total = 0
        for count, (_, size, path) in enumerate(entries, 1):
            total += size
            if count > self.max_entries or total > self.max_bytes:
                _remove(path)


def _decode(data: bytes, kind: type[Entry]) -> Entry | None:
    if not data.startswith(MAGIC):
        return None
    head = len(MAGIC)
    digest, newline, payload = data[head:head + _DIGEST_BYTES], data[head + _DIGEST_BYTES:head + _DIGEST_BYTES + 1], \
        data[head + _DIGEST_BYTES + 1:]
    if newline != b"\n" or hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        if kind is Inspection:
            with engine_imports():  # unpickling an inspection imports the engine's modules
                entry = pickle.loads(payload)  # noqa: S301 - our own file, checked against its digest above
        else:
            entry = pickle.loads(payload)  # noqa: S301 - a SchemaDiff holds only plain data
    except Exception:  # any failure to read back means "rebuild", never "trust"
        return None
    return entry if isinstance(entry, kind) else None


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
