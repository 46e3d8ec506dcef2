"""The reconciler's own exception tree, in one place.

Every error that crosses a module boundary is one of these. Third-party errors (pygit2,
SQLAlchemy, psycopg, httpx, migra) are wrapped with ``raise ... from exc`` at the gate where they
enter, so callers above the gates never see a foreign exception type. Messages are written for
the person who has to act on them and never contain a secret value or a credential URL.

    ReconcilerError
    ├── CheckFailed             a declared check did not pass (its result, not a fault of the reconciler)
    ├── PermanentError          retrying will not help until a human changes something
    │   ├── ConfigError         the daemon's TOML configuration is wrong
    │   ├── ValidationError     the desired state does not validate (carries every problem)
    │   ├── SourceError         Git: not a repository, unknown revision, unreachable remote, ...
    │   ├── SecretError         a ${secret:NAME} reference cannot be resolved
    │   ├── NotFoundError       an unknown environment, run or object
    │   └── SchemaError         declared SQL does not load, or the schema diff cannot converge
    └── TemporaryError          worth retrying after ``delay`` seconds
        ├── ProviderError       a target (platform API, database) failed or is unreachable
        ├── LockTimeoutError    a schema change waited too long for a lock
        ├── StoreError          the state database is unreachable
        ├── Cancelled           the daemon is shutting down; the run stopped between two changes
        └── Waiting             a change was proposed (a branch pushed) and counts once someone merges it
"""

from __future__ import annotations

from dataclasses import dataclass


def clip(text: str, limit: int = 100) -> str:
    """User input echoed in a message, cut to a readable length (a hostile name can be megabytes)."""
    return text if len(text) <= limit else text[:limit] + "…"


class ReconcilerError(Exception):
    """Base of every error the reconciler raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CheckFailed(ReconcilerError):
    """A declared check ran and did not pass, or could not run; the message says why, secrets redacted
    by the runner before it leaves ``reconciler.checks``."""


class PermanentError(ReconcilerError):
    """An error that will repeat until someone changes the input or the configuration."""


class TemporaryError(ReconcilerError):
    """An error that may go away by itself. ``delay``: the seconds it asks to wait before a retry (a
    ``Retry-After``, a lock's back-off), when it knows; None leaves the wait to ``daemon.retry_delays``."""

    retryable = True

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class ConfigError(PermanentError):
    """The daemon configuration (TOML, environment variables) is invalid."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is and a plain sentence saying what is wrong."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ValidationError(PermanentError):
    """The desired state does not validate; ``problems`` lists every problem found at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.message))
        count = len(self.problems)
        head = f"desired state is invalid ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + "".join(f"\n  {p}" for p in self.problems))


class SourceError(PermanentError):
    """Git could not give us what we asked for (not a repository, unknown revision, ...)."""


class SecretError(PermanentError):
    """A secret reference cannot be resolved by any configured backend."""


class NotFoundError(PermanentError):
    """An environment, run or object that does not exist was asked for."""


class SchemaError(PermanentError):
    """Declared SQL failed to load, or a schema diff cannot be computed or cannot converge."""


class ProviderError(TemporaryError):
    """A live target failed: an API error, an unreachable database, a failed deployment."""


class LockTimeoutError(TemporaryError):
    """A schema change could not take its lock within ``lock_timeout``."""


class StoreError(TemporaryError):
    """The state database is unreachable or refused a write."""


class Cancelled(TemporaryError):
    """The daemon is shutting down: the run stopped between two changes (nothing half-applied)."""


class Waiting(TemporaryError):
    """A change was proposed and counts only once someone accepts it (a pushed branch awaiting its merge).

    Not a failure: the run ends Waiting, the environment stays Progressing with this message, and a
    later run (after ``delay`` seconds, or on the next fetch) carries on from where this one stopped.
    """
