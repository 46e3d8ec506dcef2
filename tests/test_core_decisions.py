"""The core's decisions as tables of facts → decision: target selection and gates (issue 11).

Pure: plain values in, a ``Target`` or ``Gate`` out — no Git repository, no database, no clock
but the instants written here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconciler.core import gates, targets
from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.gates import GateCode
from reconciler.core.revisions import TagRef
from reconciler.core.targets import Requested, Running, TagEvidence
from reconciler.desired.models import Environment

A, B, C, D, E = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40)


def env(track: dict[str, Any], **sync: Any) -> Environment:
    return Environment.model_validate({"kind": "Environment", "name": "production", "track": track, "sync": sync})


def tag(name: str, target: str, message: str = "") -> TagRef:
    return TagRef(name=name, target=target, annotated=bool(message), object_id=target, message=message)


BRANCH = env({"branch": "main"})
RELEASES = env({"tag": "v*"})
WITH_RC = env({"tag": "v*", "prereleases": True})
TAGS = [tag("v1.0.0", A), tag("v1.1.0", B), tag("v1.2.0-rc.1", C), tag("nightly", D)]


# -- which revision: core.targets.select ---------------------------------------------------------------

# (case, spec, running, head, tags, requested) → (revision, ref, gate code or None, pinned, newer_available)
SELECT = [
    ("a branch runs its head", BRANCH, Running(), A, [], None, (A, "main", None, False, None)),
    ("a branch moves to a new head", BRANCH, Running(A, "main"), B, [], None, (B, "main", None, False, None)),
    ("--rev at the head keeps the branch name", BRANCH, Running(), B, [], Requested("HEAD", B),
     (B, "main", None, False, None)),
    ("--rev elsewhere is named as given", BRANCH, Running(), B, [], Requested("fix", C), (C, "fix", None, False, None)),
    ("--rev at what runs keeps its name", BRANCH, Running(A, "main"), B, [], Requested(A[:8], A),
     (A, "main", None, False, None)),
    ("a pin holds a branch back", BRANCH, Running(A, "main", A), B, [], None,
     (A, f"pinned@{A[:12]}", None, True, B)),
    ("a pin at the head holds nothing back", BRANCH, Running(A, "main", A), A, [], None,
     (A, f"pinned@{A[:12]}", None, True, None)),
    ("the highest release wins", RELEASES, Running(), None, TAGS, None, (B, "v1.1.0", None, False, None)),
    ("prereleases count when asked for", WITH_RC, Running(), None, TAGS, None,
     (C, "v1.2.0-rc.1", None, False, None)),
    ("no matching tag is no release", RELEASES, Running(), None, [tag("nightly", D)], None,
     (None, None, GateCode.NO_RELEASE, False, None)),
    ("no release keeps what runs", RELEASES, Running(A, "v1.0.0"), None, [], None,
     (A, "v1.0.0", GateCode.TAG_DELETED, False, None)),
    ("the running tag deleted, nothing newer", RELEASES, Running(B, "v1.1.0"), None, [tag("v1.0.0", A)], None,
     (B, "v1.1.0", GateCode.TAG_DELETED, False, None)),
    ("the running tag deleted, a newer one cut", RELEASES, Running(A, "v1.0.0"), None, [tag("v1.1.0", B)], None,
     (B, "v1.1.0", None, False, None)),
    ("--rev that is not a tag", RELEASES, Running(), None, TAGS, Requested("main", E),
     (E, "main", GateCode.NOT_A_TAG, False, None)),
    ("--rev a tag outside the versions", RELEASES, Running(), None, [*TAGS, tag("vNext", E)], Requested("vNext", E),
     (E, "vNext", GateCode.NOT_A_RELEASE, False, None)),
    ("--rev a prerelease, prereleases off", RELEASES, Running(), None, TAGS, Requested("v1.2.0-rc.1", C),
     (C, "v1.2.0-rc.1", GateCode.PRERELEASE, False, None)),
    ("--rev an older release", RELEASES, Running(B, "v1.1.0"), None, TAGS, Requested("v1.0.0", A),
     (A, "v1.0.0", None, False, None)),
    ("a pin holds a release back", RELEASES, Running(A, "v1.0.0", A), None, TAGS, None,
     (A, "v1.0.0", None, True, B)),
    ("a pin back to an older release is named by its tag", RELEASES, Running(B, "v1.1.0", A), None, TAGS, None,
     (A, "v1.0.0", None, True, B)),
    ("a pinned release with an rc at the same commit is named by the release", RELEASES, Running(B, "v1.1.0", A),
     None, [*TAGS, tag("v1.0.0-rc.2", A)], None, (A, "v1.0.0", None, True, B)),
    ("a pin at a commit no tag names shows its short id", RELEASES, Running(B, "v1.1.0", E), None, TAGS, None,
     (E, f"pinned@{E[:12]}", None, True, B)),
    ("a pinned branch at a tagged commit is named by the tag", BRANCH, Running(B, "main", A), B, TAGS, None,
     (A, "v1.0.0", None, True, B)),
]


@pytest.mark.parametrize(("spec", "running", "head", "tags", "requested", "expected"),
                         [case[1:] for case in SELECT], ids=[case[0] for case in SELECT])
def test_target_selection(spec: Environment, running: Running, head: str | None, tags: list[TagRef],
                          requested: Requested | None, expected: tuple[Any, ...]) -> None:
    target = targets.select(spec, running, head=head, tags=tags, requested=requested)
    assert (target.revision, target.ref, target.gate.code, target.pinned, target.newer_available) == expected
    assert target.gate.allowed == (expected[2] is None)


# (case, running, tag chosen, evidence) → whether the tag is newer than what runs, and the gate
TAG_CHECKS = [
    ("nothing applied yet", Running(), "v1.1.0", TagEvidence(), True, None),
    ("newer than what runs", Running(A, "v1.0.0"), "v1.1.0", TagEvidence(), True, None),
    ("older than what runs", Running(B, "v1.1.0"), "v1.0.0", TagEvidence(), False, GateCode.OLDER_TAG),
    ("the release that runs, again", Running(B, "v1.1.0"), "v1.1.0", TagEvidence(), True, None),
    ("moved since first seen", Running(), "v1.1.0", TagEvidence(first_seen_target=A), True, GateCode.MOVED_TAG),
    ("first seen where it points", Running(), "v1.1.0", TagEvidence(first_seen_target=B), True, None),
]


@pytest.mark.parametrize(("running", "name", "evidence", "newer", "code"), [case[1:] for case in TAG_CHECKS],
                         ids=[case[0] for case in TAG_CHECKS])
def test_the_chosen_release_tag_against_its_evidence(running: Running, name: str, evidence: TagEvidence, newer: bool,
                                                     code: GateCode | None) -> None:
    # Without --rev the highest release is chosen; with it (as 'reconciler apply --rev' does) the named one.
    chosen = targets.select(RELEASES, running, tags=TAGS, requested=Requested(name, {"v1.0.0": A, "v1.1.0": B}[name])
                            if name != "v1.1.0" else None)
    assert chosen.newer_than_applied is newer
    checked = targets.check_tag(chosen, evidence)
    assert checked.gate.code == code


# -- the release-tag gates: core.gates.check_tag ------------------------------------------------------------

GUARDED = env({"tag": "v*", "from_branch": "main", "promoted_from": "staging"})
GOOD: dict[str, Any] = {"name": "v1.2.0", "target": B, "reachable": True, "verified_upstream": True,
                        "first_seen_target": B, "signature_ok": None, "newer_than_applied": True}

# The first refusal in order wins: moved, older, unreachable, not promoted, signature.
TAG_GATES = [
    ("every fact good", {}, None),
    ("never seen before", {"first_seen_target": None}, None),
    ("moved", {"first_seen_target": A}, GateCode.MOVED_TAG),
    ("moved and unreachable: moved first", {"first_seen_target": A, "reachable": False}, GateCode.MOVED_TAG),
    ("older", {"newer_than_applied": False}, GateCode.OLDER_TAG),
    ("older and unreachable: older first", {"newer_than_applied": False, "reachable": False}, GateCode.OLDER_TAG),
    ("unreachable", {"reachable": False}, GateCode.UNREACHABLE),
    ("unreachable and not promoted: unreachable first", {"reachable": False, "verified_upstream": False},
     GateCode.UNREACHABLE),
    ("not promoted", {"verified_upstream": False}, GateCode.NOT_PROMOTED),
    ("a check failed upstream", {"upstream_checks_ran": True, "upstream_checks_failed": ("crm",)},
     GateCode.CHECKS_UPSTREAM),
    ("a check failed upstream and not promoted: the check first",
     {"verified_upstream": False, "upstream_checks_ran": True, "upstream_checks_failed": ("crm",)},
     GateCode.CHECKS_UPSTREAM),
    ("checks never ran upstream", {"upstream_checks_ran": False}, GateCode.CHECKS_UPSTREAM),
    ("checks passed upstream", {"upstream_checks_ran": True}, None),
    ("bad signature", {"signature_ok": False, "signature_reason": "unsigned"}, GateCode.SIGNATURE),
    ("good signature", {"signature_ok": True}, None),
]


@pytest.mark.parametrize(("facts", "code"), [case[1:] for case in TAG_GATES], ids=[case[0] for case in TAG_GATES])
def test_release_tag_gates(facts: dict[str, Any], code: GateCode | None) -> None:
    gate = gates.check_tag(GUARDED, gates.TagFacts(**{**GOOD, **facts}))
    assert (gate.allowed, gate.code) == (code is None, code)


def test_unset_reachability_and_promotion_facts_refuse_nothing() -> None:
    """An environment without from_branch or promoted_from gives None for those facts: no refusal."""
    gate = gates.check_tag(RELEASES, gates.TagFacts(**{**GOOD, "reachable": None, "verified_upstream": None}))
    assert gate.allowed


# -- the plan's gates: destructive changes, deny windows, pins, validity ------------------------------------

DROP = DriftItem("crm:drop-column:public.t.c", "schema", "crm", "public.t.c", Change.DELETE, None, "text",
                 Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE)

DESTRUCTIVE = [
    ("nothing destructive", "deny", [], [], None),
    ("allowed by policy", "allow", [DROP], [], None),
    ("denied by policy, approvals or not", "deny", [DROP], ["crm:*"], GateCode.DESTRUCTIVE_DENIED),
    ("needs approval", "require-approval", [DROP], [], GateCode.DESTRUCTIVE),
    ("approved by id", "require-approval", [DROP], ["crm:drop-column:public.t.c"], None),
    ("approved by prefix", "require-approval", [DROP], ["crm:drop-column:*"], None),
    ("approved by glob", "require-approval", [DROP], ["crm:drop-column:public.?.c"], None),
    ("another id approved", "require-approval", [DROP], ["crm:drop-table:public.t"], GateCode.DESTRUCTIVE),
]


@pytest.mark.parametrize(("policy", "items", "approvals", "code"), [case[1:] for case in DESTRUCTIVE],
                         ids=[case[0] for case in DESTRUCTIVE])
def test_destructive_gate(policy: str, items: list[DriftItem], approvals: list[str], code: GateCode | None) -> None:
    gate = gates.check_destructive(env({"tag": "v*"}, destructive_changes=policy), items, approvals)
    assert (gate.allowed, gate.code) == (code is None, code)


FRIDAY_EVENING = {"deny": "0 16 * * FRI", "duration": "64h", "timezone": "Europe/London"}
UTC = dt.UTC

WINDOWS = [
    ("no window", [], dt.datetime(2026, 12, 4, 17, 0, tzinfo=UTC), None),
    ("just before it opens", [FRIDAY_EVENING], dt.datetime(2026, 12, 4, 15, 59, tzinfo=UTC), None),
    ("as it opens", [FRIDAY_EVENING], dt.datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
     dt.datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
    ("saturday noon", [FRIDAY_EVENING], dt.datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
     dt.datetime(2026, 12, 7, 8, 0, tzinfo=UTC)),
    ("as it closes", [FRIDAY_EVENING], dt.datetime(2026, 12, 7, 8, 0, tzinfo=UTC), None),
    ("overlapping windows: the later close", [FRIDAY_EVENING, {"deny": "0 0 * * MON", "duration": "12h",
                                                               "timezone": "UTC"}],
     dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC), dt.datetime(2026, 12, 7, 12, 0, tzinfo=UTC)),
]


@pytest.mark.parametrize(("windows", "now", "closes"), [case[1:] for case in WINDOWS],
                         ids=[case[0] for case in WINDOWS])
def test_deny_window_gate(windows: list[dict[str, str]], now: dt.datetime, closes: dt.datetime | None) -> None:
    gate = gates.check_window(env({"tag": "v*"}, windows=windows), now)
    assert gate.retry_at == closes
    assert (gate.allowed, gate.code) == (closes is None, None if closes is None else GateCode.WINDOW)


PINS = [
    ("not pinned", None, B, None),
    ("pinned, nothing asked", A, None, None),
    ("pinned, the pin asked for", A, A, None),
    ("pinned, another revision asked for", A, B, GateCode.PINNED),
]


@pytest.mark.parametrize(("pinned", "requested", "code"), [case[1:] for case in PINS], ids=[case[0] for case in PINS])
def test_pin_gate(pinned: str | None, requested: str | None, code: GateCode | None) -> None:
    gate = gates.check_pin("production", pinned, requested)
    assert (gate.allowed, gate.code) == (code is None, code)


def test_an_invalid_desired_state_is_refused_with_its_problems() -> None:
    problem = "apps/crm.yaml:3: unknown field 'colour'"
    gate = gates.invalid(problem)
    assert (gate.allowed, gate.code, gate.reason) == (False, GateCode.INVALID, problem)


def test_soak_waits_until_the_release_has_stayed_synced_upstream_long_enough() -> None:
    since = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    waiting = gates.check_soak("staging", 1800, since, since + dt.timedelta(minutes=29))
    assert (waiting.code, waiting.retry_at) == (GateCode.SOAKING, since + dt.timedelta(minutes=30))
    assert "soaking in staging until 10:30 UTC" in waiting.reason
    assert gates.check_soak("staging", 1800, since, since + dt.timedelta(minutes=30)).allowed
    assert gates.check_soak("staging", 1800, None, since).allowed  # never synced: NOT_PROMOTED says so
