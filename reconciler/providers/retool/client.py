"""HTTP client for the Retool API v2: the only code that sends bytes to a Retool instance.

Called by ``reconciler.providers.retool.provider.RetoolProvider`` and by nothing else. It knows
the transport rules of the API (``<host>/api/v2``, a bearer token, ``{success, data}`` envelopes,
``next_token`` pages, JSON-Patch ``PATCH`` bodies) and the manners a client owes a shared instance:
a token-bucket rate limit (45 requests per minute by default) and a bounded number of retries with
exponential backoff and jitter on 429 (honouring ``Retry-After``), on 5xx and on connection errors.
It knows nothing about our objects.

Every failure leaves as a ``RetoolError`` (a ``ProviderError``) that carries the HTTP method, the
path, the status and the API's own message. 4xx answers are ``retryable = False``: asking again
will not help until someone changes the request. The token never appears in a log line, a repr or
an error message: it lives only inside the ``Authorization`` header built for each request, and
any text that leaves this module is scrubbed of it.

Requests that create something (``POST``) are retried only when the server certainly did not act
on them (429, or a connection that was never established); retrying a create after a 5xx or a read
timeout could create it twice.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from reconciler import logs
from reconciler.errors import ConfigError, ProviderError

log = logs.get_logger(__name__)

Sleep = Callable[[float], None]
Clock = Callable[[], float]

API_PREFIX = "/api/v2"
DEFAULT_REQUESTS_PER_MINUTE = 45.0
# The most a server may ask us to wait (Retry-After) before we give up and report instead.
MAX_RETRY_AFTER = 120.0
_REDACTED = "[redacted]"


class RetoolError(ProviderError):
    """A Retool API call failed; says which call, with what status, and what Retool answered."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        api_message: str | None,
        *,
        delay: float = 5.0,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.api_message = api_message
        head = f"Retool API {method} {path} failed"
        if status is not None:
            head += f" with HTTP {status}"
        super().__init__(f"{head}: {api_message}" if api_message else head, delay=delay)


class RetoolUnavailableError(RetoolError):
    """Retool could not be reached, timed out, or kept answering 5xx after every retry."""


class RetoolRateLimitedError(RetoolError):
    """Retool kept answering 429 after every retry (or asked us to wait too long)."""


class RetoolRejectedError(RetoolError):
    """Retool refused the request (4xx); repeating it unchanged will fail the same way."""

    retryable = False


class RetoolAuthError(RetoolRejectedError):
    """The token was refused (401) or lacks a scope (403)."""


class RetoolNotFoundError(RetoolRejectedError):
    """The object addressed by the path does not exist (404)."""


class RetoolConflictError(RetoolRejectedError):
    """An object with the same identity already exists (409)."""


class RetoolStateError(ProviderError):
    """The instance's state, or the declaration, makes a change impossible as asked.

    For example an app that has not reached Retool through Source Control, a resource whose type
    would have to change, or a secret value an update would erase. Retrying will not help.
    """

    retryable = False


def _error_class(status: int) -> type[RetoolError]:
    if status in (401, 403):
        return RetoolAuthError
    if status == 404:
        return RetoolNotFoundError
    if status == 409:
        return RetoolConflictError
    if status == 429:
        return RetoolRateLimitedError
    if status >= 500:
        return RetoolUnavailableError
    return RetoolRejectedError


class RateLimiter:
    """A token bucket: ``requests_per_minute`` sustained, at most ``burst`` requests back to back.

    Thread-safe. Each caller reserves a token under the lock and sleeps outside it, so concurrent
    callers queue fairly and nobody spins.
    """

    def __init__(
        self,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ConfigError(f"requests_per_minute must be positive, not {requests_per_minute}")
        if burst < 1:
            raise ConfigError(f"burst must be at least 1, not {burst}")
        self.requests_per_minute = requests_per_minute
        self._per_second = requests_per_minute / 60.0
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; return the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._per_second)
            self._updated = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self._per_second
        if wait > 0:
            self._sleep(wait)
        return wait


class _BearerAuth(httpx.Auth):
    """Adds the bearer token to each request; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


def _base_url(host: str) -> str:
    """``https://retool.example.com`` (or with ``/api/v2`` already) → the API base URL."""
    text = host.strip().rstrip("/")
    if not text:
        raise ConfigError("the Retool host is empty")
    if "://" not in text:
        text = "https://" + text
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("the Retool host must be an http(s) URL such as https://retool.example.com")
    if url.userinfo:
        raise ConfigError("the Retool host must not carry credentials; give the token separately")
    path = url.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return str(url.copy_with(path=path, query=None, fragment=None))


