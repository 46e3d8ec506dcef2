"""A stateful fake of the Retool API v2, served for real on loopback, for tests only.

Used by the tests under ``tests/retool`` (through ``conftest.py``) in place of a Retool instance,
which cannot run here, and meant to be reused by any test that needs "a Retool". It is a fake at
our boundary, held honest by the contract:

- EVERY request is validated against ``../shared/retool/openapi.json`` with openapi-core (plus
  one rule openapi-core leaves out: no query parameter the operation does not declare, except
  ``next_token`` on operations whose answer is a page — Retool's pagination guide asks clients to
  send it as a URL parameter). An invalid request is answered 400 and recorded in ``violations``;
  the ``fake`` fixture fails the test at teardown when ``violations`` is not empty.
- EVERY response is validated too, before it leaves. Error statuses the document does not list
  for an operation (a 429, an injected 500, the 400 Retool really sends on a bad PUT) are checked
  against the API's own error shape ``{"success": false, "message": ...}``. An invalid response is
  recorded in ``violations`` and replaced by a 500.
- Answers copy what the recordings in ``../shared/retool/recordings`` show: ``{success, data}``
  envelopes, ``{data, total_count, next_token, has_more}`` pages, secret values masked as
  ``---encrypted-on-server---``, ``{"success": false, "message": ...}`` errors.

It behaves the way Retool's documentation says Retool behaves (docs/retool.md cites each source):

- environments hold resource configurations, configuration-variable values and the grants on
  resource configurations; everything else (groups, folders, apps and their live release, grants
  on apps and folders, a resource's name/type/folder, a variable's description and secret flag)
  belongs to the instance, so a change to it is seen from every environment;
- creating a resource configures it in the default environment with the options given;
- every list whose answer carries ``has_more`` is cut into pages of ``page_size``, listObjects too;
- Source Control is a real bare Git repository (``FakeSourceControl``, possibly shared by several
  instances): manifest and release writes push a branch and change nothing until someone merges
  it; ``GET`` of manifests and releases reads the deploy branch; a deployment publishes what the
  deploy branch's manifest for this instance (``manifest_name``) says, and nothing else;
- an instance has Spaces (docs.retool.com, *Configure Spaces*): only the Admin Space (the first,
  whose token is ``token``) creates and manages Spaces; ``POST /spaces`` makes a child Space with
  its own token (``space_token``), and each token sees only its Space's objects — its users,
  groups, environments, folders, resources, apps. A new Space holds what a fresh instance holds
  (two environments, the root folders, the built-in groups, Retool DB) and, as users and admins,
  the Admin Space's users named in ``users_to_copy_as_admins`` (a name not among them is refused);
- users are a Space's own: ``/users``, group members (``POST /groups/{id}/members``, ``DELETE
  /groups/{id}/members/{userSid}``, ``PUT``/``PATCH /groups/{id}``), user invites (``POST
  /user_invites`` with ``defaultGroupIds`` lists the invite in those groups' ``user_invites`` until
  it is claimed: ``claim_invite``); the Admin Space starts with one admin, ``admin@example.com``;
- deprecated operations still answer, and are counted (``deprecated_calls``) so tests can assert
  the client does not use them.

Every request is logged (``calls``) so tests can count them; faults can be injected (``inject``: N
answers with a status and a ``Retry-After``; ``fail_writes``: the k-th write fails; ``latency``).
Helpers change state out of band as a person clicking in Retool would. The server is uvicorn
running a Starlette app in a thread, on a port chosen by the OS.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import uvicorn
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from openapi_core.contrib.starlette.responses import StarletteOpenAPIResponse
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.retool.fake.source_control import FakeSourceControl

# The contract: ../shared/retool beside the checkout when it is there (the source of truth), else the
# copy vendored in tests/retool/contract/ (kept identical by test_contract.py) so CI needs nothing else.
SHARED_SPEC = Path(__file__).resolve().parents[4] / "shared" / "retool" / "openapi.json"
VENDORED_SPEC = Path(__file__).resolve().parents[1] / "contract" / "openapi.json"
SPEC_PATH = Path(os.environ.get("RETOOL_OPENAPI", SHARED_SPEC if SHARED_SPEC.exists() else VENDORED_SPEC))
API = "/api/v2"
MASK = "---encrypted-on-server---"
DEFAULT_TOKEN = "retool_fake_token_0123456789abcdef"
# Option fields Retool never shows back.
SECRET_OPTION_KEYS = frozenset({
    "password", "bearer_token", "basic_password", "digest_password", "auth0_client_secret",
    "amazon_secret_access_key", "oauth1_consumer_secret", "oauth1_token_secret", "oauth2_client_secret",
    "oauth2_access_token", "oauth2_refresh_token", "oauth2_id_token", "private_key", "private_key_passphrase",
    "connection_string", "client_key",
})
READ_ONLY_POSTS = frozenset({"/permissions/listObjects"})
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"success": {"type": "boolean", "enum": [False]}, "message": {"type": "string"}},
    "required": ["success", "message"],
}
DATABASE_TYPES = frozenset({"postgresql", "mysql", "redshift", "dbServer"})
DEPLOY_DONE = ("SUCCESS", "ERROR")
ADMIN_EMAIL = "admin@example.com"  # the first user of a fresh instance, admin of its Admin Space
GROUP_PRIVILEGES = frozenset({
    "universal_app_access", "universal_resource_access", "universal_workflow_access",
    "universal_query_library_access", "user_list_access", "audit_log_access", "unpublished_release_access",
    "usage_analytics_access", "theme_access", "account_details_access", "landing_page_app_id",
})


@dataclass(frozen=True)
class Contract:
    """What the fake needs from the OpenAPI document, computed once."""

    api: OpenAPI
    queries: dict[tuple[str, str], frozenset[str]]  # (method, template) → declared query parameters
    paged: frozenset[tuple[str, str]]  # operations whose 200 answer carries next_token
    deprecated: frozenset[tuple[str, str]]


class RememberingPathFinder(APICallPathFinder):
    """openapi-core's path finder, remembering the operation each (method, URL) resolved to.

    Finding one matches the URL against every path template of the document, for the request and
    again for the response: about half of the time the fake spent validating. The clients ask for
    the same URLs over and over, and the document never changes; what the finder cannot resolve is
    not remembered (it raises again each time)."""

    def __init__(self, spec: SchemaPath, base_url: str | None = None) -> None:
        super().__init__(spec, base_url=base_url)
        self._found: dict[tuple[str, str], PathOperationServer] = {}

    def find(self, method: str, name: str) -> PathOperationServer:
        found = self._found.get((method, name))
        if found is None:
            found = self._found[(method, name)] = super().find(method, name)
        return found


@cache
def contract() -> Contract:
    """The Retool OpenAPI document (served under /api/v2) and the facts the fake checks with it."""
    spec = json.loads(SPEC_PATH.read_text())
    spec["servers"] = [{"url": API}]
    queries: dict[tuple[str, str], frozenset[str]] = {}
    paged: set[tuple[str, str]] = set()
    deprecated: set[tuple[str, str]] = set()
    for path, item in spec["paths"].items():
        shared = [p for p in item.get("parameters", []) if p.get("in") == "query"]
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            key = (method.upper(), path)
            params = shared + [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            queries[key] = frozenset(p["name"] for p in params)
            if operation.get("deprecated"):
                deprecated.add(key)
            schema = (operation.get("responses", {}).get("200", {}).get("content", {})
                      .get("application/json", {}).get("schema", {}))
            if "next_token" in schema.get("properties", {}):
                paged.add(key)
    api = OpenAPI.from_dict(spec, config=Config(path_finder_cls=RememberingPathFinder))
    return Contract(api, queries, frozenset(paged), frozenset(deprecated))


@cache
def _document() -> dict[str, Any]:
    """The OpenAPI document as JSON, for the few facts openapi-core does not expose."""
    document: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return document


def openapi() -> tuple[OpenAPI, dict[tuple[str, str], frozenset[str]]]:
    """The document and each operation's query parameters (kept for callers of the old module)."""
    found = contract()
    return found.api, found.queries


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 0
    space: str = "admin"
    template: str | None = None  # the document's path template the request matched

    @property
    def is_write(self) -> bool:
        return self.method != "GET" and self.path not in READ_ONLY_POSTS


