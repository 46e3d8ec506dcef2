"""The application: what the CLI, the daemon, the API and the dashboard call.

``reconcile.py`` (``Reconciler``: gather facts, let the core decide, apply, record once),
``wiring.py`` (build one from settings), ``queries.py`` (the read model, which writes nothing) and
``diff.py`` (the pull-request preview). See docs/architecture.md.
"""
