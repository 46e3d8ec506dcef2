"""The ``retool`` platform provider: our platform objects in a Retool instance, through API v2.

Called by the engine through the ``PlatformProvider`` protocol (``providers/base.py``): ``read``
turns one environment's live Retool state into ``PlatformObject``s, ``apply`` makes one object
match its declaration (or removes it). Only ``client.RetoolClient`` talks HTTP; this module maps
our names to Retool's ids and our fields to Retool's.

How our objects land in Retool (one environment = one Retool environment of the same name):

==================  ===========================================================================
our kind            in Retool
==================  ===========================================================================
environment         ``/environments`` (name, description, color)
folder              an app folder *and* a resource folder of that name under the roots
resource            ``/resources`` (type, display name, folder; shared by every environment) and,
                    per environment, a ``/resource_configurations`` entry holding the options.
                    A resource belongs to an environment when it has a configuration there;
                    deleting it removes that configuration, and the resource itself only when no
                    other environment still has one.
config-variable     ``/configuration_variables``: one variable, one value per environment. ``PUT``
                    replaces every environment's value, so the others are carried over (secret
                    ones re-resolved from the templates we wrote; we refuse rather than erase a
                    secret value we did not write).
group               ``/groups`` (Retool's built-in admin/editor/viewer/All Users are ignored)
permission          ``/permissions/grant|revoke`` for a group on an app, on the app folder of that
                    name, or — for ``resource`` — on the resource's configuration in this
                    environment (``resource_configuration``), which is per-environment access.
app                 Source Control only: a release of the app, the environment's manifest (named
                    after the environment) pinned to it, then ``/source_control/deploy``, polled to
                    SUCCESS or ERROR. Apps must already exist in Retool (they arrive through the
                    Source Control repository); the API cannot create or edit them.
==================  ===========================================================================

Write-only values. Retool never returns secret values (``---encrypted-on-server---``) and holds
no place for some of our fields (a resource's or group's description, an app's source hash). For
each object we write, the provider keeps a record in the fingerprint book: the fields as declared
(secrets as template + keyed fingerprint, never their value) and a keyed digest of what Retool
showed right after the write. ``read`` reports the recorded fields while Retool still shows the
same thing, and otherwise what Retool shows now, with secrets and hidden fields filled in from
the record. So a secret changed in Git is drift (its fingerprint moved), while a secret edited
inside Retool cannot be seen. The app's live ``source_hash`` is the one recorded for the release
its environment's manifest pins. A record longer than a book entry holds (``BOOK_VALUE_LIMIT``) is
split over several entries.

``apply`` is idempotent: it first computes the object's live fields the same way ``read`` does
and sends nothing when they already match, so re-running a plan after a crash writes only what is
missing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog

from reconciler.core.changes import Change
from reconciler.core.objects import LiveState, PlatformObject
from reconciler.errors import ProviderError
from reconciler.providers.base import ApplyContext, FingerprintBook
from reconciler.providers.retool.client import (
    DEFAULT_REQUESTS_PER_MINUTE,
    RetoolClient,
    RetoolConflictError,
    RetoolStateError,
    Sleep,
)
from reconciler.providers.retool.options import (
    SECRET_MARKER,
    OptionError,
    from_wire,
    merge_live,
    to_wire,
)
from reconciler.secrets.values import Sensitive, from_storable, to_storable

log = structlog.get_logger(__name__)

PROVIDER = "retool"
BUILTIN_GROUPS = frozenset({"admin", "editor", "viewer", "All Users"})
# Resources every Retool instance ships with; never reported, never pruned.
BUILTIN_RESOURCE_TYPES = frozenset({"retoolDb", "retoolEmail", "retoolAI", "retoolStorage"})
FOLDER_TYPES = ("app", "resource")
# Retool requires a color on create; used when the declaration has none.
DEFAULT_COLOR = "#FFFFFF"
DEPLOY_DONE = ("SUCCESS", "ERROR")
# The longest value a fingerprint book entry is assumed to hold (the state store's column width).
# Longer records are split over several entries, with a head entry naming them.
BOOK_VALUE_LIMIT = 120
_CHUNKED = "chunked:"

_T = TypeVar("_T")
_SEMVER = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_HEX = re.compile(r"[0-9a-f]{7,40}")


def release_version(label: str) -> str:
    """The Retool release version (``MAJOR.MINOR.PATCH``) for one of our release labels.

    Retool accepts only plain semver. A tag ``v1.4.0`` becomes ``1.4.0``; a short commit id (what
    branch-tracked environments release) becomes ``0.0.<the commit id as a number>``; anything
    else (a pre-release tag) ``0.0.<a number derived from its SHA-256>``. The label itself goes
    into the release description for people to read.
    """
    match = _SEMVER.fullmatch(label)
    if match:
        return ".".join(match.groups())
    if _HEX.fullmatch(label):
        return f"0.0.{int(label[:12], 16)}"
    return f"0.0.{int(hashlib.sha256(label.encode()).hexdigest()[:12], 16)}"


class MemoryFingerprintBook:
    """A fingerprint book that lives as long as the process (tests, one-shot runs)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, scope: str) -> str | None:
        with self._lock:
            return self._entries.get((provider, scope))

    def put(self, provider: str, scope: str, fingerprint: str) -> None:
        with self._lock:
            self._entries[(provider, scope)] = fingerprint


