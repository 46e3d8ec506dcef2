"""``reconciler explain ID``: a drift id, a risk, a gate, a state or a run result in plain words (pure).

Accepts what reports print: platform drift ids (``config-variable:SUPPORT_EMAIL:value``), schema
drift ids (``crm:drop-column:public.customers.legacy_notes``), risk names (``lock-risk``), gate
codes (``moved-tag``), environment states (``OutOfSync``) and run results (``NoChanges``). Returns
None for something it does not know. ``GATES``, ``STATES`` and ``RESULTS`` are keyed by the core's
enums; tests/test_explain_init.py requires an entry for every member.
"""

from __future__ import annotations

from reconciler.core.gates import GateCode
from reconciler.core.outcome import EnvState, RunResult

RISKS = {
    "safe": "Applying it cannot lose data and takes no long lock. It runs without approval.",
    "destructive": (
        "Applying it can lose data: a dropped table, column, type or function, a narrowing type change, a removed "
        "enum value. It follows the environment's destructive_changes policy: 'allow' applies it, 'deny' refuses "
        "the revision, 'require-approval' needs 'Approve: <id>' in the annotated release tag (or --approve on the "
        "command line). Until then the whole revision is Blocked and nothing is applied."
    ),
    "lock-risk": (
        "Applying it may hold a lock that blocks reads or writes on a busy table for a long time: CREATE INDEX "
        "without CONCURRENTLY, SET NOT NULL (a full scan under an exclusive lock), a volatile default or a type "
        "change that rewrites the table, a foreign key or CHECK validated in one step. Reconciler runs schema "
        "changes with lock_timeout and statement_timeout and retries on lock timeouts; where a safer form exists "
        "(CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID then VALIDATE) it uses it. Prefer quiet hours."
    ),
    "data-dependent": (
        "Whether it succeeds depends on the rows already there: a UNIQUE constraint fails on duplicates, NOT NULL on "
        "nulls, a CHECK on rows that break it. Clean the data first (or add the constraint NOT VALID and fix the "
        "rows before validating). A failure rolls the whole schema transaction back."
    ),
}

GATES: dict[GateCode, str] = {
    GateCode.MOVED_TAG: (
        "A release tag now points at a different commit than when Reconciler first saw it. Moved tags are never "
        "followed (someone could re-point a reviewed release at unreviewed code). Cut a new tag instead; the "
        "environment stays at its last good revision meanwhile."
    ),
    GateCode.UNREACHABLE: (
        "The tag's commit is not on the environment's from_branch (for example a tag on an unmerged branch). Merge "
        "the change to that branch and tag the merged commit."
    ),
    GateCode.NOT_PROMOTED: (
        "The desired state of this release (compared by the Git tree id of the desired-state folder) has never "
        "synced and verified — zero drift after apply — in the environment named by promoted_from. Let that "
        "environment reach the same desired state first; the release is applied automatically afterwards."
    ),
    GateCode.CHECKS_UPSTREAM: (
        "The environment named by promoted_from runs checks (sync.run_checks), and the last time they ran on this "
        "release's desired state (same Git tree id) one of them failed, or they have not run there yet. Fix what "
        "the named check found and release again; once the earlier environment passes its checks on the same "
        "desired state the release is promoted automatically."
    ),
    GateCode.SOAKING: (
        "The environment's track sets soak (e.g. 30m): a release is promoted only once its desired state has "
        "stayed Synced, with passing checks, in the promoted_from environment that long. The status says until "
        "when; the daemon promotes it then, as when a deny window closes. A failed run there restarts the soak."
    ),
    GateCode.SIGNATURE: (
        "The environment requires signed release tags (verify_signatures) and this tag is unsigned, signed by an "
        "untrusted key, or its signature does not verify. Sign the tag with 'git tag -s' using a trusted key."
    ),
    GateCode.SIGNER: (
        "Only the keys in the environment's allowed_signers may release it, and this release tag is unsigned, "
        "its signature does not verify, or it is signed by a key not allowed to release the environment (the "
        "refusal names that key: a GPG fingerprint or an SSH SHA256 fingerprint). Sign the tag ('git tag -s') "
        "with an allowed key, or add the key to allowed_signers on the control branch. Nothing was applied."
    ),
    GateCode.APPROVER: (
        "The release tag approves a destructive change ('Approve: <drift id>'), but the database (or the "
        "environment) sets approvers and the tag is not signed by one of them; the refusal names the signer. "
        "An approver signs the release tag ('git tag -s') with their key, or approves with --approve. Nothing "
        "was applied."
    ),
    GateCode.WINDOW: (
        "A deny window is open (for example Friday evening). The new revision waits and is applied automatically "
        "when the window closes; the status shows when. In an emergency the window (and only the window) can be "
        "overridden: 'reconciler apply ENV --break-glass \"REASON\"', or POST /api/v1/environments/ENV/break-glass "
        "with {\"reason\": ...} and an admin-scope token. Signatures, release-tag and promotion gates, approvals and "
        "pins still hold. The run records who and why (history, the run's break_glass field) and a 'break-glass' "
        "notification is sent."
    ),
    GateCode.DESTRUCTIVE: RISKS["destructive"],
    GateCode.DESTRUCTIVE_DENIED: (
        "The environment sets destructive_changes: deny, so a revision with destructive schema changes is never "
        "applied there. Change the declared schema so the change is additive, or change the policy in Git."
    ),
    GateCode.INVALID: (
        "The desired state at this revision does not validate. It is never applied; the environment stays at its "
        "last good revision. Run 'reconciler validate' on that revision to see every problem with file and line."
    ),
    GateCode.OLDER_TAG: (
        "The tag is not newer than the release the environment runs. Tag-tracked environments only move forward; "
        "to roll back, pin the environment at the older release with 'reconciler pin ENV TAG'."
    ),
    GateCode.TAG_DELETED: (
        "The release tag the environment runs was deleted from the repository. Nothing is rolled back: the "
        "environment stays at the revision it runs. Cut a new release tag to move it again."
    ),
    GateCode.PINNED: (
        "The environment is pinned at a revision; newer revisions are reported, not applied, until unpin."
    ),
    GateCode.PRERELEASE: "The tag is a prerelease (e.g. v1.2.0-rc.1) and the environment sets prereleases: false.",
    GateCode.NOT_A_TAG: (
        "A tag-tracked environment applies release tags only; pin it to hold it at another revision."
    ),
    GateCode.NO_RELEASE: (
        "The environment tracks release tags (track.tag, for example 'v*') and no tag in the repository matches "
        "that pattern yet. Nothing is applied and nothing is rolled back. Tag a commit that passed the upstream "
        "environment, for example 'git tag -a v1.0.0 -m \"Release 1.0.0\"', and push the tag."
    ),
    GateCode.NOT_A_RELEASE: (
        "The tag matches the environment's tag pattern but its name carries no semantic version (MAJOR.MINOR.PATCH, "
        "for example v1.2.0 or v1.2.0-rc.1), so it cannot be ordered against other releases and is never applied. "
        "Name release tags with a version; delete or ignore the odd tag."
    ),
}

