"""The long-running process: schedules, watches, coalesces triggers and supervises. It decides
nothing itself — every run goes through ``reconcile.Reconciler.reconcile``."""
