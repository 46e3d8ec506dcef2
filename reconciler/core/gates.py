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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from reconciler.core.changes import DriftItem
from reconciler.desired.models import DenyWindow, Environment, signer_id
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
    SOAKING = "soaking"  # the release has not stayed Synced upstream for track.soak yet
    CHECKS_UPSTREAM = "checks-upstream"  # the checks of that desired state failed (or never ran) upstream
    SIGNATURE = "signature"
    SIGNER = "signer"  # signed, but not by one of the environment's allowed_signers
    # the desired state and the plan
    INVALID = "invalid"
    DESTRUCTIVE = "destructive"
    DESTRUCTIVE_DENIED = "destructive-denied"
    APPROVER = "approver"  # an Approve: trailer in a tag not signed by an approver
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
class SignedBy:
    """Who signed a release tag, as ``source/signatures.py`` found out.

    ``ids`` are the ids the signing key is matched by (``desired.models.signer_id``: a GPG key's
    primary and signing-subkey fingerprints, an SSH key's ``SHA256:`` fingerprint); empty when the
    tag is not signed. ``label`` names the key for operators; ``verified`` says the signature is
    good for that key, ``reason`` why not.
    """

    ids: frozenset[str] = frozenset()
    label: str = ""
    verified: bool = False
    reason: str = ""

    @property
    def signed(self) -> bool:
        return bool(self.ids)

    def describe(self) -> str:
        """What an operator needs to hear about this signature, e.g. for a refusal."""
        if not self.signed:
            return f"the tag is not signed ({self.reason})" if self.reason else "the tag is not signed"
        if not self.verified:
            return f"the signature by {self.label} does not verify ({self.reason})"
        return f"signed by {self.label}"

    def is_one_of(self, keys: Sequence[str]) -> bool:
        """A good signature by one of ``keys`` (allowed_signers or approvers entries)."""
        return self.verified and bool(self.ids & {signer_id(k) for k in keys})


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
    # The earlier environment runs checks (sync.run_checks): did they run on this tree there, and which
    # failed the last time they did. None when the environment sets no promoted_from or it runs no checks.
    upstream_checks_ran: bool | None = None
    upstream_checks_failed: tuple[str, ...] = ()
    # Since when the tree has been Synced upstream without a failed run since (soak), and what time it is.
    upstream_synced_since: dt.datetime | None = None
    now: dt.datetime | None = None
    signed_by: SignedBy | None = None  # gathered when the environment sets allowed_signers


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
    # A check that failed upstream is the precise reason (that run is Failed, so never verified either).
    if track.promoted_from and facts.upstream_checks_failed:
        failed = facts.upstream_checks_failed
        return Gate.block(
            GateCode.CHECKS_UPSTREAM,
            f"check{'s' if len(failed) > 1 else ''} {', '.join(failed)} failed in {track.promoted_from} for the "
            f"desired state of {facts.name}; fix the release and let {track.promoted_from} pass its checks first",
        )
    if track.promoted_from and facts.verified_upstream is False:
        return Gate.block(
            GateCode.NOT_PROMOTED,
            f"the desired state of {facts.name} has never synced and verified in {track.promoted_from}; "
            f"let {track.promoted_from} reach this revision first",
        )
    if track.promoted_from and facts.upstream_checks_ran is False:
        return Gate.block(
            GateCode.CHECKS_UPSTREAM,
            f"the checks of {facts.name}'s desired state have not run in {track.promoted_from} yet; "
            f"they run when {track.promoted_from} applies it",
        )
    if track.promoted_from and track.soak and facts.now is not None:
        soak = check_soak(track.promoted_from, parse_duration(track.soak), facts.upstream_synced_since, facts.now)
        if not soak.allowed:
            return soak
    if facts.signature_ok is False:
        return Gate.block(GateCode.SIGNATURE, f"tag {facts.name}: {facts.signature_reason}")
    if spec.allowed_signers is not None:
        return check_signer(spec, facts.name, facts.signed_by or SignedBy())
    return Gate.ok()


def check_soak(upstream: str, seconds: float, since: dt.datetime | None, now: dt.datetime) -> Gate:
    """Has the release stayed Synced in ``upstream`` for ``seconds`` by ``now``? Waiting retries when it ends."""
    if since is None:
        return Gate.ok()  # never synced there: the promotion gates before this one say so
    ends = since + dt.timedelta(seconds=seconds)
    if now >= ends:
        return Gate.ok()
    return Gate.block(
        GateCode.SOAKING, f"soaking in {upstream} until {ends.astimezone(dt.UTC):%H:%M} UTC "
        f"({ends.astimezone(dt.UTC):%Y-%m-%d}); promoted then if it stays Synced with passing checks",
        retry_at=ends,
    )


