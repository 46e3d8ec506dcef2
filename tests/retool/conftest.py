"""Fixtures for the retool provider tests: the fake Retool on loopback and a provider aimed at it.

The fake server starts once per session (loading the 1.4 MB OpenAPI document takes a second);
each test gets it reset to a fresh instance connected to a fresh Source Control repository (a bare
Git repository in the test's temporary directory), and fails at teardown if any request or response
broke the OpenAPI contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider
from reconciler.source.branches import BranchRepository
from tests.retool.example import APP, Secrets
from tests.retool.fake import FakeRetool, FakeSourceControl


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeRetool]:
    server = FakeRetool()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def source_control(tmp_path: Path) -> FakeSourceControl:
    """The Source Control repository the fake instance deploys from (``main`` is its deploy branch)."""
    return FakeSourceControl(tmp_path / "retool-source.git")


@pytest.fixture
def fake(fake_server: FakeRetool, source_control: FakeSourceControl) -> Iterator[FakeRetool]:
    """A fresh fake instance that already holds the example app, protected in Source Control."""
    fake_server.reset(source_control=source_control, manifest_name="production")
    fake_server.add_app(APP, description="Support agents' view of customers and their open tickets")
    yield fake_server
    fake_server.assert_clean()


@pytest.fixture(scope="session")
def staging_server() -> Iterator[FakeRetool]:
    server = FakeRetool(token="retool_staging_instance_token")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def staging_instance(staging_server: FakeRetool, source_control: FakeSourceControl, fake: FakeRetool) -> Iterator[
        FakeRetool]:
    """A second instance on the same Source Control repository as ``fake``, publishing manifest ``staging``."""
    staging_server.reset(source_control=source_control, manifest_name="staging")
    staging_server.add_app(APP, description="Support agents' view of customers and their open tickets")
    yield staging_server
    staging_server.assert_clean()


@pytest.fixture
def book() -> MemoryFingerprintBook:
    return MemoryFingerprintBook()


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def make_provider(
    fake: FakeRetool, book: MemoryFingerprintBook, source_control: FakeSourceControl, tmp_path: Path
) -> Iterator[Callable[..., RetoolProvider]]:
    """Providers aimed at the fake instance, merging what they push into its repository themselves."""
    made: list[RetoolProvider] = []

    def make(**options: object) -> RetoolProvider:
        settings: dict[str, object] = {
            "requests_per_minute": 60_000,
            "fingerprints": book,
            "deploy_poll_interval": 0.01,
            "manifest": fake.manifest_name,
            "source_control": BranchRepository(source_control.url, tmp_path / "cache"),
        }
        settings.update(options)
        provider = RetoolProvider(fake.url, fake.token, **settings)  # type: ignore[arg-type]
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., RetoolProvider]) -> RetoolProvider:
    return make_provider()
