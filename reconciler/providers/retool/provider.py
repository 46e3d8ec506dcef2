"""The ``retool`` platform provider: our platform objects in a Retool instance, through API v2.

Called by the engine through the ``PlatformProvider`` protocol (``providers/base.py``): ``read``
turns one environment's live Retool state into ``PlatformObject``s, ``apply`` makes one object
match its declaration (or removes it). Only ``client.RetoolClient`` talks HTTP to Retool and only
``reconciler.source.branches`` (built by wiring, seen here as a ``SourceControlRepository``) talks
to its Source Control repository; this module maps our names to Retool's ids and our fields to
Retool's. One provider serves one Retool instance (a host and its token), which may host several
of our environments (one Retool environment each, of the same name).

What belongs to an environment and what to the whole instance follows Retool's documentation
(docs/retool.md cites it): resource configurations, configuration-variable values and grants on
resource configurations are per environment; groups, folders, apps and their live release, grants
on apps and folders, a resource's name/type/folder and a variable's description and secret flag are
the instance's. The engine decides which environment's run may change the instance's objects; this
provider is told (``owner``) and, for apps, releases or publishes accordingly.

==================  ===========================================================================
our kind            in Retool
==================  ===========================================================================
environment         ``/environments`` (name, description, color)
folder              an app folder *and* a resource folder of that name under the roots
resource            ``/resources`` (type, display name, folder; shared by every environment) and,
                    per environment, a ``/resource_configurations`` entry holding the options.
                    Creating a resource configures it in Retool's default environment with the
                    options sent; when that is not our environment, that configuration is removed
                    at once, so one environment's options never land in another.
config-variable     ``/configuration_variables``: one variable, one value per environment. ``PUT``
                    replaces every environment's value, so the others are carried over (secret
                    ones re-resolved from the templates we wrote; we refuse rather than erase a
                    secret value we did not write).
group               ``/groups`` (Retool's built-in admin/editor/viewer/All Users are ignored); when
                    declared, its privileges (``PATCH`` of the group's own fields) and members:
                    users of the Space are added (``/groups/{id}/members``), anyone else invited
                    (``POST /user_invites`` into the group; an open invite counts as membership)
space               ``/spaces`` of the admin Space: created with its admins
                    (``users_to_copy_as_admins``, users of the admin Space), domain updated,
                    deleted only when we made it. An instance entry that is itself a Space
                    (``space``) refuses them: only the admin Space manages Spaces.
permission          ``/permissions/grant|revoke`` for a group on an app, on the app folder of that
                    name, or — for ``resource`` — on the resource's configuration in this
                    environment (``resource_configuration``), which is per-environment access.
app                 Source Control (multi-instance releases): a release of the app is made once,
                    by the first environment in promotion order (``AppDeployment.may_release``),
                    and recorded in the release book; every environment publishes that same
                    release by pointing its instance's manifest at it. Each write pushes a branch;
                    it is merged into the deploy branch (``merge = "direct"``: by us, with the
                    repository's credentials) or awaited (``"pull-request"``: the run ends
                    ``Waiting``), then the instance deploys, the deployment is polled and the
                    instance's live release checked. On a shared instance a less protected
                    environment makes and records the release; the owner publishes it.
==================  ===========================================================================

Write-only values. Retool never returns secret values (``---encrypted-on-server---``) and holds
no place for some of our fields (a resource's or group's description, an app's source hash). For
each object we write, the provider keeps a record in the fingerprint book: the fields as declared
(secrets as template + keyed fingerprint, never their value) and a keyed digest of what Retool
showed right after the write. ``read`` reports the recorded fields while Retool still shows the
same thing, and otherwise what Retool shows now, with secrets and hidden fields filled in from
the record. So a secret changed in Git is drift (its fingerprint moved), while a secret edited
inside Retool cannot be seen. A record longer than a book entry holds (``BOOK_VALUE_LIMIT``) is
split over several entries. A record is also what makes an object ours: an object without one
is reported ``owned=False`` and never pruned.

``read`` reads each collection once, follows every page, and asks for grants only for groups that
are declared or ours (one call per group and object type), never for every group of the instance.
``apply`` is idempotent: it first computes the object's live fields the same way ``read`` does
and sends nothing when they already match, so re-running a plan after a crash writes only what is
missing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import httpx
import yaml

from reconciler import clock, logs
from reconciler.core.changes import Change
from reconciler.core.objects import OPTIONAL_FIELDS, LiveState, ObjectKey, PlatformObject
from reconciler.core.releases import ReleaseRecord
from reconciler.errors import ProviderError, Waiting
from reconciler.providers.base import ApplyContext, FingerprintBook, ReleaseBook, SourceControlRepository
from reconciler.providers.retool.client import (
    DEFAULT_REQUESTS_PER_MINUTE,
    RetoolClient,
    RetoolConflictError,
    RetoolRejectedError,
    RetoolStateError,
    RetoolUnavailableError,
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

log = logs.get_logger(__name__)

PROVIDER = "retool"
BUILTIN_GROUPS = frozenset({"admin", "editor", "viewer", "All Users"})
# Retool's group privileges we manage when declared (the group fields of openapi.json).
GROUP_PRIVILEGES = tuple(sorted(OPTIONAL_FIELDS["group"] - {"members"}))
# A record that says we created Spaces on this instance: its Spaces are read even when none is declared
# (so one removed from Git is found and, with prune, deleted).
SPACES_MARKER = "spaces"
# Resources every Retool instance ships with; never reported, never pruned.
BUILTIN_RESOURCE_TYPES = frozenset({"retoolDb", "retoolEmail", "retoolAI", "retoolStorage"})
FOLDER_TYPES = ("app", "resource")
# Retool requires a color on create; used when the declaration has none.
DEFAULT_COLOR = "#FFFFFF"
DEPLOY_DONE = ("SUCCESS", "ERROR")
PAGE = {"elementType": "PAGE"}  # apps, in Source Control's element vocabulary
PROTECTED_APPS = ".retool/protected-apps.yaml"
# The longest value a fingerprint book entry is assumed to hold (the state store's column width).
# Longer records are split over several entries, with a head entry naming them.
BOOK_VALUE_LIMIT = 120
_CHUNKED = "chunked:"

MergeMode = Literal["direct", "pull-request"]
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


class MemoryReleaseBook:
    """A release book that lives as long as the process (tests, one-shot runs)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str, str], ReleaseRecord] = {}
        self._lock = threading.Lock()

    def find_release(self, repository: str, app: str, *, key: str | None = None,
                     version: str | None = None) -> ReleaseRecord | None:
        with self._lock:
            for record in self._records.values():
                if (record.repository, record.app) == (repository, app) and key in (None, record.key) and (
                        version in (None, record.version)):
                    return record
            return None

    def record_release(self, record: ReleaseRecord) -> None:
        with self._lock:
            self._records[(record.repository, record.app, record.key)] = record


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


