"""The state store's tables as main made them before workspaces (a verbatim copy of
reconciler/store/tables.py at commit a0ae11d, with break glass's ``overrides``), for the migration
tests: a database made with these is what an upgrade finds."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(100), nullable=False),
    Column("revision", String(64)),
    Column("tree_id", String(80)),
    Column("ref", String(255)),
    Column("trigger", String(40), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", String(20), nullable=False),  # Progressing while running
    Column("reason", Text),
    Column("plan", JSON),
    Column("applied", JSON),
    Column("drift_after", Integer),
    Column("owner", String(200)),
    Index("ix_runs_environment_started", "environment", "started_at"),
    Index("ix_runs_environment_tree", "environment", "tree_id", "result"),
)

# Progress of a run, one row per applied change, appended as the run goes (the runs row gets the whole
# list once, when the run finishes): a crash leaves exactly what was applied, at constant cost per step.
run_changes = Table(
    "run_changes", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("item_id", String(400), nullable=False),
)

# Checks run after a run applied (issue 16 phase B), one row per check in the order they ran; the
# result is CheckResult.as_json() (already redacted). Additive: databases made before it gain the table.
run_checks = Table(
    "run_checks", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("environment", String(100), nullable=False),
    Column("tree_id", String(80)),
    Column("name", String(200), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("result", JSON, nullable=False),
    Index("ix_run_checks_environment_tree", "environment", "tree_id"),
)

# What the store knows of each environment. What it tracks and should run is not stored: it is
# computed from Git when read (app/queries.py), so it is never stale. Databases made before that
# still hold the columns tracked_ref, desired_revision and desired_ref; nothing reads them.
environment_status = Table(
    "environment_status", metadata,
    Column("environment", String(100), primary_key=True),
    Column("state", String(20), nullable=False, default="Unknown"),
    Column("reason", Text),
    Column("applied_revision", String(64)),
    Column("applied_ref", String(255)),
    Column("applied_tree_id", String(80)),
    Column("drift_count", Integer),
    Column("last_run_id", String(32)),
    Column("last_checked_at", DateTime(timezone=True)),
    Column("pinned_revision", String(64)),
    Column("updated_at", DateTime(timezone=True)),
)

# Deny windows overridden by break glass (issue 17): one row per run that did, with who and why.
# Additive: databases made before it gain the table.
overrides = Table(
    "overrides", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("environment", String(100), nullable=False),
    Column("gate", String(40), nullable=False),
    Column("who", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tags_seen = Table(
    "tags_seen", metadata,
    Column("name", String(255), primary_key=True),
    Column("target", String(64), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

drift_seen = Table(
    "drift_seen", metadata,
    Column("environment", String(100), primary_key=True),
    Column("item_id", String(400), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("item", JSON, nullable=False),
)

fingerprints = Table(
    "fingerprints", metadata,
    Column("provider", String(40), primary_key=True),
    Column("scope", String(400), primary_key=True),
    Column("fingerprint", Text, nullable=False),
)

# App releases a platform provider made (Retool Source Control), so that every later environment runs
# the same release: one row per (repository, app, what was released), written by the run that made it.
releases = Table(
    "releases", metadata,
    Column("repository", String(400), primary_key=True),
    Column("app", String(200), primary_key=True),
    Column("key", String(120), primary_key=True),  # the app's source hash, or commit:<revision>
    Column("version", String(40), nullable=False),
    Column("label", String(255), nullable=False),
    Column("revision", String(64), nullable=False),
    Column("environment", String(100), nullable=False),
    Column("branch", String(255)),
    Column("commit_sha", String(64)),
    Column("merged", Boolean, nullable=False, default=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_releases_version", "repository", "app", "version"),
)

leases = Table(
    "leases", metadata,
    Column("environment", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# A value one replica posts for the others to see (``Leases.post``): the leader's "the source moved".
signals = Table(
    "signals", metadata,
    Column("name", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

events = Table(
    "events", metadata,
    Column("key", String(400), primary_key=True),  # notification dedup key
    Column("created_at", DateTime(timezone=True), nullable=False),
)
