"""Who applies what a shared platform instance holds (engine/topology.py) — pure, no Retool, no Git."""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.core import topology
from reconciler.core.changes import Change, DriftItem, Phase
from reconciler.core.drift import diff_objects
from reconciler.core.plan import build_plan
from reconciler.core.render import render
from reconciler.desired.loader import load
from reconciler.desired.state import DesiredState
from reconciler.providers.base import PlatformObject
from reconciler.secrets.values import Sensitive
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE

SHARED = {"staging": "retool", "production": "retool"}
SEPARATE = {"staging": "staging", "production": "production"}
APP = "customer-support-dashboard"


def sensitive(template: str) -> Sensitive:
    return Sensitive(template, "fp:" + template)


def example(tmp_path: Path, edits: dict[str, tuple[str, str]] | None = None,
            extra: dict[str, str] | None = None) -> DesiredState:
    root = tmp_path / "desired-state"
    shutil.copytree(EXAMPLE, root)
    for relative, (old, new) in (edits or {}).items():
        path = root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))
    for relative, text in (extra or {}).items():
        (root / relative).write_text(text)
    shutil.rmtree(root / "checks")  # checks are not platform objects; some look at the app in production
    return load(DirectoryTree(root))


def drift(state: DesiredState, env: str, changed: dict[tuple[str, str], PlatformObject] | None = None,
          missing: tuple[tuple[str, str], ...] = ()) -> list[DriftItem]:
    """``env``'s drift against a live state that holds what it declares, ``changed`` and not ``missing``."""
    declared = render(state, env, sensitive).objects
    live = {k: v for k, v in {**declared, **(changed or {})}.items() if k not in missing}
    return diff_objects(declared, live, prune=True)


def live(kind: str, name: str, **fields: object) -> PlatformObject:
    return PlatformObject(kind, name, dict(fields))


def test_the_last_environment_in_promotion_order_owns_a_shared_instance_and_each_owns_its_own() -> None:
    order = ["dev", "staging", "production"]
    assert topology.owner("staging", order, {e: "retool" for e in order}) == "production"
    assert topology.hosted_with("dev", order, {"dev": "a", "staging": "b", "production": "b"}) == ["dev"]
    assert topology.owner("staging", order, {"dev": "a", "staging": "b", "production": "b"}) == "production"
    assert topology.owner("staging", order, {}) == "staging"  # not placed: alone


def test_on_a_shared_instance_staging_defers_instance_wide_changes_to_production(tmp_path: Path) -> None:
    state = example(tmp_path)
    place = topology.sharing(state, "staging", SHARED)
    items = drift(state, "staging", {
        ("resource", "crm-db"): live("resource", "crm-db", **{
            **render(state, "staging", sensitive).objects[("resource", "crm-db")].fields, "folder": "Old"}),
        ("group", "made-by-someone"): live("group", "made-by-someone", description=None),
    }, missing=(("permission", f"support-team/app/{APP}"),))

    deferred = topology.defer_shared(items, place)

    assert sorted((i.id, i.deferred_to) for i in deferred if i.deferred_to) == [
        ("group:made-by-someone", "production"),
        ("permission:support-team/app/customer-support-dashboard", "production"),
        ("resource:crm-db:folder", "production"),
    ]
    plan = build_plan("staging", "rev", deferred)
    assert plan.items == [] and plan.pending == []


def test_the_most_protected_environment_applies_them_itself(tmp_path: Path) -> None:
    state = example(tmp_path)
    items = drift(state, "production", missing=(("permission", f"support-team/app/{APP}"),))

    deferred = topology.defer_shared(items, topology.sharing(state, "production", SHARED))

    assert [(i.id, i.deferred_to) for i in deferred] == [(f"permission:support-team/app/{APP}", None)]
    assert [i.id for i in build_plan("production", "rev", deferred).items] == [f"permission:support-team/app/{APP}"]


def test_per_environment_changes_and_new_groups_are_never_deferred(tmp_path: Path) -> None:
    state = example(tmp_path)
    declared = render(state, "staging", sensitive).objects
    crm_db = declared[("resource", "crm-db")].fields
    items = drift(state, "staging", {
        ("resource", "crm-db"): live("resource", "crm-db", **{**crm_db, "options": {**crm_db["options"], "host": "x"}}),
        ("config-variable", "SUPPORT_EMAIL"): live("config-variable", "SUPPORT_EMAIL", description=(
            declared[("config-variable", "SUPPORT_EMAIL")].fields["description"]), secret=False, value="old"),
    }, missing=(("group", "support-team"), ("permission", "support-team/resource/crm-db")))

    deferred = topology.defer_shared(items, topology.sharing(state, "staging", SHARED))

    assert [i.deferred_to for i in deferred] == [None] * len(deferred)
    assert {i.id for i in deferred} == {"resource:crm-db:options.host", "config-variable:SUPPORT_EMAIL:value",
                                        "group:support-team", "permission:support-team/resource/crm-db"}


def test_with_an_instance_per_environment_nothing_is_deferred(tmp_path: Path) -> None:
    state = example(tmp_path)
    items = drift(state, "staging", missing=(("permission", f"support-team/app/{APP}"),))

    assert topology.defer_shared(items, topology.sharing(state, "staging", SEPARATE)) == items


