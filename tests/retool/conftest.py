"""Fixtures for the retool provider tests: the fake Retool on loopback and a provider aimed at it.

The fake server starts once per session (loading the 1.4 MB OpenAPI document takes a second);
each test gets it reset to a fresh instance and fails at teardown if any request or response broke
the OpenAPI contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider
from tests.retool.example import APP, Secrets
from tests.retool.fake_server import FakeRetool


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeRetool]:
    server = FakeRetool()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeRetool) -> Iterator[FakeRetool]:
    """A fresh fake instance that already holds the example app (apps arrive via Source Control)."""
    fake_server.reset()
    fake_server.add_app(APP, description="Support agents' view of customers and their open tickets")
    yield fake_server
    fake_server.assert_clean()


@pytest.fixture
def book() -> MemoryFingerprintBook:
    return MemoryFingerprintBook()


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def make_provider(fake: FakeRetool, book: MemoryFingerprintBook) -> Iterator[Callable[..., RetoolProvider]]:
    made: list[RetoolProvider] = []

    def make(**options: object) -> RetoolProvider:
        settings: dict[str, object] = {
            "requests_per_minute": 60_000,
            "fingerprints": book,
            "deploy_poll_interval": 0.01,
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

