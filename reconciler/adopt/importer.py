"""Read what runs and write it as a desired-state folder (the I/O half of ``reconciler import``).

Called by the CLI's ``import`` command. The platform is read through the configured provider
(``[platform]``: the registry, or Retool through its read path), each managed database through
``providers/postgres/dumping.py``; ``documents.build`` turns that into files. Nothing is written
when any target file exists, unless ``force`` is set, and the folder is validated once written.

A managed database is named on the command line (``--database crm``); its URL in each environment
comes from the secret ``<NAME>_DATABASE_URL_<ENV>`` (``CRM_DATABASE_URL_STAGING``) through the
configured secret backends, and the written Database document refers to that same secret, so
the ``plan`` that follows reads the same database. Missing ones are all named at once.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from reconciler import logs
from reconciler.adopt.documents import LiveDatabase, LiveEnvironment, build, database_url_secret
from reconciler.config import Settings
from reconciler.desired.models import Track
from reconciler.durations import parse_duration
from reconciler.errors import ConfigError, Problem, SecretError, ValidationError
from reconciler.providers.base import PlatformProvider
from reconciler.providers.postgres import urls
from reconciler.providers.postgres.dumping import dump_schema
from reconciler.providers.postgres.sessions import Timeouts
from reconciler.secrets.backends import Secrets

log = logs.get_logger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DatabaseRequest:
    name: str
    managed_schemas: tuple[str, ...] = ("public",)


@dataclass(frozen=True)
class SecretStatus:
    name: str
    used_in: list[str]
    provided: bool  # whether the configured backends hold it now (the value is never kept)


@dataclass
class ImportResult:
    out: Path
    written: list[str] = field(default_factory=list)
    documents: int = 0
    secrets: list[SecretStatus] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # from validating the written folder


def parse_database(spec: str) -> DatabaseRequest:
    """``crm`` or ``crm:public,audit`` (the database's name, then the schemas it manages)."""
    name, _, schemas = spec.partition(":")
    if not _NAME.match(name):
        raise ConfigError(f"--database {spec!r}: {name!r} is not a name (letters, digits, '.', '_', '-'; "
                          "e.g. --database crm or --database crm:public,audit)")
    managed = tuple(s.strip() for s in schemas.split(",") if s.strip()) if schemas else ("public",)
    bad = [s for s in managed if not _SCHEMA.match(s)]
    if bad or not managed:
        raise ConfigError(f"--database {spec!r}: {', '.join(bad) or 'no schema'} is not a schema name "
                          "(lower-case letters, digits, '_'; e.g. --database crm:public,audit)")
    return DatabaseRequest(name, managed)


def _check_request(environments: Sequence[str], databases: Sequence[DatabaseRequest], branch: str) -> None:
    if not environments:
        raise ConfigError("name the environments to import, in promotion order: --env staging --env production")
    for env in environments:
        if not _NAME.match(env):
            raise ConfigError(f"--env {env!r} is not an environment name (letters, digits, '.', '_', '-')")
    for label, names in (("--env", list(environments)), ("--database", [d.name for d in databases])):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"{label} {', '.join(twice)} given twice")
    try:
        Track(branch=branch)
    except pydantic.ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--branch {branch!r}: {message}") from None


def _database_urls(
    secrets: Secrets, environments: Sequence[str], databases: Sequence[DatabaseRequest]
) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    missing: list[str] = []
    for database in databases:
        for env in environments:
            name = database_url_secret(database.name, env)
            try:
                url = secrets.get(name)
            except SecretError:
                missing.append(name)
                continue
            problem = urls.problem(url)
            if problem is not None:
                raise ConfigError(f"database {database.name} ({env}): the secret {name} {problem} {urls.EXPECTED}")
            found[(database.name, env)] = url
    if missing:
        searched = ", ".join(b.label for b in secrets.backends) or "no backends configured"
        raise ConfigError(f"set each managed database's URL before importing it (searched: {searched}): "
                          f"{', '.join(missing)}")
    return found


def _read_environment(platform: PlatformProvider, env: str) -> LiveEnvironment:
    objects = platform.read(env)
    reader = getattr(platform, "app_files", None)
    files = {}
    if reader is not None:
        files = {name: reader(env, name) for kind, name in objects if kind == "app"}
    return LiveEnvironment(env, objects, files)


def _write(out: Path, files: dict[str, bytes]) -> list[str]:
    written = []
    for relative, content in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(relative)
    return written


def _refuse_overwrites(out: Path, files: dict[str, bytes]) -> None:
    existing = [str(out / relative) for relative in sorted(files) if (out / relative).exists()]
    if existing:
        more = f" and {len(existing) - 1} more ({', '.join(existing[1:4])}{', ...' if len(existing) > 4 else ''})" \
            if len(existing) > 1 else ""
        raise ConfigError(f"{existing[0]} already exists{more}; nothing was written. Import into an empty folder, "
                          "or pass --force to overwrite those files")


def run_import(
    settings: Settings,
    environments: Sequence[str],
    out: Path,
    databases: Sequence[DatabaseRequest] = (),
    *,
    force: bool = False,
    branch: str = "main",
) -> ImportResult:
    """Read ``environments`` and ``databases`` live and write their desired state into ``out``."""
    from reconciler.app.wiring import build_platform, build_secrets, resolve_setting
    from reconciler.desired.loader import load
    from reconciler.source.trees import DirectoryTree
    from reconciler.store.store import Store

    _check_request(environments, databases, branch)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is not a folder; --out needs a folder (a new one is made)")
    secrets = build_secrets(settings)
    database_urls = _database_urls(secrets, environments, databases)
    store = Store(resolve_setting(secrets, "state.url", settings.state_url))
    try:
        platform = build_platform(settings, secrets, store)
        try:
            live = [_read_environment(platform, env) for env in environments]
        finally:
            platform.close()
    finally:
        store.close()
    timeouts = Timeouts(lock_timeout=parse_duration(settings.databases.lock_timeout),
                        statement_timeout=parse_duration(settings.databases.statement_timeout))
    dumped = [
        LiveDatabase(database.name, database.managed_schemas, {
            env: dump_schema(database_urls[(database.name, env)], database.managed_schemas, timeouts=timeouts)
            for env in environments
        })
        for database in databases
    ]
    imported = build(live, dumped, branch)
    if not force:
        _refuse_overwrites(out, imported.files)
    result = ImportResult(out=out, written=_write(out, imported.files), documents=imported.documents,
                          notes=imported.notes)
    log.info("imported", out=str(out), files=len(result.written), environments=list(environments))
    for name, used_in in imported.secrets.items():
        try:
            secrets.get(name)
            provided = True
        except SecretError:
            provided = False
        result.secrets.append(SecretStatus(name, used_in, provided))
    try:
        load(DirectoryTree(out))
    except ValidationError as exc:
        result.problems = list(exc.problems)
    return result