STATES: dict[EnvState, str] = {
    EnvState.SYNCED: "Live state matches the applied revision: the last run or drift check found no drift.",
    EnvState.OUT_OF_SYNC: (
        "Live state differs from Git: drift was found (someone changed the platform by hand, or a change waits "
        "for 'reconciler apply' because automatic sync is off). 'reconciler drift ENV' lists what differs; "
        "environments with self_heal put Git's values back on their own."
    ),
    EnvState.PROGRESSING: "A run is applying changes to the environment now; its result replaces this state.",
    EnvState.BLOCKED: (
        "A gate refused the newest revision; the environment stays at the revision it runs. The reason names the "
        "gate ('reconciler explain GATE' says what to do); 'reconciler history ENV' shows the refusal."
    ),
    EnvState.FAILED: (
        "The last run failed; the reason names the error and 'reconciler history ENV' the changes that were "
        "applied before it. The daemon retries with backoff (daemon.retry_delays) and on every new revision."
    ),
    EnvState.UNKNOWN: (
        "Not checked yet, or a run was interrupted (the process stopped during it): the next run or drift check "
        "plans again from live state and sets the state."
    ),
}

RESULTS: dict[RunResult, str] = {
    RunResult.SUCCEEDED: "The run applied its changes and live state verified with zero drift afterwards.",
    RunResult.NO_CHANGES: "The run found live state already matching the revision; nothing was applied.",
    RunResult.FAILED: (
        "The run ended with an error, or changes still differed after applying. The record lists what was "
        "applied before it stopped; the next run plans again from live state."
    ),
    RunResult.BLOCKED: (
        "A gate refused the revision before anything was applied; the record names the gate and the reason."
    ),
    RunResult.INTERRUPTED: (
        "The process stopped during the run (shutdown, crash). The record lists the changes applied before it "
        "stopped; the next run plans again from live state and applies the rest."
    ),
    RunResult.BUSY: (
        "Another run held the environment (one run per environment across processes); nothing was done or "
        "recorded. Try again shortly; the daemon does so on its own."
    ),
    RunResult.PROGRESSING: "The run is applying changes now; its record is completed when it ends.",
    RunResult.WAITING: (
        "The platform took a change as a proposal, not yet in effect: with Retool's merge = \"pull-request\" the "
        "release manifest was pushed as a branch of the Source Control repository and waits for someone to merge "
        "it. Not a failure: the environment shows Progressing \"waiting for merge of BRANCH\", and the run after "
        "the merge is seen on a fetch deploys it. Merge the branch (or set merge = \"direct\" to let Reconciler "
        "merge it)."
    ),
}

