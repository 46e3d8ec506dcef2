"""Apps are promoted as artifacts through Retool's Source Control: one release, every environment.

A release is made once, by the app's first environment in promotion order, from its release label;
it is recorded, and every later environment points its instance's manifest at that same release
(same version, same artifact in the shared repository). Each write through the API pushes a branch
that is merged into the deploy branch before the instance deploys; the deployment is polled and the
instance's live release checked. Both layouts: one instance per environment sharing a repository,
and one instance hosting staging and production (where staging makes the release and production,
the most protected environment there, publishes it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.errors import Waiting
from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider, RetoolStateError, release_version
from reconciler.providers.retool.provider import MemoryReleaseBook
from reconciler.source.branches import BranchRepository
from tests.retool.example import APP, COMMIT, Secrets, context, diff, objects, reconcile
from tests.retool.fake import FakeRetool, FakeSourceControl

R = release_version(COMMIT[:7])


@pytest.fixture
def releases() -> MemoryReleaseBook:
    return MemoryReleaseBook()


@pytest.fixture
def provider_for(
    source_control: FakeSourceControl, book: MemoryFingerprintBook, releases: MemoryReleaseBook, tmp_path: Path
) -> Iterator[Callable[..., RetoolProvider]]:
    made: list[RetoolProvider] = []

    def make(instance: FakeRetool, **options: object) -> RetoolProvider:
        settings: dict[str, object] = {
            "requests_per_minute": 60_000, "fingerprints": book, "releases": releases, "deploy_poll_interval": 0.01,
            "manifest": instance.manifest_name,
            "source_control": BranchRepository(source_control.url, tmp_path / f"cache-{instance.manifest_name}"),
        }
        settings.update(options)
        provider = RetoolProvider(instance.url, instance.token, **settings)  # type: ignore[arg-type]
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def every_branch_merged(source_control: FakeSourceControl) -> bool:
    return bool(source_control.branches()) and all(source_control.is_merged(b) for b in source_control.branches())


# -- one instance per environment, one shared repository -------------------------------------------------


def test_with_an_instance_per_environment_production_publishes_the_release_staging_made(
    fake: FakeRetool, staging_instance: FakeRetool, source_control: FakeSourceControl,
    provider_for: Callable[..., RetoolProvider], book: MemoryFingerprintBook, releases: MemoryReleaseBook,
    secrets: Secrets,
) -> None:
    staging, production = provider_for(staging_instance), provider_for(fake)
    sc_uuid = source_control.app_uuid(APP)
    assert sc_uuid is not None

    # A commit reaches staging: staging makes release R and its manifest points at R.
    reconcile(staging, context("staging", secrets, book), objects("staging", secrets))
    assert staging_instance.pinned() == {APP: R}
    assert staging_instance.live_releases() == {APP: R}
    assert fake.live_releases() == {APP: "latest"}
    artifact = source_control.artifact(sc_uuid, R)

    # Someone edits the app after staging's release: production must not pick that up.
    source_control.edit_app(APP, {"main.rsx": b"<App>unreleased work</App>"})

    # The release tag reaches production: it runs the same release R, never one of its own.
    reconcile(production, context("production", secrets, book, may_release=False), objects("production", secrets))
    assert fake.pinned() == {APP: R}
    assert fake.live_releases() == {APP: R}
    assert fake.live_artifacts() == staging_instance.live_artifacts() == {APP: artifact}
    assert [r["release_version"] for r in source_control.releases(sc_uuid)] == [R]
    record = releases.find_release(source_control.url, APP, version=R)
    assert record is not None and (record.environment, record.label, record.merged) == ("staging", COMMIT[:7], True)

    assert every_branch_merged(source_control)
    assert [d["status"] for d in staging_instance.state.deployments.values()] == ["SUCCESS"]
    assert [d["status"] for d in fake.state.deployments.values()] == ["SUCCESS"]
    assert fake.deprecated_calls() == staging_instance.deprecated_calls() == []

    # A second run of each writes nothing at all.
    fake.clear_calls()
    staging_instance.clear_calls()
    assert reconcile(staging, context("staging", secrets, book), objects("staging", secrets)) == []
    assert reconcile(production, context("production", secrets, book, may_release=False),
                     objects("production", secrets)) == []
    assert fake.writes() == staging_instance.writes() == []


def test_production_never_makes_a_release_of_its_own(
    fake: FakeRetool, source_control: FakeSourceControl, provider_for: Callable[..., RetoolProvider],
    book: MemoryFingerprintBook, secrets: Secrets,
) -> None:
    production = provider_for(fake)

    with pytest.raises(RetoolStateError, match="no release was made of this source") as caught:
        reconcile(production, context("production", secrets, book, may_release=False),
                  objects("production", secrets))

    assert caught.value.retryable is False
    assert [c for c in fake.writes() if c.path.startswith("/source_control")] == []
    assert source_control.branches() == []


# -- one instance hosting staging and production ------------------------------------------------------------


def test_on_a_shared_instance_staging_makes_the_release_and_production_publishes_that_same_one(
    fake: FakeRetool, source_control: FakeSourceControl, provider_for: Callable[..., RetoolProvider],
    book: MemoryFingerprintBook, releases: MemoryReleaseBook, secrets: Secrets,
) -> None:
    provider = provider_for(fake)
    sc_uuid = source_control.app_uuid(APP)
    staging_ctx = context("staging", secrets, book, owner=False)

    reconcile(provider, staging_ctx, objects("staging", secrets))

    # Staging's run made and recorded R (merged into the deploy branch) but published nothing.
    record = releases.find_release(source_control.url, APP, version=R)
    assert record is not None and record.merged and record.environment == "staging"
    assert [r["release_version"] for r in source_control.releases(str(sc_uuid))] == [R]
    assert fake.pinned() == {}
    assert fake.live_releases() == {APP: "latest"}
    assert fake.state.deployments == {}
    assert diff(objects("staging", secrets), provider.read("staging", owner=False)) == {}

    reconcile(provider, context("production", secrets, book, may_release=False), objects("production", secrets))

    assert fake.pinned() == {APP: R}
    assert fake.live_releases() == {APP: R}
    assert fake.live_artifacts() == {APP: source_control.artifact(str(sc_uuid), R)}
    assert every_branch_merged(source_control)
    fake.clear_calls()
    assert reconcile(provider, staging_ctx, objects("staging", secrets)) == []
    assert reconcile(provider, context("production", secrets, book, may_release=False),
                     objects("production", secrets)) == []
    assert fake.writes() == []


# -- merge = "pull-request" ---------------------------------------------------------------------------------


def test_in_pull_request_mode_the_run_waits_for_the_merges_and_publishes_after_them(
    fake: FakeRetool, source_control: FakeSourceControl, provider_for: Callable[..., RetoolProvider],
    book: MemoryFingerprintBook, secrets: Secrets,
) -> None:
    provider = provider_for(fake, merge="pull-request")
    ctx = context("staging", secrets, book)
    declared = objects("staging", secrets)

    with pytest.raises(Waiting) as first:
        reconcile(provider, ctx, declared)

    branches = source_control.branches()
    release = next(b for b in branches if b.startswith("retool-release-"))
    manifest = next(b for b in branches if b.startswith("retool-manifest-production-"))
    assert len(branches) == 2  # the release, and the manifest pointing at it
    assert str(first.value).startswith(f"waiting for merge of {release}, {manifest} into main")
    assert not any(source_control.is_merged(b) for b in branches)
    assert fake.state.deployments == {}

    # Looking again before anyone merged pushes nothing new and deploys nothing.
    fake.clear_calls()
    with pytest.raises(Waiting):
        reconcile(provider, ctx, declared)
    assert [c for c in fake.writes() if c.path.startswith("/source_control")] == []
    assert source_control.branches() == branches

    for branch in branches:
        source_control.merge(branch)
    reconcile(provider, ctx, declared)

    assert fake.live_releases() == {APP: R}
    assert [d["status"] for d in fake.state.deployments.values()] == ["SUCCESS"]
    assert diff(declared, provider.read("staging")) == {}
