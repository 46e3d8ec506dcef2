"""Promotion gates (SPEC §4) as pure decisions over plain facts: every refusal is decided here.

``app/reconcile.py`` gathers the facts (is the tag's commit reachable, did this tree verify
upstream, what did this tag point at before, what do the signatures say, what time is it) and
``core/targets.py`` and the app ask these functions whether a revision may be applied. Each refusal
carries a ``GateCode`` (for metrics, notifications and ``reconciler explain``) and a sentence an
operator can act on.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from reconciler.core.changes import DriftItem
from reconciler.desired.models import DenyWindow, Environment
from reconciler.durations import parse_duration

_APPROVE = re.compile(r"^\s*Approve:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


class GateCode(StrEnum):
    """Why a revision is refused. ``reconciler explain CODE`` explains each one."""

    # which revision (core/targets.py)
    NOT_A_TAG = "not-a-tag"  # a tag-tracked environment was asked to apply something else
    TAG_DELETED = "tag-deleted"  # the tag the environment runs is gone
    NO_RELEASE = "no-release"  # no tag matches the environment's glob yet
    NOT_A_RELEASE = "not-a-release"  # the tag matches the glob but carries no semantic version
    PRERELEASE = "prerelease"
    PINNED = "pinned"  # an explicit revision other than the pin
    # the release tag (check_tag)
    MOVED_TAG = "moved-tag"
    OLDER_TAG = "older-tag"
    UNREACHABLE = "unreachable"
    NOT_PROMOTED = "not-promoted"
    SIGNATURE = "signature"
    # the desired state and the plan
    INVALID = "invalid"
    DESTRUCTIVE = "destructive"
    DESTRUCTIVE_DENIED = "destructive-denied"
    WINDOW = "window"


@dataclass(frozen=True)
class Gate:
    allowed: bool
    code: GateCode | None = None  # set when refused
    reason: str = ""
    retry_at: dt.datetime | None = None  # when a waiting revision may go (deny windows)

    @staticmethod
    def ok() -> Gate:
        return Gate(True)

    @staticmethod
    def block(code: GateCode, reason: str, retry_at: dt.datetime | None = None) -> Gate:
        return Gate(False, code, reason, retry_at)


@dataclass(frozen=True)
class TagFacts:
    name: str
    target: str
    reachable: bool | None  # None when the environment sets no from_branch
    verified_upstream: bool | None  # None when the environment sets no promoted_from
    first_seen_target: str | None  # what this tag name pointed at when first seen
    signature_ok: bool | None = None  # None when verification is off
    signature_reason: str = ""
    newer_than_applied: bool = True


def check_tag(spec: Environment, facts: TagFacts) -> Gate:
    """May the release tag ``facts`` be applied to the tag-tracked environment ``spec``?"""
    track = spec.track
    if facts.first_seen_target is not None and facts.first_seen_target != facts.target:
        return Gate.block(
            GateCode.MOVED_TAG,
            f"tag {facts.name} moved from {facts.first_seen_target[:12]} to {facts.target[:12]}; moved tags are "
            "never followed — cut a new release tag instead",
        )
    if not facts.newer_than_applied:
        return Gate.block(
            GateCode.OLDER_TAG,
            f"tag {facts.name} is not newer than what {spec.name} runs; to roll back use "
            f"'reconciler pin {spec.name} {facts.name}'",
        )
    if track.from_branch and facts.reachable is False:
        return Gate.block(
            GateCode.UNREACHABLE,
            f"tag {facts.name} ({facts.target[:12]}) is not reachable from branch {track.from_branch}; "
            f"release only commits merged to {track.from_branch}",
        )
    if track.promoted_from and facts.verified_upstream is False:
        return Gate.block(
            GateCode.NOT_PROMOTED,
            f"the desired state of {facts.name} has never synced and verified in {track.promoted_from}; "
            f"let {track.promoted_from} reach this revision first",
        )
    if facts.signature_ok is False:
        return Gate.block(GateCode.SIGNATURE, f"tag {facts.name}: {facts.signature_reason}")
    return Gate.ok()


def approvals_in(message: str) -> list[str]:
    """The ids named by ``Approve:`` trailer lines of an annotated tag message."""
    return _APPROVE.findall(message or "")


def is_approved(item_id: str, approvals: list[str]) -> bool:
    for pattern in approvals:
        if pattern.endswith("*"):
            if item_id.startswith(pattern[:-1]):
                return True
        elif fnmatch.fnmatchcase(item_id, pattern) if "?" in pattern or "[" in pattern else item_id == pattern:
            return True
    return False


def check_destructive(spec: Environment, destructive: list[DriftItem], approvals: list[str]) -> Gate:
    """Destructive schema changes follow ``destructive_changes`` and the approvals given."""
    if not destructive:
        return Gate.ok()
    policy = spec.sync.destructive_changes
    ids = [item.id for item in destructive]
    if policy == "allow":
        return Gate.ok()
    if policy == "deny":
        return Gate.block(GateCode.DESTRUCTIVE_DENIED,
                          f"destructive changes are denied in {spec.name}: {', '.join(ids)}")
    missing = [i for i in ids if not is_approved(i, approvals)]
    if missing:
        return Gate.block(
            GateCode.DESTRUCTIVE,
            f"destructive change needs approval: {', '.join(missing)} — add 'Approve: {missing[0]}' to the "
            "annotated tag message (or pass --approve)",
        )
    return Gate.ok()


_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _crontab_trigger(window: DenyWindow) -> CronTrigger:
    minute, hour, day, month, dow = window.deny.split()
    # crontab counts Sunday as 0 (or 7); APScheduler counts Monday as 0, so use names.
    dow = re.sub(r"\d+", lambda m: _DOW_NAMES[int(m.group()) % 8], dow)
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                       timezone=ZoneInfo(window.timezone))


def window_closes_at(windows: list[DenyWindow], now: dt.datetime) -> dt.datetime | None:
    """When ``now`` is inside a deny window, the time that window (and any overlapping) closes."""
    closes: dt.datetime | None = None
    for window in windows:
        trigger = _crontab_trigger(window)
        length = dt.timedelta(seconds=parse_duration(window.duration))
        start = now - length
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire <= now:
            end = fire + length
            if end > now and (closes is None or end > closes):
                closes = end
            fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return closes


def check_window(spec: Environment, now: dt.datetime) -> Gate:
    closes = window_closes_at(spec.sync.windows, now)
    if closes is None:
        return Gate.ok()
    return Gate.block(
        GateCode.WINDOW, f"inside a deny window until {closes.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        "the revision waits and is applied when the window closes", retry_at=closes,
    )


def check_pin(environment: str, pinned: str | None, requested: str | None) -> Gate:
    """An explicit revision other than the pin is refused while the environment is pinned."""
    if pinned and requested is not None and requested != pinned:
        return Gate.block(GateCode.PINNED, f"{environment} is pinned at {pinned[:12]}; run "
                          f"'reconciler unpin {environment}' first")
    return Gate.ok()


def invalid(problems: str) -> Gate:
    """The desired state at the revision does not validate: it is never applied."""
    return Gate.block(GateCode.INVALID, problems)
