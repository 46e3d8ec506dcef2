"""Slow clients cannot starve the API: a real daemon on loopback and 200 connections that never
finish a request (tests/slow_clients.py).

With deadlines too long to matter, ``/healthz`` keeps answering while 200 slow connections are
held; with small deadlines (``[api]`` ``header_timeout``, ``body_timeout``, ``keepalive_timeout``)
the server closes every slow connection a little after its deadline, answering 408 to those
caught in the middle of a request; at ``max_connections`` the connection that waited longest on
its client makes room for a new one. Latencies are measured in bench/slow_clients.py, not
asserted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from reconciler.providers.postgres.embedded import EmbeddedPostgres
from tests.conftest import make_world
from tests.daemon_support import PATIENCE, DaemonProcess, start_daemon, wait_for
from tests.slow_clients import KINDS, SlowClients

pytestmark = pytest.mark.xdist_group("slow-clients")

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
KEEPALIVE_TIMEOUT = 1.0
# Deadlines of the waits below: the server's limit plus room for a loaded machine.
SLACK = 30.0


def serve(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres, name: str,
          **api: object) -> Iterator[DaemonProcess]:
    monkeypatch = pytest.MonkeyPatch()
    world = make_world(tmp_path_factory.mktemp(name), pg, monkeypatch, cli_git=False)
    world.configure(api=api)
    daemon = start_daemon(world.config, world.root / "data", env=world.secrets, name=name)
    try:
        yield daemon
    finally:
        daemon.kill()
        world.close()
        monkeypatch.undo()


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[DaemonProcess]:
    """A daemon with deadlines too long to matter here: slow connections stay open as long as the test needs."""
    yield from serve(tmp_path_factory, pg, "held", header_timeout="10m", body_timeout="10m",
                     keepalive_timeout="10m", max_connections=1000)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[DaemonProcess]:
    yield from serve(tmp_path_factory, pg, "slow", header_timeout=f"{HEADER_TIMEOUT}s",
                     body_timeout=f"{BODY_TIMEOUT}s", keepalive_timeout=f"{KEEPALIVE_TIMEOUT}s", max_connections=1000)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres) -> Iterator[DaemonProcess]:
    """A daemon with room for 20 connections and deadlines too long to matter here."""
    yield from serve(tmp_path_factory, pg, "capped", header_timeout="10m", body_timeout="10m", max_connections=20)


@pytest.fixture(autouse=True)
def no_stack_traces(request: pytest.FixtureRequest) -> Iterator[None]:
    """Cutting a connection under a route that waits for its body logs no traceback."""
    daemons = [request.getfixturevalue(name) for name in ("held", "daemon", "capped") if name in request.fixturenames]
    yield
    for daemon in daemons:
        assert "Traceback" not in daemon.logs()


def clients_of(daemon: DaemonProcess) -> SlowClients:
    address = urlsplit(daemon.url)
    assert address.hostname is not None and address.port is not None
    return SlowClients(address.hostname, address.port)


def healthz(daemon: DaemonProcess) -> int:
    # A new connection each time, as a liveness probe makes.
    # Answered at all is the point, not how fast: a loaded 2-core machine took more than 5 s (a Monday run at load 18).
    return httpx.get(daemon.url + "/healthz", timeout=PATIENCE).status_code


def test_healthz_answers_while_200_slow_clients_hold_connections(held: DaemonProcess) -> None:
    slow = clients_of(held)
    try:
        for kind in KINDS:
            slow.open(kind, 50)
        assert [healthz(held) for _ in range(10)] == [200] * 10
        assert slow.open_count() == 200  # the probes above were answered while all of them were held
    finally:
        slow.close()


def test_200_slow_clients_are_cut_a_little_after_their_deadline(daemon: DaemonProcess) -> None:
    slow = clients_of(daemon)
    try:
        for kind in KINDS:
            slow.open(kind, 50)
        wait_for(lambda: slow.open_count() == 0, timeout=BODY_TIMEOUT + SLACK,
                 message="the server to close every slow connection")
        for connection in slow.connections:
            if connection.kind in ("silent", "idle"):
                assert connection.answer == b""
            else:  # a trickling client may lose the answer (see tests/slow_clients.py); if not, it is a 408
                assert connection.answer == b"" or connection.answer.startswith(b"HTTP/1.1 408 "), connection.answer
        assert healthz(daemon) == 200
    finally:
        slow.close()


@pytest.mark.parametrize(("kind", "waited_for", "limit"), [("head", "head", HEADER_TIMEOUT),
                                                          ("body", "body", BODY_TIMEOUT)])
def test_a_client_stalled_in_the_middle_of_a_request_gets_408_and_is_closed(
    daemon: DaemonProcess, kind: str, waited_for: str, limit: float
) -> None:
    slow = clients_of(daemon)
    try:
        slow.open(kind, 1, trickle=False)
        wait_for(lambda: slow.open_count() == 0, timeout=limit + SLACK, message="the server to close it")
        head, _, body = slow.connections[0].received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"connection: close" in head
        assert json.loads(body) == {"error": f"request {waited_for} not received in time",
                                    "detail": {"limit_seconds": limit}}
    finally:
        slow.close()


@pytest.mark.parametrize("kind", ["silent", "idle"])
def test_a_connection_that_says_nothing_is_closed_without_an_answer(daemon: DaemonProcess, kind: str) -> None:
    slow = clients_of(daemon)
    try:
        slow.open(kind, 1)
        wait_for(lambda: slow.open_count() == 0, timeout=HEADER_TIMEOUT + SLACK, message="the server to close it")
        assert slow.connections[0].answer == b""
    finally:
        slow.close()


def test_at_the_connection_cap_the_longest_waiting_connection_makes_room(capped: DaemonProcess) -> None:
    slow = clients_of(capped)
    try:
        slow.open("head", 10, trickle=False)
        slow.open("silent", 10)
        # A probe right after the burst may be refused (503): connections younger than a second are
        # not closed to make room, as their request may be unread yet. Once they are older, it gets in.
        wait_for(lambda: healthz(capped) == 200, timeout=SLACK, message="/healthz to be answered")
        assert [healthz(capped) for _ in range(5)] == [200] * 5
        # The probes' connections closed the oldest slow one, which was in the middle of a head.
        first = slow.connections[0]
        wait_for(lambda: first.closed_at is not None, timeout=SLACK, message="the oldest connection to be closed")
        assert first.received.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"too many connections; this one waited longest" in first.received
        assert slow.open_count() >= 10  # room was made one connection at a time, not by closing them all
    finally:
        slow.close()
