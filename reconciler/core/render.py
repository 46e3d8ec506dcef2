"""Render one environment of a desired state into the objects its providers compare with live.

Pure: the only outside help is ``sensitive``, a function that turns a template holding secret
references into a ``Sensitive`` (resolving the value to fingerprint it). Called by
``reconcile.py`` before diffing; the result is also what ``plan --rev`` shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.objects import ObjectKey, PlatformObject
from reconciler.desired.models import (
    CONFIG_REFERENCE,
    DEFAULT,
    SECRET_REFERENCE,
    Environment,
    app_environments,
    resource_environments,
)
from reconciler.desired.state import DesiredState, SqlFile
from reconciler.errors import NotFoundError, clip
from reconciler.secrets.values import Sensitive

SensitiveFn = Callable[[str], Sensitive]


@dataclass(frozen=True)
class DesiredDatabase:
    name: str
    url: str  # template; may hold ${secret:...}
    managed_schemas: list[str]
    files: list[SqlFile]
    content_key: str  # hash of the SQL files: the cache key of the declared schema


@dataclass(frozen=True)
class DesiredEnvironment:
    name: str
    spec: Environment
    objects: dict[ObjectKey, PlatformObject] = field(default_factory=dict)
    databases: list[DesiredDatabase] = field(default_factory=list)
    content_id: str = ""


def config_value(state: DesiredState, name: str, env: str) -> str | None:
    variable = state.config[name]
    return variable.values.get(env, variable.values.get(DEFAULT))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _Renderer:
    def __init__(self, state: DesiredState, env: str, sensitive: SensitiveFn) -> None:
        self.state = state
        self.env = env
        self.sensitive = sensitive

    def expand(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        if not isinstance(value, str):
            return value
        secret = False

        def substitute(match: Any) -> str:
            nonlocal secret
            name = match.group(1)
            raw = config_value(self.state, name, self.env) or ""
            if self.state.config[name].secret or SECRET_REFERENCE.search(raw):
                secret = True
            return raw

        text = CONFIG_REFERENCE.sub(substitute, value)
        if secret or SECRET_REFERENCE.search(text):
            return self.sensitive(text)
        return text

    def render(self) -> DesiredEnvironment:
        state, env = self.state, self.env
        spec = state.environments.get(env)
        if spec is None:
            known = ", ".join(state.environment_order)
            raise NotFoundError(f"unknown environment {clip(env)!r} (declared: {known})")
        envs = state.environment_order
        objects: dict[ObjectKey, PlatformObject] = {}

        def add(kind: str, name: str, fields: dict[str, Any]) -> None:
            objects[(kind, name)] = PlatformObject(kind, name, fields)

        add("environment", env, {"description": spec.description, "color": spec.color})
        resources = [r for r in state.resources.values() if env in resource_environments(r, envs)]
        apps = [a for a in state.apps.values() if env in app_environments(a, envs)]
        folders = {r.folder for r in resources if r.folder} | {a.folder for a in apps if a.folder}
        for folder in sorted(folders):
            add("folder", folder, {})
        for resource in resources:
            env_options = (resource.environments or {}).get(env)
            options = _merge(resource.options, env_options.options if env_options else {})
            add("resource", resource.name, {
                "type": resource.type,
                "description": resource.description,
                "folder": resource.folder,
                "options": self.expand(options),
            })
        for variable in state.config.values():
            raw = config_value(state, variable.name, env)
            if raw is None:
                continue
            value: Any = self.sensitive(raw) if variable.secret or SECRET_REFERENCE.search(raw) else raw
            add("config-variable", variable.name,
                {"description": variable.description, "secret": variable.secret, "value": value})
        for group in state.groups.values():
            fields: dict[str, Any] = {"description": group.description, **group.privileges.declared()}
            if group.members is not None:
                fields["members"] = sorted(group.members)
            add("group", group.name, fields)
        for space in state.spaces.values():
            add("space", space.name, {"domain": space.domain.lower(), "admins": sorted(space.admins)})
        self._permissions(spec, resources, apps, add)
        for app in apps:
            add("app", app.name, {
                "description": app.description,
                "folder": app.folder,
                "source_hash": state.app_sources[app.name].hash if app.name in state.app_sources else None,
                "resources": sorted(app.resources),
                "config": sorted(app.config),
            })
        databases = []
        for database in state.databases.values():
            target = database.environments.get(env)
            if target is None:
                continue
            files = state.sql.get(database.name, [])
            digest = hashlib.sha256()
            for file in files:
                digest.update(file.path.encode() + b"\0" + file.text.encode() + b"\0")
            databases.append(DesiredDatabase(
                name=database.name,
                url=target.url,
                managed_schemas=list(database.managed_schemas),
                files=files,
                content_key="sha256:" + digest.hexdigest(),
            ))
        return DesiredEnvironment(env, spec, objects, databases, state.content_id)

    @staticmethod
    def _permissions(spec: Environment, resources: list[Any], apps: list[Any], add: Any) -> None:
        def grant(group: str, object_type: str, obj: str, access: str) -> None:
            add("permission", f"{group}/{object_type}/{obj}",
                {"group": group, "object_type": object_type, "object": obj, "access": access})

        for resource in resources:
            for group in spec.access.use:
                if group not in spec.access.edit:
                    grant(group, "resource", resource.name, "use")
            for group in spec.access.edit:
                grant(group, "resource", resource.name, "edit")
        for app in apps:
            for group in app.access.use:
                if group not in app.access.edit:
                    grant(group, "app", app.name, "use")
            for group in app.access.edit:
                grant(group, "app", app.name, "edit")


def render(state: DesiredState, env: str, sensitive: SensitiveFn) -> DesiredEnvironment:
    """The declared objects and databases of ``env`` in ``state``."""
    return _Renderer(state, env, sensitive).render()
