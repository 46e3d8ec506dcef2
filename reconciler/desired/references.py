"""Where an environment's desired state needs a secret or a database URL, with file and line.

Pure: walks a validated ``DesiredState`` the way ``core/render.py`` renders one environment (the
same resources, the same per-environment option overrides, the same config values and database
URLs; the HTTP checks that run there) and lists every ``${secret:NAME}`` reference it would
resolve, plus every managed database's URL. Called by ``reconciler secrets ENV`` and ``reconciler
validate --env ENV`` (through ``app/needs.py``), so a new user sees every secret to provide at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.desired.models import CONFIG_REFERENCE, DEFAULT, SECRET_REFERENCE, resource_environments
from reconciler.desired.state import DesiredState
from reconciler.errors import NotFoundError, clip

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Use:
    """One place that needs a secret (``secret`` set) or a database URL written in Git (``secret`` None)."""

    secret: str | None
    file: str
    line: int | None
    document: str  # "Resource 'crm-db'", or the configuration's label
    field: str  # dotted path inside the document: environments.staging.options.password
    database: str | None = None  # the Database whose URL this is (a database URL use)
    text: str = ""  # the value as written in Git (a template: no secret in it)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def dotted(path: FieldPath) -> str:
    return ".".join(str(p) for p in path)


def _strings(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _overridden(base: Any, over: Any, relative: FieldPath) -> bool:
    """Whether the shared option at ``relative`` is replaced by the environment's options (render's merge:
    mappings merge key by key, anything else replaces)."""
    for key in relative:
        if not isinstance(over, dict) or not isinstance(base, dict) or key not in over:
            return False
        if not (isinstance(over[key], dict) and isinstance(base.get(key), dict)):
            return True
        base, over = base[key], over[key]
    return False


def environment_uses(state: DesiredState, env: str) -> list[Use]:
    """Every secret reference and database URL ``env`` needs, in document order (file, then line)."""
    if env not in state.environments:
        known = ", ".join(state.environment_order)
        raise NotFoundError(f"unknown environment {clip(env)!r} (declared: {known})")
    uses: list[Use] = []

    def add(kind: str, name: str, path: FieldPath, text: str, database: str | None = None) -> None:
        file, line = state.where(kind, name, path)
        document = f"{kind} {name!r}"
        names = SECRET_REFERENCE.findall(text)
        for secret in dict.fromkeys(names):
            uses.append(Use(secret, file, line, document, dotted(path), database, text))
        # A ${config:NAME} in a resource option carries the variable's secrets into the option as well.
        for variable in dict.fromkeys(CONFIG_REFERENCE.findall(text) if kind == "Resource" else []):
            value = config_value(variable)
            for secret in dict.fromkeys(SECRET_REFERENCE.findall(value or "")):
                uses.append(Use(secret, file, line, document, f"{dotted(path)} (through ${{config:{variable}}})"))
        if database is not None and not names:
            uses.append(Use(None, file, line, document, dotted(path), database, text))

    def config_value(variable: str) -> str | None:
        declared = state.config.get(variable)
        return None if declared is None else declared.values.get(env, declared.values.get(DEFAULT))

    envs = state.environment_order
    for resource in state.resources.values():
        if env not in resource_environments(resource, envs):
            continue
        spec = (resource.environments or {}).get(env)
        over = spec.options if spec else {}
        for path, text in _strings(resource.options, ()):
            if not _overridden(resource.options, over, path):
                add("Resource", resource.name, ("options", *path), text)
        for path, text in _strings(over, ()):
            add("Resource", resource.name, ("environments", env, "options", *path), text)
    for variable in state.config.values():
        key = env if env in variable.values else DEFAULT if DEFAULT in variable.values else None
        if key is not None:
            add("ConfigVariable", variable.name, ("values", key), variable.values[key])
    for database in state.databases.values():
        target = database.environments.get(env)
        if target is not None:
            add("Database", database.name, ("environments", env, "url"), target.url, database=database.name)
    for check in state.checks.values():
        if check.http is None or env not in (check.environments or envs):
            continue
        for path, text in _strings({"headers": check.http.headers, "path": check.http.path,
                                    "body": check.http.body}, ()):
            add("Check", check.name, ("http", *path), text)
    return sorted(uses, key=lambda u: (u.file, u.line or 0, u.field))
