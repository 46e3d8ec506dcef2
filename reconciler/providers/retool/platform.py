"""Several Retool instances as one platform: each environment is read and applied on its own instance.

Built by ``app.wiring.build_platform`` from ``[[platform.instances]]``; the app sees one
``PlatformProvider``. Each of our environments lives on one instance, as one Retool environment
(of the same name unless the instance maps it: a dedicated staging instance often calls it
``production``, Retool's default). Calls are handed to that instance's ``RetoolProvider`` with the
environment renamed; instances never see each other's environments, and their records are kept
apart in the books.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from reconciler.core.changes import Change
from reconciler.core.objects import LiveState, ObjectKey, PlatformObject
from reconciler.errors import ConfigError, clip
from reconciler.providers.base import ApplyContext
from reconciler.providers.retool.provider import PROVIDER, RetoolProvider


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one of our environments lives: an instance, and the Retool environment's name there."""

    instance: str
    environment: str


class RetoolPlatform:
    """Routes each environment to the ``RetoolProvider`` of the instance hosting it."""

    name = PROVIDER

    def __init__(self, instances: Mapping[str, RetoolProvider], placements: Mapping[str, Placement]) -> None:
        unknown = sorted({p.instance for p in placements.values()} - set(instances))
        if unknown:
            raise ConfigError(f"environments are placed on unknown instances: {', '.join(unknown)}")
        self.instances = dict(instances)
        self.placements = dict(placements)

    def __repr__(self) -> str:
        return f"RetoolPlatform({sorted(self.instances)!r})"

    def _route(self, environment: str) -> tuple[RetoolProvider, str]:
        placement = self.placements.get(environment)
        if placement is None:
            raise ConfigError(
                f"environment {clip(environment)!r} is hosted by none of the Retool instances "
                f"({', '.join(sorted(self.instances))}); add it to one instance's 'environments'"
            )
        return self.instances[placement.instance], placement.environment

    def read(
        self, environment: str, *, declared: Collection[ObjectKey] | None = None, owner: bool = True
    ) -> LiveState:
        provider, retool_environment = self._route(environment)
        live = provider.read(retool_environment, declared=declared, owner=owner)
        if retool_environment == environment:
            return live
        # The environment object is ours by our name; everything else carries no environment name.
        renamed: LiveState = {}
        for key, obj in live.items():
            if key == ("environment", retool_environment):
                obj = dataclasses.replace(obj, name=environment)
                key = ("environment", environment)
            renamed[key] = obj
        return renamed

    def apply(
        self, ctx: ApplyContext, change: Change, desired: PlatformObject | None, live: PlatformObject | None
    ) -> None:
        provider, retool_environment = self._route(ctx.environment)
        if retool_environment != ctx.environment:
            ctx = dataclasses.replace(ctx, environment=retool_environment)
            desired = _renamed(desired, retool_environment)
            live = _renamed(live, retool_environment)
        provider.apply(ctx, change, desired, live)

    def close(self) -> None:
        for provider in self.instances.values():
            provider.close()


def _renamed(obj: PlatformObject | None, retool_environment: str) -> PlatformObject | None:
    if obj is None or obj.kind != "environment":
        return obj
    return dataclasses.replace(obj, name=retool_environment)