def check_signer(spec: Environment, tag: str, signed_by: SignedBy) -> Gate:
    """A release tag of an environment with ``allowed_signers`` must carry a good signature by one of them."""
    keys = spec.allowed_signers
    if keys is None or signed_by.is_one_of(keys):
        return Gate.ok()
    if signed_by.signed and signed_by.verified:
        return Gate.block(
            GateCode.SIGNER,
            f"tag {tag} signed by a key not allowed to release {spec.name}: {signed_by.label}; sign the release "
            f"with a key listed in allowed_signers of {spec.name}, or add this key there",
        )
    return Gate.block(
        GateCode.SIGNER,
        f"tag {tag}: {signed_by.describe()}; {spec.name} is released only by tags signed (git tag -s) with a key "
        "listed in its allowed_signers",
    )


def approvals_in(message: str) -> list[str]:
    """The ids named by ``Approve:`` trailer lines of an annotated tag message."""
    return _APPROVE.findall(message or "")


def is_approved(item_id: str, approvals: Sequence[str]) -> bool:
    for pattern in approvals:
        if pattern.endswith("*"):
            if item_id.startswith(pattern[:-1]):
                return True
        elif fnmatch.fnmatchcase(item_id, pattern) if "?" in pattern or "[" in pattern else item_id == pattern:
            return True
    return False


@dataclass(frozen=True)
class TagApprovals:
    """The ``Approve:`` trailers of the release tag being applied, and who signed that tag."""

    tag: str
    approvals: tuple[str, ...]
    signed_by: SignedBy


def approvers_of(item: DriftItem, spec: Environment, databases: Mapping[str, Sequence[str]]) -> Sequence[str] | None:
    """Who may approve ``item``: its database's approvers, else the environment's; None when anyone may."""
    if item.kind == "schema" and item.name in databases:
        return databases[item.name]
    return spec.approvers


def check_destructive(
    spec: Environment,
    destructive: list[DriftItem],
    approvals: Sequence[str],
    tag: TagApprovals | None = None,
    approvers: Mapping[str, Sequence[str]] | None = None,
) -> Gate:
    """Destructive changes follow ``destructive_changes`` and the approvals given.

    ``approvals`` are the operator's own (``--approve``); ``tag`` the release tag's ``Approve:``
    trailers, which count for an item only when the tag is signed by one of the item's approvers
    (``approvers``: database name → keys; the environment's ``approvers`` otherwise) if it has any.
    """
    if not destructive:
        return Gate.ok()
    policy = spec.sync.destructive_changes
    ids = [item.id for item in destructive]
    if policy == "allow":
        return Gate.ok()
    if policy == "deny":
        return Gate.block(GateCode.DESTRUCTIVE_DENIED,
                          f"destructive changes are denied in {spec.name}: {', '.join(ids)}")
    refused: list[tuple[str, str]] = []  # (item id, whose approval it needs)
    missing = []
    for item in destructive:
        if is_approved(item.id, approvals):
            continue
        if tag is not None and is_approved(item.id, tag.approvals):
            keys = approvers_of(item, spec, approvers or {})
            if keys is None or tag.signed_by.is_one_of(keys):
                continue
            own = item.kind == "schema" and item.name in (approvers or {})
            whose = f"database {item.name}" if own else f"environment {spec.name}"
            refused.append((item.id, whose))
            continue
        missing.append(item.id)
    if refused:
        assert tag is not None
        item_id, whose = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        return Gate.block(
            GateCode.APPROVER,
            f"approval of {item_id}{more} in tag {tag.tag} refused: {tag.signed_by.describe()}; only an approver of "
            f"{whose} can approve it — sign the release tag (git tag -s) with an approver's key",
        )
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


@dataclass(frozen=True)
class BreakGlass:
    """An operator's explicit override of a deny window, in an emergency: who asked and why.

    Given by ``reconciler apply ENV --break-glass REASON`` or the API's admin-only
    ``POST /api/v1/environments/{env}/break-glass``; recorded with the run and notified.
    """

    who: str
    reason: str


def break_glass(gate: Gate, override: BreakGlass | None) -> Gate:
    """``gate``, unless it is a deny window and an operator broke the glass: only the window yields.

    Signatures, release-tag gates, promotion, approvals and pins are decided before the window and
    stand whatever the override says.
    """
    if gate.allowed or override is None or gate.code != GateCode.WINDOW:
        return gate
    return Gate.ok()


def check_pin(environment: str, pinned: str | None, requested: str | None) -> Gate:
    """An explicit revision other than the pin is refused while the environment is pinned."""
    if pinned and requested is not None and requested != pinned:
        return Gate.block(GateCode.PINNED, f"{environment} is pinned at {pinned[:12]}; run "
                          f"'reconciler unpin {environment}' first")
    return Gate.ok()


def invalid(problems: str) -> Gate:
    """The desired state at the revision does not validate: it is never applied."""
    return Gate.block(GateCode.INVALID, problems)