@dataclass(frozen=True)
class _Record:
    """What we wrote for one object in one environment (see the module docstring)."""

    seen: str
    fields: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _normal(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields in the form they are compared in: tuples as lists, Sensitive by fingerprint."""
    value = from_storable(to_storable(dict(fields)))
    assert isinstance(value, dict)
    return value


class RetoolProvider:
    """Reads and applies our platform objects on one Retool instance.

    ``fingerprints`` is the book ``read`` consults for what was written: the same book the engine
    passes to ``apply`` in ``ApplyContext.fingerprints`` (the state store). It can be given here or
    set later (``provider.fingerprints = store``); until then the first ``apply`` adopts its
    context's book, and a ``read`` before any of that uses an empty in-memory book (and says so in
    the log), which makes every secret look unknown. ``transport`` and ``sleep`` exist for tests.
    """

    name = PROVIDER

    def __init__(
        self,
        host: str,
        token: str,
        *,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        burst: int = 1,
        timeout: float | httpx.Timeout = 30.0,
        max_attempts: int = 5,
        fingerprints: FingerprintBook | None = None,
        deploy_timeout: float = 600.0,
        deploy_poll_interval: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.client = RetoolClient(
            host,
            token,
            requests_per_minute=requests_per_minute,
            burst=burst,
            timeout=timeout,
            max_attempts=max_attempts,
            transport=transport,
            sleep=sleep,
        )
        # Digests of what Retool showed are keyed with the token, so the book never holds a
        # guessable hash of a value Retool displays (some displayed values embed secrets).
        self._digest_key = hashlib.sha256(b"reconciler-retool-digest:" + token.encode()).digest()
        self._book: FingerprintBook | None = fingerprints
        self._memory_book = MemoryFingerprintBook()
        self._deploy_polls = max(1, int(deploy_timeout / max(deploy_poll_interval, 1e-3)) + 1)
        self._deploy_timeout = deploy_timeout
        self._deploy_poll_interval = deploy_poll_interval
        self._sleep = sleep
        self._lock = threading.RLock()
        # Lists last fetched from the API, by collection; read() refreshes, writes keep it current.
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RetoolProvider({self.client.base_url!r})"

    @property
    def fingerprints(self) -> FingerprintBook:
        """The book ``read`` consults (see the class docstring)."""
        if self._book is None:
            log.warning("retool.no_fingerprint_book", detail="secrets written earlier cannot be recognised")
            return self._memory_book
        return self._book

    @fingerprints.setter
    def fingerprints(self, book: FingerprintBook) -> None:
        self._book = book

    def close(self) -> None:
        self.client.close()

    # == read ========================================================================================

    def read(self, environment: str) -> LiveState:
        """Every object of ``environment`` that the Retool instance holds."""
        with self._lock:
            self._cache.clear()
            book = self.fingerprints
            state: LiveState = {}

            def add(kind: str, name: str, fields: dict[str, Any]) -> None:
                state[(kind, name)] = PlatformObject(kind, name, fields)

            env = self._env_by_name(environment)
            if env is not None:
                add("environment", environment, self._environment_fields(book, environment, env))
            for name in sorted({f["name"] for f in self._folders() if self._is_user_folder(f)}):
                add("folder", name, {})
            for group in self._groups():
                if group["name"] not in BUILTIN_GROUPS:
                    add("group", group["name"], self._group_fields(book, environment, group))
            if env is not None:
                for resource, config in self._user_configs(env):
                    add("resource", resource["display_name"],
                        self._resource_fields(book, environment, resource, config))
                for variable in self._variables():
                    if self._value_for(variable, env["id"]) is not None:
                        add(
                            "config-variable",
                            variable["name"],
                            self._variable_fields(book, environment, env["id"], variable),
                        )
                apps = {a["id"]: a for a in self._apps()}
                for pinned in self._pinned_apps(environment):
                    app = apps.get(pinned["uuid"])
                    if app is not None:
                        add("app", app["name"], self._app_fields(book, environment, app, pinned["release"]))
            for name, fields in self._permissions(env):
                add("permission", name, fields)
            log.debug("retool.read", environment=environment, objects=len(state))
            return state

    # == apply =======================================================================================

    def apply(
        self,
        ctx: ApplyContext,
        change: Change,
        desired: PlatformObject | None,
        live: PlatformObject | None,
    ) -> None:
        """Make one object match ``desired`` (create/update) or remove ``live`` (delete)."""
        subject = desired if desired is not None else live
        if subject is None:
            raise ValueError("apply needs a desired or a live object")
        ensure: dict[str, Callable[[ApplyContext, PlatformObject], None]] = {
            "environment": self._ensure_environment,
            "folder": self._ensure_folder,
            "resource": self._ensure_resource,
            "config-variable": self._ensure_variable,
            "group": self._ensure_group,
            "permission": self._ensure_permission,
            "app": self._ensure_app,
        }
        remove: dict[str, Callable[[ApplyContext, PlatformObject], None]] = {
            "environment": self._delete_environment,
            "folder": self._delete_folder,
            "resource": self._delete_resource,
            "config-variable": self._delete_variable,
            "group": self._delete_group,
            "permission": self._delete_permission,
            "app": self._delete_app,
        }
        if subject.kind not in ensure:
            raise RetoolStateError(f"the retool provider does not manage objects of kind {subject.kind!r}")
        with self._lock:
            if self._book is None:
                self._book = ctx.fingerprints
            log.info(
                "retool.apply",
                environment=ctx.environment,
                kind=subject.kind,
                name=subject.name,
                change=change.value,
            )
            if change is Change.DELETE:
                remove[subject.kind](ctx, subject)
            elif desired is None:
                raise ValueError(f"{change.value} of {subject.kind} {subject.name} needs a desired object")
            else:
                ensure[subject.kind](ctx, desired)

    # -- environments ----------------------------------------------------------------------------------

    def _environment_fields(self, book: FingerprintBook, name: str, env: dict[str, Any]) -> dict[str, Any]:
        record = self._recall(book, f"environment/{name}")
        if record is not None and record.seen == self._digest(self._env_shown(env)):
            return record.fields
        return {"description": env.get("description"), "color": env.get("color")}

    @staticmethod
    def _env_shown(env: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": env["name"], "description": env.get("description"), "color": env.get("color")}

    def _ensure_environment(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        scope = f"environment/{desired.name}"
        description = desired.fields.get("description")
        color = desired.fields.get("color")
        env = self._env_by_name(desired.name)
        if env is not None and self._environment_fields(ctx.fingerprints, desired.name, env) == _normal(
            desired.fields
        ):
            return
        if env is None:
            body: dict[str, Any] = {"name": desired.name, "color": color or DEFAULT_COLOR}
            if description is not None:
                body["description"] = description
            env = self.client.post("/environments", body)
            self._environments().append(env)
        else:
            operations = []
            if env.get("description") != description:
                operations.append({"op": "replace", "path": "/description", "value": description})
            if color is not None and str(env.get("color", "")).upper() != str(color).upper():
                operations.append({"op": "replace", "path": "/color", "value": color})
            if operations:
                env = self._replace_in("environments", self.client.patch(f"/environments/{env['id']}", operations))
        self._remember(ctx.fingerprints, scope, self._env_shown(env), desired.fields)

    def _delete_environment(self, ctx: ApplyContext, live: PlatformObject) -> None:
        env = self._env_by_name(live.name)
        if env is not None:
            self.client.delete(f"/environments/{env['id']}")
            self._remove_from("environments", env["id"])
        self._forget(ctx.fingerprints, f"environment/{live.name}")

    # -- folders ------------------------------------------------------------------------------------------

    @staticmethod
    def _is_user_folder(folder: Mapping[str, Any]) -> bool:
        return not folder.get("is_system_folder") and folder.get("folder_type") in FOLDER_TYPES

    def _folder(self, name: str, folder_type: str) -> dict[str, Any] | None:
        for folder in self._folders():
            if folder["name"] == name and folder.get("folder_type") == folder_type and self._is_user_folder(folder):
                return folder
        return None

    def _folder_name(self, folder_id: str | None) -> str | None:
        for folder in self._folders():
            if folder["id"] == folder_id:
                return folder["name"] if self._is_user_folder(folder) else None
        return None

    def _ensure_typed_folder(self, name: str, folder_type: str) -> dict[str, Any]:
        folder = self._folder(name, folder_type)
        if folder is not None:
            return folder
        body: dict[str, Any] = {"name": name, "folder_type": folder_type}
        for candidate in self._folders():
            if (
                candidate.get("folder_type") == folder_type
                and candidate.get("is_system_folder")
                and candidate["name"] == "root"
                and candidate.get("parent_folder_id") is None
            ):
                body["parent_folder_id"] = candidate["id"]
        created: dict[str, Any] = self.client.post("/folders", body)
        self._folders().append(created)
        return created

    def _ensure_folder(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        for folder_type in FOLDER_TYPES:
            self._ensure_typed_folder(desired.name, folder_type)

    def _delete_folder(self, ctx: ApplyContext, live: PlatformObject) -> None:
        for folder_type in FOLDER_TYPES:
            folder = self._folder(live.name, folder_type)
            if folder is not None:
                self.client.delete(f"/folders/{folder['id']}")
                self._remove_from("folders", folder["id"])

    # -- resources ------------------------------------------------------------------------------------------

    def _resource_shown(self, resource: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            "display_name": resource["display_name"],
            "type": resource["type"],
            "folder": self._folder_name(resource.get("folder_id")),
            "options": None if config is None else config.get("options"),
        }

    def _resource_fields(
        self,
        book: FingerprintBook,
        environment: str,
        resource: Mapping[str, Any],
        config: Mapping[str, Any],
    ) -> dict[str, Any]:
        record = self._recall(book, f"resource/{environment}/{resource['display_name']}")
        if record is not None and record.seen == self._digest(self._resource_shown(resource, config)):
            return record.fields
        remembered = record.fields if record is not None else {}
        options = from_wire(resource["type"], config.get("options") or {})
        return {
            "type": resource["type"],
            "description": remembered.get("description"),
            "folder": self._folder_name(resource.get("folder_id")),
            "options": merge_live(options, remembered.get("options")),
        }

    def _ensure_resource(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        env = self._require_env(ctx.environment)
        scope = f"resource/{ctx.environment}/{desired.name}"
        resource_type = str(desired.fields.get("type"))
        folder = desired.fields.get("folder") or None
        resource = self._resource_by_name(desired.name)
        config = self._config_for(resource["id"], env["id"]) if resource is not None else None
        if (
            resource is not None
            and config is not None
            and self._resource_fields(ctx.fingerprints, ctx.environment, resource, config) == _normal(desired.fields)
        ):
            return
        if resource is not None and resource["type"] != resource_type:
            raise RetoolStateError(
                f"resource {desired.name} is a {resource['type']} resource in Retool and Retool cannot "
                f"change a resource's type to {resource_type}; delete or rename one of them"
            )
        try:
            wire = to_wire(
                resource_type,
                desired.fields.get("options") or {},
                lambda value: ctx.secrets.resolve(value.template),
            )
        except OptionError as exc:
            raise RetoolStateError(f"resource {desired.name}: {exc}") from exc
        folder_id = self._ensure_typed_folder(str(folder), "resource")["id"] if folder else None
        if resource is None:
            body: dict[str, Any] = {"type": resource_type, "display_name": desired.name, "options": wire}
            if folder_id is not None:
                body["folder_id"] = folder_id
            resource = self.client.post("/resources", body)
            self._resources().append(resource)
        if self._folder_name(resource.get("folder_id")) != folder:
            patched = self.client.patch(
                f"/resources/{resource['id']}", [{"op": "replace", "path": "/folder_id", "value": folder_id}]
            )
            resource = self._replace_in("resources", patched)
        written = False
        if config is None:
            try:
                config = self.client.post(
                    "/resource_configurations",
                    {"resource_id": resource["id"], "environment_id": env["id"], "options": wire},
                )
                self._configs().append(config)
                written = True
            except RetoolConflictError:
                # Some instances give a new resource a configuration in the default environment.
                self._cache.pop("configs", None)
                config = self._config_for(resource["id"], env["id"])
                if config is None:
                    raise
        if not written and not self._options_written(ctx, scope, resource, config, desired):
            patched = self.client.patch(
                f"/resource_configurations/{config['id']}", [{"op": "replace", "path": "/options", "value": wire}]
            )
            config = self._replace_in("configs", patched)
        self._remember(
            ctx.fingerprints,
            scope,
            self._resource_shown(resource, config),
            desired.fields,
            options_seen=self._digest(config.get("options")),
        )

    def _options_written(
        self,
        ctx: ApplyContext,
        scope: str,
        resource: Mapping[str, Any],
        config: Mapping[str, Any],
        desired: PlatformObject,
    ) -> bool:
        """Whether ``config`` still holds exactly the options we wrote, and they are the desired ones."""
        record = self._recall(ctx.fingerprints, scope)
        if record is None or record.extra.get("options_seen") != self._digest(config.get("options")):
            return False
        return record.fields.get("options") == _normal(desired.fields).get("options")

    def _delete_resource(self, ctx: ApplyContext, live: PlatformObject) -> None:
        env = self._require_env(ctx.environment)
        resource = self._resource_by_name(live.name)
        if resource is not None:
            config = self._config_for(resource["id"], env["id"])
            if config is not None:
                self.client.delete(f"/resource_configurations/{config['id']}")
                self._remove_from("configs", config["id"])
            # Only drop the resource itself when no environment uses it any more; ask the API
            # rather than trust the cache, since this cannot be undone.
            remaining = self.client.list_all("/resource_configurations", {"resource_id": resource["id"]})
            if not remaining:
                self.client.delete(f"/resources/{resource['id']}")
                self._remove_from("resources", resource["id"])
        self._forget(ctx.fingerprints, f"resource/{ctx.environment}/{live.name}")

    # -- configuration variables --------------------------------------------------------------------

    @staticmethod
    def _value_for(variable: Mapping[str, Any], env_id: str) -> str | None:
        for entry in variable.get("values") or []:
            if entry.get("environment_id") == env_id:
                return str(entry.get("value"))
        return None

    def _variable_shown(self, variable: Mapping[str, Any], env_id: str) -> dict[str, Any]:
        return {
            "name": variable["name"],
            "description": variable.get("description"),
            "secret": bool(variable.get("secret")),
            "value": self._value_for(variable, env_id),
        }

    def _variable_fields(
        self,
        book: FingerprintBook,
        environment: str,
        env_id: str,
        variable: Mapping[str, Any],
    ) -> dict[str, Any]:
        record = self._recall(book, f"config-variable/{environment}/{variable['name']}")
        shown = self._variable_shown(variable, env_id)
        if record is not None and record.seen == self._digest(shown):
            return record.fields
        remembered = record.fields.get("value") if record is not None else None
        value: Any = shown["value"]
        if isinstance(remembered, Sensitive):
            # A secret is never compared with what Retool shows (if it shows anything).
            value = remembered
        elif value == SECRET_MARKER:
            value = Sensitive(template="(unknown)", fingerprint="")
        return {"description": shown["description"], "secret": shown["secret"], "value": value}

    def _ensure_variable(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        env = self._require_env(ctx.environment)
        scope = f"config-variable/{ctx.environment}/{desired.name}"
        variable = self._variable_by_name(desired.name)
        if variable is not None and self._value_for(variable, env["id"]) is not None:
            current = self._variable_fields(ctx.fingerprints, ctx.environment, env["id"], variable)
            if current == _normal(desired.fields):
                return
        raw = desired.fields.get("value")
        value = ctx.secrets.resolve(raw.template) if isinstance(raw, Sensitive) else ("" if raw is None else str(raw))
        body: dict[str, Any] = {"name": desired.name, "secret": bool(desired.fields.get("secret"))}
        if desired.fields.get("description") is not None:
            body["description"] = desired.fields["description"]
        if variable is None:
            body["values"] = [{"environment_id": env["id"], "value": value}]
            variable = self.client.post("/configuration_variables", body)
            self._variables().append(variable)
        else:
            others = self._other_values(ctx, variable, env["id"])
            body["values"] = [*others, {"environment_id": env["id"], "value": value}]
            updated = self.client.put(f"/configuration_variables/{variable['id']}", body)
            variable = self._replace_in("variables", updated)
        self._remember(ctx.fingerprints, scope, self._variable_shown(variable, env["id"]), desired.fields)

    def _other_values(self, ctx: ApplyContext, variable: Mapping[str, Any], env_id: str) -> list[dict[str, str]]:
        """The other environments' values, to carry over a ``PUT`` that replaces them all."""
        names = {e["id"]: e["name"] for e in self._environments()}
        kept = []
        for entry in variable.get("values") or []:
            if entry.get("environment_id") == env_id:
                continue
            value = entry.get("value")
            if value == SECRET_MARKER:
                other = names.get(entry["environment_id"], entry["environment_id"])
                record = self._recall(ctx.fingerprints, f"config-variable/{other}/{variable['name']}")
                remembered = record.fields.get("value") if record is not None else None
                if not isinstance(remembered, Sensitive):
                    raise RetoolStateError(
                        f"configuration variable {variable['name']} holds a secret value for environment "
                        f"{other} that Reconciler did not write; Retool replaces every environment's "
                        f"value on update and never returns secrets, so updating {ctx.environment} "
                        f"would erase it. Declare the variable for {other} too, or remove that value "
                        "in Retool."
                    )
                value = ctx.secrets.resolve(remembered.template)
            kept.append({"environment_id": entry["environment_id"], "value": str(value)})
        return kept

    def _delete_variable(self, ctx: ApplyContext, live: PlatformObject) -> None:
        env = self._require_env(ctx.environment)
        variable = self._variable_by_name(live.name)
        if variable is not None and self._value_for(variable, env["id"]) is not None:
            others = self._other_values(ctx, variable, env["id"])
            if others:
                body: dict[str, Any] = {"name": variable["name"], "secret": bool(variable.get("secret")),
                                        "values": others}
                if variable.get("description") is not None:
                    body["description"] = variable["description"]
                self._replace_in("variables", self.client.put(f"/configuration_variables/{variable['id']}", body))
            else:
                self.client.delete(f"/configuration_variables/{variable['id']}")
                self._remove_from("variables", variable["id"])
        self._forget(ctx.fingerprints, f"config-variable/{ctx.environment}/{live.name}")

    # -- groups ------------------------------------------------------------------------------------------

    def _group_fields(self, book: FingerprintBook, environment: str, group: Mapping[str, Any]) -> dict[str, Any]:
        record = self._recall(book, f"group/{environment}/{group['name']}")
        if record is not None:
            return record.fields
        return {"description": None}

    def _ensure_group(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        if desired.name in BUILTIN_GROUPS:
            raise RetoolStateError(f"group {desired.name} is built into Retool and cannot be managed")
        group = self._group_by_name(desired.name)
        if group is not None and self._group_fields(ctx.fingerprints, ctx.environment, group) == _normal(
            desired.fields
        ):
            return
        if group is None:
            group = self.client.post("/groups", {"name": desired.name})
            self._groups().append(group)
        # Retool groups have no description: it lives only in our record.
        self._remember(ctx.fingerprints, f"group/{ctx.environment}/{desired.name}", {"name": group["name"]},
                       desired.fields)

    def _delete_group(self, ctx: ApplyContext, live: PlatformObject) -> None:
        if live.name in BUILTIN_GROUPS:
            raise RetoolStateError(f"group {live.name} is built into Retool and cannot be deleted")
        group = self._group_by_name(live.name)
        if group is not None:
            self.client.delete(f"/groups/{group['id']}")
            self._remove_from("groups", group["id"])
        self._forget(ctx.fingerprints, f"group/{ctx.environment}/{live.name}")

    # -- permissions ----------------------------------------------------------------------------------

    def _user_configs(self, env: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource, configuration) of every resource of ours configured in ``env`` (Retool's own skipped)."""
        resources = {r["id"]: r for r in self._resources()}
        for config in self._configs():
            resource = resources.get(config["resource"]["id"])
            if (resource is not None and config["environment"]["id"] == env["id"]
                    and resource["type"] not in BUILTIN_RESOURCE_TYPES):
                yield resource, config

    def _permissions(self, env: Mapping[str, Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
        apps = {a["id"]: a["name"] for a in self._apps()}
        folders = {f["id"]: f["name"] for f in self._folders() if f.get("folder_type") == "app"
                   and self._is_user_folder(f)}
        configs: dict[str, str] = {}
        if env is not None:
            configs = {config["id"]: resource["display_name"] for resource, config in self._user_configs(env)}
        for group in self._groups():
            if group["name"] in BUILTIN_GROUPS:
                continue
            views: list[tuple[str, str, dict[str, str]]] = [("app", "app", apps), ("folder", "folder", folders)]
            if env is not None:
                views.append(("resource_configuration", "resource", configs))
            for retool_type, our_type, names in views:
                for grant in self._grants(group["id"], retool_type):
                    target = names.get(str(grant.get("id")))
                    if target is None:
                        continue
                    fields = {
                        "group": group["name"],
                        "object_type": our_type,
                        "object": target,
                        "access": grant.get("access_level"),
                    }
                    yield f"{group['name']}/{our_type}/{target}", fields

    def _permission_target(self, environment: str, object_type: str, name: str) -> dict[str, str] | None:
        """Retool's ``{type, id}`` for one of our permission objects; None when it does not exist."""
        if object_type == "app":
            app = self._app_by_name(name)
            return None if app is None else {"type": "app", "id": app["id"]}
        if object_type == "folder":
            folder = self._folder(name, "app")
            return None if folder is None else {"type": "folder", "id": folder["id"]}
        if object_type == "resource":
            env = self._require_env(environment)
            resource = self._resource_by_name(name)
            config = self._config_for(resource["id"], env["id"]) if resource is not None else None
            return None if config is None else {"type": "resource_configuration", "id": config["id"]}
        raise RetoolStateError(f"permissions on {object_type!r} objects are not supported")

    def _ensure_permission(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        fields = desired.fields
        group = self._group_by_name(str(fields["group"]))
        if group is None:
            raise RetoolStateError(f"permission {desired.name}: group {fields['group']} does not exist in Retool")
        target = self._permission_target(ctx.environment, str(fields["object_type"]), str(fields["object"]))
        if target is None:
            raise RetoolStateError(
                f"permission {desired.name}: {fields['object_type']} {fields['object']} does not exist in "
                f"Retool environment {ctx.environment}"
            )
        current = {str(g.get("id")): g.get("access_level") for g in self._grants(group["id"], target["type"])}
        if current.get(target["id"]) == fields["access"]:
            return
        granted = self.client.post(
            "/permissions/grant",
            {"subject": {"type": "group", "id": group["id"]}, "object": target, "access_level": fields["access"]},
            idempotent=True,
        )
        self._cache[f"grants/{group['id']}/{target['type']}"] = self._only(granted, target["type"])

    def _delete_permission(self, ctx: ApplyContext, live: PlatformObject) -> None:
        fields = live.fields
        group = self._group_by_name(str(fields["group"]))
        if group is None:
            return
        target = self._permission_target(ctx.environment, str(fields["object_type"]), str(fields["object"]))
        if target is None:
            return
        revoked = self.client.post(
            "/permissions/revoke", {"subject": {"type": "group", "id": group["id"]}, "object": target},
            idempotent=True,
        )
        self._cache[f"grants/{group['id']}/{target['type']}"] = self._only(revoked, target["type"])

    @staticmethod
    def _only(grants: Any, object_type: str) -> list[dict[str, Any]]:
        return [g for g in grants or [] if isinstance(g, dict) and g.get("type") == object_type]

    # -- apps -------------------------------------------------------------------------------------------

    def _app_fields(
        self,
        book: FingerprintBook,
        environment: str,
        app: Mapping[str, Any],
        release: str,
    ) -> dict[str, Any]:
        """An app's live fields: what we deployed while its manifest still pins our release.

        Retool holds nothing of ours for an app but the release its environment's manifest pins;
        the app's description and folder come from its Source Control repository, which we do not
        write. So while the manifest pins the release we deployed, the app is as we declared it.
        """
        record = self._recall(book, f"app/{environment}/{app['name']}")
        if record is not None and record.extra.get("version") == release:
            return record.fields
        source_hash = _book_get(book, f"app-release/{app['name']}/{release}") or f"unknown:{release}"
        return {
            "description": app.get("description"),
            "folder": self._folder_name(app.get("folder_id")),
            "source_hash": source_hash,
            "resources": record.fields.get("resources", []) if record is not None else [],
            "config": record.fields.get("config", []) if record is not None else [],
        }

    def _ensure_app(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        deployment = ctx.deployments.get(desired.name)
        if deployment is None:
            raise RetoolStateError(f"app {desired.name}: no release was given to deploy")
        app = self._app_by_name(desired.name)
        if app is None:
            raise RetoolStateError(
                f"app {desired.name} does not exist in Retool; the API cannot create apps — they reach "
                "Retool through its Source Control repository, after which Reconciler deploys releases"
            )
        version = release_version(deployment.release)
        pinned = self._pinned_release(ctx.environment, app["id"])
        if pinned == version and self._app_fields(ctx.fingerprints, ctx.environment, app, version) == _normal(
            desired.fields
        ):
            return
        if pinned != version:
            released = self.client.get(f"/source_control/releases/apps/{app['id']}") or []
            if version not in {r.get("release_version") for r in released}:
                self.client.post(
                    f"/source_control/releases/apps/{app['id']}",
                    {
                        "release_version": version,
                        "release_description": f"{deployment.release} (commit {deployment.revision})",
                        "commit_message": f"Reconciler: release {deployment.release} of {desired.name}",
                    },
                )
            manifest = self._manifest(ctx.environment)
            apps = [a for a in manifest.get("apps") or [] if a.get("uuid") != app["id"]]
            apps.append({"uuid": app["id"], "release": version})
            body: dict[str, Any] = {"apps": apps}
            if manifest.get("workflows"):
                body["workflows"] = manifest["workflows"]
            self.client.put(
                f"/source_control/manifests/{ctx.environment}",
                {"manifest": body, "commit_message": f"Reconciler: {desired.name} {deployment.release} "
                                                      f"to {ctx.environment}"},
            )
            self._set_manifest(ctx.environment, body)
        self._deploy(ctx.environment, f"app {desired.name} {deployment.release}")
        self._remember(
            ctx.fingerprints,
            f"app/{ctx.environment}/{desired.name}",
            {"release": version},
            desired.fields,
            version=version,
            release=deployment.release,
        )
        source_hash = desired.fields.get("source_hash")
        if source_hash is not None:
            _book_put(ctx.fingerprints, f"app-release/{desired.name}/{version}", str(source_hash))

    def _delete_app(self, ctx: ApplyContext, live: PlatformObject) -> None:
        app = self._app_by_name(live.name)
        if app is not None and self._pinned_release(ctx.environment, app["id"]) is not None:
            self.client.post(
                f"/source_control/manifests/{ctx.environment}/apps/{app['id']}/delete",
                {"commit_message": f"Reconciler: remove {live.name} from {ctx.environment}"},
            )
            manifest = self._manifest(ctx.environment)
            body = dict(manifest, apps=[a for a in manifest.get("apps") or [] if a.get("uuid") != app["id"]])
            self._set_manifest(ctx.environment, body)
            self._deploy(ctx.environment, f"removal of app {live.name}")
        self._forget(ctx.fingerprints, f"app/{ctx.environment}/{live.name}")

    def _deploy(self, environment: str, what: str) -> None:
        """Trigger a Source Control deployment and wait for it to finish (bounded)."""
        deployment = self.client.post("/source_control/deploy", idempotent=True)
        for _ in range(self._deploy_polls):
            if deployment.get("status") in DEPLOY_DONE:
                break
            self._sleep(self._deploy_poll_interval)
            deployment = self.client.get(f"/source_control/deployment/{deployment['id']}")
        status = deployment.get("status")
        log.info("retool.deploy", environment=environment, deployment=deployment.get("id"), status=status)
        if status == "ERROR":
            raise ProviderError(
                f"Retool deployment {deployment.get('id')} ({what} to {environment}) ended in ERROR; "
                "see the deployment's logs in Retool's Source Control settings",
                delay=60.0,
            )
        if status != "SUCCESS":
            raise ProviderError(
                f"Retool deployment {deployment.get('id')} ({what} to {environment}) did not finish within "
                f"{self._deploy_timeout:g}s (last status {status})",
                delay=60.0,
            )

    # == the cache of API lists ========================================================================

    def _cached(self, key: str, load: Callable[[], _T]) -> _T:
        if key not in self._cache:
            self._cache[key] = load()
        value: _T = self._cache[key]
        return value

    def _environments(self) -> list[dict[str, Any]]:
        return self._cached("environments", lambda: self.client.list_all("/environments"))

    def _folders(self) -> list[dict[str, Any]]:
        return self._cached("folders", lambda: self.client.list_all("/folders"))

    def _resources(self) -> list[dict[str, Any]]:
        return self._cached("resources", lambda: self.client.list_all("/resources", {"limit": 100}))

    def _configs(self) -> list[dict[str, Any]]:
        return self._cached("configs", lambda: self.client.list_all("/resource_configurations", {"limit": 100}))

    def _variables(self) -> list[dict[str, Any]]:
        return self._cached("variables", lambda: self.client.list_all("/configuration_variables"))

    def _groups(self) -> list[dict[str, Any]]:
        return self._cached("groups", lambda: self.client.list_all("/groups"))

    def _apps(self) -> list[dict[str, Any]]:
        return self._cached("apps", lambda: self.client.list_all("/apps"))

    def _manifests(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            data = self.client.get("/source_control/manifests") or {}
            return list(data.get("manifests") or [])

        return self._cached("manifests", load)

    def _grants(self, group_id: Any, object_type: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            body = {"subject": {"type": "group", "id": group_id}, "object_type": object_type}
            return self._only(self.client.post("/permissions/listObjects", body, idempotent=True), object_type)

        return self._cached(f"grants/{group_id}/{object_type}", load)

    def _replace_in(self, key: str, item: dict[str, Any]) -> dict[str, Any]:
        items = self._cache.get(key)
        if items is not None:
            self._cache[key] = [item if existing.get("id") == item.get("id") else existing for existing in items]
        return item

    def _remove_from(self, key: str, item_id: Any) -> None:
        items = self._cache.get(key)
        if items is not None:
            self._cache[key] = [existing for existing in items if existing.get("id") != item_id]

    def _env_by_name(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self._environments() if e["name"] == name), None)

    def _require_env(self, name: str) -> dict[str, Any]:
        env = self._env_by_name(name)
        if env is None:
            raise RetoolStateError(
                f"environment {name} does not exist in Retool; declare it (kind Environment) so that it "
                "is created before the objects that live in it"
            )
        return env

    def _resource_by_name(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self._resources() if r["display_name"] == name), None)

    def _config_for(self, resource_id: str, env_id: str) -> dict[str, Any] | None:
        return next(
            (c for c in self._configs() if c["resource"]["id"] == resource_id and c["environment"]["id"] == env_id),
            None,
        )

    def _variable_by_name(self, name: str) -> dict[str, Any] | None:
        return next((v for v in self._variables() if v["name"] == name), None)

    def _group_by_name(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self._groups() if g["name"] == name), None)

    def _app_by_name(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self._apps() if a["name"] == name), None)

    def _manifest(self, environment: str) -> dict[str, Any]:
        return next((m for m in self._manifests() if m.get("name") == environment), {"name": environment})

    def _set_manifest(self, environment: str, body: Mapping[str, Any]) -> None:
        manifests = [m for m in self._manifests() if m.get("name") != environment]
        manifests.append({"name": environment, **body})
        self._cache["manifests"] = manifests

    def _pinned_apps(self, environment: str) -> list[dict[str, Any]]:
        return [a for a in self._manifest(environment).get("apps") or [] if isinstance(a, dict)]

    def _pinned_release(self, environment: str, app_id: str) -> str | None:
        return next((a.get("release") for a in self._pinned_apps(environment) if a.get("uuid") == app_id), None)

    # == records in the fingerprint book =============================================================

    def _digest(self, shown: Any) -> str:
        text = json.dumps(to_storable(shown), sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self._digest_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _recall(book: FingerprintBook, scope: str) -> _Record | None:
        raw = _book_get(book, scope)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return None
        fields = from_storable(data["fields"])
        extra = data.get("extra")
        return _Record(seen=str(data.get("seen", "")), fields=fields, extra=extra if isinstance(extra, dict) else {})

    def _remember(
        self,
        book: FingerprintBook,
        scope: str,
        shown: Any,
        fields: Mapping[str, Any],
        **extra: Any,
    ) -> None:
        record = {"seen": self._digest(shown), "fields": to_storable(dict(fields))}
        if extra:
            record["extra"] = extra
        _book_put(book, scope, json.dumps(record, sort_keys=True))

    @staticmethod
    def _forget(book: FingerprintBook, scope: str) -> None:
        book.put(PROVIDER, scope, "")


def _book_put(book: FingerprintBook, scope: str, text: str) -> None:
    """Store ``text`` under ``scope``, split over ``scope#1..n`` when it is too long for one entry."""
    if len(text) <= BOOK_VALUE_LIMIT and not text.startswith(_CHUNKED):
        book.put(PROVIDER, scope, text)
        return
    parts = [text[i:i + BOOK_VALUE_LIMIT] for i in range(0, len(text), BOOK_VALUE_LIMIT)]
    for index, part in enumerate(parts, start=1):
        book.put(PROVIDER, f"{scope}#{index}", part)
    # The head goes last and names a digest of the whole, so a half-written record reads as none.
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    book.put(PROVIDER, scope, f"{_CHUNKED}{len(parts)}:{digest}")


def _book_get(book: FingerprintBook, scope: str) -> str | None:
    head = book.get(PROVIDER, scope)
    if head is None or not head.startswith(_CHUNKED):
        return head
    count, _, digest = head[len(_CHUNKED):].partition(":")
    if not count.isdigit():
        return None
    parts = [book.get(PROVIDER, f"{scope}#{index}") for index in range(1, int(count) + 1)]
    text = "".join(part for part in parts if part is not None)
    if None in parts or hashlib.sha256(text.encode()).hexdigest()[:16] != digest:
        return None
    return text
