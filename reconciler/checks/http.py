"""Run one HTTP check: one request to a REST resource, its status and optionally a JSONPath judged.

Called by ``runner.py`` with every value already resolved. httpx's timeout (connect, each read,
write) is the check's timeout, and reading the body stops at the check's deadline and at
``MAX_BODY`` bytes, so a server that never answers, or trickles an endless body, fails the check
within about its timeout. Redirects are not followed: a health endpoint that redirects is an
answer to judge, not to chase. Messages name the method and the declared path, never the URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from jsonpath import JSONPathEnvironment

from reconciler.checks.prepared import HttpProbe
from reconciler.errors import CheckFailed

MAX_BODY = 1 << 20
SNIPPET = 200
_JSONPATH = JSONPathEnvironment(strict=True)


def run(
    probe: HttpProbe,
    url: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    basic_auth: tuple[str, str] | None,
    body: str | None,
    timeout: float,
    redact: Callable[[str], str],
) -> str:
    """Send the request; return what was seen ("HTTP 200", "HTTP 200, $.status = 'ok'") or raise ``CheckFailed``."""
    what = f"{probe.method} {probe.path}"
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client, client.stream(
            probe.method, url, params=dict(params) or None, headers=dict(headers), auth=basic_auth,
            content=body.encode() if body is not None else None,
        ) as response:
            content = _read(response, deadline, timeout, what)
    except httpx.TimeoutException:
        raise CheckFailed(f"{what}: no answer within {timeout:g}s") from None
    except httpx.InvalidURL:
        raise CheckFailed(f"{what}: the resource's base_url with this path is not a valid URL") from None
    except httpx.HTTPError as exc:
        # httpx's messages name the error, not the URL; the runner redacts whatever they hold.
        raise CheckFailed(f"{what}: {type(exc).__name__}: {exc}") from None
    seen = f"HTTP {response.status_code}"
    if response.status_code != probe.status:
        raise CheckFailed(f"{what}: expected status {probe.status}, got {response.status_code}"
                          + (f": {_snippet(content, redact)}" if content.strip() else ""))
    if probe.json_path is None:
        return seen
    try:
        document = json.loads(content)
    except ValueError:
        raise CheckFailed(f"{what}: the response is not JSON, so json_path {probe.json_path} cannot be read: "
                          f"{_snippet(content, redact)}") from None
    matches = _JSONPATH.findall(probe.json_path, document)
    if not matches:
        raise CheckFailed(f"{what}: json_path {probe.json_path} matches nothing in the response")
    if probe.has_value and not _same(matches[0], probe.value):
        raise CheckFailed(f"{what}: json_path {probe.json_path} is {_show(matches[0], redact)}, expected "
                          f"{_show(probe.value, redact)}")
    return f"{seen}, {probe.json_path} = {_show(matches[0], redact)}"


def _read(response: httpx.Response, deadline: float, timeout: float, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY:
            raise CheckFailed(f"{what}: the response body is larger than {MAX_BODY} bytes")
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: the response did not end within {timeout:g}s")
        chunks.append(chunk)
    return b"".join(chunks)


def _same(found: Any, expected: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, mappings and lists compared member by member."""
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(_same(found[k], expected[k]) for k in found)
    if isinstance(found, list) and isinstance(expected, list):
        return len(found) == len(expected) and all(_same(a, b) for a, b in zip(found, expected, strict=True))
    if isinstance(found, dict | list) or isinstance(expected, dict | list):
        return False
    return bool(found == expected)


def _show(value: Any, redact: Callable[[str], str]) -> str:
    return _clip(redact(json.dumps(value, default=str, ensure_ascii=False)))


def _snippet(content: bytes, redact: Callable[[str], str]) -> str:
    """The start of a response body on one line. Redacted before it is cut: a cut through a secret
    would leave a piece of it that no longer matches the whole value."""
    return _clip(redact(" ".join(content.decode("utf-8", errors="replace").split())))


def _clip(text: str) -> str:
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"
