"""Which environment applies what an instance's environments share (SPEC §10), pure.

Called by ``reconcile.py`` with the promotion order (reconciler.yaml) and the placement of each
environment on a platform instance (``PlatformConfig.placement``). On an instance hosting several
environments, objects that belong to the whole instance — folders, groups, grants on apps and
folders, a resource's type and folder, a configuration variable's description and secret flag —
are applied only by the run of the most protected environment hosted there (the last in promotion
order), under its gates. The other environments' plans show those changes "applied with" it,
neither planned nor failing verification.

Creating a group or a folder is left to any environment: a new one changes nothing another
environment uses, and a less protected environment may need it (a group its resource grants name)
before the owner's next release. Everything else instance-wide waits for the owner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from reconciler.desired.state import DesiredState
from reconciler.desired.validation import app_environments
from reconciler.engine.changes import Change, DriftItem
from reconciler.errors import Problem

# Fields of environment-scoped kinds that are the instance's (Retool keeps one value for all).
INSTANCE_FIELDS = {"resource": frozenset({"type", "folder"}), "config-variable": frozenset({"description", "secret"})}
# Grants on these object types are the instance's; on a resource (its configuration) per environment.
INSTANCE_GRANTS = frozenset({"app", "folder"})


def hosted_with(env: str, order: list[str], placement: Mapping[str, str]) -> list[str]:
    """The environments on ``env``'s instance, in promotion order (``env`` itself included)."""
    instance = placement.get(env)
    return [e for e in order if e == env or (instance is not None and placement.get(e) == instance)]


def owner(env: str, order: list[str], placement: Mapping[str, str]) -> str:
    """The environment that applies what ``env``'s instance shares: the last there in promotion order."""
    return hosted_with(env, order, placement)[-1]


def instance_scoped(item: DriftItem) -> bool:
    """Whether ``item`` changes something the whole instance shares (and is not a harmless create)."""
    if item.kind in ("folder", "group"):
        return item.change != Change.CREATE
    if item.kind == "permission":
        parts = item.name.split("/")
        return len(parts) == 3 and parts[1] in INSTANCE_GRANTS
    fields = INSTANCE_FIELDS.get(item.kind)
    if fields is None or item.change != Change.UPDATE or item.field is None:
        return False
    return item.field.split(".", 1)[0] in fields


def defer_shared(
    items: Iterable[DriftItem], env: str, order: list[str], placement: Mapping[str, str]
) -> list[DriftItem]:
    """``items`` with what ``env``'s instance owner applies marked ``deferred_to`` that owner."""
    applier = owner(env, order, placement)
    if applier == env:
        return list(items)
    return [dataclasses.replace(i, deferred_to=applier) if instance_scoped(i) else i for i in items]


def shared_instance_problems(state: DesiredState, placement: Mapping[str, str]) -> list[Problem]:
    """Per-environment differences in instance-wide objects on a shared instance, with file and line.

    An app, its live release and the grants on it belong to the instance: declaring it for some of
    the environments an instance hosts and not the others cannot be applied.
    """
    order = state.environment_order
    problems: list[Problem] = []
    for app in state.apps.values():
        declared = app_environments(app, order)
        for env in declared:
            together = hosted_with(env, order, placement)
            missing = [e for e in together if e not in declared]
            if missing and env == next(e for e in together if e in declared):
                file, line = state.locations.get(("App", app.name), ("(unknown)", 0))
                problems.append(Problem(file, line or None, (
                    f"App {app.name!r}: environments {', '.join(together)} share instance {placement[env]!r}, where "
                    f"an app is the instance's; declare it for all of them or none (missing: {', '.join(missing)})")))
    return problems
