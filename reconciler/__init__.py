"""Reconciler: a GitOps reconciler for internal-tool platforms.

Data flows one way: Git revision → desired state → drift → plan → gates → apply → verify → run
record. See ``reconciler.app.reconcile`` for the one function the CLI and the daemon share.
"""

__version__ = "0.1.0"