def _retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetoolClient:
    """Calls the Retool API v2 of one instance with one token.

    ``get``/``post``/``put``/``patch``/``delete`` return the envelope's ``data`` (``None`` for an
    empty answer); ``list_all`` follows ``next_token`` and returns every item. ``sleep`` and ``clock``
    are injectable so tests can observe backoff without waiting for it.
    """

    def __init__(
        self,
        host: str,
        token: str,
        *,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int = 1,
        timeout: float | httpx.Timeout = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not token:
            raise ConfigError("the Retool token is empty")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {max_attempts}")
        self.base_url = _base_url(host)
        self._token = token
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # jitter only; not security-sensitive
        self.limiter = RateLimiter(requests_per_minute, burst, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=_BearerAuth(token),
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "reconciler-retool/1"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"RetoolClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- public calls ---------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return _data(self.request("GET", path, params=params))

    def list_all(
        self, path: str, params: Mapping[str, Any] | None = None, *, body: Any = None
    ) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following ``next_token`` while ``has_more``.

        With ``body`` the list is read with a POST (``/permissions/listObjects``), which only reads
        and is safe to repeat. The page token goes into the URL parameters either way, as Retool's
        pagination guide says.
        """
        query = dict(params or {})
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        method = "GET" if body is None else "POST"
        while True:
            envelope = self.request(method, path, params=query, json_body=body, idempotent=True)
            data = _data(envelope)
            if not isinstance(data, list):
                raise RetoolError(method, path, 200, "expected a list in the response's data")
            items.extend(data)
            token = envelope.get("next_token") if isinstance(envelope, dict) else None
            if not (isinstance(envelope, dict) and envelope.get("has_more")) or not token:
                return items
            if token in seen:
                raise RetoolError(method, path, 200, "the API repeated a next_token; stopping pagination")
            seen.add(token)
            query["next_token"] = token

    def post(
        self, path: str, body: Any = None, *, idempotent: bool = False, params: Mapping[str, Any] | None = None
    ) -> Any:
        """POST ``body``; pass ``idempotent=True`` for POSTs that are safe to repeat (grant, read)."""
        return _data(self.request("POST", path, params=params, json_body=body, idempotent=idempotent))

    def put(self, path: str, body: Any, *, params: Mapping[str, Any] | None = None, idempotent: bool = True) -> Any:
        """PUT ``body``; pass ``idempotent=False`` for PUTs with an effect beyond the state they set
        (a Source Control manifest PUT pushes a new branch each time)."""
        return _data(self.request("PUT", path, params=params, json_body=body, idempotent=idempotent))

    def patch(self, path: str, operations: list[dict[str, Any]]) -> Any:
        """PATCH with a JSON-Patch body: ``{"operations": [{"op": "replace", ...}]}``."""
        return _data(self.request("PATCH", path, json_body={"operations": operations}))

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> None:
        self.request("DELETE", path, params=params)

    # -- the one place requests are sent ----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one call with rate limiting and retries; return the decoded JSON body (or None)."""
        safe_to_repeat = method != "POST" if idempotent is None else idempotent
        content = None if json_body is None else json.dumps(json_body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            started = self._clock()
            try:
                response = self._http.request(
                    method, path, params=_query(params), content=content, headers=headers
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                reason = self._scrub(str(exc)) or type(exc).__name__
                if (safe_to_repeat or never_sent) and attempt < self._max_attempts:
                    self._pause(method, path, attempt, self._backoff(attempt), reason=type(exc).__name__)
                    continue
                raise RetoolUnavailableError(
                    method, path, None, f"{type(exc).__name__}: {reason}", delay=self._backoff(attempt)
                ) from exc
            status = response.status_code
            log.debug(
                "retool.response",
                method=method,
                path=path,
                status=status,
                attempt=attempt,
                seconds=round(self._clock() - started, 3),
            )
            if status == 429 or status >= 500:
                wait = _retry_after(response.headers.get("Retry-After"))
                retry = attempt < self._max_attempts and (status == 429 or safe_to_repeat)
                if wait is None:
                    wait = self._backoff(attempt)
                if retry and wait <= self._max_retry_after:
                    self._pause(method, path, attempt, wait, status=status)
                    continue
                raise _error_class(status)(
                    method, path, status, self._api_message(response), delay=max(wait, 1.0)
                )
            if status >= 400:
                raise _error_class(status)(method, path, status, self._api_message(response))
            return self._decode(method, path, response)

    # -- helpers ------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped."""
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _pause(
        self,
        method: str,
        path: str,
        attempt: int,
        seconds: float,
        *,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        log.warning(
            "retool.retry",
            method=method,
            path=path,
            status=status,
            reason=reason,
            attempt=attempt,
            max_attempts=self._max_attempts,
            delay=round(seconds, 3),
        )
        self._sleep(seconds)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED) if self._token in text else text

    def _api_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        else:
            message = response.text.strip()[:300] or response.reason_phrase
        return self._scrub(message)

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            body = response.json()
        except ValueError as exc:
            raise RetoolError(method, path, response.status_code, "the response is not JSON") from exc
        if isinstance(body, dict) and body.get("success") is False:
            raise RetoolRejectedError(method, path, response.status_code, self._api_message(response))
        return body


def _data(envelope: Any) -> Any:
    """The ``data`` of a ``{success, data}`` envelope; a bare object (some endpoints) as it is."""
    if isinstance(envelope, dict) and "data" in envelope and "success" in envelope:
        return envelope["data"]
    return envelope


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
