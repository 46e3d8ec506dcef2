"""The state store: the reconciler's memory (runs, statuses, tags seen, pins, leases, fingerprints)."""
