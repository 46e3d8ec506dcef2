"""The API's routes, one module per concern; each module's ``install(app, ...)`` adds its routes to the
application ``api/app.py`` assembles.

``environments`` (status, drift, runs, sync, pin), ``hooks`` (GitHub, GitLab, generic webhooks:
they only ever ask for a fetch), ``registry`` (an app's resolved resources, for the registry
platform) and ``health`` (liveness, readiness, Prometheus metrics). Reads go through the
application's read model (``reconciler.queries``, ``app/queries.py``), never the state store.
"""