def test_an_object_only_a_less_protected_environment_declares_is_its_own_to_change_and_never_pruned(
    tmp_path: Path,
) -> None:
    sandbox = ("kind: Resource\nname: sandbox-api\ntype: restapi\nfolder: Sandbox\n"
               "environments:\n  staging: {options: {base_url: https://sandbox.example.com}}\n")
    state = example(tmp_path, extra={"resources/sandbox-api.yaml": sandbox})
    staging_fields = render(state, "staging", sensitive).objects[("resource", "sandbox-api")].fields
    moved = topology.defer_shared(
        drift(state, "staging", {("resource", "sandbox-api"): live("resource", "sandbox-api",
                                                                    **{**staging_fields, "folder": "Old"})}),
        topology.sharing(state, "staging", SHARED))
    production = topology.sharing(state, "production", SHARED)
    pruned = topology.defer_shared(
        drift(state, "production", {("folder", "Sandbox"): live("folder", "Sandbox")}), production)

    assert [(i.id, i.deferred_to) for i in moved] == [("resource:sandbox-api:folder", None)]
    assert production.applier(("folder", "Sandbox")) == "staging"
    assert pruned == []  # staging's folder: not production's to delete


def test_an_undeclared_instance_wide_object_is_pruned_by_the_owner_only() -> None:
    item = DriftItem(id="folder:Hand", kind="folder", name="Hand", field=None, change=Change.DELETE,
                     declared=None, live={}, phase=Phase.PRUNE, pruned=True)
    staging = topology.Sharing("staging", ("staging", "production"), {"staging": frozenset(),
                                                                      "production": frozenset()})
    production = topology.Sharing("production", ("staging", "production"), staging.declared)

    assert [i.deferred_to for i in topology.defer_shared([item], staging)] == ["production"]
    assert [i.deferred_to for i in topology.defer_shared([item], production)] == [None]


def test_an_app_declared_for_part_of_a_shared_instance_is_refused_at_its_environments_line(tmp_path: Path) -> None:
    state = example(tmp_path, edits={
        "apps/customer-support-dashboard.yaml": ("environments: [staging, production]", "environments: [staging]")})

    problems = topology.shared_instance_problems(state, SHARED)

    assert [(p.file, p.line) for p in problems] == [("apps/customer-support-dashboard.yaml", 6)]
    assert "share instance 'retool'" in problems[0].message and "missing: production" in problems[0].message
    assert topology.shared_instance_problems(state, SEPARATE) == []


def test_a_groups_members_and_privileges_and_spaces_are_applied_by_production_only(tmp_path: Path) -> None:
    state = example(tmp_path, edits={"groups.yaml": (
        "description: Support engineers\n",
        "description: Support engineers\nmembers: [ann@example.com]\nprivileges: {universal_app_access: use}\n")},
        extra={"spaces.yaml": "kind: Space\nname: team-a\ndomain: team-a.example.com\n"})
    support = render(state, "staging", sensitive).objects[("group", "support-team")].fields
    items = drift(state, "staging", {("group", "support-team"): live(
        "group", "support-team", **{**support, "members": [], "universal_app_access": "none",
                                    "theme_access": True})}, missing=(("space", "team-a"),))

    staging = topology.defer_shared(items, topology.sharing(state, "staging", SHARED))
    production = topology.defer_shared(items, topology.sharing(state, "production", SHARED))

    # theme_access is not declared: not compared at all.
    assert sorted((i.id, i.deferred_to) for i in staging) == [
        ("group:support-team:members", "production"),
        ("group:support-team:universal_app_access", "production"),
        ("space:team-a", "production"),
    ]
    assert [i.deferred_to for i in production] == [None, None, None]


class CountingPlacement(dict[str, str]):
    """A placement that counts how often it is looked up."""

    lookups = 0

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.lookups += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.lookups += 1
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)


class ManyEnvironments:
    """The parts of a desired state ``shared_instance_problems`` reads: ``count`` environments, 40 apps."""

    def __init__(self, state: DesiredState, count: int, app_envs: list[str] | None = None) -> None:
        self.environment_order = [f"env-{n:04d}" for n in range(count)]
        app = next(iter(state.apps.values()))
        self.apps = {f"app-{n}": app.model_copy(update={"name": f"app-{n}", "environments": app_envs})
                     for n in range(40)}
        self.locations = state.locations
        self.field_lines = state.field_lines


def test_the_shared_instance_check_costs_in_proportion_to_the_environments(tmp_path: Path) -> None:
    """It runs before every plan; 500 environments made it the cost of a whole run (issue 14's scale figure)."""
    state = load(DirectoryTree(EXAMPLE))
    for count in (100, 1000):
        many = ManyEnvironments(state, count)
        placement = CountingPlacement({env: env for env in many.environment_order})  # the registry's: one each

        assert topology.shared_instance_problems(many, placement) == []  # type: ignore[arg-type]
        assert placement.lookups <= 2 * count, f"{placement.lookups} placement lookups for {count} environments"


def test_an_app_missing_from_some_environments_of_a_shared_instance_is_still_refused() -> None:
    state = load(DirectoryTree(EXAMPLE))
    many = ManyEnvironments(state, 6, app_envs=["env-0001", "env-0004"])
    placement = {env: ("a" if env < "env-0003" else "b") for env in many.environment_order}

    problems = topology.shared_instance_problems(many, placement)  # type: ignore[arg-type]

    assert len(problems) == 2 * 40  # per app: instance a misses env-0000 and env-0002, b misses env-0003, env-0005
    assert "environments env-0000, env-0001, env-0002 share instance 'a'" in problems[0].message
    assert "(missing: env-0000, env-0002)" in problems[0].message
