"""The declared-schema cache on disk: reused by new processes, never trusted when damaged, bounded."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from reconciler.app.wiring import build_schema
from reconciler.config import Settings
from reconciler.providers.postgres import PostgresProvider
from reconciler.providers.postgres.cache import MAGIC, InspectionCache
from reconciler.providers.postgres.diffing import Inspection
from tests.postgres.support import scratch_databases

NewDatabase = Callable[[str], str]
SCHEMA = [("databases/crm/001.sql", "create table customers (id int primary key, email text not null);\n"
                                    "create view emails as select email from customers;\n")]


def inspection(label: str = "x") -> Inspection:
    return Inspection(engine="test", schemas=("public",), server_version=16, raw={"label": label})


def entry(cache: InspectionCache, key: str) -> Path:
    [path] = [p for p in cache.folder.iterdir() if p.name.startswith(hashlib.sha256(key.encode()).hexdigest())]
    return path


def test_an_entry_reads_back_equal(tmp_path: Path) -> None:
    cache = InspectionCache(tmp_path / "schemas")
    cache.put("k", inspection("a"))
    got = cache.get("k")
    assert got is not None and got.raw == {"label": "a"} and got.schemas == ("public",)
    assert cache.get("other") is None
    assert (tmp_path / "schemas").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="flipped-byte"),
    pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    pytest.param(lambda data: b"", id="empty"),
    pytest.param(lambda data: b"something else\n" + data, id="other-format"),
])
def test_a_damaged_entry_is_ignored_and_removed(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    cache = InspectionCache(tmp_path)
    cache.put("k", inspection())
    path = entry(cache, "k")
    path.write_bytes(damage(path.read_bytes()))
    assert cache.get("k") is None
    assert not path.exists()


def test_an_entry_holding_something_else_than_an_inspection_is_not_trusted(tmp_path: Path) -> None:
    cache = InspectionCache(tmp_path)
    cache.put("k", inspection())
    payload = pickle.dumps({"not": "an inspection"})
    entry(cache, "k").write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    assert cache.get("k") is None


def test_the_least_recently_used_entries_go_beyond_the_bound(tmp_path: Path) -> None:
    cache = InspectionCache(tmp_path, max_entries=2)
    cache.put("a", inspection("a"))
    cache.put("b", inspection("b"))
    os.utime(entry(cache, "a"), (1_000, 1_000))
    os.utime(entry(cache, "b"), (2_000, 2_000))
    assert cache.get("a") is not None  # used now: b is the least recently used
    cache.put("c", inspection("c"))
    assert [k for k in "abc" if cache.get(k) is not None] == ["a", "c"]


def test_the_size_bound_holds(tmp_path: Path) -> None:
    cache = InspectionCache(tmp_path, max_bytes=1)
    cache.put("a", inspection("a"))
    assert list(tmp_path.glob("*.inspection")) == []


def _hammer(folder: str, rounds: int, max_entries: int) -> int:
    cache = InspectionCache(Path(folder), max_entries=max_entries)
    bad = 0
    for n in range(rounds):
        cache.put("shared", inspection("same"))
        got = cache.get("shared")
        # Without eviction the entry exists from the first write on: a miss is a torn read.
        bad += (got is None and max_entries > 10) or (got is not None and got.raw != {"label": "same"})
        cache.put(f"own-{os.getpid()}-{n % 3}", inspection("own"))
    return bad


@pytest.mark.parametrize("max_entries", [64, 2], ids=["no-eviction", "evicting"])
def test_processes_writing_and_reading_the_same_entry_never_see_half_of_one(tmp_path: Path, max_entries: int) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        bad = pool.starmap(_hammer, [(str(tmp_path), 80, max_entries)] * 3)
    assert bad == [0, 0, 0]
    assert list(tmp_path.glob(".incoming-*")) == []
    assert len(list(tmp_path.glob("*.inspection"))) <= max_entries


def touch(url: str, n: int) -> None:
    """A live change that is no drift, so the next plan cannot reuse a diff (test_live_reuse.py)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter table customers alter column id set statistics {n}".encode())


def test_a_new_process_reuses_a_declared_schema_another_one_loaded(
    tmp_path: Path, embedded_database: NewDatabase
) -> None:
    url = embedded_database("create table customers (id int primary key);")
    first = PostgresProvider(cache_dir=tmp_path)
    planned = first.plan("crm", url, SCHEMA, "tree-1", ["public"])
    assert first.declared.loads == 1
    touch(url, 10)
    second = PostgresProvider(cache_dir=tmp_path)  # what the next CLI command builds
    assert second.plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned
    assert (second.declared.loads, second.declared.stored, second.reused) == (0, 1, 0)
    # The key is the SQL's content, not the caller's content key.
    touch(url, 20)
    third = PostgresProvider(cache_dir=tmp_path)
    assert third.plan("crm", url, SCHEMA, "another-name-for-the-same-tree", ["public"]) == planned
    assert (third.declared.loads, third.reused) == (0, 0)
    # Other SQL or other managed schemas are other entries.
    fourth = PostgresProvider(cache_dir=tmp_path)
    fourth.plan("crm", url, [(SCHEMA[0][0], SCHEMA[0][1] + "-- changed\n")], "tree-2", ["public"])
    fourth.plan("crm", url, SCHEMA, "tree-1", ["public", "reporting"])
    assert fourth.declared.loads == 2


def test_a_damaged_entry_is_rebuilt_from_the_sql(
    tmp_path: Path, embedded_server: object, embedded_database: NewDatabase
) -> None:
    url = embedded_database("create table customers (id int primary key);")
    planned = PostgresProvider(cache_dir=tmp_path).plan("crm", url, SCHEMA, "tree-1", ["public"])
    [path] = tmp_path.glob("*.inspection")
    data = path.read_bytes()
    path.write_bytes(data[:-10] + b"0123456789")
    touch(url, 10)
    again = PostgresProvider(cache_dir=tmp_path)
    assert again.plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned
    assert again.declared.loads == 1
    assert path.read_bytes() != data[:-10] + b"0123456789"  # rewritten whole
    assert PostgresProvider(cache_dir=tmp_path).plan("crm", url, SCHEMA, "tree-1", ["public"]) == planned


def test_no_scratch_database_outlives_a_plan(embedded_server: object, embedded_database: NewDatabase) -> None:
    url = embedded_database("")
    PostgresProvider().plan("crm", url, SCHEMA, "tree-1", ["public"])
    assert scratch_databases(url) == []


def test_the_cli_and_the_daemon_keep_declared_schemas_in_the_data_directory(tmp_path: Path) -> None:
    provider = build_schema(Settings(data_dir=tmp_path))
    assert isinstance(provider, PostgresProvider)
    assert provider.declared.store is not None
    assert provider.declared.store.folder == tmp_path / "cache" / "schemas"
