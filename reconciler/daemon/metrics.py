"""Prometheus metrics of the daemon, in a registry of its own (served at ``/metrics``)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("reconciler_runs_total", "Reconcile runs by environment and result",
                            ["environment", "result"], registry=self.registry)
        self.run_duration = Histogram("reconciler_run_duration_seconds", "Duration of reconcile runs",
                                      ["environment"], registry=self.registry,
                                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.drift_items = Gauge("reconciler_drift_items",
                                 "Drift items found by the last drift check or run verification (0 until checked)",
                                 ["environment"], registry=self.registry)
        self.fetches = Counter("reconciler_fetches_total", "Repository fetches / ref checks", ["result"],
                               registry=self.registry)
        self.webhooks = Counter("reconciler_webhooks_total", "Webhook requests by source and outcome",
                                ["source", "outcome"], registry=self.registry)
        self.revision = Gauge("reconciler_revision_info", "Tracked (desired) and applied revision per environment",
                              ["environment", "kind", "revision"], registry=self.registry)
        self.blocked = Gauge("reconciler_blocked", "1 when the environment's newest revision is blocked by a gate",
                             ["environment", "gate"], registry=self.registry)
        self.last_fetch = time.time()
        self.fetch_age = Gauge("reconciler_last_fetch_age_seconds", "Seconds since the last successful fetch",
                               registry=self.registry)
        self.fetch_age.set_function(lambda: time.time() - self.last_fetch)
        self.up = Gauge("reconciler_up", "1 while the daemon runs", registry=self.registry)
        self.up.set(1)
        self.leader = Gauge("reconciler_leader", "1 while this daemon holds the leader lease (or runs alone)",
                            registry=self.registry)
        self.leader.set(1)
        self.replicas = Gauge("reconciler_replicas", "Live daemons sharing the state database, as this one sees them",
                              registry=self.registry)
        self.replicas.set(1)

        self._revision_labels: dict[str, list[tuple[str, str]]] = {}
        self._blocked_labels: dict[str, str] = {}

    def set_revisions(self, environment: str, desired: str | None, applied: str | None) -> None:
        for kind, revision in self._revision_labels.pop(environment, []):
            self.revision.remove(environment, kind, revision)
        labels = [(kind, rev) for kind, rev in (("desired", desired), ("applied", applied)) if rev]
        for kind, revision in labels:
            self.revision.labels(environment, kind, revision).set(1)
        self._revision_labels[environment] = labels

    def set_drift(self, environment: str, count: int | None) -> None:
        """The environment's drift as the store last recorded it (a check or a run's verification); 0 when
        nothing was checked yet, so every environment has a sample."""
        self.drift_items.labels(environment).set(count or 0)

    def set_blocked(self, environment: str, gate: str | None) -> None:
        previous = self._blocked_labels.pop(environment, None)
        if previous is not None:
            self.blocked.remove(environment, previous)
        if gate is not None:
            self.blocked.labels(environment, gate).set(1)
            self._blocked_labels[environment] = gate
