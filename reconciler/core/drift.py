"""Diff the declared platform objects of an environment against the live ones (pure).

Called by ``reconcile.py`` with the renderer's objects and the provider's ``read``. Produces one
``DriftItem`` per created or deleted object and one per changed field (nested option keys become
dotted paths such as ``options.host``), with values already redacted (a live value also
wherever it may hold a secret: ``redact_live``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.objects import OPTIONAL_FIELDS, ObjectKey, PlatformObject
from reconciler.secrets.values import redact, redact_live

KIND_PHASE = {
    "environment": Phase.ENVIRONMENTS,
    "space": Phase.ENVIRONMENTS,
    "folder": Phase.RESOURCES,
    "resource": Phase.RESOURCES,
    "config-variable": Phase.CONFIG,
    "group": Phase.GROUPS,
    "permission": Phase.PERMISSIONS,
    "app": Phase.APPS,
}
KIND_ORDER = {kind: index for index, kind in enumerate(KIND_PHASE)}


def _changed_fields(declared: Any, live: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    if isinstance(declared, Mapping) and isinstance(live, Mapping):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(declared) | set(live), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_changed_fields(declared.get(key), live.get(key), path))
        return out
    return [] if declared == live else [(prefix, declared, live)]


def _at(shown: Mapping[str, Any], path: str, new: Any, old: Any) -> Any:
    """The value at dotted ``path`` in ``shown`` (the live fields as they may be shown); a key with a
    dot in its name is not found that way, and ``old`` is redacted on its own then."""
    value: Any = shown
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return redact_live(old, new, path.rsplit(".", 1)[-1])
        value = value[part]
    return value


def diff_objects(
    declared: Mapping[ObjectKey, PlatformObject],
    live: Mapping[ObjectKey, PlatformObject],
    prune: bool,
) -> list[DriftItem]:
    """Every difference between ``declared`` and ``live``; deletes are marked prunable or not."""
    items: list[DriftItem] = []
    for key in sorted(set(declared) | set(live), key=lambda k: (KIND_ORDER.get(k[0], 99), k[1])):
        kind, name = key
        want, have = declared.get(key), live.get(key)
        if want is not None and have is None:
            items.append(DriftItem(
                id=f"{kind}:{name}", kind=kind, name=name, field=None, change=Change.CREATE,
                declared=redact(dict(want.fields)), live=None, phase=KIND_PHASE[kind],
            ))
        elif want is None and have is not None:
            items.append(DriftItem(
                id=f"{kind}:{name}", kind=kind, name=name, field=None, change=Change.DELETE,
                declared=None, live=redact_live(dict(have.fields)), risk=Risk.DESTRUCTIVE, phase=Phase.PRUNE,
                pruned=prune and have.owned,  # never an object the reconciler did not create or adopt
            ))
        elif want is not None and have is not None:
            optional = OPTIONAL_FIELDS.get(kind, frozenset())
            have_fields = {k: v for k, v in have.fields.items() if k in want.fields or k not in optional}
            changed = _changed_fields(dict(want.fields), have_fields, "")
            shown = redact_live(have_fields, dict(want.fields)) if changed else {}  # most objects: unchanged
            for field, new, old in changed:
                items.append(DriftItem(
                    id=f"{kind}:{name}:{field}", kind=kind, name=name, field=field, change=Change.UPDATE,
                    declared=redact(new), live=_at(shown, field, new, old), phase=KIND_PHASE[kind],
                ))
    return items
