"""Run declared checks and return their results, with every secret the checks used redacted.

``run_checks`` resolves each probe's ``${secret:NAME}`` references just before it runs (remembering
every value it resolved, and the password inside a database URL), runs the probe within its timeout
and turns whatever happened into a ``CheckResult``: a failure, a timeout, a missing secret or a bug
in one check fails that check only. Every message passes through the ``Redactor`` before it leaves,
so no secret reaches the CLI, the API, a log line or a record. ``check_environment`` is the entry
point of ``reconciler check`` and the API: it picks the checks of the revision an environment runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from reconciler import logs
from reconciler.checks.prepared import HttpProbe, PreparedCheck, SqlProbe, for_environment
from reconciler.checks.results import CheckReport, CheckResult
from reconciler.desired.models import SECRET_REFERENCE
from reconciler.desired.state import DesiredState
from reconciler.errors import CheckFailed, SecretError
from reconciler.secrets.values import REDACTED

log = logs.get_logger(__name__)

Resolve = Callable[[str], str]  # a template with ${secret:NAME} references → the resolved text
ERROR_LINES = 3
ERROR_CHARS = 500


class Redactor:
    """Remembers secret values and replaces each of them in a text by ``(secret)``."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def keep(self, value: str) -> str:
        """Remember ``value`` (and its percent-decoded form) as secret; return it unchanged."""
        for form in (value, unquote(value)):
            if form:
                self._values.add(form)
        return value

    def keep_url_password(self, url: str) -> None:
        """A database URL may carry its password inline or as ``?password=``; libpq may echo either."""
        try:
            parts = urlsplit(url)
            if parts.password:
                self.keep(parts.password)
            for key, value in parse_qsl(parts.query):
                if key.lower() == "password":
                    self.keep(value)
        except ValueError:
            pass  # not a URL: the whole value is remembered already, and the probe refuses it

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is replaced whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


def run_checks(checks: Sequence[PreparedCheck], resolve: Resolve) -> list[CheckResult]:
    """Run ``checks`` one after the other; one result each, in the same order."""
    return [run_check(check, resolve) for check in checks]


def run_check(check: PreparedCheck, resolve: Resolve) -> CheckResult:
    redact = Redactor()
    started = time.monotonic()
    passed, error = False, None
    try:
        detail = _run(check, _resolver(resolve, redact), redact)
        passed = True
    except (CheckFailed, SecretError) as exc:
        detail = error = _first_lines(redact(str(exc)))
    except Exception as exc:  # a bug in one check must not stop the others, nor leak a value in a trace
        log.error("check.unexpected_error", check=check.name, environment=check.environment,
                  error_type=type(exc).__name__)
        detail = error = _first_lines(redact(f"unexpected {type(exc).__name__}: {exc}"))
    duration = time.monotonic() - started
    log.info("check.finished", check=check.name, environment=check.environment, passed=passed,
             duration=round(duration, 3), error=error)
    return CheckResult(name=check.name, kind=check.kind, target=check.target, app=check.app, when=check.when,
                       passed=passed, duration=duration, detail=detail, error=error)


def _resolver(resolve: Resolve, redact: Redactor) -> Resolve:
    def expand(template: str) -> str:
        return SECRET_REFERENCE.sub(lambda match: redact.keep(resolve(match.group(0))), template)

    return expand


def _run(check: PreparedCheck, expand: Resolve, redact: Redactor) -> str:
    # The probes' clients (psycopg, httpx) are imported when a check of their kind runs: a command
    # that runs no check (status, plan, drift) does not load them (tests/test_cli_imports.py).
    from reconciler.checks import http, sql

    probe = check.probe
    if isinstance(probe, SqlProbe):
        url = expand(probe.url)
        redact.keep_url_password(url)
        return sql.run(probe, url, expand(probe.query), check.timeout, redact)
    assert isinstance(probe, HttpProbe)
    if probe.problem is not None:
        raise CheckFailed(probe.problem)
    basic = (expand(probe.basic_auth[0]), expand(probe.basic_auth[1])) if probe.basic_auth else None
    return http.run(
        probe,
        url=expand(probe.url),
        params={name: expand(value) for name, value in probe.params.items()},
        headers={name: expand(value) for name, value in probe.headers.items()},
        basic_auth=basic,
        body=expand(probe.body) if probe.body is not None else None,
        timeout=check.timeout,
        redact=redact,
    )


def _first_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()][:ERROR_LINES]
    shown = "\n".join(lines) or "failed"
    return shown if len(shown) <= ERROR_CHARS else shown[:ERROR_CHARS] + "…"


class CheckSource(Protocol):
    """What ``check_environment`` asks of the application (``Reconciler``)."""

    def current_revision(self, env: str) -> tuple[str, str | None]: ...

    def state_at(self, revision: str) -> DesiredState: ...


def check_environment(source: CheckSource, env: str, resolve: Resolve, names: list[str] | None = None) -> CheckReport:
    """Run the checks declared for ``env`` at the revision it runs (else the one it tracks).

    Raises ``NotFoundError`` for an unknown environment or check name, and whatever loading the
    desired state raises; a check that fails is a result, not an exception.
    """
    revision, ref = source.current_revision(env)
    checks = for_environment(source.state_at(revision), env, names)
    return CheckReport(env, revision, ref, run_checks(checks, resolve))
