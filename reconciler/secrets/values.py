"""Values that hold a secret, carried through the core without their clear text.

A declared string that contains ``${secret:NAME}`` (or that is a secret config variable) becomes a
``Sensitive``: the template as written in Git (no secret in it) plus the keyed fingerprint of the
resolved value. Two Sensitives are equal when their fingerprints are; the clear value is only
materialised by a provider at write time, through a ``SecretResolver``.
"""

from __future__ import annotations

import re
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


# Words in a field name (or a header's name) that say its value is a credential; a Basic-auth username
# is one (API vendors put keys there: Stripe's secret key, Segment's write key). Names ending so are
# settings about a credential (where it is sent, what kind it is, which cookies to pass on), not one.
SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "api_key", "apikey", "write_key",
                "private_key", "passphrase", "credential", "cookie", "connection_string", "access_key",
                "basic_username")
NOT_SECRET_SUFFIXES = ("url", "uri", "_to_forward", "_type", "_lifespan", "_expiry")
# An Authorization-style value, whatever field holds it: the scheme, then the credential.
SCHEME = re.compile(r"(Bearer|Basic|Token|Bot|Digest) +(\S+)", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a field or header called ``name`` holds a credential (``api-key``, ``Authorization``…)."""
    key = name.lower().replace("-", "_")
    return not key.endswith(NOT_SECRET_SUFFIXES) and any(word in key for word in SECRET_WORDS)


def redact_live(live: Any, declared: Any = None, name: str = "") -> Any:
    """``live`` as it may be shown: redacted like ``redact``, and also wherever it may hold a secret.

    A platform may show in clear a value Git declares as a secret (rotated by hand, or adopted);
    such a value, one under a credential-like name (``looks_secret``, also the name of a
    ``[name, value]`` pair or a ``{key|name, value}`` entry), one of a secret config variable, and an
    ``Authorization``-style ``Bearer …`` string become ``REDACTED``. ``declared`` is the same
    position in the declared fields, when there is one.
    """
    if live is None or live == "":
        return live
    if isinstance(live, Sensitive) or isinstance(declared, Sensitive) or (name and looks_secret(name)):
        return REDACTED
    if isinstance(live, str):
        return REDACTED if SCHEME.fullmatch(live.strip()) else live
    if isinstance(live, dict):
        wanted = declared if isinstance(declared, dict) else {}
        entry = live.get("key", live.get("name"))
        if "value" in live and isinstance(entry, str) and looks_secret(entry):
            return {**redact_live({k: v for k, v in live.items() if k != "value"}, wanted), "value": REDACTED}
        secret = live.get("secret") is True or wanted.get("secret") is True
        return {k: REDACTED if secret and k in ("value", "values") and v not in (None, "")
                else redact_live(v, wanted.get(k), str(k)) for k, v in live.items()}
    if isinstance(live, list | tuple):
        wanted_items = list(declared) if isinstance(declared, list | tuple) else []
        if len(live) == 2 and isinstance(live[0], str) and looks_secret(live[0]):
            return [live[0], REDACTED]  # a [header, value] pair
        return [redact_live(v, wanted_items[i] if i < len(wanted_items) else None) for i, v in enumerate(live)]
    return live


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
