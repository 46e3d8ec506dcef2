"""Which secrets an environment needs, which backend serves each, and which are missing — all at once.

Called by ``reconciler secrets ENV`` and ``reconciler validate --env ENV``. The places come from
``desired/references.py`` (the desired state) and from the daemon's configuration (the keys the
daemon resolves through its secret backends); each secret is then looked up in the configured
backends in order, as a run would. Values are read only to learn that they exist (and, for a
database URL, that it is a ``postgresql://`` URL); none is kept, returned or shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reconciler.config import Settings
from reconciler.desired.models import SECRET_REFERENCE
from reconciler.desired.references import Use, environment_uses
from reconciler.desired.state import DesiredState
from reconciler.errors import SecretError
from reconciler.providers.postgres import urls
from reconciler.secrets.backends import Backend


class Status(StrEnum):
    SET = "set"  # a backend has a value
    MISSING = "missing"  # no backend has it
    EMPTY = "empty"  # a backend has it, but the value is empty
    UNREADABLE = "unreadable"  # a backend holds it but cannot read it (a file's permissions)
    NOT_A_URL = "not-a-url"  # a database URL that is not a postgresql:// URL once resolved
    IN_GIT = "in-git"  # a database URL written in Git without a secret: nothing to provide


@dataclass(frozen=True)
class Need:
    """One secret (or one database URL written in Git) and every place that uses it."""

    name: str | None  # None: a database URL written in Git
    status: Status
    backend: str | None  # label of the backend that serves it ("env", "files:/run/secrets")
    detail: str | None = None  # what is wrong, in words; never the value
    uses: list[Use] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (Status.SET, Status.IN_GIT)

    @property
    def database_url(self) -> bool:
        return any(u.database is not None for u in self.uses)


@dataclass(frozen=True)
class Needs:
    environment: str
    backends: list[str]
    needs: list[Need]

    @property
    def problems(self) -> list[Need]:
        return [n for n in self.needs if not n.ok]

    @property
    def secrets(self) -> list[Need]:
        return [n for n in self.needs if n.name is not None]


# Configuration keys the daemon resolves through the secret backends (reconciler/app/wiring.py): when one
# of them holds a ${secret:NAME} reference, the daemon needs NAME before it can start.
def configuration_uses(settings: Settings, path: Path | None) -> list[Use]:
    keys: dict[str, str | None] = {
        "source.webhook_secret": settings.source.webhook_secret,
        "source.gitlab_token": settings.source.gitlab_token,
        "source.ssh_key_passphrase": settings.source.ssh_key_passphrase if settings.source.ssh_key else None,
        "state.url": settings.state.url,
        "platform.url": settings.platform.url if settings.platform.provider == "registry" else None,
        "platform.token": settings.platform.token if settings.platform.provider == "retool" else None,
        "secrets.fingerprint_key": settings.secrets.fingerprint_key,
    }
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
    label = str(path) if path is not None else "configuration"
    uses = []
    for key, value in keys.items():
        for name in dict.fromkeys(SECRET_REFERENCE.findall(value or "")):
            reference = "${secret:" + name + "}"
            # The line where the reference is written; none when an environment variable set the key.
            line = next((n for n, row in enumerate(text.splitlines(), 1) if reference in row), None)
            uses.append(Use(name, label, line, "configuration", key))
    return uses


Found = tuple[Status, str | None, str | None, str | None]  # status, backend label, detail, value


def _look_up(name: str, backends: list[Backend]) -> Found:
    """(status, backend label, detail, value); the value only for the caller's URL check."""
    for backend in backends:
        try:
            value = backend.get(name)
        except SecretError as exc:
            return Status.UNREADABLE, backend.label, str(exc), None
        if value is None:
            continue
        if value == "":
            return Status.EMPTY, backend.label, f"the value in {backend.label} is empty", None
        return Status.SET, backend.label, None, value
    return Status.MISSING, None, None, None


def check(state: DesiredState, env: str, backends: list[Backend], extra: list[Use] | None = None) -> Needs:
    """Every secret ``env`` needs (from ``state`` and ``extra`` places such as the configuration), looked up."""
    uses = [*environment_uses(state, env), *(extra or [])]
    by_name: dict[str, list[Use]] = {}
    in_git: list[Use] = []
    for use in uses:
        if use.secret is None:
            in_git.append(use)
        else:
            by_name.setdefault(use.secret, []).append(use)
    found = {name: _look_up(name, backends) for name in by_name}
    needs = []
    for name, places in by_name.items():
        status, label, detail, _ = found[name]
        if status == Status.SET:
            bad = _bad_database_url(places, found)
            if bad is not None:
                status, detail = Status.NOT_A_URL, bad
        needs.append(Need(name, status, label, detail, places))
    needs += [Need(None, Status.IN_GIT, None, None, [use]) for use in in_git]
    return Needs(env, [b.label for b in backends], needs)


def _bad_database_url(places: list[Use], found: dict[str, Found]) -> str | None:
    """What is wrong with a database URL made from this secret, or None; never quotes the URL."""
    for use in places:
        if use.database is None:
            continue
        names = SECRET_REFERENCE.findall(use.text)
        if any(found[n][0] != Status.SET for n in names):
            continue  # another part is missing; that one is reported on its own
        resolved = SECRET_REFERENCE.sub(lambda m: found[m.group(1)][3] or "", use.text)
        problem = urls.problem(resolved)
        if problem is not None:
            return f"the URL of database {use.database} {problem} {urls.EXPECTED}"
    return None
