"""The state store: leases, tag memory, drift first-seen (real SQLite files)."""

from __future__ import annotations

from pathlib import Path

from reconciler import clock
from reconciler.store.store import Store
from tests.daemon_support import wait_for


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
    wait_for(lambda: store.acquire_lease("staging", ttl=60, owner="new"), message="the expired lease to be taken")
    assert not store.acquire_lease("staging", ttl=60, owner="crashed")


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
    mark = clock.now()  # the clock the store stamps records with
    later = store.observe_drift("staging", [{"id": "group:x"}])["group:x"]
    assert later >= mark > first  # a reappearing item starts a new first-seen
    assert [item["id"] for item, _ in store.drift("staging")] == ["group:x"]
