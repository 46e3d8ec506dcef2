"""Notifications to webhook targets: new drift, failed run, recovery, blocked revision, promotion.

Called by the supervisor after every run and drift check. Each event is sent once per
environment, revision and event: a dedup key is recorded in the state store before sending, so
the daemon's retries of a failing run (a new run each time), a drift that persists across checks,
a revision refused again, or a restart of the daemon repeat nothing. The keys:

    failed:<env>:<revision>[:<digest of the failed checks' names>]
                                       forgotten when the environment recovers, so a later failure
                                       of the same revision is news again; the recovery itself is
                                       one ``recovered`` message. Another check failing at the same
                                       revision is another event.
    blocked:<env>:<revision>:<gate>    another gate for the same revision is another event
    promoted:<env>:<revision>:<tag>
    rolled_back:<env>:<failed revision>:<revision>
                                       a rollback (``on_failed_checks``/``scheduled_checks: rollback``)
                                       is one message saying who, what and why, not also a
                                       ``failed`` and a ``promoted`` one
    break-glass:<env>:<run id>         a deny window overridden: who and why, once per run
    drift:<env>:<digest of the ids>

The results of the checks a run ran (name, passed, duration, the first lines of the error, all
redacted by the runner) travel with ``failed``, ``recovered`` and ``rolled_back`` messages.

Delivery runs on a thread of its own with bounded retries and exponential backoff; a receiver
that is down never slows a reconcile. Payloads are generic JSON or Slack-compatible (``text`` +
``blocks``); they carry ids and redacted values only. Webhook URLs may be ``${secret:NAME}``
references (a Slack webhook URL is a credential); they are resolved at start.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from reconciler import logs
from reconciler.config import DEFAULT_WORKSPACE, NotifyWebhook, Settings
from reconciler.core.outcome import RunOutcome, RunResult
from reconciler.core.plan import Plan
from reconciler.core.revisions import short
from reconciler.errors import ReconcilerError, SecretError
from reconciler.secrets.backends import Secrets, backends_from_config

log = logs.get_logger(__name__)

EVENTS = ("drift", "failed", "recovered", "blocked", "promoted", "rolled_back", "break-glass")


class EventLog(Protocol):
    """Where the dedup keys live (the state store, so every process and restart shares them)."""

    def first_time(self, key: str) -> bool: ...

    def forget_events(self, prefix: str) -> int: ...


@dataclass(frozen=True)
class Event:
    kind: str
    environment: str
    title: str
    detail: dict[str, Any]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _check(result: dict[str, Any]) -> dict[str, Any]:
    """What a message says of one check (already redacted by the runner)."""
    keys = ("name", "kind", "target", "passed", "duration_seconds", "detail", "error")
    return {key: result.get(key) for key in keys}


def payload(target: NotifyWebhook, event: Event, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
    if target.format == "slack":
        lines = [f"*{event.title}*"]
        if workspace != DEFAULT_WORKSPACE:
            lines.append(f"workspace: `{workspace}`")
        for key in ("revision", "ref", "reason", "by", "from_ref", "who", "why", "run_id"):
            if event.detail.get(key):
                lines.append(f"{key}: `{event.detail[key]}`")
        for check in event.detail.get("checks") or []:
            mark = "passed" if check.get("passed") else "FAILED"
            seconds = check.get("duration_seconds")
            took = f" ({seconds:.2f}s)" if isinstance(seconds, int | float) else ""
            why = f": {check['error']}" if check.get("error") else ""
            lines.append(f"• check `{check.get('name')}` {mark}{took}{why}")
        items = event.detail.get("items") or []
        if items:
            more = f"\n… and {len(items) - 10} more" if len(items) > 10 else ""
            lines.append("\n".join(f"• `{i}`" for i in items[:10]) + more)
        text = "\n".join(lines)
        return {"text": event.title, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    return {"event": event.kind, "workspace": workspace, "environment": event.environment, "title": event.title,
            **event.detail}


class Notifier:
    def __init__(self, settings: Settings, store: EventLog, attempts: int = 5, backoff: float = 1.0,
                 timeout: float = 10.0, secrets: Secrets | None = None) -> None:
        secrets = secrets or Secrets(backends_from_config(settings.secrets.backends))
        # Each target with its URL resolved now, so a missing secret stops the daemon at start.
        self.targets: list[tuple[NotifyWebhook, str]] = []
        for index, target in enumerate(settings.notify.webhooks):
            try:
                self.targets.append((target, secrets.resolve(target.url)))
            except SecretError as exc:
                raise SecretError(f"notify.webhooks[{index}].url: {exc}") from None
        self.store = store
        self.workspace = settings.workspace_name
        self.attempts = attempts
        self.backoff = backoff
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._queue: queue.Queue[tuple[NotifyWebhook, str, Event] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._deliver_loop, name="notifier", daemon=True)
        self._thread.start()
        self.sent = 0
        self.failed = 0

    # -- events ------------------------------------------------------------------------------------

    def outcome(self, outcome: RunOutcome) -> None:
        try:
            self._outcome(outcome)
        except ReconcilerError as exc:  # the state store is down: the run's result stands, the message waits
            log.warning("notify.skipped", environment=outcome.environment, result=outcome.result, error=str(exc))

    def _outcome(self, outcome: RunOutcome) -> None:
        env = outcome.environment
        where = f"{short(outcome.revision)}" + (f" ({outcome.ref})" if outcome.ref else "")
        detail: dict[str, Any] = {"revision": outcome.revision, "ref": outcome.ref, "run_id": outcome.run_id,
                                  "reason": outcome.reason}
        if outcome.checks:
            detail["checks"] = [_check(c) for c in outcome.checks]
        if outcome.cause is not None and outcome.result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES):
            self._rolled_back(outcome, detail)
            return
        if outcome.result == RunResult.FAILED:
            key = f"failed:{env}:{outcome.revision or 'none'}"
            if outcome.failed_checks:
                key += f":{_digest(*sorted(outcome.failed_checks))}"
            self.emit(Event("failed", env, f"{env}: run failed at {where}", detail), key)
        elif outcome.result == RunResult.BLOCKED:
            title = f"{env}: {where} blocked ({outcome.gate})"
            self.emit(Event("blocked", env, title, {**detail, "gate": outcome.gate}),
                      f"blocked:{env}:{outcome.revision}:{outcome.gate}")
        if outcome.result in (RunResult.SUCCEEDED, RunResult.NO_CHANGES) and self.store.forget_events(f"failed:{env}:"):
            # Only the process whose delete removed the keys gets here: one message per recovery.
            self.send(Event("recovered", env, f"{env}: recovered at {where}", detail))
        if outcome.break_glass is not None and outcome.run_id is not None:
            glass = outcome.break_glass
            self.emit(Event("break-glass", env, f"{env}: deny window overridden by {glass.who} at {where}",
                            {**detail, "who": glass.who, "why": glass.reason, "result": outcome.result.value}),
                      f"break-glass:{env}:{outcome.run_id}")
        if outcome.result == RunResult.SUCCEEDED and outcome.release:
            self.emit(Event("promoted", env, f"{env}: promoted to {outcome.ref}", detail),
                      f"promoted:{env}:{outcome.revision}:{outcome.ref}")

    def _rolled_back(self, outcome: RunOutcome, detail: dict[str, Any]) -> None:
        """One message for a rollback: who decided it, from which release to which, and the checks that failed."""
        cause = outcome.cause
        assert cause is not None
        env = outcome.environment
        was = cause.ref or short(cause.revision)
        now = outcome.ref or short(outcome.revision)
        detail = {**detail, "by": outcome.by, "from_revision": cause.revision, "from_ref": cause.ref,
                  "failed_run_id": cause.run_id, "checks": [_check(c) for c in cause.checks]}
        self.emit(Event("rolled_back", env, f"{env}: rolled back from {was} to {now}", detail),
                  f"rolled_back:{env}:{cause.revision}:{outcome.revision}")
        # The environment works again: a later failure of any revision is news.
        self.store.forget_events(f"failed:{env}:")

    def drift(self, env: str, plan: Plan) -> None:
        if not plan.pending:
            return  # what another environment on the instance applies is not this one's drift
        ids = sorted(i.id for i in plan.pending)
        try:
            self.emit(Event("drift", env, f"{env}: {len(ids)} drift item{'s' if len(ids) != 1 else ''} found",
                            {"revision": plan.revision, "items": ids}),
                      f"drift:{env}:{_digest(*ids)}")
        except ReconcilerError as exc:
            log.warning("notify.skipped", environment=env, kind="drift", error=str(exc))

    def emit(self, event: Event, key: str) -> None:
        """Send ``event`` unless ``key`` was sent before (by this process or any other, before a restart too)."""
        if self.store.first_time(key):
            self.send(event)

    def send(self, event: Event) -> None:
        for target, url in self.targets:
            if target.events is None or event.kind in target.events:
                self._queue.put((target, url, event))

    # -- delivery ----------------------------------------------------------------------------------

    def _deliver_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            target, url, event = job
            try:
                self._deliver(target, url, event)
            except Exception:  # the delivery thread must outlive any one message
                log.exception("notify.crashed", kind=event.kind)
            finally:
                self._queue.task_done()

    def _deliver(self, target: NotifyWebhook, url: str, event: Event) -> None:
        body = payload(target, event, self.workspace)
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.post(url, json=body)
                if response.status_code < 300:
                    self.sent += 1
                    log.info("notify.sent", kind=event.kind, environment=event.environment, attempt=attempt)
                    return
                retry = response.status_code >= 500 or response.status_code == 429
                log.warning("notify.rejected", status=response.status_code, attempt=attempt)
                if not retry:
                    break
            except httpx.HTTPError as exc:
                log.warning("notify.error", error=type(exc).__name__, attempt=attempt)
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        self.failed += 1
        log.error("notify.gave_up", kind=event.kind, environment=event.environment)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self.client.close()
