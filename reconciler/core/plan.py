"""Turn drift items into an ordered plan of steps (SPEC §5), pure.

Order within a run: environments → additive schema → resources → config variables → groups and
permissions → apps → destructive schema → prune. Platform items are grouped per object (a
provider applies one object at a time); schema items per database and phase (one transaction).
Deletes of undeclared objects are in the plan only when pruning is on; otherwise they stay
reported drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.drift import KIND_ORDER


@dataclass(frozen=True)
class Step:
    phase: Phase
    target: str  # "platform" or "schema"
    kind: str
    name: str
    change: Change
    items: tuple[DriftItem, ...]

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]


@dataclass(frozen=True)
class Plan:
    environment: str
    revision: str | None
    steps: list[Step] = field(default_factory=list)
    drift: list[DriftItem] = field(default_factory=list)  # everything found, planned or not

    @property
    def items(self) -> list[DriftItem]:
        return [item for step in self.steps for item in step.items]

    @property
    def unplanned(self) -> list[DriftItem]:
        planned = {item.id for item in self.items}
        return [item for item in self.drift if item.id not in planned]

    @property
    def pending(self) -> list[DriftItem]:
        """Drift this environment is responsible for: everything but what its instance's owner applies."""
        return [item for item in self.drift if item.deferred_to is None]

    @property
    def destructive(self) -> list[DriftItem]:
        return [i for i in self.items if i.kind == "schema" and i.risk == Risk.DESTRUCTIVE]

    def is_empty(self) -> bool:
        return not self.steps


def build_plan(environment: str, revision: str | None, drift: list[DriftItem]) -> Plan:
    steps: list[Step] = []
    platform: dict[tuple[str, str], list[DriftItem]] = {}
    schema: dict[tuple[str, Phase], list[DriftItem]] = {}
    for item in drift:
        if item.deferred_to is not None:
            continue  # the owner of the instance applies it (engine/topology.py)
        if item.kind == "schema":
            schema.setdefault((item.name, item.phase), []).append(item)
        elif item.change != Change.DELETE or item.pruned:
            platform.setdefault((item.kind, item.name), []).append(item)
    for (kind, name), items in platform.items():
        change = items[0].change if len(items) == 1 or items[0].change != Change.UPDATE else Change.UPDATE
        steps.append(Step(items[0].phase, "platform", kind, name, change, tuple(items)))
    for (database, phase), items in schema.items():
        change = Change.DELETE if phase == Phase.SCHEMA_DESTRUCTIVE else Change.UPDATE
        steps.append(Step(phase, "schema", "schema", database, change, tuple(items)))

    def order(step: Step) -> tuple[int, int, str]:
        rank = KIND_ORDER.get(step.kind, 0)
        # Prune removes dependents first: apps before permissions before resources before folders.
        return (int(step.phase), -rank if step.phase == Phase.PRUNE else rank, step.name)

    return Plan(environment, revision, sorted(steps, key=order), list(drift))