@dataclass
class Fault:
    status: int
    times: int
    retry_after: str | None = None
    only_writes: bool = False
    skip_writes: int = 0
    message: str = "Injected fault"
    # Carry the request out before answering with the fault (a server that failed after acting).
    after_effect: bool = False
    path: str | None = None  # only requests to this path


@dataclass
class State:
    """The objects of one Space of the instance."""

    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (group id, object type, object id) → access level
    grants: dict[tuple[int, str, str], str] = field(default_factory=dict)
    # App id on this instance → app; ``_sc_uuid`` is its Source Control uuid (never shown).
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    invites: dict[int, dict[str, Any]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)


@dataclass
class Space:
    """A Space: its own token and its own objects (docs.retool.com: Spaces)."""

    id: str
    name: str
    domain: str
    token: str
    parent: str | None
    state: State
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": self.domain, "created_at": self.created_at,
                "updated_at": self.updated_at}


class FakeRetool:
    """The fake instance; ``start()`` serves it, ``url`` is what a client calls ``host``.

    ``source_control`` is the Source Control repository the instance is connected to (None: Source
    Control is not configured), ``manifest_name`` the name of this instance's release manifest.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, page_size: int = 100, *,
                 source_control: FakeSourceControl | None = None, manifest_name: str = "production") -> None:
        self.token = token
        self.page_size = page_size
        self.source_control = source_control
        self.manifest_name = manifest_name
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.latency = 0.0
        self.deploy_outcome = "SUCCESS"
        self.deploy_polls = 2
        self.spaces: dict[str, Space] = {}
        self._admin: Space = self._new_space("Admin", "admin.example.com", token, None)
        self._space: Space = self._admin
        self._routes = self._route_table()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.asgi = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )
        self.reset(source_control=source_control, manifest_name=manifest_name)

    @property
    def state(self) -> State:
        """The objects of the Space being served (the admin Space outside a request)."""
        return self._space.state

    # == lifecycle ===================================================================================

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        contract()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, Nagle + delayed ACK add ~40 ms per answer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.asgi, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Retool server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self, *, source_control: FakeSourceControl | None = None, manifest_name: str | None = None) -> None:
        """Back to a fresh instance (default environments, root folders, built-in groups), connected
        to ``source_control`` under ``manifest_name``."""
        with self.lock:
            self.calls.clear()
            self.violations.clear()
            self.faults.clear()
            self.latency = 0.0
            self.deploy_outcome = "SUCCESS"
            self.deploy_polls = 2
            self.page_size = 100
            self.source_control = source_control
            if manifest_name is not None:
                self.manifest_name = manifest_name
            self.spaces.clear()
            self._admin = self._new_space("Admin", "admin.example.com", self.token, None)
            self._space = self._admin
            self._seed(self._admin.state, [ADMIN_EMAIL])

    def _new_space(self, name: str, domain: str, token: str, parent: str | None) -> Space:
        space = Space(str(uuid.uuid4()), name, domain, token, parent, State())
        self.spaces[token] = space
        return space

    def _seed(self, state: State, admins: list[str]) -> None:
        """What every fresh Space holds, with ``admins`` as its users and members of its admin group."""
        previous, self._space = self._space, next(s for s in self.spaces.values() if s.state is state)
        try:
            for name, color, default in (("production", "#3C92DC", True), ("staging", "#E9AB11", False)):
                env_id = str(uuid.uuid4())
                state.environments[env_id] = {
                    "id": env_id,
                    "name": name,
                    "description": f"An environment to define the {name} configuration of your resources",
                    "color": color,
                    "default": default,
                    "created_at": now(),
                    "updated_at": now(),
                }
            self._new_folder("root", "app", None, system=True)
            self._new_folder("archive", "app", "app_1", system=True)
            self._new_folder("root", "resource", None, system=True)
            self._new_folder("root", "workflow", None, system=True)
            for name, apps, resources in (("admin", "own", "own"), ("editor", "edit", "own"),
                                          ("viewer", "use", "use"), ("All Users", "edit", "own")):
                self._new_group(name, universal_app_access=apps, universal_resource_access=resources)
            builtin = self._new_resource("retoolDb", "retool_db", None, {})
            for env_id in state.environments:
                self._new_config(builtin["id"], env_id, {})
            admin_group = next(g for g in state.groups.values() if g["name"] == "admin")
            for email in admins:
                user = self._new_user(email, is_admin=True)
                admin_group["members"].append({"id": user["id"], "email": user["email"], "is_group_admin": True})
        finally:
            self._space = previous

    @contextmanager
    def space(self, name: str) -> Iterator[State]:
        """Look into (or change) the objects of the Space called ``name``, as its admin would."""
        with self.lock:
            found = next(s for s in self.spaces.values() if s.name == name)
            previous, self._space = self._space, found
            try:
                yield found.state
            finally:
                self._space = previous

    def add_user(self, email: str, *, space: str | None = None) -> str:
        """A user who joined the Space called ``space`` (the Admin Space by default); their id."""
        with self.lock:
            found = self._admin if space is None else next(s for s in self.spaces.values() if s.name == space)
            previous, self._space = self._space, found
            try:
                return str(self._new_user(email)["id"])
            finally:
                self._space = previous

    def members(self, group: str, *, space: str | None = None) -> list[str]:
        """Emails of the members of ``group`` in ``space`` (the Admin Space by default), sorted."""
        with self.space(space or self._admin.name):
            found = next(g for g in self.state.groups.values() if g["name"] == group)
            return sorted(m["email"] for m in found["members"])

    def invited(self, group: str, *, space: str | None = None) -> list[str]:
        """Emails of the open invites listed in ``group``, sorted."""
        with self.space(space or self._admin.name):
            found = next(g for g in self.state.groups.values() if g["name"] == group)
            return sorted(i["invited_email"] for i in found["user_invites"])

    def group(self, name: str, *, space: str | None = None) -> dict[str, Any]:
        with self.space(space or self._admin.name):
            return dict(next(g for g in self.state.groups.values() if g["name"] == name))

    def claim_invite(self, email: str) -> str:
        """The invitee signs up: a user in the inviting Space, member of the invite's groups; their id."""
        with self.lock:
            for space in self.spaces.values():
                previous, self._space = self._space, space
                try:
                    invite = next((i for i in space.state.invites.values()
                                   if i["invited_email"] == email and i["claimed_by"] is None), None)
                    if invite is None:
                        continue
                    user = self._new_user(email)
                    invite["claimed_by"], invite["claimed_at"] = user["id"], now()
                    for group in space.state.groups.values():
                        if any(i["id"] == invite["id"] for i in group["user_invites"]):
                            group["user_invites"] = [i for i in group["user_invites"] if i["id"] != invite["id"]]
                            group["members"].append({"id": user["id"], "email": email, "is_group_admin": False})
                    return str(user["id"])
                finally:
                    self._space = previous
            raise AssertionError(f"no open invite for {email}")

    def space_token(self, name: str) -> str:
        """The API token of the Space called ``name`` (each Space has its own)."""
        with self.lock:
            return next(s.token for s in self.spaces.values() if s.name == name)

    # == what tests look at ==========================================================================

    def counts_by_method(self) -> Counter[str]:
        with self.lock:
            return Counter(c.method for c in self.calls)

    def writes(self) -> list[Call]:
        """Calls that change state (every non-GET except POST /permissions/listObjects)."""
        with self.lock:
            return [c for c in self.calls if c.is_write]

    def reads(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if not c.is_write]

    def deprecated_calls(self) -> list[Call]:
        """Calls to operations the document marks deprecated."""
        deprecated = contract().deprecated
        with self.lock:
            return [c for c in self.calls if (c.method, c.template) in deprecated]

    def clear_calls(self) -> None:
        with self.lock:
            self.calls.clear()

    def assert_clean(self) -> None:
        with self.lock:
            if self.violations:
                raise AssertionError("the fake Retool saw contract violations:\n" + "\n".join(self.violations))

    # == faults ======================================================================================

    def inject(self, status: int, times: int = 1, *, retry_after: str | None = None,
               only_writes: bool = False, message: str = "Injected fault", path: str | None = None,
               after_effect: bool = False) -> None:
        """Answer the next ``times`` requests (or writes, or requests to ``path``) with ``status`` (and
        ``Retry-After``); with ``after_effect`` the request is carried out first."""
        with self.lock:
            self.faults.append(Fault(status, times, retry_after, only_writes, 0, message, after_effect, path))

    def fail_writes(self, k: int, status: int = 500, times: int = 1, *, after_effect: bool = False) -> None:
        """Let ``k - 1`` writes through, then answer the next ``times`` writes with ``status``.

        With ``after_effect`` the failing writes are carried out first, as by a server that
        crashed after committing.
        """
        with self.lock:
            self.faults.append(Fault(status, times, None, True, k - 1, "Internal server error", after_effect))

    # == out-of-band changes and peeks (what someone clicking in Retool would do) =====================

    def env_id(self, name: str) -> str:
        with self.lock:
            return next(e["id"] for e in self.state.environments.values() if e["name"] == name)

    def default_env(self) -> str:
        with self.lock:
            return next(e["name"] for e in self.state.environments.values() if e["default"])

    def add_app(self, name: str, description: str | None = None, files: dict[str, bytes] | None = None) -> str:
        """An app on this instance; with Source Control, protected in its repository. Returns its id here."""
        with self.lock:
            sc_uuid = self.source_control.protect_app(name, files) if self.source_control is not None else None
            return self._add_app(name, description, sc_uuid)

    def _add_app(self, name: str, description: str | None, sc_uuid: str | None) -> str:
        app_id = str(uuid.uuid4())
        self.state.apps[app_id] = {
            "id": app_id,
            "name": name,
            "description": description,
            "folder_id": "app_1",
            "protected": sc_uuid is not None,
            "synced": sc_uuid is not None,
            "shortlink": None,
            "is_module": False,
            "is_mobile_app": False,
            "created_at": now(),
            "updated_at": now(),
            "release_version": "latest",
            "_sc_uuid": sc_uuid,
            "_artifact": None,
        }
        return app_id

    def app(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(a for a in self.state.apps.values() if a["name"] == name)

    def live_releases(self) -> dict[str, str]:
        """App name → the release live on this instance ('latest' when none was published)."""
        with self.lock:
            return {a["name"]: a["release_version"] for a in self.state.apps.values()}

    def live_artifacts(self) -> dict[str, str | None]:
        """App name → blob id of the release artifact live on this instance."""
        with self.lock:
            return {a["name"]: a["_artifact"] for a in self.state.apps.values()}

    def deploy_now(self) -> dict[str, Any]:
        """Deploy the deploy branch at once, as Retool does by itself after a merge; the finished deployment."""
        with self.lock:
            deployment = self.deploy({}, None)["data"]
            record = self.state.deployments[deployment["id"]]
            while record["status"] not in DEPLOY_DONE:
                self._progress(record)
            return self._deployment_view(deployment["id"])

    def pinned(self) -> dict[str, str]:
        """App name → release this instance's manifest pins, on the deploy branch (merged)."""
        with self.lock:
            assert self.source_control is not None
            manifest = self.source_control.manifest(self.manifest_name) or {"apps": []}
            names = {a["_sc_uuid"]: a["name"] for a in self.state.apps.values()}
            return {names.get(a["uuid"], a["uuid"]): a["release"] for a in manifest["apps"]}

    def variable(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(v for v in self.state.variables.values() if v["name"] == name)

    def config_values(self, name: str) -> dict[str, str]:
        """The stored (clear) values of a configuration variable, by environment name."""
        with self.lock:
            names = {e["id"]: e["name"] for e in self.state.environments.values()}
            return {names[v["environment_id"]]: v["value"] for v in self.variable(name)["values"]}

    def set_config_value(self, name: str, environment: str, value: str) -> None:
        with self.lock:
            env_id = self.env_id(environment)
            for entry in self.variable(name)["values"]:
                if entry["environment_id"] == env_id:
                    entry["value"] = value

    def resource(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(r for r in self.state.resources.values() if r["display_name"] == name)

    def config(self, resource: str, environment: str) -> dict[str, Any] | None:
        with self.lock:
            resource_id, env_id = self.resource(resource)["id"], self.env_id(environment)
            return next((c for c in self.state.configs.values()
                         if c["resource_id"] == resource_id and c["environment_id"] == env_id), None)

    def resource_options(self, resource: str, environment: str) -> dict[str, Any]:
        """The stored (clear) options of a resource in an environment."""
        config = self.config(resource, environment)
        assert config is not None, f"{resource} has no configuration in {environment}"
        return json.loads(json.dumps(config["options"]))

    def delete_resource_configuration(self, resource: str, environment: str) -> None:
        with self.lock:
            config = self.config(resource, environment)
            assert config is not None
            self._drop_config(config["id"])

    def group_id(self, name: str) -> int:
        with self.lock:
            return next(g["id"] for g in self.state.groups.values() if g["name"] == name)

    def grants(self) -> dict[tuple[str, str, str], str]:
        """Every grant as (group name, object type, object name[@environment]) → access level."""
        with self.lock:
            out = {}
            for (group_id, object_type, object_id), access in self.state.grants.items():
                group = self.state.groups[group_id]["name"]
                out[(group, object_type, self._object_name(object_type, object_id))] = access
            return out

    def revoke(self, group: str, object_type: str, object_name: str) -> None:
        """Revoke out of band; ``object_name`` as ``grants()`` shows it."""
        with self.lock:
            group_id = self.group_id(group)
            for key in list(self.state.grants):
                if key[0] == group_id and key[1] == object_type and self._object_name(key[1], key[2]) == object_name:
                    del self.state.grants[key]
                    return
            raise AssertionError(f"no grant {group}/{object_type}/{object_name}")

    def names(self, collection: str) -> list[str]:
        """Names of the non-system objects of a collection (``environments``, ``groups``, ...)."""
        with self.lock:
            items = getattr(self.state, collection).values()
            key = "display_name" if collection == "resources" else "name"
            return sorted(i[key] for i in items if not i.get("is_system_folder"))

    def _object_name(self, object_type: str, object_id: str) -> str:
        if object_type == "folder":
            return self.state.folders[object_id]["name"]
        if object_type == "app":
            return self.state.apps[object_id]["name"]
        if object_type == "resource":
            return self.state.resources[object_id]["display_name"]
        config = self.state.configs[object_id]
        env = self.state.environments[config["environment_id"]]["name"]
        return f"{self.state.resources[config['resource_id']]['display_name']}@{env}"

    # == HTTP ========================================================================================

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        if self.latency:
            await asyncio.sleep(self.latency)
        with self.lock:
            return self._handle(request, body)

    def _handle(self, request: Request, raw: bytes) -> Response:
        method = request.method
        full_path = request.url.path
        path = full_path[len(API):] if full_path.startswith(API + "/") else full_path
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        found = contract()
        header = request.headers.get("authorization", "")
        space = self.spaces.get(header[len("Bearer "):]) if header.startswith("Bearer ") else None
        call = Call(method, path, dict(request.query_params), body, time.monotonic(),
                    space=space.name if space is not None else "?", template=self._template(method, path))
        self.calls.append(call)
        response: Response | None = None
        if space is None:
            response = self._error(401, "Invalid or missing API token")
        if response is None:
            try:
                found.api.validate_request(StarletteOpenAPIRequest(request, raw or None))
            except Exception as exc:
                response = self._violation(f"request {method} {full_path}: {exc}")
        if response is None:
            key = (method, call.template or "")
            allowed = found.queries.get(key, frozenset())
            if key in found.paged:
                allowed |= {"next_token"}
            unknown = sorted(set(call.query) - allowed)
            if unknown:
                response = self._violation(f"request {method} {full_path}: undeclared query parameters {unknown}")
        if response is None:
            assert space is not None
            previous, self._space = self._space, space
            try:
                fault = self._take_fault(call)
                if fault is None or fault.after_effect:
                    response = self._dispatch(method, path, call.query, body)
                if fault is not None:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                    response = self._error(fault.status, fault.message, headers)
            finally:
                self._space = previous
            assert response is not None
            response = self._checked(found.api, request, raw, call, response)
        else:
            # The request matched no operation (or was refused before one): only the error shape applies.
            response = self._checked_error(call, response)
        call.status = response.status_code
        return response

    def _violation(self, message: str) -> Response:
        self.violations.append(message)
        return self._error(400, message[:2000])

    def _checked(self, api: OpenAPI, request: Request, raw: bytes, call: Call, response: Response) -> Response:
        """``response`` if the document allows it for this request; else a recorded violation and a 500."""
        try:
            api.validate_response(StarletteOpenAPIRequest(request, raw or None), StarletteOpenAPIResponse(response))
            return response
        except ResponseNotFound:
            if response.status_code >= 400:
                return self._checked_error(call, response)
            problem = f"response {response.status_code} to {call.method} {call.path} is not documented"
        except Exception as exc:
            if response.status_code == 204 and not response.body and self._empty_204(call):
                return response  # HTTP forbids a body on 204; the document's "content: {}" names none

            problem = f"response to {call.method} {call.path} does not match the OpenAPI document: {exc}"
        self.violations.append(problem)
        return self._error(500, "the fake produced an invalid response")

    @staticmethod
    def _empty_204(call: Call) -> bool:
        """Whether the document's 204 answer to ``call`` is ``content: {}`` (openapi-core then asks for data)."""
        spec = _document() if call.template else {}
        answer = spec.get("paths", {}).get(call.template, {}).get(call.method.lower(), {}).get("responses", {})
        return answer.get("204", {}).get("content") == {}

    def _checked_error(self, call: Call, response: Response) -> Response:
        """An error status the document does not list: it must still have the API's error shape."""
        try:
            jsonschema.validate(json.loads(bytes(response.body)), ERROR_SCHEMA)
            return response
        except (ValueError, jsonschema.ValidationError) as exc:
            self.violations.append(f"error response to {call.method} {call.path}: {exc}")
            return self._error(500, "the fake produced an invalid error response")

    def _take_fault(self, call: Call) -> Fault | None:
        for fault in self.faults:
            if fault.only_writes and not call.is_write:
                continue
            if fault.path is not None and call.path != fault.path:
                continue
            if fault.skip_writes > 0:
                fault.skip_writes -= 1
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        response = self._json({"success": False, "message": message}, status)
        response.headers.update(headers or {})
        return response

    # -- routing -----------------------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str, re.Pattern[str], str, Callable[..., Any]]]:
        table = [
            ("GET", "/environments", self.list_environments),
            ("POST", "/environments", self.create_environment),
            ("GET", "/environments/{environmentId}", self.get_environment),
            ("PATCH", "/environments/{environmentId}", self.patch_environment),
            ("DELETE", "/environments/{environmentId}", self.delete_environment),
            ("GET", "/folders", self.list_folders),
            ("POST", "/folders", self.create_folder),
            ("GET", "/folders/{folderId}", self.get_folder),
            ("PATCH", "/folders/{folderId}", self.patch_folder),
            ("DELETE", "/folders/{folderId}", self.delete_folder),
            ("GET", "/groups", self.list_groups),
            ("POST", "/groups", self.create_group),
            ("GET", "/groups/{groupId}", self.get_group),
            ("DELETE", "/groups/{groupId}", self.delete_group),
            ("PUT", "/groups/{groupId}", self.put_group),
            ("PATCH", "/groups/{groupId}", self.patch_group),
            ("POST", "/groups/{groupId}/members", self.add_members),
            ("DELETE", "/groups/{groupId}/members/{userSid}", self.remove_member),
            ("DELETE", "/groups/{groupId}/user_invites/{userInviteId}", self.remove_group_invite),
            ("GET", "/users", self.list_users),
            ("POST", "/user_invites", self.create_invite),
            ("GET", "/user_invites", self.list_invites),
            ("GET", "/resources", self.list_resources),
            ("POST", "/resources", self.create_resource),
            ("GET", "/resources/{resourceId}", self.get_resource),
            ("PATCH", "/resources/{resourceId}", self.patch_resource),
            ("DELETE", "/resources/{resourceId}", self.delete_resource),
            ("GET", "/resource_configurations", self.list_configs),
            ("POST", "/resource_configurations", self.create_config),
            ("GET", "/resource_configurations/{configurationId}", self.get_config),
            ("PATCH", "/resource_configurations/{configurationId}", self.patch_config),
            ("DELETE", "/resource_configurations/{configurationId}", self.delete_config),
            ("GET", "/configuration_variables", self.list_variables),
            ("POST", "/configuration_variables", self.create_variable),
            ("GET", "/configuration_variables/{id}", self.get_variable),
            ("PUT", "/configuration_variables/{id}", self.put_variable),
            ("DELETE", "/configuration_variables/{id}", self.delete_variable),
            ("POST", "/permissions/grant", self.grant),
            ("POST", "/permissions/revoke", self.revoke_request),
            ("POST", "/permissions/listObjects", self.list_objects),
            ("GET", "/apps", self.list_apps),
            ("GET", "/apps/{appId}", self.get_app),
            ("GET", "/source_control/manifests", self.list_manifests),
            ("GET", "/source_control/manifests/{manifestName}", self.get_manifest),
            ("PUT", "/source_control/manifests/{manifestName}", self.put_manifest),
            ("POST", "/source_control/manifests/{manifestName}/delete", self.delete_manifest),
            ("PUT", "/source_control/manifests/{manifestName}/apps/{appUuid}", self.put_manifest_app),
            ("PUT", "/source_control/manifests/{manifestName}/{elementUuid}", self.put_manifest_element),
            ("POST", "/source_control/manifests/{manifestName}/apps/{appUuid}/delete", self.unpin_app),
            ("POST", "/source_control/manifests/{manifestName}/{elementUuid}/delete", self.delete_manifest_element),
            ("GET", "/source_control/releases/apps/{appUuid}", self.list_app_releases),
            ("POST", "/source_control/releases/apps/{appUuid}", self.create_app_release),
            ("GET", "/source_control/releases/{elementUuid}", self.list_releases),
            ("POST", "/source_control/releases/{elementUuid}", self.create_release),
            ("POST", "/source_control/deploy", self.deploy),
            ("GET", "/source_control/deployment/{id}", self.get_deployment),
            ("GET", "/source_control/deployments", self.list_deployments),
            ("GET", "/spaces", self.list_spaces),
            ("POST", "/spaces", self.create_space),
            ("GET", "/spaces/{spaceId}", self.get_space),
            ("PUT", "/spaces/{spaceId}", self.put_space),
            ("DELETE", "/spaces/{spaceId}", self.delete_space),
        ]
        out = []
        for method, template, handler in table:
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            out.append((method, pattern, template, handler))
        return out

    @staticmethod
    def _template(method: str, path: str) -> str | None:
        """The document's path template for a request path (literal segments beat parameters)."""
        _, queries = openapi()
        best: tuple[int, str] | None = None
        for candidate_method, template in queries:
            if candidate_method != method:
                continue
            parts = re.split(r"(\{\w+\})", template)
            pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            if re.fullmatch(pattern, path):
                score = template.count("{")
                if best is None or score < best[0]:
                    best = (score, template)
        return None if best is None else best[1]

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        for route_method, pattern, _, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    result = handler(query, body, **match.groupdict())
                except ApiError as exc:
                    return self._error(exc.status, exc.message)
                if result is None:
                    return Response(status_code=204)
                status, payload = result if isinstance(result, tuple) else (200, result)
                return self._json(payload, status)
        return self._error(501, f"{method} {path} is not implemented by the fake")

    def _page(self, items: list[dict[str, Any]], query: dict[str, str] | None = None) -> dict[str, Any]:
        """One page of ``items``: ``page_size`` of them (less when the request asks a smaller ``limit``)."""
        start = int((query or {}).get("next_token") or 0)
        limit = min(int((query or {}).get("limit") or self.page_size), self.page_size)
        chunk = items[start:start + limit]
        more = start + limit < len(items)
        return {"success": True, "data": chunk, "total_count": len(items),
                "next_token": str(start + limit) if more else None, "has_more": more}

    @staticmethod
    def _whole(items: list[dict[str, Any]]) -> dict[str, Any]:
        """Every item in one answer shaped as a page (what grant and revoke send back)."""
        return {"success": True, "data": items, "total_count": len(items), "next_token": None, "has_more": False}

    @staticmethod
    def _ok(data: Any) -> dict[str, Any]:
        return {"success": True, "data": data}

    @staticmethod
    def _apply_patch(item: dict[str, Any], operations: list[dict[str, Any]], allowed: set[str]) -> None:
        for operation in operations:
            key = operation["path"].lstrip("/")
            if operation["op"] not in ("replace", "add") or key not in allowed:
                raise ApiError(400, f"Unsupported patch operation {operation['op']} {operation['path']}")
            item[key] = operation.get("value")
        item["updated_at"] = now()

    # -- environments --------------------------------------------------------------------------------

    def _env(self, env_id: str) -> dict[str, Any]:
        env = self.state.environments.get(env_id)
        if env is None:
            raise ApiError(404, "Environment not found")
        return env

    def list_environments(self, query: dict[str, str], body: Any) -> Any:
        return self._page(list(self.state.environments.values()), query)

    def create_environment(self, query: dict[str, str], body: Any) -> Any:
        if any(e["name"] == body["name"] for e in self.state.environments.values()):
            raise ApiError(409, f"Environment {body['name']} already exists")
        env_id = str(uuid.uuid4())
        env = {"id": env_id, "name": body["name"], "description": body.get("description"), "color": body["color"],
               "default": False, "created_at": now(), "updated_at": now()}
        self.state.environments[env_id] = env
        return self._ok(env)

    def get_environment(self, query: dict[str, str], body: Any, environmentId: str) -> Any:
        return self._ok(self._env(environmentId))

    def patch_environment(self, query: dict[str, str], body: Any, environmentId: str) -> Any:
        env = self._env(environmentId)
        self._apply_patch(env, body["operations"], {"name", "description", "color"})
        return self._ok(env)

    def delete_environment(self, query: dict[str, str], body: Any, environmentId: str) -> Any:
        self._env(environmentId)
        del self.state.environments[environmentId]
        for config in [c for c in self.state.configs.values() if c["environment_id"] == environmentId]:
            self._drop_config(config["id"])
        for variable in self.state.variables.values():
            variable["values"] = [v for v in variable["values"] if v["environment_id"] != environmentId]
        return None

    # -- folders ---------------------------------------------------------------------------------------

    def _new_folder(self, name: str, folder_type: str, parent: str | None, system: bool = False) -> dict[str, Any]:
        self.state.counters[folder_type] += 1
        folder_id = f"{folder_type}_{self.state.counters[folder_type]}"
        folder = {"id": folder_id, "legacy_id": folder_id, "name": name, "parent_folder_id": parent,
                  "is_system_folder": system, "folder_type": folder_type, "created_at": now(), "updated_at": now()}
        self.state.folders[folder_id] = folder
        return folder

    def _folder_or_404(self, folder_id: str) -> dict[str, Any]:
        folder = self.state.folders.get(folder_id)
        if folder is None:
            raise ApiError(404, "Folder not found")
        return folder

    def list_folders(self, query: dict[str, str], body: Any) -> Any:
        return self._page(list(self.state.folders.values()), query)

    def create_folder(self, query: dict[str, str], body: Any) -> Any:
        parent = body.get("parent_folder_id") or f"{body['folder_type']}_1"
        if self._folder_or_404(parent)["folder_type"] != body["folder_type"]:
            raise ApiError(422, "Parent folder has a different type")
        if any(f["name"] == body["name"] and f["parent_folder_id"] == parent for f in self.state.folders.values()):
            raise ApiError(409, f"Folder {body['name']} already exists")
        return self._ok(self._new_folder(body["name"], body["folder_type"], parent))

    def get_folder(self, query: dict[str, str], body: Any, folderId: str) -> Any:
        return self._ok(self._folder_or_404(folderId))

    def patch_folder(self, query: dict[str, str], body: Any, folderId: str) -> Any:
        folder = self._folder_or_404(folderId)
        self._apply_patch(folder, body["operations"], {"name", "parent_folder_id"})
        return self._ok(folder)

    def delete_folder(self, query: dict[str, str], body: Any, folderId: str) -> Any:
        folder = self._folder_or_404(folderId)
        if folder["is_system_folder"]:
            raise ApiError(422, "System folders cannot be deleted")
        del self.state.folders[folderId]
        for item in [*self.state.resources.values(), *self.state.apps.values()]:
            if item.get("folder_id") == folderId:
                item["folder_id"] = None if "type" in item else "app_1"
        self.state.grants = {k: v for k, v in self.state.grants.items() if k[2] != folderId}
        return None

    # -- groups -----------------------------------------------------------------------------------------

    def _new_group(self, name: str, **fields: Any) -> dict[str, Any]:
        self.state.counters["group"] += 1
        group_id = self.state.counters["group"] + (0 if self.state.counters["group"] <= 4 else 100)
        group = {
            "id": group_id, "legacy_id": group_id, "name": name, "members": [],
            "universal_app_access": "none", "universal_resource_access": "none",
            "universal_workflow_access": "none", "universal_query_library_access": "none",
            "user_invites": [], "user_list_access": False, "audit_log_access": False,
            "unpublished_release_access": False, "usage_analytics_access": False, "theme_access": False,
            "account_details_access": False, "landing_page_app_id": None, "created_at": now(), "updated_at": now(),
        }
        group.update(fields)
        self.state.groups[group_id] = group
        return group

    def _group_or_404(self, group_id: Any) -> dict[str, Any]:
        group = self.state.groups.get(int(group_id)) if str(group_id).isdigit() else None
        if group is None:
            raise ApiError(404, "Group not found")
        return group

    def list_groups(self, query: dict[str, str], body: Any) -> Any:
        return self._page(list(self.state.groups.values()), query)

    def create_group(self, query: dict[str, str], body: Any) -> Any:
        if any(g["name"] == body["name"] for g in self.state.groups.values()):
            raise ApiError(409, f"Group {body['name']} already exists")
        fields = {k: v for k, v in body.items() if k in GROUP_PRIVILEGES}
        members = self._members(body.get("members") or [])
        return self._ok(self._new_group(body["name"], members=members, **fields))

    def get_group(self, query: dict[str, str], body: Any, groupId: str) -> Any:
        return self._ok(self._group_or_404(groupId))

    def put_group(self, query: dict[str, str], body: Any, groupId: str) -> Any:
        group = self._group_or_404(groupId)
        if "name" in body and body["name"] != group["name"] and any(
                g["name"] == body["name"] for g in self.state.groups.values()):
            raise ApiError(409, f"Group {body['name']} already exists")
        group.update({k: v for k, v in body.items() if k in GROUP_PRIVILEGES or k == "name"})
        if "members" in body:
            group["members"] = self._members(body["members"])
        group["updated_at"] = now()
        return self._ok(group)

    def patch_group(self, query: dict[str, str], body: Any, groupId: str) -> Any:
        group = self._group_or_404(groupId)
        self._apply_patch(group, body["operations"], {"name", *GROUP_PRIVILEGES})
        return self._ok(group)

    def _user_or_404(self, user_id: str) -> dict[str, Any]:
        user = self.state.users.get(user_id)
        if user is None:
            raise ApiError(404, f"User {user_id} not found")
        return user

    def _members(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Group members as Retool shows them, from the ``{id, is_group_admin}`` entries of a request."""
        out: dict[str, dict[str, Any]] = {}
        for entry in entries:
            user = self._user_or_404(entry["id"])
            out[user["id"]] = {"id": user["id"], "email": user["email"],
                               "is_group_admin": bool(entry.get("is_group_admin", False))}
        return list(out.values())

    def add_members(self, query: dict[str, str], body: Any, groupId: str) -> Any:
        group = self._group_or_404(groupId)
        current = {m["id"]: m for m in group["members"]}
        for member in self._members(body["members"]):
            current[member["id"]] = member  # an existing member's is_group_admin is updated
        group["members"], group["updated_at"] = list(current.values()), now()
        return self._ok(group)

    def remove_member(self, query: dict[str, str], body: Any, groupId: str, userSid: str) -> Any:
        group = self._group_or_404(groupId)
        if not any(m["id"] == userSid for m in group["members"]):
            raise ApiError(404, f"User {userSid} is not a member of group {group['name']}")
        group["members"] = [m for m in group["members"] if m["id"] != userSid]
        group["updated_at"] = now()
        return self._ok(group)

    def remove_group_invite(self, query: dict[str, str], body: Any, groupId: str, userInviteId: str) -> Any:
        group = self._group_or_404(groupId)
        if not any(str(i["id"]) == userInviteId for i in group["user_invites"]):
            raise ApiError(404, f"User invite {userInviteId} is not in group {group['name']}")
        group["user_invites"] = [i for i in group["user_invites"] if str(i["id"]) != userInviteId]
        return None

    # -- users and invites ------------------------------------------------------------------------------

    def _new_user(self, email: str, *, is_admin: bool = False) -> dict[str, Any]:
        if any(u["email"] == email for u in self.state.users.values()):
            raise ApiError(409, f"User {email} already exists")
        self.state.counters["user"] += 1
        user = {
            "id": f"user_{uuid.uuid4().hex[:16]}", "legacy_id": self.state.counters["user"], "email": email,
            "active": True, "created_at": now(), "last_active": None, "first_name": None, "last_name": None,
            "metadata": {}, "is_admin": is_admin, "user_type": "default", "two_factor_auth_enabled": False,
        }
        self.state.users[user["id"]] = user
        return user

    def list_users(self, query: dict[str, str], body: Any) -> Any:
        users = [u for u in self.state.users.values() if query.get("email") in (None, u["email"])]
        if "limit" not in query:  # "If not provided, all items are returned"
            return self._whole(users)
        return self._page(users, query)

    def create_invite(self, query: dict[str, str], body: Any) -> Any:
        email = body["email"]
        if any(u["email"] == email for u in self.state.users.values()):
            raise ApiError(409, f"User {email} is already a member of this organization")
        groups = [self._group_or_404(g) for g in body.get("defaultGroupIds") or []]
        self.state.counters["invite"] += 1
        invite_id = self.state.counters["invite"]
        inviter = next(u["id"] for u in self.state.users.values() if u["is_admin"])
        invite = {
            "id": invite_id, "legacy_id": invite_id, "invited_by": inviter, "invited_email": email,
            "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "claimed_by": None, "claimed_at": None, "user_type": "default", "metadata": body.get("metadata") or {},
            "created_at": now(), "invite_link": f"https://{self._space.domain}/invite/{uuid.uuid4().hex}",
            "groups": [{"legacy_id": g["id"], "id": g["id"], "name": g["name"]} for g in groups],
        }
        self.state.invites[invite_id] = invite
        for group in groups:
            group["user_invites"].append(invite)
        return self._ok(invite)

    def list_invites(self, query: dict[str, str], body: Any) -> Any:
        return self._page(list(self.state.invites.values()), query)

    def delete_group(self, query: dict[str, str], body: Any, groupId: str) -> Any:
        group = self._group_or_404(groupId)
        del self.state.groups[group["id"]]
        self.state.grants = {k: v for k, v in self.state.grants.items() if k[0] != group["id"]}
        return None

    # -- resources and their configurations -------------------------------------------------------------

    def _new_resource(self, resource_type: str, name: str, folder_id: str | None, options: Any) -> dict[str, Any]:
        resource_id = str(uuid.uuid4())
        resource = {"id": resource_id, "type": resource_type, "display_name": name, "folder_id": folder_id,
                    "protected": False, "created_at": now(), "updated_at": now(), "base_options": options}
        self.state.resources[resource_id] = resource
        return resource

    @staticmethod
    def _resource_view(resource: dict[str, Any], with_null_folder: bool = False) -> dict[str, Any]:
        view = {k: v for k, v in resource.items() if k != "base_options"}
        if view["folder_id"] is None and not with_null_folder:
            del view["folder_id"]
        return view

    def _resource_or_404(self, resource_id: str) -> dict[str, Any]:
        resource = self.state.resources.get(resource_id)
        if resource is None:
            raise ApiError(404, "Resource not found")
        return resource

    @staticmethod
    def _check_options(resource_type: str, options: dict[str, Any]) -> None:
        if resource_type in DATABASE_TYPES and "database_options" not in options:
            raise ApiError(400, f"Options for a {resource_type} resource need database_options")
        if resource_type == "restapi" and "base_url" not in options:
            raise ApiError(400, "Options for a restapi resource need base_url")

    def list_resources(self, query: dict[str, str], body: Any) -> Any:
        items = [self._resource_view(r) for r in self.state.resources.values()]
        return self._page(items, query)

    def create_resource(self, query: dict[str, str], body: Any) -> Any:
        if any(r["display_name"] == body["display_name"] for r in self.state.resources.values()):
            raise ApiError(409, f"Resource {body['display_name']} already exists")
        self._check_options(body["type"], body["options"])
        folder_id = body.get("folder_id")
        if folder_id is not None and self._folder_or_404(folder_id)["folder_type"] != "resource":
            raise ApiError(400, "folder_id must be a resource folder")
        resource = self._new_resource(body["type"], body["display_name"], folder_id, body["options"])
        # "New resources are configured for the default environment automatically" (Retool's
        # environments guide): the options of the create land in the default environment.
        default = next(e["id"] for e in self.state.environments.values() if e["default"])
        self._new_config(resource["id"], default, body["options"])
        return self._ok(self._resource_view(resource))

    def get_resource(self, query: dict[str, str], body: Any, resourceId: str) -> Any:
        return self._ok(self._resource_view(self._resource_or_404(resourceId)))

    def patch_resource(self, query: dict[str, str], body: Any, resourceId: str) -> Any:
        resource = self._resource_or_404(resourceId)
        self._apply_patch(resource, body["operations"], {"display_name", "folder_id"})
        return self._ok(self._resource_view(resource))

    def delete_resource(self, query: dict[str, str], body: Any, resourceId: str) -> Any:
        self._resource_or_404(resourceId)
        for config in [c for c in self.state.configs.values() if c["resource_id"] == resourceId]:
            self._drop_config(config["id"])
        del self.state.resources[resourceId]
        self.state.grants = {k: v for k, v in self.state.grants.items() if k[2] != resourceId}
        return None

    def _new_config(self, resource_id: str, env_id: str, options: Any) -> dict[str, Any]:
        config_id = str(uuid.uuid4())
        config = {"id": config_id, "resource_id": resource_id, "environment_id": env_id, "options": options,
                  "created_at": now(), "updated_at": now()}
        self.state.configs[config_id] = config
        return config

    def _drop_config(self, config_id: str) -> None:
        del self.state.configs[config_id]
        self.state.grants = {k: v for k, v in self.state.grants.items() if k[2] != config_id}

    @staticmethod
    def _masked(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (MASK if k in SECRET_OPTION_KEYS and isinstance(v, str) and v else FakeRetool._masked(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [FakeRetool._masked(v) for v in value]
        return value

    def _config_view(self, config: dict[str, Any]) -> dict[str, Any]:
        resource = self.state.resources[config["resource_id"]]
        options = self._masked(config["options"])
        if resource["type"] == "restapi" and "authentication_options" not in options:
            options = {**options, "authentication_options": {"authentication_type": "none"}}
        return {
            "id": config["id"],
            "resource": self._resource_view(resource, with_null_folder=True),
            "environment": self.state.environments[config["environment_id"]],
            "options": options,
            "created_at": config["created_at"],
            "updated_at": config["updated_at"],
        }

    def _config_or_404(self, config_id: str) -> dict[str, Any]:
        config = self.state.configs.get(config_id)
        if config is None:
            raise ApiError(404, "Resource configuration not found")
        return config

    def list_configs(self, query: dict[str, str], body: Any) -> Any:
        items = [
            self._config_view(c)
            for c in self.state.configs.values()
            if query.get("resource_id") in (None, c["resource_id"])
            and query.get("environment_id") in (None, c["environment_id"])
        ]
        return self._page(items, query)

    def create_config(self, query: dict[str, str], body: Any) -> Any:
        resource = self._resource_or_404(body["resource_id"])
        if body["environment_id"] not in self.state.environments:
            raise ApiError(400, f'Environment with id "{body["environment_id"]}" does not exist')
        if any(c["resource_id"] == resource["id"] and c["environment_id"] == body["environment_id"]
               for c in self.state.configs.values()):
            raise ApiError(409, "This resource already has a configuration for that environment")
        self._check_options(resource["type"], body["options"])
        return self._ok(self._config_view(self._new_config(resource["id"], body["environment_id"], body["options"])))

    def get_config(self, query: dict[str, str], body: Any, configurationId: str) -> Any:
        # The document describes this answer without the usual envelope.
        return self._config_view(self._config_or_404(configurationId))

    def patch_config(self, query: dict[str, str], body: Any, configurationId: str) -> Any:
        config = self._config_or_404(configurationId)
        self._apply_patch(config, body["operations"], {"options"})
        self._check_options(self.state.resources[config["resource_id"]]["type"], config["options"])
        return self._ok(self._config_view(config))

    def delete_config(self, query: dict[str, str], body: Any, configurationId: str) -> Any:
        self._config_or_404(configurationId)
        self._drop_config(configurationId)
        return None

    # -- configuration variables -------------------------------------------------------------------------

    def _variable_view(self, variable: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in variable.items() if not (k == "description" and v is None)}
        if variable["secret"]:
            view["values"] = [{"environment_id": v["environment_id"], "value": MASK} for v in variable["values"]]
        return view

    def _variable_or_404(self, variable_id: str) -> dict[str, Any]:
        variable = self.state.variables.get(variable_id)
        if variable is None:
            raise ApiError(404, "Configuration variable not found")
        return variable

    def _check_values(self, values: list[dict[str, Any]]) -> list[dict[str, str]]:
        for entry in values:
            if entry["environment_id"] not in self.state.environments:
                raise ApiError(400, f'Environment with id "{entry["environment_id"]}" does not exist')
        return [{"environment_id": v["environment_id"], "value": v["value"]} for v in values]

    def list_variables(self, query: dict[str, str], body: Any) -> Any:
        return self._ok([self._variable_view(v) for v in self.state.variables.values()])

    def create_variable(self, query: dict[str, str], body: Any) -> Any:
        if any(v["name"] == body["name"] for v in self.state.variables.values()):
            raise ApiError(409, f"Configuration variable {body['name']} already exists")
        variable_id = str(uuid.uuid4())
        variable = {"id": variable_id, "name": body["name"], "description": body.get("description"),
                    "secret": body["secret"], "values": self._check_values(body["values"])}
        self.state.variables[variable_id] = variable
        return self._ok(self._variable_view(variable))

    def get_variable(self, query: dict[str, str], body: Any, id: str) -> Any:
        return self._ok(self._variable_view(self._variable_or_404(id)))

    def put_variable(self, query: dict[str, str], body: Any, id: str) -> Any:
        variable = self._variable_or_404(id)
        values = self._check_values(body["values"])
        variable.update(name=body["name"], description=body.get("description"), secret=body["secret"], values=values)
        return self._ok(self._variable_view(variable))

    def delete_variable(self, query: dict[str, str], body: Any, id: str) -> Any:
        self._variable_or_404(id)
        del self.state.variables[id]
        return None

    # -- permissions --------------------------------------------------------------------------------------

    def _object_exists(self, object_type: str, object_id: str) -> bool:
        collection = {"folder": self.state.folders, "app": self.state.apps, "resource": self.state.resources,
                      "resource_configuration": self.state.configs}.get(object_type)
        return collection is not None and object_id in collection

    def _objects_of(self, group_id: int, object_type: str) -> list[dict[str, Any]]:
        return [{"type": t, "id": i, "access_level": a}
                for (g, t, i), a in self.state.grants.items() if g == group_id and t == object_type]

    def _subject(self, body: Any) -> int:
        subject = body["subject"]
        if subject["type"] != "group":
            raise ApiError(400, "The fake only knows group subjects")
        return int(self._group_or_404(subject["id"])["id"])

    def grant(self, query: dict[str, str], body: Any) -> Any:
        group_id = self._subject(body)
        target = body["object"]
        if not self._object_exists(target["type"], target["id"]):
            raise ApiError(404, f"{target['type']} {target['id']} not found")
        self.state.grants[(group_id, target["type"], target["id"])] = body["access_level"]
        return self._whole(self._objects_of(group_id, target["type"]))

    def revoke_request(self, query: dict[str, str], body: Any) -> Any:
        group_id = self._subject(body)
        target = body["object"]
        self.state.grants.pop((group_id, target["type"], target["id"]), None)
        return self._whole(self._objects_of(group_id, target["type"]))

    def list_objects(self, query: dict[str, str], body: Any) -> Any:
        return self._page(self._objects_of(self._subject(body), body["object_type"]), query)

    # -- apps and source control ---------------------------------------------------------------------------

    @staticmethod
    def _app_view(app: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in app.items() if not k.startswith("_")}

    def list_apps(self, query: dict[str, str], body: Any) -> Any:
        return self._page([self._app_view(a) for a in self.state.apps.values()], query)

    def get_app(self, query: dict[str, str], body: Any, appId: str) -> Any:
        app = self.state.apps.get(appId)
        if app is None:
            raise ApiError(404, "App not found")
        return self._ok(self._app_view(app))

    def _sc(self) -> FakeSourceControl:
        if self.source_control is None or self._space is not self._admin:
            raise ApiError(400, "Source Control is not configured")
        return self.source_control

    @staticmethod
    def _pushed(branch: str, sha: str) -> dict[str, Any]:
        return {"success": True, "data": {"commit_sha": sha, "branch_name": branch,
                                          "url": f"https://git.example.com/retool/compare/main...{branch}"}}

    def _element(self, sc_uuid: str, query: dict[str, str] | None = None) -> str:
        """The protected app ``sc_uuid`` names (by its Source Control uuid), or a 400."""
        if query is not None and query.get("elementType") != "PAGE":
            raise ApiError(400, f"The fake knows apps (PAGE) only, not {query.get('elementType')}")
        name = self._sc().app_name(sc_uuid)
        if name is None:
            raise ApiError(400, f"No protected element with uuid {sc_uuid} in the Source Control repository")
        return name

    def list_manifests(self, query: dict[str, str], body: Any) -> Any:
        return self._ok({"manifests": self._sc().manifests()})

    def get_manifest(self, query: dict[str, str], body: Any, manifestName: str) -> Any:
        manifest = self._sc().manifest(manifestName)
        if manifest is None:
            raise ApiError(400, f"Manifest {manifestName} not found")
        return self._ok({"manifest": manifest})

    def put_manifest(self, query: dict[str, str], body: Any, manifestName: str) -> Any:
        manifest = body.get("manifest") or {}
        for entry in manifest.get("apps", []):
            self._element(entry["uuid"])
        pushed = self._sc().push_manifest(manifestName, manifest, body.get("commit_message"))
        return self._pushed(pushed.branch, pushed.commit_sha)

    def delete_manifest(self, query: dict[str, str], body: Any, manifestName: str) -> Any:
        sc = self._sc()
        if sc.manifest(manifestName) is None:
            raise ApiError(400, f"Manifest {manifestName} not found")
        pushed = sc._push(f"retool-manifest-{manifestName}", {f"manifests/{manifestName}.yaml": None},
                          (body or {}).get("commit_message") or f"Delete release manifest {manifestName}")
        return self._pushed(pushed.branch, pushed.commit_sha)

    def put_manifest_element(self, query: dict[str, str], body: Any, manifestName: str, elementUuid: str) -> Any:
        self._element(elementUuid, query)
        pushed = self._sc().push_manifest_entry(manifestName, elementUuid, body["release"], body.get("commit_message"))
        return self._pushed(pushed.branch, pushed.commit_sha)

    def put_manifest_app(self, query: dict[str, str], body: Any, manifestName: str, appUuid: str) -> Any:
        return self.put_manifest_element({"elementType": "PAGE"}, body, manifestName, appUuid)

    def delete_manifest_element(self, query: dict[str, str], body: Any, manifestName: str, elementUuid: str) -> Any:
        self._element(elementUuid, query)
        if self._sc().manifest(manifestName) is None:
            raise ApiError(400, f"Manifest {manifestName} not found")
        pushed = self._sc().push_manifest_entry(manifestName, elementUuid, None, (body or {}).get("commit_message"))
        return self._pushed(pushed.branch, pushed.commit_sha)

    def unpin_app(self, query: dict[str, str], body: Any, manifestName: str, appUuid: str) -> Any:
        return self.delete_manifest_element({"elementType": "PAGE"}, body, manifestName, appUuid)

    def list_releases(self, query: dict[str, str], body: Any, elementUuid: str) -> Any:
        self._element(elementUuid, query)
        return self._ok(self._sc().releases(elementUuid))

    def list_app_releases(self, query: dict[str, str], body: Any, appUuid: str) -> Any:
        return self.list_releases({"elementType": "PAGE"}, body, appUuid)

    def create_release(self, query: dict[str, str], body: Any, elementUuid: str) -> Any:
        self._element(elementUuid, query)
        sc = self._sc()
        if any(r["release_version"] == body["release_version"] for r in sc.releases(elementUuid)):
            raise ApiError(400, f"Release {body['release_version']} already exists")
        pushed = sc.push_release(elementUuid, body["release_version"], body.get("release_description"), now(),
                                 body.get("commit_message"))
        return self._pushed(pushed.branch, pushed.commit_sha)

    def create_app_release(self, query: dict[str, str], body: Any, appUuid: str) -> Any:
        return self.create_release({"elementType": "PAGE"}, body, appUuid)

    def deploy(self, query: dict[str, str], body: Any) -> Any:
        sc = self._sc()
        deployment_id = str(uuid.uuid4())
        self.state.deployments[deployment_id] = {
            "id": deployment_id, "status": "PENDING_START", "commit_sha": None, "triggered_by": None,
            "created_at": now(), "completed_at": None, "_polls": 0, "_outcome": self.deploy_outcome,
            "_commit": sc.head(),
        }
        return self._ok(self._deployment_view(deployment_id))

    def _deployment_view(self, deployment_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.state.deployments[deployment_id].items() if not k.startswith("_")}

    def _progress(self, deployment: dict[str, Any]) -> None:
        """One look at a running deployment moves it on; the last one publishes the manifest."""
        if deployment["status"] in DEPLOY_DONE:
            return
        deployment["_polls"] += 1
        if deployment["_polls"] < self.deploy_polls:
            deployment["status"] = "RUNNING"
            deployment["commit_sha"] = deployment["_commit"]
            return
        outcome = deployment["_outcome"]
        if outcome == "SUCCESS" and not self._publish(deployment["_commit"]):
            outcome = "ERROR"
        deployment.update(status=outcome, completed_at=now(), commit_sha=deployment["_commit"])

    def _publish(self, commit: str) -> bool:
        """Make this instance run what the deploy branch at ``commit`` says; False when it cannot."""
        sc = self._sc()
        known = {a["_sc_uuid"] for a in self.state.apps.values()}
        for protected in sc.protected_apps(commit):
            if protected["uuid"] not in known:
                self._add_app(protected["name"], None, protected["uuid"])
        manifest = sc.manifest(self.manifest_name, commit) or {"apps": []}
        pins = {entry["uuid"]: entry["release"] for entry in manifest["apps"]}
        plan: dict[str, tuple[str, str | None]] = {}
        for app in self.state.apps.values():
            release = pins.get(app["_sc_uuid"], "latest")
            artifact = None
            if release != "latest":
                artifact = sc.artifact(app["_sc_uuid"], release, commit)
                if artifact is None:
                    return False  # the manifest names a release the repository does not hold
            plan[app["id"]] = (release, artifact)
        for app_id, (release, artifact) in plan.items():
            self.state.apps[app_id].update(release_version=release, _artifact=artifact, updated_at=now())
        return True

    def get_deployment(self, query: dict[str, str], body: Any, id: str) -> Any:
        self._sc()
        deployment = self.state.deployments.get(id)
        if deployment is None:
            raise ApiError(404, "Deployment not found")
        self._progress(deployment)
        return self._ok(self._deployment_view(id))

    def list_deployments(self, query: dict[str, str], body: Any) -> Any:
        self._sc()
        for deployment in self.state.deployments.values():
            self._progress(deployment)
        newest_first = sorted(self.state.deployments, key=lambda d: self.state.deployments[d]["created_at"],
                              reverse=True)
        return self._ok({"deployments": [self._deployment_view(d) for d in newest_first]})

    # -- spaces ---------------------------------------------------------------------------------------------

    def _from_admin_space(self) -> None:
        if self._space.parent is not None:
            raise ApiError(403, "Spaces can only be created and managed from the Admin Space")

    def _child(self, space_id: str) -> Space:
        self._from_admin_space()
        found = next((s for s in self.spaces.values() if s.id == space_id and s.parent == self._space.id), None)
        if found is None:
            raise ApiError(404, "Space not found")
        return found

    def list_spaces(self, query: dict[str, str], body: Any) -> Any:
        self._from_admin_space()
        children = [s.view() for s in self.spaces.values() if s.parent == self._space.id]
        return self._page(children, query)

    def create_space(self, query: dict[str, str], body: Any) -> Any:
        self._from_admin_space()
        if any(s.domain == body["domain"] for s in self.spaces.values()):
            raise ApiError(409, f"A space with domain {body['domain']} already exists")
        admins = list((body.get("options") or {}).get("users_to_copy_as_admins") or [])
        known = {u["email"] for u in self.state.users.values()}
        unknown = [email for email in admins if email not in known]
        if unknown:
            raise ApiError(400, f"Users {', '.join(unknown)} are not members of the admin space")
        space = self._new_space(body["name"], body["domain"], f"retool_space_{uuid.uuid4().hex}", self._space.id)
        self._seed(space.state, admins)
        return self._ok(space.view())

    def get_space(self, query: dict[str, str], body: Any, spaceId: str) -> Any:
        return self._ok(self._child(spaceId).view())

    def put_space(self, query: dict[str, str], body: Any, spaceId: str) -> Any:
        space = self._child(spaceId)
        space.name, space.domain, space.updated_at = body["name"], body["domain"], now()
        return self._ok(space.view())

    def delete_space(self, query: dict[str, str], body: Any, spaceId: str) -> Any:
        space = self._child(spaceId)
        del self.spaces[space.token]
        return None
