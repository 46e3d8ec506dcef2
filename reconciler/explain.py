"""``reconciler explain ID``: a drift id, a risk, or a gate explained in plain words (pure).

Accepts what reports print: platform drift ids (``config-variable:SUPPORT_EMAIL:value``), schema
drift ids (``crm:drop-column:public.customers.legacy_notes``), risk names (``lock-risk``) and
gate codes (``moved-tag``). Returns None for something it does not know.
"""

from __future__ import annotations

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

GATES = {
    "moved-tag": (
        "A release tag now points at a different commit than when Reconciler first saw it. Moved tags are never "
        "followed (someone could re-point a reviewed release at unreviewed code). Cut a new tag instead; the "
        "environment stays at its last good revision meanwhile."
    ),
    "unreachable": (
        "The tag's commit is not on the environment's from_branch (for example a tag on an unmerged branch). Merge "
        "the change to that branch and tag the merged commit."
    ),
    "not-promoted": (
        "The desired state of this release (compared by the Git tree id of the desired-state folder) has never "
        "synced and verified — zero drift after apply — in the environment named by promoted_from. Let that "
        "environment reach the same desired state first; the release is applied automatically afterwards."
    ),
    "signature": (
        "The environment requires signed release tags (verify_signatures) and this tag is unsigned, signed by an "
        "untrusted key, or its signature does not verify. Sign the tag with 'git tag -s' using a trusted key."
    ),
    "window": (
        "A deny window is open (for example Friday evening). The new revision waits and is applied automatically "
        "when the window closes; the status shows when."
    ),
    "destructive": RISKS["destructive"],
    "destructive-denied": (
        "The environment sets destructive_changes: deny, so a revision with destructive schema changes is never "
        "applied there. Change the declared schema so the change is additive, or change the policy in Git."
    ),
    "invalid": (
        "The desired state at this revision does not validate. It is never applied; the environment stays at its "
        "last good revision. Run 'reconciler validate' on that revision to see every problem with file and line."
    ),
    "older-tag": (
        "The tag is not newer than the release the environment runs. Tag-tracked environments only move forward; "
        "to roll back, pin the environment at the older release with 'reconciler pin ENV TAG'."
    ),
    "tag-deleted": (
        "The release tag the environment runs was deleted from the repository. Nothing is rolled back: the "
        "environment stays at the revision it runs. Cut a new release tag to move it again."
    ),
    "pinned": "The environment is pinned at a revision; newer revisions are reported, not applied, until unpin.",
    "prerelease": "The tag is a prerelease (e.g. v1.2.0-rc.1) and the environment sets prereleases: false.",
    "not-a-tag": "A tag-tracked environment applies release tags only; pin it to hold it at another revision.",
}

KINDS = {
    "environment": "the environment itself on the platform (its description and colour)",
    "folder": "a folder that groups resources and apps on the platform",
    "resource": "a platform connection (database, REST API, analytics vendor) and its options in this environment",
    "config-variable": "a configuration variable's value in this environment (secret values compared by fingerprint)",
    "group": "a permission group",
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
        return f"Gate '{key}': {GATES[key]}"
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
