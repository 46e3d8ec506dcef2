"""Values that hold a secret, carried through the core without their clear text.

A declared string that contains ``${secret:NAME}`` (or that is a secret config variable) becomes a
``Sensitive``: the template as written in Git (no secret in it) plus the keyed fingerprint of the
resolved value. Two Sensitives are equal when their fingerprints are; the clear value is only
materialised by a provider at write time, through a ``SecretResolver``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REDACTED = "(secret)"


@dataclass(frozen=True)
class Sensitive:
    template: str = field(compare=False)
    fingerprint: str

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Sensitive({self.template!r}, {self.fingerprint[:12]}…)"


def redact(value: Any) -> Any:
    """Return ``value`` with every Sensitive replaced by the marker ``(secret)``.

    This is the single redaction path: reports, logs, the state store and the API all call it
    (directly or through ``DriftItem`` construction) before a value leaves the core.
    """
    if isinstance(value, Sensitive):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def to_storable(value: Any) -> Any:
    """JSON form that keeps a Sensitive's template and fingerprint (never its value)."""
    if isinstance(value, Sensitive):
        return {"$sensitive": value.template, "fingerprint": value.fingerprint}
    if isinstance(value, dict):
        return {k: to_storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_storable(v) for v in value]
    return value


def from_storable(value: Any) -> Any:
    """Inverse of ``to_storable``."""
    if isinstance(value, dict):
        if set(value) == {"$sensitive", "fingerprint"}:
            return Sensitive(template=value["$sensitive"], fingerprint=value["fingerprint"])
        return {k: from_storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storable(v) for v in value]
    return value