KINDS = {
    "environment": "the environment itself on the platform (its description and colour)",
    "folder": "a folder that groups resources and apps on the platform",
    "resource": "a platform connection (database, REST API, analytics vendor) and its options in this environment",
    "config-variable": "a configuration variable's value in this environment (secret values compared by fingerprint)",
    "group": "a permission group: its members (by email) and privileges (universal access, unpublished releases, "
    "usage analytics, ...) when declared",
    "space": "a Retool Space (an isolated organisation on the instance) created from the admin Space",
    "permission": "a group's access (use or edit) to a resource's configuration in this environment or to an app",
    "app": "an app deployed to this environment (compared by the hash of its source folder)",
}

SCHEMA_ACTIONS = {
    "create-table": "creates a table that the declared schema has and the live database lacks",
    "drop-table": "drops a table that exists live but is not declared — its rows are lost",
    "add-column": "adds a column",
    "drop-column": "drops a column that exists live but is not declared — its values are lost",
    "alter-column-type": "changes a column's type; narrowing types can lose data, many changes rewrite the table",
    "set-not-null": "adds NOT NULL to a column (a full scan under an exclusive lock; fails on existing nulls)",
    "drop-not-null": "allows nulls in a column",
    "set-default": "sets a column default (a volatile default on an existing table may rewrite it)",
    "drop-default": "removes a column default (harmless for existing rows)",
    "create-index": "creates an index (CONCURRENTLY outside the transaction when the table already exists)",
    "drop-index": "drops an index (queries may slow down)",
    "add-constraint": "adds a constraint (foreign keys and CHECKs are added NOT VALID, then validated)",
    "drop-constraint": "drops a constraint",
    "validate-constraint": "validates a constraint added NOT VALID (scans rows without blocking writes)",
    "create-view": "creates or replaces a view",
    "drop-view": "drops a view (often only to recreate it after a change it depends on)",
    "create-materialized-view": "creates a materialized view",
    "create-function": "creates or replaces a function",
    "drop-function": "drops a function",
    "create-type": "creates a type (for example an enum)",
    "drop-type": "drops a type",
    "add-enum-value": "adds a value to an enum (ALTER TYPE ... ADD VALUE)",
    "drop-enum-value": "removes a value from an enum — rows holding it would break, so it is destructive",
    "create-extension": "installs an extension",
    "create-sequence": "creates a sequence",
    "create-trigger": "creates a trigger",
    "create-policy": "creates a row-level security policy",
    "enable-rls": "enables row-level security on a table",
    "grant": "grants privileges",
    "revoke": "revokes privileges",
    "comment": "sets a comment",
}


VERBS = {"create": "creates", "drop": "drops", "alter": "changes", "add": "adds", "set": "sets",
         "rename": "renames", "attach": "attaches", "detach": "detaches", "enable": "enables",
         "disable": "disables", "force": "forces", "no": "stops forcing"}


def _generic(action: str) -> str | None:
    verb, _, noun = action.partition("-")
    if verb not in VERBS or not noun:
        return None
    return f"{VERBS[verb]} a {noun.replace('-', ' ')}"


def explain(text: str) -> str | None:
    key = text.strip()
    if key in RISKS:
        return f"Risk '{key}': {RISKS[key]}"
    if key in GATES:
        return f"Gate '{key}': {GATES[GateCode(key)]}"
    named = _state_or_result(key)
    if named is not None:
        return named
    parts = key.split(":")
    if parts[0] in KINDS and len(parts) >= 2:
        kind, name = parts[0], parts[1]
        field = ":".join(parts[2:]) or None
        what = f"'{key}' is {KINDS[kind]} — {kind} {name!r}"
        if field:
            what += f", field {field}"
        return (f"{what}.\nIt differs between Git and the platform. If the platform was edited by hand, "
                "'reconciler apply ENV' puts Git's value back (environments with self_heal do it on their own). "
                "If the platform is right, change the value in Git. An object that exists live but is not "
                "declared is deleted only when the environment sets prune: true.")
    if len(parts) >= 3:
        database, action, obj = parts[0], parts[1], ":".join(parts[2:])
        meaning = SCHEMA_ACTIONS.get(action) or _generic(action)
        if meaning is None:
            return None
        text_out = f"'{key}' is a schema change in database {database!r}: it {meaning}. Object: {obj}."
        if action.startswith("drop") or action in ("alter-column-type", "drop-enum-value"):
            text_out += f"\n{RISKS['destructive']}\nTo approve it: 'Approve: {key}' in the release tag message."
        return text_out
    return None


def _state_or_result(key: str) -> str | None:
    """An environment state and/or a run result (``Failed`` is both), matched without regard to case."""
    folded = key.casefold().replace("-", "").replace("_", "")
    found = []
    for state in EnvState:
        if state.value.casefold() == folded:
            found.append(f"Environment state '{state.value}': {STATES[state]}")
    for result in RunResult:
        if result.value.casefold() == folded:
            found.append(f"Run result '{result.value}': {RESULTS[result]}")
    return "\n".join(found) or None
