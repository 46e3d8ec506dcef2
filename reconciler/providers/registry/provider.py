"""The ``registry`` provider: reads and writes the registry tables (the only code that does).

Called by ``reconcile.py`` through the ``PlatformProvider`` protocol, by ``demo.py`` to make an
out-of-band edit, by the HTTP API's registry endpoint to serve an app's resolved settings, and by
``reconciler import`` to read back the files of a deployed app (``app_files``).
Any SQLAlchemy URL works; the default is a SQLite file in the data directory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler import logs
from reconciler.core.changes import Change
from reconciler.core.objects import OPTIONAL_FIELDS, LiveState, ObjectKey, PlatformObject
from reconciler.errors import ProviderError
from reconciler.providers.base import ApplyContext
from reconciler.providers.registry import tables as t
from reconciler.secrets.values import from_storable, to_storable
from reconciler.sqlengines import create_tables, driver_error, engine_for

log = logs.get_logger(__name__)

GROUP_SETTINGS = OPTIONAL_FIELDS["group"]


class RegistryProvider:
    name = "registry"

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = engine_for(url)
            create_tables(t.metadata, self.engine)
        except sa.exc.SQLAlchemyError as exc:
            cause = driver_error(exc)
            raise ProviderError(f"registry database unreachable: {cause}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def _run(self, what: str, fn: Callable[[Connection], Any]) -> Any:
        try:
            with self.engine.begin() as conn:
                return fn(conn)
        except sa.exc.SQLAlchemyError as exc:
            cause = driver_error(exc)
            raise ProviderError(f"registry: {what} failed: {cause}") from exc

    # -- reading -------------------------------------------------------------------------

    def read(
        self, environment: str, *, declared: Collection[ObjectKey] | None = None, owner: bool = True
    ) -> LiveState:
        """Every object of ``environment`` (the registry is small and every row is ours: ``declared``
        and ``owner`` change nothing)."""
        return dict(self._run("read", lambda conn: self._read(conn, environment)))

    def _read(self, conn: Connection, env: str) -> LiveState:
        out: LiveState = {}

        def add(kind: str, name: str, fields: dict[str, Any]) -> None:
            out[(kind, name)] = PlatformObject(kind, name, fields)

        row: Any
        for row in conn.execute(sa.select(t.environments).where(t.environments.c.name == env)):
            add("environment", row.name, {"description": row.description, "color": row.color})
        for row in conn.execute(sa.select(t.folders).where(t.folders.c.environment == env)):
            add("folder", row.name, {})
        for row in conn.execute(sa.select(t.resources).where(t.resources.c.environment == env)):
            add("resource", row.name, {
                "type": row.type, "description": row.description, "folder": row.folder,
                "options": from_storable(row.options),
            })
        for row in conn.execute(sa.select(t.config_variables).where(t.config_variables.c.environment == env)):
            add("config-variable", row.name,
                {"description": row.description, "secret": row.secret, "value": from_storable(row.value)})
        settings = {row.name: row for row in conn.execute(
            sa.select(t.group_settings).where(t.group_settings.c.environment == env))}
        for row in conn.execute(sa.select(t.groups).where(t.groups.c.environment == env)):
            fields: dict[str, Any] = {"description": row.description}
            extra = settings.get(row.name)
            if extra is not None:
                fields.update(extra.privileges or {})
                if extra.members is not None:
                    fields["members"] = list(extra.members)
            add("group", row.name, fields)
        for row in conn.execute(sa.select(t.spaces).where(t.spaces.c.environment == env)):
            add("space", row.name, {"domain": row.domain, "admins": list(row.admins)})
        for row in conn.execute(sa.select(t.permissions).where(t.permissions.c.environment == env)):
            add("permission", f"{row.group_name}/{row.object_type}/{row.object_name}", {
                "group": row.group_name, "object_type": row.object_type, "object": row.object_name,
                "access": row.access,
            })
        for row in conn.execute(sa.select(t.apps).where(t.apps.c.environment == env)):
            add("app", row.name, {
                "description": row.description, "folder": row.folder, "source_hash": row.source_hash,
                "resources": list(row.resources), "config": list(row.config),
            })
        return out

    def app_details(self, environment: str, app: str) -> dict[str, Any] | None:
        """An app's deployed record with the resources and config it uses (secrets as templates)."""

        def query(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(
                sa.select(t.apps).where(t.apps.c.environment == environment, t.apps.c.name == app)
            ).first()
            if row is None:
                return None
            live = self._read(conn, environment)
            return {
                "app": app, "environment": environment, "revision": row.revision, "release": row.release,
                "source_hash": row.source_hash,
                "resources": {n: dict(live[("resource", n)].fields) for n in row.resources if ("resource", n) in live},
                "config": {n: live[("config-variable", n)].fields["value"] for n in row.config
                           if ("config-variable", n) in live},
            }

        result: dict[str, Any] | None = self._run("app lookup", query)
        return result

    def app_files(self, environment: str, app: str) -> dict[str, bytes] | None:
        """The files of ``app`` as last deployed in ``environment``; None when none are kept (an app
        deployed before the registry kept files, or not deployed at all)."""

        def query(conn: Connection) -> dict[str, bytes]:
            rows = conn.execute(sa.select(t.app_files.c.path, t.app_files.c.content).where(
                t.app_files.c.environment == environment, t.app_files.c.app == app))
            return {row.path: bytes(row.content) for row in rows}

        files: dict[str, bytes] = self._run("app files lookup", query)
        return files or None

    # -- writing -------------------------------------------------------------------------

    def apply(
        self, ctx: ApplyContext, change: Change, desired: PlatformObject | None, live: PlatformObject | None
    ) -> None:
        obj = desired if desired is not None else live
        assert obj is not None
        log.info("registry.apply", kind=obj.kind, name=obj.name, change=change.value)
        self._run(f"{change.value} {obj.kind} {obj.name}", lambda conn: self._write(conn, ctx, change, obj))

    def _write(self, conn: Connection, ctx: ApplyContext, change: Change, obj: PlatformObject) -> None:
        env = ctx.environment
        table, key, row = self._row(ctx, obj)
        where = sa.and_(*(table.c[col] == value for col, value in key.items()))
        conn.execute(sa.delete(table).where(where))
        if change != Change.DELETE:
            conn.execute(sa.insert(table).values(**key, **row))
        if obj.kind == "app":
            self._write_app_files(conn, ctx, change, obj.name)
        if obj.kind == "group":
            self._write_group_settings(conn, env, change, obj)
        log.debug("registry.written", environment=env, kind=obj.kind, name=obj.name)

    @staticmethod
    def _write_group_settings(conn: Connection, env: str, change: Change, obj: PlatformObject) -> None:
        """A group's members and declared privileges, beside its row in ``groups``."""
        settings = t.group_settings
        conn.execute(sa.delete(settings).where(settings.c.environment == env, settings.c.name == obj.name))
        if change == Change.DELETE:
            return
        privileges = {k: v for k, v in obj.fields.items() if k in GROUP_SETTINGS and k != "members"}
        members = obj.fields.get("members")
        conn.execute(sa.insert(settings).values(
            environment=env, name=obj.name, privileges=privileges,
            members=sorted(members) if members is not None else None,
        ))

    @staticmethod
    def _write_app_files(conn: Connection, ctx: ApplyContext, change: Change, app: str) -> None:
        """Keep the deployed files with the app; an update without a deployment keeps the old ones."""
        deployment = ctx.deployments.get(app)
        if change != Change.DELETE and deployment is None:
            return
        files = t.app_files
        conn.execute(sa.delete(files).where(files.c.environment == ctx.environment, files.c.app == app))
        if change != Change.DELETE and deployment is not None and deployment.files:
            conn.execute(sa.insert(files), [
                {"environment": ctx.environment, "app": app, "path": path, "content": content}
                for path, content in sorted(deployment.files.items())
            ])

    def _row(self, ctx: ApplyContext, obj: PlatformObject) -> tuple[sa.Table, dict[str, Any], dict[str, Any]]:
        env, f = ctx.environment, obj.fields
        if obj.kind == "environment":
            return t.environments, {"name": obj.name}, {"description": f.get("description") or "",
                                                        "color": f.get("color")}
        if obj.kind == "folder":
            return t.folders, {"environment": env, "name": obj.name}, {}
        if obj.kind == "resource":
            return t.resources, {"environment": env, "name": obj.name}, {
                "type": f.get("type"), "description": f.get("description") or "", "folder": f.get("folder"),
                "options": to_storable(f.get("options") or {}),
            }
        if obj.kind == "config-variable":
            return t.config_variables, {"environment": env, "name": obj.name}, {
                "description": f.get("description") or "", "secret": bool(f.get("secret")),
                "value": to_storable(f.get("value")),
            }
        if obj.kind == "group":
            return t.groups, {"environment": env, "name": obj.name}, {"description": f.get("description") or ""}
        if obj.kind == "space":
            return t.spaces, {"environment": env, "name": obj.name}, {
                "domain": f.get("domain"), "admins": sorted(f.get("admins") or []),
            }
        if obj.kind == "permission":
            group, object_type, object_name = obj.name.split("/", 2)
            return t.permissions, {
                "environment": env, "group_name": group, "object_type": object_type, "object_name": object_name,
            }, {"access": f.get("access", "use")}
        if obj.kind == "app":
            deployment = ctx.deployments.get(obj.name)
            return t.apps, {"environment": env, "name": obj.name}, {
                "description": f.get("description") or "", "folder": f.get("folder"),
                "source_hash": f.get("source_hash"), "resources": list(f.get("resources") or []),
                "config": list(f.get("config") or []),
                "revision": deployment.revision if deployment else None,
                "release": deployment.release if deployment else None,
                "deployed_at": dt.datetime.now(dt.UTC),
            }
        raise ProviderError(f"registry: unknown object kind {obj.kind!r}")

    # -- out-of-band edits (the demo and tests play an operator clicking in the platform) --

    def edit_config_value(self, environment: str, name: str, value: str) -> None:
        self._run("edit", lambda conn: conn.execute(
            sa.update(t.config_variables)
            .where(t.config_variables.c.environment == environment, t.config_variables.c.name == name)
            .values(value=value)
        ))
