"""The pure core: rendering, diffing, plan order, gates, semver — no database, no Git."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reconciler.core import gates
from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.drift import diff_objects
from reconciler.core.objects import PlatformObject
from reconciler.core.plan import build_plan
from reconciler.core.render import render
from reconciler.core.revisions import TagRef, parse_semver, releases
from reconciler.desired.loader import load
from reconciler.desired.models import DenyWindow, Environment
from reconciler.secrets.values import Sensitive
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE


def fake_sensitive(template: str) -> Sensitive:
    return Sensitive(template, "fp:" + template)


@pytest.fixture(scope="module")
def state():  # type: ignore[no-untyped-def]
    return load(DirectoryTree(Path(EXAMPLE)))


def test_render_merges_options_and_resolves_config_references(state) -> None:  # type: ignore[no-untyped-def]
    staging = render(state, "staging", fake_sensitive)
    crm_db = staging.objects[("resource", "crm-db")].fields
    assert crm_db["options"]["host"] == "db-staging.internal"
    assert crm_db["options"]["port"] == 5432
    reference = "${secret:CRM_DB_STAGING_PASSWORD}"
    assert crm_db["options"]["password"] == Sensitive(reference, "fp:" + reference)
    api = render(state, "production", fake_sensitive).objects[("resource", "crm-api")].fields
    assert api["options"]["base_url"] == "https://api.example.com"
    segment = staging.objects[("resource", "segment")].fields
    # A reference to a secret config variable makes the option a secret too.
    assert isinstance(segment["options"]["basic_username"], Sensitive)


def test_render_derives_permissions_from_access(state) -> None:  # type: ignore[no-untyped-def]
    production = render(state, "production", fake_sensitive)
    permissions = {k[1]: v.fields["access"] for k, v in production.objects.items() if k[0] == "permission"}
    assert permissions["support-team/resource/crm-db"] == "use"
    assert permissions["platform-admins/resource/crm-db"] == "edit"
    assert permissions["support-team/app/customer-support-dashboard"] == "use"


def test_diff_reports_field_paths_and_redacts_secrets() -> None:
    def db(host: str, fingerprint: str) -> PlatformObject:
        return PlatformObject("resource", "db", {"options": {"host": host, "password": Sensitive("t", fingerprint)}})

    declared, live = {("resource", "db"): db("a", "1")}, {("resource", "db"): db("b", "2")}
    items = diff_objects(declared, live, prune=False)
    assert [(i.id, i.declared, i.live) for i in items] == [
        ("resource:db:options.host", "a", "b"),
        ("resource:db:options.password", "(secret)", "(secret)"),
    ]


def test_undeclared_objects_are_drift_but_planned_only_with_prune() -> None:
    live = {("group", "old"): PlatformObject("group", "old", {"description": ""})}
    kept = build_plan("staging", "r", diff_objects({}, live, prune=False))
    assert [i.id for i in kept.drift] == ["group:old"] and kept.is_empty()
    pruned = build_plan("staging", "r", diff_objects({}, live, prune=True))
    assert [(s.kind, s.name, s.change) for s in pruned.steps] == [("group", "old", Change.DELETE)]


def test_an_undeclared_object_the_reconciler_does_not_own_is_drift_but_never_pruned() -> None:
    live = {("group", "made-by-hand"): PlatformObject("group", "made-by-hand", {"description": None}, owned=False)}

    plan = build_plan("staging", "r", diff_objects({}, live, prune=True))

    assert [(i.id, i.change, i.pruned) for i in plan.drift] == [("group:made-by-hand", Change.DELETE, False)]
    assert plan.is_empty()


def _item(id_: str, kind: str, phase: Phase, change: Change = Change.CREATE) -> DriftItem:
    return DriftItem(id=id_, kind=kind, name=id_.split(":")[1] if kind != "schema" else "crm", field=None,
                     change=change, declared=None, live=None, phase=phase)


def test_plan_follows_the_apply_order() -> None:
    items = [
        _item("app:a", "app", Phase.APPS),
        _item("crm:drop-column:public.t.c", "schema", Phase.SCHEMA_DESTRUCTIVE, Change.DELETE),
        _item("group:g", "group", Phase.GROUPS),
        _item("config-variable:C", "config-variable", Phase.CONFIG),
        _item("crm:create-table:public.t", "schema", Phase.SCHEMA_ADDITIVE),
        _item("resource:r", "resource", Phase.RESOURCES),
        _item("environment:staging", "environment", Phase.ENVIRONMENTS),
        _item("permission:g/app/a", "permission", Phase.PERMISSIONS),
    ]
    plan = build_plan("staging", "r", items)
    assert [(s.kind, s.phase) for s in plan.steps] == [
        ("environment", Phase.ENVIRONMENTS), ("schema", Phase.SCHEMA_ADDITIVE), ("resource", Phase.RESOURCES),
        ("config-variable", Phase.CONFIG), ("group", Phase.GROUPS), ("permission", Phase.PERMISSIONS),
        ("app", Phase.APPS), ("schema", Phase.SCHEMA_DESTRUCTIVE),
    ]


def test_prune_removes_dependents_first() -> None:
    live = {
        ("folder", "f"): PlatformObject("folder", "f", {}),
        ("resource", "r"): PlatformObject("resource", "r", {}),
        ("app", "a"): PlatformObject("app", "a", {}),
        ("permission", "g/app/a"): PlatformObject("permission", "g/app/a", {}),
    }
    plan = build_plan("staging", "r", diff_objects({}, live, prune=True))
    assert [s.kind for s in plan.steps] == ["app", "permission", "resource", "folder"]


def test_approval_trailers_and_prefix_match() -> None:
    message = ("Release 2.0\n\nSome text.\n\nApprove: crm:drop-column:public.customers.legacy_notes\n"
               "Approve: crm:drop-table:*\n")
    approvals = gates.approvals_in(message)
    assert approvals == ["crm:drop-column:public.customers.legacy_notes", "crm:drop-table:*"]
    assert gates.is_approved("crm:drop-table:public.old", approvals)
    assert gates.is_approved("crm:drop-column:public.customers.legacy_notes", approvals)
    assert not gates.is_approved("crm:drop-column:public.customers.email", approvals)


def _env(**sync: object) -> Environment:
    return Environment.model_validate({"kind": "Environment", "name": "production",
                                       "track": {"tag": "v*", "from_branch": "main", "promoted_from": "staging"},
                                       "sync": sync})


def test_destructive_gate_follows_the_policy() -> None:
    drop = DriftItem("crm:drop-column:public.t.c", "schema", "crm", "public.t.c", Change.DELETE, None, "text",
                     Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE)
    assert gates.check_destructive(_env(destructive_changes="allow"), [drop], []).allowed
    denied = gates.check_destructive(_env(destructive_changes="deny"), [drop], ["crm:*"])
    assert (denied.allowed, denied.code) == (False, "destructive-denied")
    needs = gates.check_destructive(_env(), [drop], [])
    assert (needs.allowed, needs.code) == (False, "destructive")
    assert "Approve: crm:drop-column:public.t.c" in needs.reason
    assert gates.check_destructive(_env(), [drop], ["crm:drop-column:*"]).allowed


def test_tag_gates_in_order() -> None:
    spec = _env()
    base = dict(name="v1.2.0", target="b" * 40, reachable=True, verified_upstream=True, first_seen_target="b" * 40)
    assert gates.check_tag(spec, gates.TagFacts(**base)).allowed  # type: ignore[arg-type]
    moved = gates.check_tag(spec, gates.TagFacts(**{**base, "first_seen_target": "a" * 40}))  # type: ignore[arg-type]
    assert moved.code == "moved-tag" and "moved from aaaaaaaaaaaa to bbbbbbbbbbbb" in moved.reason
    assert gates.check_tag(spec, gates.TagFacts(**{**base, "reachable": False})).code == "unreachable"  # type: ignore[arg-type]
    assert gates.check_tag(spec, gates.TagFacts(**{**base, "verified_upstream": False})).code == "not-promoted"  # type: ignore[arg-type]
    assert gates.check_tag(spec, gates.TagFacts(**{**base, "newer_than_applied": False})).code == "older-tag"  # type: ignore[arg-type]


def test_deny_window_holds_until_it_closes() -> None:
    spec = _env(windows=[{"deny": "0 16 * * FRI", "duration": "64h", "timezone": "Europe/London"}])
    friday_evening = dt.datetime(2026, 11, 27, 17, 0, tzinfo=dt.UTC)
    gate = gates.check_window(spec, friday_evening)
    assert gate.code == "window"
    assert gate.retry_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    assert gates.check_window(spec, dt.datetime(2026, 11, 30, 8, 1, tzinfo=dt.UTC)).allowed


def test_numeric_cron_day_of_week_counts_sunday_as_zero() -> None:
    window = DenyWindow(deny="0 10 * * 0", duration="1h")
    sunday = dt.datetime(2026, 11, 29, 10, 30, tzinfo=dt.UTC)
    assert gates.window_closes_at([window], sunday) == dt.datetime(2026, 11, 29, 11, 0, tzinfo=dt.UTC)
    assert gates.window_closes_at([window], sunday - dt.timedelta(days=1)) is None


def test_semver_order_and_prereleases() -> None:
    assert parse_semver("v1.10.0") > parse_semver("v1.9.9")  # type: ignore[operator]
    assert parse_semver("1.0.0-rc.1") < parse_semver("1.0.0")  # type: ignore[operator]
    assert parse_semver("1.0.0-rc.2") < parse_semver("1.0.0-rc.10")  # type: ignore[operator]
    assert parse_semver("v1.2") is None
    tags = [TagRef(n, n, False, n, "") for n in ("v1.9.0", "v1.10.0", "v2.0.0-rc.1", "release-3", "x1.0.0")]
    assert [r.tag.name for r in releases(tags, "v*", prereleases=False)] == ["v1.10.0", "v1.9.0"]
    assert next(r.tag.name for r in releases(tags, "v*", prereleases=True)) == "v2.0.0-rc.1"
