"""The state store: leases, tag memory, drift first-seen (real SQLite files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reconciler import clock
from reconciler.core.changes import Change, DriftItem
from reconciler.core.outcome import DriftChecked
from reconciler.store.leases import Leases
from reconciler.store.store import Store
from tests.daemon_support import wait_for


def test_one_lease_holder_at_a_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    a, b = Leases(Store(url)), Leases(Store(url))
    assert a.acquire("staging", ttl=60, owner="a")
    assert not b.acquire("staging", ttl=60, owner="b")
    assert a.acquire("staging", ttl=60, owner="a")  # renewal by the holder
    assert b.acquire("production", ttl=60, owner="b")
    a.release("staging", owner="a")
    assert b.acquire("staging", ttl=60, owner="b")


def test_an_expired_lease_can_be_taken_over(tmp_path: Path) -> None:
    store = Leases(Store(f"sqlite:///{tmp_path / 'state.db'}"))
    assert store.acquire("staging", ttl=0.05, owner="crashed")
    wait_for(lambda: store.acquire("staging", ttl=60, owner="new"), message="the expired lease to be taken")
    assert not store.acquire("staging", ttl=60, owner="crashed")


def test_a_tag_keeps_its_first_target(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    store.remember_tags([("v1.0.0", "a" * 40)])
    store.remember_tags([("v1.0.0", "b" * 40), ("v1.1.0", "c" * 40)])
    assert store.tag_targets() == {"v1.0.0": "a" * 40, "v1.1.0": "c" * 40}


def _item(item_id: str) -> DriftItem:
    kind, name = item_id.split(":")
    return DriftItem(id=item_id, kind=kind, name=name, field=None, change=Change.CREATE, declared={}, live=None)


def _observe(store: Store, *ids: str) -> dict[str, dt.datetime]:
    store.record(DriftChecked("staging", tuple(_item(i) for i in ids), clock.now()))
    return {item["id"]: when for item, when in store.drift("staging")}


def test_drift_first_seen_survives_until_the_item_is_gone(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    first = _observe(store, "group:x")["group:x"]
    again = _observe(store, "group:x", "group:y")
    assert again["group:x"] == first
    assert again["group:y"] >= first
    _observe(store)
    mark = clock.now()  # the clock the store stamps records with
    later = _observe(store, "group:x")["group:x"]
    assert later >= mark > first  # a reappearing item starts a new first-seen
    assert [item["id"] for item, _ in store.drift("staging")] == ["group:x"]
