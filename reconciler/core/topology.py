"""Which environment applies what an instance's environments share (SPEC §10), pure.

Called by ``app/reconcile.py`` with the desired state, the promotion order (reconciler.yaml) and the
placement of each environment on a platform instance (``PlatformConfig.placement``); by
``cli.validate`` for the per-environment differences a shared instance cannot hold.

On an instance hosting several environments, objects that belong to the whole instance — folders,
groups (with their members and privileges), Spaces, grants on apps and folders, a resource's type
and folder, a configuration variable's description and secret flag — are applied by one environment
only: the most protected one hosted there (the last in promotion order) that declares the object.
For almost everything that is the last environment on the instance; an object only less protected
environments declare (a resource that exists only in staging) is theirs. The other environments'
plans show those changes "applied with" the applier, neither planned nor failing verification; an
instance-wide object another environment there declares is never deleted (pruned) by one that does
not.

Creating a group (bare: without members or privileges) or a folder is left to any environment: a
new one changes nothing another environment uses, and a less protected environment may need it (a
group its resource grants name) before the owner's next release. Everything else instance-wide waits for its applier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from reconciler.core.changes import Change, DriftItem
from reconciler.core.objects import ObjectKey
from reconciler.core.render import render
from reconciler.desired.models import app_environments
from reconciler.desired.state import DesiredState
from reconciler.errors import Problem
from reconciler.secrets.values import Sensitive

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


def instance_object(kind: str, name: str) -> bool:
    """Whether the object itself (not only some of its fields) is the instance's."""
    if kind in ("folder", "group", "space"):
        return True
    if kind == "permission":
        parts = name.split("/")
        return len(parts) == 3 and parts[1] in INSTANCE_GRANTS
    return False


def instance_scoped(item: DriftItem) -> bool:
    """Whether ``item`` changes something the whole instance shares (and is not a harmless create).

    Creating a group is harmless only bare: its members and privileges are the owner's to apply (a
    provider told it is not the owner creates the group without them, see ``ApplyContext.owner``).
    """
    if item.kind in ("folder", "group"):
        return item.change != Change.CREATE
    if instance_object(item.kind, item.name):
        return True
    fields = INSTANCE_FIELDS.get(item.kind)
    if fields is None or item.change != Change.UPDATE or item.field is None:
        return False
    return item.field.split(".", 1)[0] in fields


def _placeholder(template: str) -> Sensitive:
    return Sensitive(template, "")  # which objects are declared needs no secret value


@dataclasses.dataclass(frozen=True)
class Sharing:
    """What ``environment`` shares with the other environments on its instance, and who applies it."""

    environment: str
    hosted: tuple[str, ...]  # the environments on the instance, in promotion order
    declared: Mapping[str, frozenset[ObjectKey]] = dataclasses.field(default_factory=dict)

    @property
    def owner(self) -> str:
        """The last environment on the instance: it publishes the instance's apps."""
        return self.hosted[-1]

    @property
    def shared(self) -> bool:
        return len(self.hosted) > 1

    def applier(self, key: ObjectKey) -> str:
        """The environment that applies the instance-wide part of ``key``: the last there declaring it."""
        declaring = [e for e in self.hosted if key in self.declared.get(e, frozenset())]
        return declaring[-1] if declaring else self.owner

    def applies(self, key: ObjectKey) -> bool:
        """Whether this environment's run writes the instance-wide part of ``key``."""
        return not self.shared or self.applier(key) == self.environment


def sharing(state: DesiredState, env: str, placement: Mapping[str, str]) -> Sharing:
    """``env``'s place on its instance, with the objects each environment hosted there declares."""
    hosted = tuple(hosted_with(env, state.environment_order, placement))
    if len(hosted) == 1:
        return Sharing(env, hosted)
    declared = {e: frozenset(render(state, e, _placeholder).objects) for e in hosted}
    return Sharing(env, hosted, declared)


def defer_shared(items: Iterable[DriftItem], place: Sharing) -> list[DriftItem]:
    """``items`` as ``place.environment`` is responsible for them.

    An instance-wide change another environment applies is marked ``deferred_to`` it; the deletion
    of an instance-wide object another environment on the instance declares is not drift here at
    all (it is that environment's object, and no one deletes it).
    """
    if not place.shared:
        return list(items)
    out: list[DriftItem] = []
    for item in items:
        key = (item.kind, item.name)
        if item.kind != "schema" and instance_scoped(item) and not place.applies(key):
            if item.change == Change.DELETE and any(key in place.declared.get(e, frozenset()) for e in place.hosted):
                continue
            item = dataclasses.replace(item, deferred_to=place.applier(key))
        out.append(item)
    return out


def shared_instance_problems(state: DesiredState, placement: Mapping[str, str]) -> list[Problem]:
    """Per-environment differences in instance-wide objects on a shared instance, with file and line.

    An app, its live release and the grants on it belong to the instance: declaring it for some of
    the environments an instance hosts and not the others cannot be applied.
    """
    order = state.environment_order
    shared: dict[str, list[str]] = {}  # instance → the environments it hosts, in promotion order
    for env in order:
        if env in placement:
            shared.setdefault(placement[env], []).append(env)
    shared = {instance: together for instance, together in shared.items() if len(together) > 1}
    problems: list[Problem] = []
    for app in state.apps.values():
        declared = app_environments(app, order)
        wanted = set(declared)
        found = []
        for instance, together in shared.items():
            missing = [e for e in together if e not in wanted]
            first = next((e for e in together if e in wanted), None)
            if missing and first is not None:
                found.append((declared.index(first), instance, together, missing))
        for _, instance, together, missing in sorted(found, key=lambda f: f[0]):
            file, line = state.locations.get(("App", app.name), ("(unknown)", 0))
            line = state.field_lines.get(("App", app.name, "environments"), line)
            problems.append(Problem(file, line or None, (
                f"App {app.name!r}: environments {', '.join(together)} share instance {instance!r}, where "
                f"an app and its live release are the instance's; declare it for all of them or none "
                f"(missing: {', '.join(missing)}), or host them on separate instances")))
    return problems
