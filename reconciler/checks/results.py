"""What running checks produced: one ``CheckResult`` per check, and a ``CheckReport`` per environment.

Plain frozen dataclasses with nothing secret in them (the runner redacts before it builds them),
so the CLI, the API and, later, the run record can show or store them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str  # sql | http
    target: str  # "database crm", "resource crm-api"
    app: str | None
    when: str  # after-schema | after-apply
    passed: bool
    duration: float  # seconds
    detail: str  # what was seen ("1 row", "HTTP 200, $.status = 'ok'"), or why it failed
    error: str | None = None  # first lines of the error when it failed; None when it passed

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "target": self.target, "app": self.app, "when": self.when,
                "passed": self.passed, "duration_seconds": round(self.duration, 3), "detail": self.detail,
                "error": self.error}


@dataclass(frozen=True)
class CheckReport:
    environment: str
    revision: str  # the commit whose declared checks ran (what the environment runs)
    ref: str | None
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "revision": self.revision, "ref": self.ref,
                "passed": self.passed, "checks": [r.as_json() for r in self.results]}
