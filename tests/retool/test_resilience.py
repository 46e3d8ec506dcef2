"""The Retool client is a good citizen and fails well: rate limit, retries, typed errors, no token leaks."""

from __future__ import annotations

import inspect
import logging
import random
import socket
import threading
import time
from collections.abc import Callable

import pytest
import structlog
from structlog.testing import capture_logs

from reconciler.errors import ProviderError
from reconciler.providers.retool import (
    MemoryFingerprintBook,
    RateLimiter,
    RetoolAuthError,
    RetoolClient,
    RetoolProvider,
    RetoolRateLimitedError,
    RetoolRejectedError,
    RetoolUnavailableError,
)
from tests.retool.example import APP, Secrets, context, diff, objects, reconcile
from tests.retool.fake import FakeRetool

MakeProvider = Callable[..., RetoolProvider]


class Sleeps:
    """An injectable sleep that records what it was asked to wait, and waits for nothing."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# -- 429 and 5xx ----------------------------------------------------------------------------------------


def test_429_answers_are_waited_out_as_retry_after_says_and_the_read_still_succeeds(
    fake: FakeRetool, make_provider: MakeProvider
) -> None:
    sleeps = Sleeps()
    provider = make_provider(sleep=sleeps, burst=10_000)
    fake.inject(429, times=3, retry_after="7", message="Rate limit exceeded")

    live = provider.read("staging")

    assert ("environment", "staging") in live
    assert sleeps.calls == [7.0, 7.0, 7.0]
    assert [c.status for c in fake.calls[:4]] == [429, 429, 429, 200]
    assert len({(c.method, c.path) for c in fake.calls[:4]}) == 1


def test_429_backoff_is_waited_before_the_retry_with_a_real_sleep_by_default(
    fake: FakeRetool, make_provider: MakeProvider
) -> None:
    waits: list[tuple[float, int]] = []  # (seconds asked for, requests the server had seen by then)
    provider = make_provider(burst=10_000, sleep=lambda seconds: waits.append((seconds, len(fake.calls))))
    fake.inject(429, times=2, retry_after="0.2")

    provider.read("staging")

    first, second, third = fake.calls[:3]
    assert [first.status, second.status, third.status] == [429, 429, 200]
    assert waits[:2] == [(0.2, 1), (0.2, 2)]  # each retry went out only after its wait
    # How long a real wait lasts is the operating system's business (and bench/'s to measure); what
    # the client must do is call the real sleep unless a test hands it another.
    for made in (RetoolClient, RetoolProvider, RateLimiter):
        assert inspect.signature(made).parameters["sleep"].default is time.sleep


def test_without_retry_after_backoff_grows_exponentially_with_jitter(fake: FakeRetool) -> None:
    sleeps = Sleeps()
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=sleeps, rng=random.Random(7),
                          backoff_base=0.5, max_attempts=5)
    fake.inject(503, times=4)

    assert client.list_all("/environments")

    assert len(sleeps.calls) == 4
    for attempt, slept in enumerate(sleeps.calls, start=1):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= slept <= ceiling
    client.close()


def test_retries_are_bounded_and_the_error_says_which_call_failed_and_why(fake: FakeRetool) -> None:
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=Sleeps(), max_attempts=3)
    fake.inject(503, times=10, message="Service temporarily unavailable")

    with pytest.raises(RetoolUnavailableError) as caught:
        client.list_all("/environments")

    assert len(fake.calls) == 3
    assert str(caught.value) == (
        "Retool API GET /environments failed with HTTP 503: Service temporarily unavailable"
    )
    assert (caught.value.method, caught.value.path, caught.value.status) == ("GET", "/environments", 503)
    assert isinstance(caught.value, ProviderError)
    assert caught.value.retryable is True
    fake.faults.clear()
    client.close()


def test_too_many_429s_end_in_a_rate_limited_error_worth_retrying_later(fake: FakeRetool) -> None:
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=Sleeps(), max_attempts=2)
    fake.inject(429, times=2, retry_after="30")

    with pytest.raises(RetoolRateLimitedError) as caught:
        client.list_all("/groups")

    assert caught.value.delay == 30.0
    assert caught.value.retryable is True
    client.close()


def test_a_create_is_not_repeated_after_a_500_since_the_server_may_have_acted(fake: FakeRetool) -> None:
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=Sleeps())
    fake.fail_writes(1, status=500, after_effect=True)

    with pytest.raises(RetoolUnavailableError):
        client.post("/groups", {"name": "support-team"})

    assert [(c.method, c.path) for c in fake.calls] == [("POST", "/groups")]
    assert "support-team" in fake.names("groups")
    client.close()


def test_an_idempotent_write_is_retried_after_a_5xx(fake: FakeRetool) -> None:
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=Sleeps())
    env = fake.env_id("staging")
    fake.fail_writes(1, status=502, times=2)

    updated = client.patch(f"/environments/{env}", [{"op": "replace", "path": "/color", "value": "#1D70B8"}])

    assert updated["color"] == "#1D70B8"
    assert [c.status for c in fake.calls] == [502, 502, 200]
    client.close()


def test_a_500_in_the_middle_of_a_run_raises_and_the_next_run_converges(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    provider = make_provider(sleep=Sleeps(), burst=10_000)
    # The 6th write of the staging run (creating the crm-api resource) fails after the server acted.
    fake.fail_writes(6, status=500, after_effect=True)

    with pytest.raises(ProviderError) as caught:
        reconcile(provider, context("staging", secrets, book), objects("staging", secrets))
    assert "POST /resources failed with HTTP 500" in str(caught.value)

    for env in ("staging", "production"):
        reconcile(provider, context(env, secrets, book), objects(env, secrets))

    for env in ("staging", "production"):
        assert diff(objects(env, secrets), provider.read(env)) == {}
    assert fake.names("resources") == ["crm-api", "crm-db", "retool_db", "segment"]


def test_a_failed_deployment_raises_and_the_next_run_deploys_again(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.deploy_outcome = "ERROR"
    with pytest.raises(ProviderError, match="ended in ERROR"):
        reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    drift = diff(objects("staging", secrets), provider.read("staging"))
    fake.deploy_outcome = "SUCCESS"
    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    assert list(drift) == [("app", "customer-support-dashboard")]
    assert [d["status"] for d in fake.state.deployments.values()] == ["ERROR", "SUCCESS"]
    assert diff(objects("staging", secrets), provider.read("staging")) == {}


def test_a_deployment_that_never_finishes_is_given_up_after_the_deploy_timeout(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.deploy_polls = 1_000
    provider = make_provider(deploy_timeout=0.05, deploy_poll_interval=0.01)

    with pytest.raises(ProviderError, match=r"did not finish within 0\.05s"):
        reconcile(provider, context("staging", secrets, book), objects("staging", secrets))


def test_an_unreachable_instance_is_retried_then_reported(fake: FakeRetool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = RetoolClient(f"http://127.0.0.1:{port}", "tok", burst=10_000, sleep=sleeps, max_attempts=3)

    with pytest.raises(RetoolUnavailableError, match=r"GET /environments failed: ConnectError"):
        client.list_all("/environments")

    assert len(sleeps.calls) == 2
    client.close()


def test_a_4xx_is_not_retried_and_carries_retools_message(fake: FakeRetool) -> None:
    client = RetoolClient(fake.url, fake.token, burst=10_000, sleep=Sleeps())
    variable = client.post("/configuration_variables", {"name": "X", "secret": False, "values": []})

    with pytest.raises(RetoolRejectedError) as caught:
        client.put(f"/configuration_variables/{variable['id']}", {
            "name": "X", "secret": False,
            "values": [{"environment_id": "00000000-0000-4000-8000-000000000000", "value": "v"}],
        })

    assert caught.value.status == 400
    assert caught.value.api_message == 'Environment with id "00000000-0000-4000-8000-000000000000" does not exist'
    assert caught.value.retryable is False
    assert len([c for c in fake.calls if c.method == "PUT"]) == 1
    client.close()


# -- the rate limiter -------------------------------------------------------------------------------------


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_the_limiter_spaces_requests_at_the_configured_rate_after_its_burst() -> None:
    virtual = VirtualTime()
    limiter = RateLimiter(60, burst=3, clock=virtual.clock, sleep=virtual.sleep)

    waits = [limiter.acquire() for _ in range(6)]

    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert virtual.now == 3.0


def test_the_limiter_is_thread_safe_every_caller_gets_its_own_slot() -> None:
    frozen = VirtualTime()
    limiter = RateLimiter(120, burst=1, clock=frozen.clock, sleep=lambda seconds: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        waited = limiter.acquire()
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sorted(waits) == [0.5 * i for i in range(20)]


def test_the_provider_throttles_to_45_requests_a_minute_by_default(fake: FakeRetool) -> None:
    provider = RetoolProvider(fake.url, fake.token)

    assert provider.client.limiter.requests_per_minute == 45
    provider.close()


def test_every_page_of_a_list_is_read(fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook,
                                      secrets: Secrets) -> None:
    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))
    fake.page_size = 2
    fake.clear_calls()

    live = provider.read("staging")

    assert diff(objects("staging", secrets), live) == {}
    pages = [c.query for c in fake.calls if c.path == "/resources"]
    assert pages == [{"limit": "100"}, {"limit": "100", "next_token": "2"}]
    fake.page_size = 100


# -- the token stays secret -------------------------------------------------------------------------------


def test_the_token_never_appears_in_logs_reprs_or_errors(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = fake.token
    errors: list[str] = []
    with capture_logs() as events:
        provider = make_provider(sleep=Sleeps(), burst=10_000, max_attempts=2)
        structlog.get_logger("reconciler.providers.retool.test").info("capture.check")
        fake.inject(429, times=1, retry_after="1")
        fake.inject(503, times=2, message=f"upstream said: Bearer {token}")
        with pytest.raises(ProviderError) as caught:
            reconcile(provider, context("staging", secrets, book), objects("staging", secrets))
        errors.append(str(caught.value))
        errors.append(repr(caught.value))
        refused_provider = RetoolProvider(fake.url, "wrong-" + token, sleep=Sleeps())
        with pytest.raises(RetoolAuthError) as refused:
            refused_provider.read("staging")
        refused_provider.close()
        errors.append(str(refused.value))
        errors += [repr(provider), repr(provider.client), repr(provider.client._http.auth)]

    assert "upstream said: Bearer [redacted]" in errors[0]
    assert "HTTP 401: Invalid or missing API token" in errors[2]
    assert any(e["event"] == "retool.retry" for e in events)
    assert any(e["event"] == "capture.check" for e in events)
    everything = "\n".join([*errors, *(str(e) for e in events), capsys.readouterr().out,
                            capsys.readouterr().err, caplog.text])
    assert token not in everything


def test_every_page_of_the_grants_a_group_holds_is_read(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))
    fake.page_size = 2  # platform-admins holds 4 grants in staging: 3 resource configurations and the app
    fake.clear_calls()

    live = provider.read("staging")

    assert diff(objects("staging", secrets), live) == {}
    pages = [c.query for c in fake.calls if c.path == "/permissions/listObjects" and c.query]
    assert {"next_token": "2"} in pages


# -- /source_control/deploy is never sent twice ------------------------------------------------------------


def test_a_deploy_answered_with_a_500_is_not_sent_again_the_deployment_it_started_is_polled(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    provider = make_provider(sleep=Sleeps())
    fake.inject(500, path="/source_control/deploy", after_effect=True, message="Internal server error")

    reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    deploys = [c for c in fake.calls if c.path == "/source_control/deploy"]
    assert [c.status for c in deploys] == [500]
    assert [d["status"] for d in fake.state.deployments.values()] == ["SUCCESS"]
    assert diff(objects("staging", secrets), provider.read("staging")) == {}


def test_a_deploy_that_failed_before_starting_is_reported_and_not_sent_again(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    provider = make_provider(sleep=Sleeps())
    fake.inject(503, path="/source_control/deploy", message="Service unavailable")

    with pytest.raises(ProviderError, match="no new deployment is listed") as caught:
        reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    assert caught.value.retryable is True
    assert [c.status for c in fake.calls if c.path == "/source_control/deploy"] == [503]
    assert fake.state.deployments == {}


def test_a_manifest_push_answered_with_a_500_is_not_sent_again_since_each_push_is_a_new_branch(
    fake: FakeRetool, make_provider: MakeProvider, book: MemoryFingerprintBook, secrets: Secrets,
) -> None:
    assert fake.source_control is not None
    provider = make_provider(sleep=Sleeps())
    sc_uuid = fake.source_control.app_uuid(APP)
    path = f"/source_control/manifests/{fake.manifest_name}/{sc_uuid}"
    fake.inject(500, path=path, after_effect=True, message="Internal server error")
    branches_before = len(fake.source_control.branches())

    with pytest.raises(RetoolUnavailableError):
        reconcile(provider, context("staging", secrets, book), objects("staging", secrets))

    assert [c.status for c in fake.calls if c.path == path] == [500]
    assert len(fake.source_control.branches()) == branches_before + 2  # the release's and the one manifest push
