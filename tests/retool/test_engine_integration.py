"""The whole reconciler (Git → render → diff → plan → gates → apply → verify) into the fake Retool.

The example desired state from a real Git repository is reconciled for staging and production; a
second run writes nothing; the record of what was written survives a restart (it lives in the
state store); out-of-band edits in Retool are found and healed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.app.reconcile import Reconciler
from reconciler.providers.retool import RetoolProvider
from reconciler.store.store import Store
from tests.conftest import World
from tests.retool.fake_server import FakeRetool


@pytest.fixture
def retool_world(pyworld: World, fake: FakeRetool) -> Iterator[tuple[World, FakeRetool]]:
    pyworld.configure(platform={"provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}"})
    yield pyworld, fake


def reconciler_for(world: World, fake: FakeRetool) -> Reconciler:
    settings = world.settings()
    store = Store(settings.state_url)
    platform = RetoolProvider(fake.url, fake.token, requests_per_minute=60_000, deploy_poll_interval=0.01,
                              fingerprints=store)
    return world.reconciler(store=store, platform=platform)


def test_the_example_reconciles_into_retool_and_a_second_run_writes_nothing(
    retool_world: tuple[World, FakeRetool],
) -> None:
    world, fake = retool_world
    r = reconciler_for(world, fake)
    staging = r.reconcile("staging")
    assert staging.result == "Succeeded", staging.reason
    assert fake.config_values("SUPPORT_EMAIL")["staging"] == "support-staging@example.com"
    world.tag("v1.0.0", "Release 1.0.0")
    production = r.reconcile("production")
    assert production.result == "Succeeded", production.reason
    assert fake.pinned("production")

    fake.clear_calls()
    assert r.reconcile("staging").result == "NoChanges"
    assert r.reconcile("production").result == "NoChanges"
    assert fake.writes() == []

    # After a restart the record of written secrets comes from the state store: still nothing to do.
    fresh = reconciler_for(world, fake)
    assert fresh.plan("staging").is_empty()
    assert fresh.plan("production").is_empty()
    assert fake.writes() == []


def test_out_of_band_edits_in_retool_are_found_and_healed(retool_world: tuple[World, FakeRetool]) -> None:
    world, fake = retool_world
    r = reconciler_for(world, fake)
    assert r.reconcile("staging").result == "Succeeded"
    fake.set_config_value("SUPPORT_EMAIL", "staging", "intruder@example.com")
    fake.revoke("support-team", "app", "customer-support-dashboard")
    plan, _ = r.drift("staging")
    assert sorted(i.id for i in plan.drift) == [
        "config-variable:SUPPORT_EMAIL:value",
        "permission:support-team/app/customer-support-dashboard",
    ]
    healed = r.reconcile("staging")
    assert healed.result == "Succeeded", healed.reason
    assert fake.config_values("SUPPORT_EMAIL")["staging"] == "support-staging@example.com"
    assert r.drift("staging")[0].drift == []