def _declared_names(declared: Collection[ObjectKey] | None, kind: str) -> set[str] | None:
    return None if declared is None else {name for k, name in declared if k == kind}


class RetoolProvider:
    """Reads and applies our platform objects on one Retool instance.

    ``fingerprints`` is the book ``read`` consults for what was written, ``releases`` the book of
    app releases: the same books the engine passes to ``apply`` in ``ApplyContext`` (the state
    store). They can be given here or set later; until then the first ``apply`` adopts its
    context's, and a ``read`` before any of that uses empty in-memory books (and says so in the
    log), which makes every secret look unknown.

    Apps need the instance's Source Control settings: ``manifest`` (the name of this instance's
    release manifest), ``source_control`` (the repository, to find an app's Source Control uuid and
    to merge or watch the branches the API pushes), ``deploy_branch`` and ``merge``.
    ``transport`` and ``sleep`` exist for tests.
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
        releases: ReleaseBook | None = None,
        manifest: str | None = None,
        source_control: SourceControlRepository | None = None,
        deploy_branch: str = "main",
        merge: MergeMode = "direct",
        deploy_timeout: float = 600.0,
        deploy_poll_interval: float = 2.0,
        merge_poll_interval: float = 60.0,
        instance: str | None = None,
        space: str | None = None,
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
        # Records of one instance never mix with another's: the same Retool environment name (every
        # instance has a 'production') means different objects on different instances.
        self._namespace = PROVIDER if instance is None else f"{PROVIDER}@{instance}"
        self._book: FingerprintBook | None = fingerprints
        self._memory_book = MemoryFingerprintBook()
        self._releases: ReleaseBook | None = releases
        self._memory_releases = MemoryReleaseBook()
        self.manifest = manifest
        # The Space this instance entry reaches (a team's Space, with that Space's token); None: the
        # admin Space, or an instance without Spaces. Only the admin Space creates Spaces.
        self.space = space
        self.source_control = source_control
        self.deploy_branch = deploy_branch
        self.merge_mode: MergeMode = merge
        self._deploy_polls = max(1, int(deploy_timeout / max(deploy_poll_interval, 1e-3)) + 1)
        self._deploy_timeout = deploy_timeout
        self._deploy_poll_interval = deploy_poll_interval
        self._merge_poll_interval = merge_poll_interval
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

    @property
    def releases(self) -> ReleaseBook:
        return self._releases if self._releases is not None else self._memory_releases

    @releases.setter
    def releases(self, book: ReleaseBook) -> None:
        self._releases = book

    def close(self) -> None:
        self.client.close()

    # == read ========================================================================================

    def read(
        self, environment: str, *, declared: Collection[ObjectKey] | None = None, owner: bool = True
    ) -> LiveState:
        """The objects of ``environment`` that the Retool instance holds.

        Everything Retool lists once per collection is reported (hand-made objects too, as not
        ours); grants are read only for groups that are ``declared`` or ours, apps only when
        declared or ours — or for every group and app when ``declared`` is None (an import).
        ``owner`` says whether this environment publishes the instance's apps (see the module
        docstring).
        """
        with self._lock:
            self._cache.clear()
            book = self.fingerprints
            state: LiveState = {}

            def add(kind: str, name: str, fields: dict[str, Any], owned: bool = True) -> None:
                state[(kind, name)] = PlatformObject(kind, name, fields, owned=owned)

            env = self._env_by_name(environment)
            if env is not None:
                add("environment", environment, self._environment_fields(book, environment, env),
                    self._recall(book, f"environment/{environment}") is not None)
            for name in sorted({f["name"] for f in self._folders() if self._is_user_folder(f)}):
                add("folder", name, {}, self._owns(book, f"folder/{name}"))
            groups = [g for g in self._groups() if g["name"] not in BUILTIN_GROUPS]
            for group in groups:
                add("group", group["name"], self._group_fields(book, group), self._owns_group(book, group["name"]))
            if env is not None:
                for resource, config in self._user_configs(env):
                    name = resource["display_name"]
                    add("resource", name, self._resource_fields(book, environment, resource, config),
                        self._recall(book, f"resource/{environment}/{name}") is not None)
                for variable in self._variables():
                    if self._value_for(variable, env["id"]) is not None:
                        name = variable["name"]
                        add("config-variable", name, self._variable_fields(book, environment, env["id"], variable),
                            self._recall(book, f"config-variable/{environment}/{name}") is not None)
                wanted = _declared_names(declared, "app")
                for app in self._apps():
                    record = self._recall(book, f"app/{environment}/{app['name']}")
                    if record is None and wanted is not None and app["name"] not in wanted:
                        continue  # neither declared nor ours: someone else's app
                    add("app", app["name"], self._app_fields(book, environment, app, record, owner),
                        record is not None)
            # Spaces are read only when declared or made by us: an import adopts none, and a token
            # without the Spaces scope works as long as Spaces are not used.
            if self.space is None and (_declared_names(declared, "space") or self._owns(book, SPACES_MARKER)):
                for space in self._spaces():
                    add("space", space["name"], self._space_fields(book, space),
                        self._owns(book, f"space/{space['name']}"))
            readable = self._groups_to_read(book, groups, declared)
            for name, fields in self._permissions(env, readable):
                add("permission", name, fields, self._owns(book, self._grant_scope(environment, fields)))
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
            "space": self._ensure_space,
            "permission": self._ensure_permission,
            "app": self._ensure_app,
        }
        remove: dict[str, Callable[[ApplyContext, PlatformObject], None]] = {
            "environment": self._delete_environment,
            "folder": self._delete_folder,
            "resource": self._delete_resource,
            "config-variable": self._delete_variable,
            "group": self._delete_group,
            "space": self._delete_space,
            "permission": self._delete_permission,
            "app": self._delete_app,
        }
        if subject.kind not in ensure:
            raise RetoolStateError(f"the retool provider does not manage objects of kind {subject.kind!r}")
        with self._lock:
            if self._book is None:
                self._book = ctx.fingerprints
            if self._releases is None and ctx.releases is not None:
                self._releases = ctx.releases
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
        # Folders are the instance's: the record (made on create, or on adopting one that existed)
        # is what makes it ours to prune.
        self._remember(ctx.fingerprints, f"folder/{desired.name}", {"name": desired.name}, {})

    def _delete_folder(self, ctx: ApplyContext, live: PlatformObject) -> None:
        for folder_type in FOLDER_TYPES:
            folder = self._folder(live.name, folder_type)
            if folder is not None:
                self.client.delete(f"/folders/{folder['id']}")
                self._remove_from("folders", folder["id"])
        self._forget(ctx.fingerprints, f"folder/{live.name}")

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
        recorded = dict(desired.fields)
        created = resource is None
        if not created and not ctx.owner:
            # A resource's folder is the instance's: left as it is until the owner applies it.
            folder = self._folder_name(resource.get("folder_id")) if resource is not None else None
            recorded["folder"] = folder
        folder_id = self._ensure_typed_folder(str(folder), "resource")["id"] if folder else None
        written = False
        if resource is None:
            body: dict[str, Any] = {"type": resource_type, "display_name": desired.name, "options": wire}
            if folder_id is not None:
                body["folder_id"] = folder_id
            resource = self.client.post("/resources", body)
            self._resources().append(resource)
            config, written = self._after_create(env, resource)
        if self._folder_name(resource.get("folder_id")) != folder:
            patched = self.client.patch(
                f"/resources/{resource['id']}", [{"op": "replace", "path": "/folder_id", "value": folder_id}]
            )
            resource = self._replace_in("resources", patched)
        if config is None:
            try:
                config = self.client.post(
                    "/resource_configurations",
                    {"resource_id": resource["id"], "environment_id": env["id"], "options": wire},
                )
                self._configs().append(config)
                written = True
            except RetoolConflictError:
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
            recorded,
            options_seen=self._digest(config.get("options")),
        )

    def _after_create(self, env: Mapping[str, Any], resource: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        """Deal with the configuration Retool gave a new resource in its default environment.

        Retool configures every new resource in the default environment (usually production) with
        the options of the create. When that is our environment, it is the configuration we wanted
        (returned, written). Otherwise those are this environment's options — possibly its host and
        credentials — in another environment, so that configuration is deleted before anything else.
        """
        ours: dict[str, Any] | None = None
        for config in self.client.list_all("/resource_configurations", {"resource_id": resource["id"]}):
            if config["environment"]["id"] == env["id"]:
                ours = config
            else:
                self.client.delete(f"/resource_configurations/{config['id']}")
                log.info("retool.default_configuration_removed", resource=resource["display_name"],
                         environment=config["environment"]["name"])
        if "configs" in self._cache and ours is not None:
            self._configs().append(ours)
        return ours, ours is not None

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
        shared = dict(desired.fields)
        if variable is not None and not ctx.owner:
            # The description and secret flag are the instance's: kept as they are until the owner
            # applies them. A secret value is never written into a variable not (yet) secret.
            if desired.fields.get("secret") and not variable.get("secret"):
                raise RetoolStateError(
                    f"configuration variable {desired.name} is not secret in Retool yet; its value for "
                    f"{ctx.environment} is a secret, so it waits until the instance's owning environment "
                    "has made the variable secret"
                )
            shared.update(description=variable.get("description"), secret=bool(variable.get("secret")))
        body: dict[str, Any] = {"name": desired.name, "secret": bool(shared.get("secret"))}
        if shared.get("description") is not None:
            body["description"] = shared["description"]
        if variable is None:
            body["values"] = [{"environment_id": env["id"], "value": value}]
            variable = self.client.post("/configuration_variables", body)
            self._variables().append(variable)
        else:
            others = self._other_values(ctx, variable, env["id"])
            body["values"] = [*others, {"environment_id": env["id"], "value": value}]
            updated = self.client.put(f"/configuration_variables/{variable['id']}", body)
            variable = self._replace_in("variables", updated)
        self._remember(ctx.fingerprints, scope, self._variable_shown(variable, env["id"]), shared)

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

    def _owns_group(self, book: FingerprintBook, name: str) -> bool:
        return self._owns(book, f"group/{name}")

    def _group_fields(self, book: FingerprintBook, group: Mapping[str, Any]) -> dict[str, Any]:
        """A group as we compare it: the description from our record (Retool has none), the privileges
        and members (emails of members and of open invites) as Retool shows them."""
        record = self._recall(book, f"group/{group['name']}")
        fields: dict[str, Any] = {"description": record.fields.get("description") if record is not None else None}
        fields.update({name: group.get(name) for name in GROUP_PRIVILEGES})
        fields["members"] = sorted({*self._member_ids(group), *self._open_invites(group)})
        return fields

    @staticmethod
    def _member_ids(group: Mapping[str, Any]) -> dict[str, str]:
        """Email (lower case) → user id of each member of ``group``."""
        return {str(m["email"]).lower(): str(m["id"]) for m in group.get("members") or [] if m.get("email")}

    @staticmethod
    def _open_invites(group: Mapping[str, Any]) -> dict[str, Any]:
        """Email (lower case) → id of each invite to ``group`` not yet claimed and not expired: an invited
        person counts as a member until the invite expires (7 days), then is invited again."""
        today = clock.now()
        out: dict[str, Any] = {}
        for invite in group.get("user_invites") or []:
            if invite.get("claimed_by") or not invite.get("invited_email"):
                continue
            try:
                expires = dt.datetime.fromisoformat(str(invite.get("expires_at")).replace("Z", "+00:00"))
            except ValueError:
                expires = None
            if expires is not None and expires.tzinfo is not None and expires <= today:
                continue
            out[str(invite["invited_email"]).lower()] = invite["id"]
        return out

    def _ensure_group(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        if desired.name in BUILTIN_GROUPS:
            raise RetoolStateError(f"group {desired.name} is built into Retool and cannot be managed")
        group = self._group_by_name(desired.name)
        wanted = _normal(desired.fields)
        # Members and privileges are the instance's owner's to apply: a less protected environment
        # on a shared instance creates the group bare (core/topology.py).
        managed = {k: v for k, v in wanted.items() if ctx.owner or k not in OPTIONAL_FIELDS["group"]}
        if group is not None:
            current = self._group_fields(ctx.fingerprints, group)
            if all(current.get(k) == v for k, v in managed.items()):
                return
        privileges = {k: v for k, v in managed.items() if k in GROUP_PRIVILEGES}
        if group is None:
            group = self.client.post("/groups", {"name": desired.name, **privileges})
            self._groups().append(group)
        else:
            operations = [{"op": "replace", "path": f"/{k}", "value": v}
                          for k, v in privileges.items() if group.get(k) != v]
            if operations:
                group = self._replace_in("groups", self.client.patch(f"/groups/{group['id']}", operations))
        if "members" in managed:
            group = self._sync_members(desired.name, group, list(managed["members"]))
        # Retool groups have no description: it lives only in our record, which is the instance's
        # (a group is shared by every environment) and makes the group ours.
        self._remember(ctx.fingerprints, f"group/{desired.name}", {"name": group["name"]},
                       {"description": desired.fields.get("description")})

    def _sync_members(self, name: str, group: dict[str, Any], emails: list[str]) -> dict[str, Any]:
        """Make ``group``'s members (with open invites) exactly ``emails``; the group as it is after.

        A user of this Space is added; anyone else is invited to the Space and the group (``POST
        /user_invites``), and counts as a member while the invite is open. A member or an open invite
        not declared is removed.
        """
        members, invites = self._member_ids(group), self._open_invites(group)
        wanted = set(emails)
        missing = sorted(wanted - set(members) - set(invites))
        users = {str(u["email"]).lower(): u for u in self._users()} if missing else {}
        known = [users[e] for e in missing if e in users]
        if known:
            self.client.post(f"/groups/{group['id']}/members", {
                "members": [{"id": u["id"], "is_group_admin": False} for u in known]})
        for email in (e for e in missing if e not in users):
            self.client.post("/user_invites", {"email": email, "defaultGroupIds": [group["id"]]})
            log.info("retool.invited", group=name, email=email)
        for email in sorted(set(members) - wanted):
            self.client.delete(f"/groups/{group['id']}/members/{members[email]}")
        for email in sorted(set(invites) - wanted - set(members)):
            self.client.delete(f"/groups/{group['id']}/user_invites/{invites[email]}")
        fresh: dict[str, Any] = self.client.get(f"/groups/{group['id']}")
        return self._replace_in("groups", fresh)

    # -- spaces ------------------------------------------------------------------------------------------

    def _space_fields(self, book: FingerprintBook, space: Mapping[str, Any]) -> dict[str, Any]:
        """A child Space as we compare it: its domain, and the admins we had it created with (Retool
        shows no admins; a Space we did not create has none we know of)."""
        record = self._recall(book, f"space/{space['name']}")
        return {"domain": str(space.get("domain") or "").lower(),
                "admins": record.fields.get("admins") if record is not None else None}

    def _not_a_space(self, what: str) -> None:
        if self.space is not None:
            raise RetoolStateError(
                f"{what}: this Retool instance is the Space {self.space!r}, and only the admin Space creates and "
                "manages Spaces; declare kind: Space in the workspace whose platform is the admin Space")

    def _ensure_space(self, ctx: ApplyContext, desired: PlatformObject) -> None:
        self._not_a_space(f"Space {desired.name}")
        wanted = _normal(desired.fields)
        domain, admins = str(wanted["domain"]), list(wanted.get("admins") or [])
        scope = f"space/{desired.name}"
        space = self._space_by_name(desired.name)
        if space is None:
            known = {str(u["email"]).lower() for u in self._users()}
            strangers = [email for email in admins if email not in known]
            if strangers:
                raise RetoolStateError(
                    f"Space {desired.name}: {', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not a "
                    "user of the admin Space, and Retool makes a new Space's admins from the admin Space's users "
                    "(users_to_copy_as_admins); invite them there first (list them as members of a declared group), "
                    "then apply again")
            space = self.client.post("/spaces", {"name": desired.name, "domain": domain,
                                                 "options": {"users_to_copy_as_admins": admins}})
            self._spaces().append(space)
        else:
            record = self._recall(ctx.fingerprints, scope)
            if record is not None and sorted(record.fields.get("admins") or []) != admins:
                raise RetoolStateError(
                    f"Space {desired.name}: Retool sets a Space's admins only when it creates it "
                    f"(users_to_copy_as_admins; it was created with {', '.join(record.fields.get('admins') or [])}"
                    " or nobody); change its admins inside the Space (Settings > Users, or as members of its "
                    "admin group), and put the list it was created with back in Git")
            if str(space.get("domain") or "").lower() != domain:
                space = self._replace_in("spaces", self.client.put(
                    f"/spaces/{space['id']}", {"name": desired.name, "domain": domain}))
        self._remember(ctx.fingerprints, scope, {"name": desired.name}, {"domain": domain, "admins": admins})
        self._remember(ctx.fingerprints, SPACES_MARKER, {}, {"created": True})

    def _delete_space(self, ctx: ApplyContext, live: PlatformObject) -> None:
        self._not_a_space(f"Space {live.name}")
        if not self._owns(ctx.fingerprints, f"space/{live.name}"):
            raise RetoolStateError(f"Space {live.name} was not created by Reconciler; it is not deleted")
        space = self._space_by_name(live.name)
        if space is not None:
            self.client.delete(f"/spaces/{space['id']}")
            self._remove_from("spaces", space["id"])
        self._forget(ctx.fingerprints, f"space/{live.name}")

    def _delete_group(self, ctx: ApplyContext, live: PlatformObject) -> None:
        if live.name in BUILTIN_GROUPS:
            raise RetoolStateError(f"group {live.name} is built into Retool and cannot be deleted")
        if not self._owns_group(ctx.fingerprints, live.name):
            raise RetoolStateError(f"group {live.name} was not created or adopted by Reconciler; it is not deleted")
        group = self._group_by_name(live.name)
        if group is not None:
            self.client.delete(f"/groups/{group['id']}")
            self._remove_from("groups", group["id"])
        self._forget(ctx.fingerprints, f"group/{live.name}")

    # -- permissions ----------------------------------------------------------------------------------

    def _user_configs(self, env: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource, configuration) of every resource of ours configured in ``env`` (Retool's own skipped)."""
        resources = {r["id"]: r for r in self._resources()}
        for config in self._configs():
            resource = resources.get(config["resource"]["id"])
            if (resource is not None and config["environment"]["id"] == env["id"]
                    and resource["type"] not in BUILTIN_RESOURCE_TYPES):
                yield resource, config

    def _groups_to_read(
        self, book: FingerprintBook, groups: list[dict[str, Any]], declared: Collection[ObjectKey] | None
    ) -> list[dict[str, Any]]:
        """The groups whose grants are worth reading: declared (as a group or in a grant) or ours; with
        nothing declared (``reconciler import`` adopting an instance), every group."""
        if declared is None:
            return groups
        named = {name for kind, name in declared if kind == "group"}
        named |= {name.split("/", 1)[0] for kind, name in declared if kind == "permission"}
        return [g for g in groups if g["name"] in named or self._owns_group(book, g["name"])]

    def _permissions(
        self, env: Mapping[str, Any] | None, groups: list[dict[str, Any]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        apps = {a["id"]: a["name"] for a in self._apps()}
        folders = {f["id"]: f["name"] for f in self._folders() if f.get("folder_type") == "app"
                   and self._is_user_folder(f)}
        configs: dict[str, str] = {}
        if env is not None:
            configs = {config["id"]: resource["display_name"] for resource, config in self._user_configs(env)}
        for group in groups:
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
        if current.get(target["id"]) != fields["access"]:
            granted = self.client.post(
                "/permissions/grant",
                {"subject": {"type": "group", "id": group["id"]}, "object": target, "access_level": fields["access"]},
                idempotent=True,
            )
            self._cache[f"grants/{group['id']}/{target['type']}"] = self._only(granted, target["type"])
        # The record makes the grant ours (created, or adopted when it was there already).
        self._remember(ctx.fingerprints, self._grant_scope(ctx.environment, fields), {}, {})

    @staticmethod
    def _grant_scope(environment: str, fields: Mapping[str, Any]) -> str:
        """A grant's record: per environment on a resource configuration, else the instance's."""
        name = f"{fields['group']}/{fields['object_type']}/{fields['object']}"
        return f"grant/{environment}/{name}" if fields["object_type"] == "resource" else f"grant/{name}"

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
        self._forget(ctx.fingerprints, self._grant_scope(ctx.environment, fields))

    @staticmethod
    def _only(grants: Any, object_type: str) -> list[dict[str, Any]]:
        return [g for g in grants or [] if isinstance(g, dict) and g.get("type") == object_type]

    # -- apps -------------------------------------------------------------------------------------------

    def _repository(self) -> SourceControlRepository:
        if self.source_control is None or not self.manifest:
            raise RetoolStateError(
                "apps reach Retool through Source Control: configure the instance's Source Control "
                "repository (source_control_url) and the name of its release manifest (manifest); see "
                "docs/configuration.md"
            )
        return self.source_control

    def _release_key(self, desired: PlatformObject, revision: str) -> str:
        source_hash = desired.fields.get("source_hash")
        return str(source_hash) if source_hash else f"commit:{revision}"

    def _app_fields(
        self,
        book: FingerprintBook,
        environment: str,
        app: Mapping[str, Any],
        record: _Record | None,
        owner: bool,
    ) -> dict[str, Any]:
        """An app's live fields in ``environment``.

        Retool holds nothing of ours for an app but its live release (the owner's business) and the
        releases in Source Control; the app's description and folder come from its Source Control
        repository, which we do not write. So: for the owner, while the instance runs the release we
        published, the app is as we declared it; for a less protected environment on a shared
        instance, while the release it made is recorded, likewise. Otherwise the app is what Retool
        shows, with the source hash of the release it runs as far as the release book knows it.
        """
        if owner:
            version = str(app.get("release_version") or "latest")
            if record is not None and record.extra.get("version") == version and record.extra.get("published"):
                return record.fields
            known = self._release_by_version(app["name"], version)
            source_hash: str | None = known.key if known is not None else None
            if source_hash is not None and source_hash.startswith("commit:"):
                source_hash = None
            if known is None and version != "latest":
                source_hash = f"unknown:{version}"
        else:
            if record is not None and record.extra.get("version") and not record.extra.get("published"):
                return record.fields
            source_hash = None
        return {
            "description": app.get("description"),
            "folder": self._folder_name(app.get("folder_id")),
            "source_hash": source_hash,
            "resources": record.fields.get("resources", []) if record is not None else [],
            "config": record.fields.get("config", []) if record is not None else [],
        }

    def _release_by_version(self, app: str, version: str) -> ReleaseRecord | None:
        if self.source_control is None or version == "latest":
            return None
        return self.releases.find_release(self.source_control.display_url, app, version=version)

    def _sc_uuid(self, name: str) -> str:
        """The app's Source Control uuid (what manifests name), from the repository's protected apps."""
        repository = self._repository()

        def load() -> dict[str, str]:
            raw = repository.read(self.deploy_branch, PROTECTED_APPS)
            try:
                data = yaml.safe_load(raw) if raw else None
            except yaml.YAMLError as exc:
                raise RetoolStateError(f"{PROTECTED_APPS} in {repository.display_url} is not YAML: {exc}") from exc
            entries = data.get("apps") if isinstance(data, dict) else data
            return {str(e["name"]): str(e["uuid"]) for e in entries or []
                    if isinstance(e, dict) and "name" in e and "uuid" in e}

        found = self._cached("protected", load).get(name)
        if found is None:
            raise RetoolStateError(
                f"app {name} is not protected in the Source Control repository {repository.display_url} "
                f"({PROTECTED_APPS} on {self.deploy_branch}); protect it in Retool first — the API cannot "
                "create apps"
            )
        return found

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
        scope = f"app/{ctx.environment}/{desired.name}"
        record = self._recall(ctx.fingerprints, scope)
        if self._app_fields(ctx.fingerprints, ctx.environment, app, record, ctx.owner) == _normal(desired.fields):
            return
        repository = self._repository()
        sc_uuid = self._sc_uuid(desired.name)
        release = self._release(ctx, desired, deployment.release, deployment.revision, deployment.may_release,
                                sc_uuid)
        waiting: list[str] = []
        if not release.merged:
            branch, commit = release.branch or "", release.commit or ""
            if self._accepted(branch, commit, f"release {release.version} of {desired.name}"):
                release = replace(release, merged=True)
                self.releases.record_release(release)
            else:
                waiting.append(branch)
        if not ctx.owner:
            if waiting:
                self._wait(waiting, f"release {release.version} of {desired.name}")
            # A shared instance: the release is made and recorded; publishing it is the owner's.
            self._remember(ctx.fingerprints, scope, {"version": release.version}, desired.fields,
                           version=release.version, published=False)
            log.info("retool.app_released", environment=ctx.environment, app=desired.name, version=release.version,
                     detail="published by the most protected environment on this instance")
            return
        waiting += self._pin(ctx, desired.name, sc_uuid, release.version)
        if waiting:
            self._wait(waiting, f"{desired.name} {release.version} on manifest {self.manifest}")
        live = self._live_release(app["id"])
        if live != release.version:
            self._deploy(f"app {desired.name} {release.version} ({release.label})")
            live = self._live_release(app["id"])
            if live != release.version:
                raise ProviderError(
                    f"Retool deployed manifest {self.manifest} but app {desired.name} runs release {live}, not "
                    f"{release.version}; see the deployment's logs in Retool's Source Control settings",
                    delay=60.0,
                )
        self._remember(ctx.fingerprints, scope, {"version": release.version}, desired.fields,
                       version=release.version, published=True, release=release.label)
        log.info("retool.app_published", environment=ctx.environment, app=desired.name, version=release.version,
                 repository=repository.display_url, artifact_of=release.environment)

    def _release(
        self, ctx: ApplyContext, desired: PlatformObject, label: str, revision: str, may_release: bool, sc_uuid: str
    ) -> ReleaseRecord:
        """The release of this app's declared source: the recorded one, or a new one when allowed."""
        repository = self._repository().display_url
        key = self._release_key(desired, revision)
        found = self.releases.find_release(repository, desired.name, key=key)
        if found is not None:
            return found
        if not may_release:
            raise RetoolStateError(
                f"app {desired.name}: no release was made of this source ({key}); releases are made once, by "
                f"the first environment in promotion order, and {ctx.environment} runs that same release — "
                "apply this revision there first"
            )
        version = release_version(label)
        taken = self.releases.find_release(repository, desired.name, version=version)
        if taken is not None:
            raise RetoolStateError(
                f"app {desired.name}: release {version} was already made from other source ({taken.key}, by "
                f"{taken.environment} at {taken.revision[:12]}); a release is never remade — commit or tag anew"
            )
        listed = self.client.get(f"/source_control/releases/{sc_uuid}", PAGE) or []
        if version in {r.get("release_version") for r in listed}:
            raise RetoolStateError(
                f"app {desired.name}: release {version} exists in Source Control but Reconciler did not make it "
                "from this source; a release is never remade — commit or tag anew"
            )
        # Not repeated after an error: a second POST would push a second branch. The next run finds
        # the release on the deploy branch (adopting it) or makes it again from the record-less state.
        pushed = self.client.post(
            f"/source_control/releases/{sc_uuid}",
            {
                "release_version": version,
                "release_description": f"{label} (commit {revision})",
                "commit_message": f"Reconciler: release {label} of {desired.name}",
            },
            params=PAGE,
        )
        record = ReleaseRecord(repository=repository, app=desired.name, key=key, version=version, label=label,
                               revision=revision, environment=ctx.environment, branch=pushed["branch_name"],
                               commit=pushed["commit_sha"], merged=False)
        self.releases.record_release(record)
        log.info("retool.release_pushed", app=desired.name, version=version, branch=record.branch)
        return record

    def _pin(self, ctx: ApplyContext, name: str, sc_uuid: str, version: str) -> list[str]:
        """Point this instance's manifest at ``version``: the branches still to be merged (none when done)."""
        pinned = {a.get("uuid"): a.get("release") for a in self._manifest_apps()}
        if pinned.get(sc_uuid) == version:
            return []
        pending_scope = f"manifest-push/{self.manifest}/{name}"
        pending = self._recall(ctx.fingerprints, pending_scope)
        if pending is None or pending.extra.get("version") != version:
            # Not repeated after an error: each PUT pushes another branch (as the release POST does).
            pushed = self.client.put(
                f"/source_control/manifests/{self.manifest}/{sc_uuid}",
                {"release": version, "commit_message": f"Reconciler: {name} {version} on {self.manifest}"},
                params=PAGE, idempotent=False,
            )
            self._remember(ctx.fingerprints, pending_scope, {}, {}, version=version, branch=pushed["branch_name"],
                           commit=pushed["commit_sha"])
            pending = self._recall(ctx.fingerprints, pending_scope)
            assert pending is not None
        branch, commit = str(pending.extra["branch"]), str(pending.extra["commit"])
        if not self._accepted(branch, commit, f"{name} {version} on manifest {self.manifest}"):
            return [branch]
        self._forget(ctx.fingerprints, pending_scope)
        self._cache.pop("manifests", None)
        return []

    def _accepted(self, branch: str, commit: str, what: str) -> bool:
        """Whether the pushed ``commit`` is on the deploy branch; merging it first in ``direct`` mode."""
        repository = self._repository()
        if repository.contains(commit, self.deploy_branch):
            return True
        if self.merge_mode == "direct":
            repository.merge(branch, self.deploy_branch, f"Merge {branch}: {what} (Reconciler)")
            return True
        return False

    def _wait(self, branches: list[str], what: str) -> None:
        raise Waiting(
            f"waiting for merge of {', '.join(branches)} into {self.deploy_branch} of "
            f"{self._repository().display_url} ({what})",
            delay=self._merge_poll_interval,
        )

    def _live_release(self, app_id: str) -> str:
        app = self.client.get(f"/apps/{app_id}")
        self._replace_in("apps", app)
        return str(app.get("release_version") or "latest")

    def _delete_app(self, ctx: ApplyContext, live: PlatformObject) -> None:
        """Stop publishing the app on this instance (owner), or forget the release prepared (others)."""
        scope = f"app/{ctx.environment}/{live.name}"
        if ctx.owner and self._recall(ctx.fingerprints, scope) is not None:
            sc_uuid = self._sc_uuid(live.name)
            if sc_uuid in {a.get("uuid") for a in self._manifest_apps()}:
                pushed = self.client.post(
                    f"/source_control/manifests/{self.manifest}/{sc_uuid}/delete",
                    {"commit_message": f"Reconciler: remove {live.name} from {self.manifest}"},
                    params=PAGE,
                )
                if not self._accepted(pushed["branch_name"], pushed["commit_sha"], f"removal of {live.name}"):
                    self._wait([pushed["branch_name"]], f"removal of {live.name} from manifest {self.manifest}")
                self._cache.pop("manifests", None)
                self._deploy(f"removal of app {live.name}")
        self._forget(ctx.fingerprints, scope)

    def _deploy(self, what: str) -> None:
        """Deploy the deploy branch to this instance and wait for it to finish (bounded).

        Never sent twice: after a 5xx or a timeout Retool may have started a deployment, so the
        deployments are listed to find it and it is polled instead.
        """
        before = {d["id"] for d in self._deployments()}
        try:
            deployment = self.client.post("/source_control/deploy")
        except RetoolUnavailableError as exc:
            started = [d for d in self._deployments() if d["id"] not in before]
            if not started:
                raise ProviderError(
                    f"Retool did not confirm the deployment of {what} ({exc}) and no new deployment is listed; "
                    "the next run looks again before deploying",
                    delay=60.0,
                ) from exc
            deployment = started[0]
            log.warning("retool.deploy_recovered", deployment=deployment["id"], error=str(exc))
        for _ in range(self._deploy_polls):
            if deployment.get("status") in DEPLOY_DONE:
                break
            self._sleep(self._deploy_poll_interval)
            deployment = self.client.get(f"/source_control/deployment/{deployment['id']}")
        status = deployment.get("status")
        log.info("retool.deploy", manifest=self.manifest, deployment=deployment.get("id"), status=status)
        if status == "ERROR":
            raise ProviderError(
                f"Retool deployment {deployment.get('id')} ({what} on manifest {self.manifest}) ended in ERROR; "
                "see the deployment's logs in Retool's Source Control settings",
                delay=60.0,
            )
        if status != "SUCCESS":
            raise ProviderError(
                f"Retool deployment {deployment.get('id')} ({what} on manifest {self.manifest}) did not finish "
                f"within {self._deploy_timeout:g}s (last status {status})",
                delay=60.0,
            )

    def _deployments(self) -> list[dict[str, Any]]:
        data = self.client.get("/source_control/deployments") or {}
        return list(data.get("deployments") or [])

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

    def _users(self) -> list[dict[str, Any]]:
        return self._cached("users", lambda: self.client.list_all("/users", {"limit": 100}))

    def _spaces(self) -> list[dict[str, Any]]:
        return self._cached("spaces", lambda: self.client.list_all("/spaces"))

    def _space_by_name(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self._spaces() if s["name"] == name), None)

    def _manifest_apps(self) -> list[dict[str, Any]]:
        """The entries of this instance's manifest on the deploy branch (what a deploy publishes)."""
        def load() -> list[dict[str, Any]]:
            try:
                data = self.client.get(f"/source_control/manifests/{self.manifest}") or {}
            except RetoolRejectedError as exc:
                if exc.status == 400 and "not found" in (exc.api_message or "").lower():
                    return []  # no manifest yet: the first pin creates it
                raise
            return [a for a in (data.get("manifest") or {}).get("apps") or [] if isinstance(a, dict)]

        return self._cached("manifests", load)

    def _grants(self, group_id: Any, object_type: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            body = {"subject": {"type": "group", "id": group_id}, "object_type": object_type}
            return self._only(self.client.list_all("/permissions/listObjects", body=body), object_type)

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

    # == records in the fingerprint book =============================================================

    def _digest(self, shown: Any) -> str:
        text = json.dumps(to_storable(shown), sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self._digest_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _recall(self, book: FingerprintBook, scope: str) -> _Record | None:
        raw = _book_get(book, self._namespace, scope)
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
        _book_put(book, self._namespace, scope, json.dumps(record, sort_keys=True))

    def _forget(self, book: FingerprintBook, scope: str) -> None:
        book.put(self._namespace, scope, "")

    def _owns(self, book: FingerprintBook, scope: str) -> bool:
        """Whether we created or adopted the object ``scope`` names (we keep a record of it)."""
        return self._recall(book, scope) is not None


def _book_put(book: FingerprintBook, namespace: str, scope: str, text: str) -> None:
    """Store ``text`` under ``scope``, split over ``scope#1..n`` when it is too long for one entry."""
    if len(text) <= BOOK_VALUE_LIMIT and not text.startswith(_CHUNKED):
        book.put(namespace, scope, text)
        return
    parts = [text[i:i + BOOK_VALUE_LIMIT] for i in range(0, len(text), BOOK_VALUE_LIMIT)]
    for index, part in enumerate(parts, start=1):
        book.put(namespace, f"{scope}#{index}", part)
    # The head goes last and names a digest of the whole, so a half-written record reads as none.
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    book.put(namespace, scope, f"{_CHUNKED}{len(parts)}:{digest}")


def _book_get(book: FingerprintBook, namespace: str, scope: str) -> str | None:
    head = book.get(namespace, scope)
    if head is None or not head.startswith(_CHUNKED):
        return head
    count, _, digest = head[len(_CHUNKED):].partition(":")
    if not count.isdigit():
        return None
    parts = [book.get(namespace, f"{scope}#{index}") for index in range(1, int(count) + 1)]
    text = "".join(part for part in parts if part is not None)
    if None in parts or hashlib.sha256(text.encode()).hexdigest()[:16] != digest:
        return None
    return text
