"""Hostile HTTP against a real daemon: webhooks and API inputs get a 4xx JSON error (or, for
malformed HTTP, the server's plain 400 before the application is reached), never a 500 or a
stack trace; the daemon stays healthy, and a rejected webhook never causes a fetch.

One daemon serves the whole module (``hostile_daemon``); after every test the ``still_healthy``
fixture checks ``/healthz`` and that the daemon logged no traceback, webhook secret or token during
the test; every refusal is checked for them too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.daemon_support import wait_for
from tests.reliability.conftest import MAX_BODY, TOKENS, WEBHOOK_SECRET, HostileDaemon

# One daemon for the module: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("hostile-api")
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "150"))
# The daemon and the client are shared by every example on purpose.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HOOKS = ["github", "gitlab", "generic"]
SECRETS = [WEBHOOK_SECRET, *TOKENS.values()]  # never echoed in a response or logged


@pytest.fixture(autouse=True)
def still_healthy(hostile_daemon: HostileDaemon) -> Iterator[None]:
    """After each test: the daemon answers ``/healthz`` and logged no stack trace meanwhile."""
    start = len(hostile_daemon.process.logs())
    yield
    assert hostile_daemon.healthy()
    logged = hostile_daemon.process.logs()[start:]
    assert "Traceback" not in logged
    assert [s for s in SECRETS if s in logged] == []


@pytest.fixture
def client(hostile_daemon: HostileDaemon) -> Iterator[httpx.Client]:
    # No keep-alive: the server may close a connection after refusing a request half-read.
    with httpx.Client(base_url=hostile_daemon.url, timeout=20,
                      limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


def assert_json_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A refusal with one of ``statuses`` and the API's ``{"error": ..., "detail": ...}`` body."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text
    assert [s for s in SECRETS if s in response.text] == []
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}
    assert isinstance(body["error"], str) and body["error"]
    return body


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


# -- webhooks --------------------------------------------------------------------------------------

# Header values h11 can carry (no control characters but tab), as bytes: raw high bytes included.
header_bytes = st.binary(max_size=300).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c <= 126 or c >= 128).strip(b" \t"))
header_values = st.one_of(
    header_bytes,
    st.sampled_from([b"sha256=", b"sha256=" + b"0" * 64, b"sha1=abc", b"Bearer", b"Bearer ", b"bearer x",
                     b"Basic Zm9vOmJhcg==", b"application/json", b"multipart/form-data; boundary=x",
                     b"text/plain; charset=utf-16", b"gzip", b"push", b"ping", b"\xff\xfe",
                     b"Bearer " + TOKENS["reader"].encode(), WEBHOOK_SECRET.encode()[:-1], b"x" * 20_000]),
).map(lambda value: value.strip(b" \t"))  # h11 refuses to send surrounding whitespace
header_names = st.sampled_from([
    "content-type", "content-encoding", "x-hub-signature-256", "x-hub-signature", "x-github-event",
    "x-gitlab-token", "x-gitlab-event", "x-reconciler-signature", "authorization", "cookie", "x-forwarded-for",
])
bodies = st.one_of(
    st.binary(max_size=2 * MAX_BODY),
    st.sampled_from([b"", b"{", b'{"ref": "refs/heads/main"}', b"null", b"[]" * 3000, b"\x00" * 100,
                     json.dumps({"ref": "refs/heads/" + "a" * 5000}).encode(), b"x" * (MAX_BODY + 1)]),
)


def test_fuzzed_webhooks_are_refused_with_json_and_fetch_nothing(
    hostile_daemon: HostileDaemon, client: httpx.Client
) -> None:
    before = hostile_daemon.fetches()
    sent: list[int] = []

    @given(hook=st.sampled_from(HOOKS), body=bodies, headers=st.dictionaries(header_names, header_values, max_size=5))
    @FUZZ
    def refused(hook: str, body: bytes, headers: dict[str, bytes]) -> None:
        response = client.post(f"/hooks/{hook}", content=body, headers={k.encode(): v for k, v in headers.items()})
        sent.append(response.status_code)
        error = assert_json_error(response, 401, 403, 413)
        if len(body) > MAX_BODY:
            assert (response.status_code, error["error"]) == (413, "request body too large")

    refused()
    assert len(sent) >= EXAMPLES
    assert hostile_daemon.fetches() == before


def test_a_chunked_body_over_the_limit_is_refused_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = client.post("/hooks/github", content=chunks())
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert assert_json_error(response, 413) == {"error": "request body too large", "detail": {"limit": MAX_BODY}}


def test_a_chunked_body_under_the_limit_is_still_checked_for_a_signature(client: httpx.Client) -> None:
    response = client.post("/hooks/github", content=iter([b'{"ref":', b' "refs/heads/main"}']))
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert assert_json_error(response, 401)["error"] == "missing or bad X-Hub-Signature-256"


def test_a_signature_for_another_body_is_refused(hostile_daemon: HostileDaemon, client: httpx.Client) -> None:
    before = hostile_daemon.fetches()
    response = client.post("/hooks/github", content=b'{"ref": "refs/heads/evil"}',
                           headers={"X-Hub-Signature-256": sign(b'{"ref": "refs/heads/main"}')})
    assert assert_json_error(response, 401)["error"] == "missing or bad X-Hub-Signature-256"
    assert hostile_daemon.fetches() == before


def test_a_read_token_cannot_trigger_the_generic_hook(client: httpx.Client) -> None:
    response = client.post("/hooks/generic", headers={"Authorization": f"Bearer {TOKENS['reader']}"})
    assert assert_json_error(response, 403)["error"] == "token lacks the 'sync' scope"


def test_a_signed_hook_is_a_trigger_whatever_its_body_says(hostile_daemon: HostileDaemon,
                                                             client: httpx.Client) -> None:
    """The body is never parsed or trusted: a signed hook with garbage only triggers a fetch."""
    before = hostile_daemon.fetches()
    body = b"\xff\xfe not json {{{"
    response = client.post("/hooks/github", content=body,
                           headers={"X-Hub-Signature-256": sign(body), "Content-Type": "text/html"})
    assert (response.status_code, response.json()) == (202, {"accepted": True})

    wait_for(lambda: hostile_daemon.fetches() > before, message="the signed hook's fetch")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "GET", "OPTIONS", "TRACE"])
def test_other_methods_on_a_hook_are_405_json(client: httpx.Client, method: str) -> None:
    assert assert_json_error(client.request(method, "/hooks/github"), 405)["error"] == "Method Not Allowed"


@pytest.mark.parametrize("size", [100_000, 1_000_000])
def test_a_huge_header_is_refused_or_dropped_and_the_daemon_stays_up(client: httpx.Client, size: int) -> None:
    try:
        response = client.post("/hooks/github", headers={"X-Big": "a" * size}, content=b"{}")
    except httpx.TransportError:
        return  # the server closed the connection on a header block over its limit
    assert response.status_code in (400, 401, 431), response.status_code
    assert "Traceback" not in response.text


def test_ten_thousand_headers_are_refused_with_json(client: httpx.Client) -> None:
    response = client.post("/hooks/github", headers={f"X-H{i}": "v" for i in range(10_000)}, content=b"{}")
    assert assert_json_error(response, 401)["error"] == "missing or bad X-Hub-Signature-256"


def raw_exchange(hostile_daemon: HostileDaemon, request: bytes, hang_up: bool = False) -> bytes:
    """Send bytes no HTTP client would, and read the answer until the server closes.

    ``hang_up`` closes our side right after sending, as a client that gives up mid-body does.
    """
    address = urlsplit(hostile_daemon.url)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(request)
        if hang_up:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


MALFORMED = [
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n",
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n",
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    b"GET /api/v1/environments/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GARBAGE\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_http_is_refused_by_the_server_before_the_application(
    hostile_daemon: HostileDaemon, request_bytes: bytes
) -> None:
    answer = raw_exchange(hostile_daemon, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
    assert b"Invalid HTTP request received." in answer


@pytest.mark.parametrize("request_bytes", [
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b",
    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
], ids=["content-length", "chunked"])
def test_a_client_hanging_up_mid_body_leaves_no_stack_trace(hostile_daemon: HostileDaemon,
                                                            request_bytes: bytes) -> None:
    raw_exchange(hostile_daemon, request_bytes, hang_up=True)
    # The daemon log is checked for a traceback after every test; wait until this request was handled.
    wait_for(lambda: hostile_daemon.healthy(), message="the daemon to answer again")


def test_a_content_length_beyond_any_body_gets_413_json_unread(hostile_daemon: HostileDaemon) -> None:
    answer = raw_exchange(hostile_daemon, b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          b"Content-Length: 99999999999999999999\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == {"error": "request body too large", "detail": {"limit": MAX_BODY}}


def test_a_chunked_body_over_the_limit_sent_raw_gets_413_json(hostile_daemon: HostileDaemon) -> None:
    chunk = b"1000\r\n" + b"x" * 4096 + b"\r\n"
    answer = raw_exchange(hostile_daemon, b"POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2 + b"0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == {"error": "request body too large", "detail": {"limit": MAX_BODY}}


# -- API path and query parameters ----------------------------------------------------------------

READ = {"Authorization": f"Bearer {TOKENS['reader']}"}
ADMIN = {"Authorization": f"Bearer {TOKENS['admin']}"}
segments = st.text(st.characters(exclude_characters="/", exclude_categories=["Cs"]), min_size=1, max_size=80)


@given(env=segments.filter(lambda s: s not in ("staging", "production", ".", "..")),
       suffix=st.sampled_from(["", "/drift", "/runs", "/runs/x", "/drift?format=markdown"]))
@FUZZ
def test_fuzzed_environment_names_are_404_json(client: httpx.Client, env: str, suffix: str) -> None:
    response = client.get(f"/api/v1/environments/{quote(env, safe='')}{suffix}", headers=READ)
    error = assert_json_error(response, 404)
    assert error["error"] in (f"unknown environment {env!r} (declared: staging, production)", f"no run x in {env}")


@given(run_id=segments.filter(lambda s: s not in (".", "..")))
@FUZZ
def test_fuzzed_run_ids_are_404_json(client: httpx.Client, run_id: str) -> None:
    response = client.get(f"/api/v1/environments/staging/runs/{quote(run_id, safe='')}", headers=READ)
    assert assert_json_error(response, 404)["error"] == f"no run {run_id} in staging"


@given(limit=st.one_of(st.integers(max_value=0), st.integers(min_value=-(10**40), max_value=-(10**20)),
                       st.text(string.ascii_letters + " _", min_size=1, max_size=30),
                       st.sampled_from(["-1", "1.5", "1e3", "NaN", "inf", "0x10", "\u0665", "--1", "1 000"])))
@FUZZ
def test_a_run_limit_that_is_not_a_positive_integer_is_422_json(client: httpx.Client, limit: int | str) -> None:
    response = client.get("/api/v1/environments/staging/runs", params={"limit": str(limit)}, headers=READ)
    assert assert_json_error(response, 422)["error"] == "invalid request"


def test_a_huge_run_limit_is_capped(client: httpx.Client) -> None:
    response = client.get("/api/v1/environments/staging/runs", params={"limit": str(10**40)}, headers=READ)
    assert response.status_code == 200
    assert response.json()["environment"] == "staging"


@pytest.mark.parametrize("path", [
    "/api/v1/environments/..%2f..%2fetc", "/api/v1/environments/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/v1/environments/%00", "/api/v1/environments/%ff%fe", "/api/v1/environments/%E2%80%AEgnigats",
    "/api/v1/environments/" + "x" * 30_000, "/api/v1/environments/staging/runs/..%2f..%2f..%2fetc",
    "/api/v1/registry/..%2fstaging/apps/%00",
])
def test_traversal_and_odd_bytes_in_paths_are_404_json(client: httpx.Client, path: str) -> None:
    assert_json_error(client.get(path, headers=ADMIN), 404)


@given(env=segments.filter(lambda s: s not in (".", "..")), app=segments.filter(lambda s: s not in (".", "..")))
@FUZZ
def test_fuzzed_registry_lookups_are_404_json(client: httpx.Client, env: str, app: str) -> None:
    response = client.get(f"/api/v1/registry/{quote(env, safe='')}/apps/{quote(app, safe='')}", headers=ADMIN)
    if (env, app) == ("staging", "customer-support-dashboard"):
        return
    assert assert_json_error(response, 404)["error"] == f"app {app!r} is not deployed in {env!r}"


@given(env=segments.filter(lambda s: s not in ("staging", "production", ".", "..")),
       action=st.sampled_from(["sync", "pin", "unpin"]))
@FUZZ
def test_fuzzed_environment_names_in_actions_are_404_json(client: httpx.Client, env: str, action: str) -> None:
    response = client.post(f"/api/v1/environments/{quote(env, safe='')}/{action}", headers=ADMIN,
                           json={"revision": "main"})
    assert assert_json_error(response, 404)["error"] == f"unknown environment {env!r} (declared: staging, production)"


@given(body=st.one_of(st.binary(max_size=300), st.builds(lambda v: json.dumps({"revision": v}).encode(), st.one_of(
    st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=3),
    st.text(max_size=300).filter(lambda s: s.strip() not in ("", "@", "HEAD", "main", "FETCH_HEAD", "ORIG_HEAD")
                                 and not s.startswith(":/"))))))
@FUZZ
def test_fuzzed_pin_bodies_are_refused_with_json(client: httpx.Client, body: bytes) -> None:
    response = client.post("/api/v1/environments/staging/pin", content=body, headers=ADMIN)
    assert_json_error(response, 400, 409)
    assert client.get("/api/v1/environments/staging", headers=READ).json()["pinned_revision"] is None


@given(header=header_bytes)
@FUZZ
def test_fuzzed_credentials_are_401_json(client: httpx.Client, header: bytes) -> None:
    response = client.get("/api/v1/environments", headers={b"Authorization": header, b"Cookie": b"reconciler_token="
                                                           + header.replace(b";", b"")})
    assert assert_json_error(response, 401) == {"error": "missing or invalid token", "detail": None}
