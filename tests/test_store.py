"""The state store: leases, tag memory, drift first-seen (real SQLite files)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from reconciler.store.store import Store


def test_one_lease_holder_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    a, b = Store(url), Store(url)
    assert a.acquire_lease("staging", ttl=60, owner="a")
    assert not b.acquire_lease("staging", ttl=60, owner="b")
    assert a.acquire_lease("staging", ttl=60, owner="a")  # renewal by the holder
    assert b.acquire_lease("production", ttl=60, owner="b")
    a.release_lease("staging", owner="a")
    assert b.acquire_lease("staging", ttl=60, owner="b")


def test_an_expired_lease_can_be_taken_over(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    assert store.acquire_lease("staging", ttl=0.05, owner="crashed")
    deadline = time.monotonic() + 5
    while not store.acquire_lease("staging", ttl=60, owner="new"):
        assert time.monotonic() < deadline, "lease never expired"
        time.sleep(0.02)


def test_a_tag_keeps_its_first_target(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.remember_tags([("v1.0.0", "a" * 40)])
    store.remember_tags([("v1.0.0", "b" * 40), ("v1.1.0", "c" * 40)])
    assert store.tag_targets() == {"v1.0.0": "a" * 40, "v1.1.0": "c" * 40}


def test_drift_first_seen_survives_until_the_item_is_gone(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    first = store.observe_drift("staging", [{"id": "group:x"}])["group:x"]
    again = store.observe_drift("staging", [{"id": "group:x"}, {"id": "group:y"}])
    assert again["group:x"] == first
    assert again["group:y"] >= first
    store.observe_drift("staging", [])
    mark = dt.datetime.now(dt.UTC)
    later = store.observe_drift("staging", [{"id": "group:x"}])["group:x"]
    assert later >= mark > first  # a reappearing item starts a new first-seen
    assert [item["id"] for item, _ in store.drift("staging")] == ["group:x"]
