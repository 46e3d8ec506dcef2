"""Which revision an environment should run: a pure function of facts about Git and the store.

``app/`` gathers the facts — the branch head or the repository's tags, what the environment runs
and whether it is pinned, an explicit ``--rev`` resolved to a commit — and ``select`` decides the
target and every refusal that needs nothing more (not a tag, a deleted tag, no release yet, not a
release, a prerelease). A release tag that survives is then checked by ``check_tag`` against the
facts about that one tag (reachable from ``from_branch``, verified upstream, first seen pointing
elsewhere, signature, signer), which the app gathers only for it. Read paths (``status``, ``plan``) use
``select`` alone; a run uses both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from reconciler.core import gates
from reconciler.core.gates import Gate, GateCode, SignedBy
from reconciler.core.revisions import TagRef, is_prerelease, releases, short, tag_version
from reconciler.desired.models import Environment


@dataclass(frozen=True)
class Running:
    """What the state store says about the environment: what runs there, and any pin."""

    applied_revision: str | None = None
    applied_ref: str | None = None
    pinned_revision: str | None = None


@dataclass(frozen=True)
class Requested:
    """An explicit revision (``--rev``): the name as given and the commit it resolves to."""

    name: str
    commit: str


@dataclass(frozen=True)
class TagEvidence:
    """What Git and the store say about the one release tag ``select`` chose."""

    reachable: bool | None = None  # None when the environment sets no from_branch
    verified_upstream: bool | None = None  # None when the environment sets no promoted_from
    first_seen_target: str | None = None  # what this tag name pointed at when first seen
    signature_ok: bool | None = None  # None when verification is off
    signature_reason: str = ""
    upstream_checks_ran: bool | None = None  # None unless promoted_from names an environment that runs checks
    upstream_checks_failed: tuple[str, ...] = ()
    upstream_synced_since: dt.datetime | None = None  # soak: since when the tree is Synced upstream
    now: dt.datetime | None = None
    signed_by: SignedBy | None = None  # who signed the tag: gathered for allowed_signers and approvers


@dataclass(frozen=True)
class Target:
    """What an environment should run now, and whether the gates that need no plan allow it."""

    environment: str
    spec: Environment  # the environment's policy (from the control branch head)
    revision: str | None
    ref: str | None  # branch or tag name
    tag: TagRef | None = None
    gate: Gate = field(default_factory=Gate.ok)
    approvals: tuple[str, ...] = ()
    pinned: bool = False
    newer_available: str | None = None  # a newer revision a pin holds back
    newer_than_applied: bool = True  # a release tag newer than what runs (or the same one, re-applied)
    signed_by: SignedBy | None = None  # who signed the tag, when ``check_tag`` was given it

    @property
    def needs_tag_check(self) -> bool:
        """A release tag that passed ``select``: ``check_tag`` decides the rest."""
        return self.tag is not None and self.gate.allowed


def tracked_ref(spec: Environment) -> str:
    """What the environment follows, as status reports show it: a branch name or ``tag v*``."""
    return spec.track.branch or f"tag {spec.track.tag}"


def select(
    spec: Environment,
    running: Running,
    *,
    head: str | None = None,
    tags: Sequence[TagRef] = (),
    requested: Requested | None = None,
) -> Target:
    """The revision ``spec`` should run: the branch ``head`` (branch-tracked) or a release among ``tags``.

    A pinned branch-tracked environment is given ``tags`` too: a pin is named by the tag at its commit.
    """
    if spec.track.branch is not None:
        if head is None:
            raise ValueError("a branch-tracked environment needs its branch head")
        return _branch_target(spec, running, head, requested, list(tags))
    return _tag_target(spec, running, list(tags), requested)


def _branch_target(spec: Environment, running: Running, head: str, requested: Requested | None,
                   tags: list[TagRef]) -> Target:
    branch = spec.track.branch
    assert branch is not None
    if requested is not None:
        ref = requested.name
        if requested.commit == head:
            ref = branch
        elif requested.commit == running.applied_revision and running.applied_ref:
            ref = running.applied_ref  # re-applying what runs (self-heal) keeps its name
        return Target(spec.name, spec, requested.commit, ref)
    if running.pinned_revision:
        newer = head if head != running.pinned_revision else None
        return Target(spec.name, spec, running.pinned_revision, pin_name(running.pinned_revision, tags, None),
                      pinned=True, newer_available=newer)
    return Target(spec.name, spec, head, branch)


def pin_name(pinned: str, tags: Sequence[TagRef], glob: str | None) -> str:
    """What a pin is called where status shows what runs: the tag at the pinned commit, else ``pinned@<id>``.

    ``reconciler pin production v1.0.0`` stores the commit; the name comes back from the tags, so a
    rollback reads as the release it is. Among several tags at that commit, the highest release
    matching ``glob`` (the environment's, when it tracks tags) wins, then the highest semantic
    version, then the first name. A pin by a commit no tag points at shows its short id.
    """
    at = [t for t in tags if t.target == pinned]
    for pattern in (glob, "*"):
        if pattern is not None:
            found = releases(at, pattern, prereleases=True)
            if found:
                return found[0].tag.name
    if at:
        return min(t.name for t in at)
    return f"pinned@{short(pinned)}"


def _tag_target(spec: Environment, running: Running, tags: list[TagRef], requested: Requested | None) -> Target:
    track = spec.track
    assert track.tag is not None
    matching = releases(tags, track.tag, track.prereleases)
    if requested is not None:
        tag = next((t for t in tags if t.name == requested.name), None)
        if tag is None:
            return Target(spec.name, spec, requested.commit, requested.name, gate=Gate.block(
                GateCode.NOT_A_TAG, f"{spec.name} tracks release tags ({track.tag}); {requested.name!r} is not one — "
                f"apply a release tag, or 'reconciler pin {spec.name} {requested.name}' to hold it there"))
        return _release(spec, running, tag, explicit=True)
    if running.pinned_revision:
        newest = matching[0].tag.target if matching else None
        ref = running.applied_ref if running.applied_revision == running.pinned_revision else None
        ref = ref or pin_name(running.pinned_revision, tags, track.tag)
        return Target(spec.name, spec, running.pinned_revision, ref,
                      pinned=True, newer_available=newest if newest != running.pinned_revision else None)
    applied = running.applied_ref
    applied_version = tag_version(applied, track.tag) if applied else None
    if applied_version is not None and applied not in {t.name for t in tags} and (
            not matching or matching[0].version <= applied_version):
        return Target(spec.name, spec, running.applied_revision, applied, gate=Gate.block(
            GateCode.TAG_DELETED, f"tag {applied}, which {spec.name} runs, was deleted; {spec.name} stays at "
            f"{short(running.applied_revision)} — cut a new release tag to move it"))
    if not matching:
        return Target(spec.name, spec, running.applied_revision, running.applied_ref, gate=Gate.block(
            GateCode.NO_RELEASE, f"no release tag matching {track.tag!r} yet"))
    return _release(spec, running, matching[0].tag, explicit=False)


def _release(spec: Environment, running: Running, tag: TagRef, explicit: bool) -> Target:
    track = spec.track
    assert track.tag is not None
    version = tag_version(tag.name, track.tag)
    if version is None:
        gate = Gate.block(GateCode.NOT_A_RELEASE, f"tag {tag.name} does not match {track.tag!r} as a semver release")
        return Target(spec.name, spec, tag.target, tag.name, tag, gate)
    if is_prerelease(version) and not track.prereleases:
        gate = Gate.block(GateCode.PRERELEASE,
                          f"tag {tag.name} is a prerelease and {spec.name} sets prereleases: false")
        return Target(spec.name, spec, tag.target, tag.name, tag, gate)
    applied_version = tag_version(running.applied_ref, track.tag) if running.applied_ref else None
    running_this = running.applied_ref == tag.name and running.applied_revision == tag.target
    newer = applied_version is None or version > applied_version or running_this
    if explicit and applied_version is not None and version == applied_version:
        newer = True  # re-applying the running release is allowed (it heals drift)
    return Target(spec.name, spec, tag.target, tag.name, tag, Gate.ok(), tuple(gates.approvals_in(tag.message)),
                  newer_than_applied=newer)


def check_tag(target: Target, evidence: TagEvidence) -> Target:
    """``target`` with the release-tag gates applied to what Git and the store say about its tag."""
    if not target.needs_tag_check:
        return target
    assert target.tag is not None
    facts = gates.TagFacts(
        name=target.tag.name, target=target.tag.target, reachable=evidence.reachable,
        verified_upstream=evidence.verified_upstream, first_seen_target=evidence.first_seen_target,
        signature_ok=evidence.signature_ok, signature_reason=evidence.signature_reason,
        newer_than_applied=target.newer_than_applied,
        upstream_checks_ran=evidence.upstream_checks_ran, upstream_checks_failed=evidence.upstream_checks_failed,
        upstream_synced_since=evidence.upstream_synced_since, now=evidence.now, signed_by=evidence.signed_by,
    )
    return replace(target, gate=gates.check_tag(target.spec, facts), signed_by=evidence.signed_by)
