"""The API's routes, one module per concern; ``api/app.py`` includes each module's ``router``.

``environments`` (status, drift, runs, sync, pin), ``hooks`` (GitHub, GitLab, generic webhooks:
they only ever ask for a fetch), ``registry`` (an app's resolved resources, for the registry
platform) and ``health`` (liveness, readiness, Prometheus metrics). Reads go through the
application's read model (``reconciler.queries``, ``app/queries.py``), never the state store.
"""
