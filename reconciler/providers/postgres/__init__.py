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
"""

from reconciler.providers.postgres.apply import ApplySettings
from reconciler.providers.postgres.embedded import EmbeddedPostgres, SystemPostgres
from reconciler.providers.postgres.provider import PostgresProvider

__all__ = ["ApplySettings", "EmbeddedPostgres", "PostgresProvider", "SystemPostgres"]
