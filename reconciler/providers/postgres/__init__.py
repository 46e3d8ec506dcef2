"""The ``postgres`` provider: declared SQL schemas, diffed with migra, classified, applied safely.

The engine uses ``PostgresProvider`` (plan / apply; verifying is planning again); ``reconciler demo`` and the tests
start a local server with ``EmbeddedPostgres``. The modules, in data-flow order:

==============  ==============================================================================
``declared``    SQL files -> scratch database -> inspection (cached by content key)
``diffing``     the ``SchemaDiffEngine`` interface and its migra implementation
``classify``    statements -> ``DriftItem``s with ids, risks, phases and safer rewrites (pure)
``phases``      dependency-safe order, phases and groups of one database's statements (pure)
``apply``       one guarded transaction with lock/statement timeouts and retries, then the rest
``provider``    the façade the engine calls
``embedded``    pgserver-based embedded PostgreSQL, and the system PostgreSQL for tests
``urls``        redaction and re-targeting of ``postgresql://`` URLs
==============  ==============================================================================

The names below are imported when first used: a command that involves no Database (``status``, a
registry-only ``plan``) never loads psycopg, pglast or migra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.providers.postgres.embedded import EmbeddedPostgres, SystemPostgres
    from reconciler.providers.postgres.provider import PostgresProvider
    from reconciler.providers.postgres.sessions import ApplySettings

__all__ = ["ApplySettings", "EmbeddedPostgres", "PostgresProvider", "SystemPostgres"]

_HOMES = {
    "ApplySettings": "sessions", "EmbeddedPostgres": "embedded", "SystemPostgres": "embedded",
    "PostgresProvider": "provider",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
