"""Plain data shared by the core, the providers and the reports: drift items and their risks and phases.

A drift item is one difference between declared and live state. A plan is the same items in
apply order (SPEC §5), each tagged with the phase it runs in. Values are JSON-able; secrets are
never carried in clear (see ``reconciler.secrets.values.Sensitive``), so a drift item can be
logged, stored and printed as it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Risk(StrEnum):
    SAFE = "safe"
    DESTRUCTIVE = "destructive"
    LOCK_RISK = "lock-risk"
    DATA_DEPENDENT = "data-dependent"


class Phase(IntEnum):
    """Apply order of SPEC §5; lower runs first."""

    ENVIRONMENTS = 10
    SCHEMA_ADDITIVE = 20
    RESOURCES = 30
    CONFIG = 40
    GROUPS = 50
    PERMISSIONS = 55
    APPS = 60
    SCHEMA_DESTRUCTIVE = 70
    PRUNE = 80


@dataclass(frozen=True)
class DriftItem:
    """One difference between the declared and the live state of an environment.

    ``id`` is stable across runs and is what ``Approve:`` trailers and ``--approve`` name:
    ``<kind>:<name>[:<field>]`` for platform objects, ``<database>:<action>:<object>`` for schema
    statements. ``declared``/``live`` are display values, already redacted.
    """

    id: str
    kind: str
    name: str
    field: str | None
    change: Change
    declared: Any
    live: Any
    risk: Risk = Risk.SAFE
    phase: Phase = Phase.RESOURCES
    # Schema statements carry the SQL to run; platform items carry nothing here.
    sql: str | None = None
    transactional: bool = True
    pruned: bool = False
    detail: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    # An instance-wide change this environment leaves to the most protected environment on its
    # instance (named here): shown as "applied with <it>", never planned, never a verification failure.
    deferred_to: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "field": self.field,
            "change": self.change.value,
            "declared": self.declared,
            "live": self.live,
            "risk": self.risk.value,
        }
        if self.sql is not None:
            out["sql"] = self.sql
        if self.deferred_to is not None:
            out["applied_with"] = self.deferred_to
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DriftItem:
        """An item as ``as_json`` wrote it (the state store keeps drift that way), for reports.

        The phase is not part of the JSON form; a report of stored drift does not order by it.
        """
        return cls(
            id=data["id"], kind=data["kind"], name=data["name"], field=data.get("field"),
            change=Change(data["change"]), declared=data.get("declared"), live=data.get("live"),
            risk=Risk(data.get("risk", "safe")), sql=data.get("sql"),
        )
