"""Cross-reference checks over the documents of one desired-state folder (SPEC §2).

Called by ``loader.load`` after every document passed its own model. Appends a ``Problem`` for
every broken rule — it never stops at the first — so ``reconciler validate`` shows everything a
pull request has to fix in one go.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reconciler.desired.models import (
    ANY_REFERENCE,
    CONFIG_REFERENCE,
    DEFAULT,
    SECRET_REFERENCE,
    App,
    Check,
    ConfigVariable,
    Database,
    Environment,
    Group,
    Resource,
    RootConfig,
    Space,
    Strict,
    app_environments,
    check_environments,
    config_has_value,
    resource_environments,
)
from reconciler.desired.yamldocs import ParsedDoc
from reconciler.errors import Problem

if TYPE_CHECKING:
    from reconciler.desired.state import SqlFile

# Option keys whose values are credentials: a literal there is a secret committed to Git.
SECRET_OPTION_KEYS = {
    "password", "secret", "token", "api_key", "apikey", "access_token", "client_secret",
    "private_key", "write_key", "secret_key", "auth_token", "bearer_token", "basic_password",
}
STORED_SECRET_KEYS = ("$sensitive", "fingerprint")  # secrets/values.py: to_storable
# The resource types Retool's API can create (``POST /resources``, openapi.json 2.12.0). A resource of any
# other type exists only once someone makes it by hand, so declaring it cannot converge; the built-in
# registry uses Retool's names and accepts the same set, so a desired state moves between them unchanged.
CREATABLE_RESOURCE_TYPES = ("dbServer", "mysql", "postgresql", "redshift", "restapi", "snowflake")
ANYTHING = ("*", "*")  # in ``failed``: a file whose documents are unknown, so any name may exist


@dataclass
class LoadedDoc:
    """One document the loader parsed and modelled, with where it came from (what ``check`` checks)."""

    file: str
    parsed: ParsedDoc
    kind: str
    name: str
    model: Strict
    # The document has unknown fields (reported); ``model`` is what is left without them. Its references
    # are checked, but not what depends on its exact meaning (the environments it covers), which a
    # misspelt field may change.
    partial: bool = False


def printable(text: str) -> str:
    """``text`` as it can be shown inside a one-line message: control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def normalise(folder: str) -> str | None:
    """A folder path relative to the root, or None when it escapes the root."""
    if folder.startswith("/") or "\\" in folder:
        return None
    clean = posixpath.normpath(folder)
    if clean == ".." or clean.startswith("../") or clean == ".":
        return None
    return clean


class _Failed:
    """Names of documents that exist but did not validate (references to them are not errors).

    "*" stands for any kind or any name: what a broken document declares is known only as far as its
    kind and name lines can be read (``ANYTHING`` when neither can)."""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        self.keys = keys

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        kind, name = key
        return bool({(kind, name), ("*", name), (kind, "*"), ANYTHING} & self.keys)


@dataclass
class Checked:
    root: RootConfig
    environments: dict[str, Environment] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    config: dict[str, ConfigVariable] = field(default_factory=dict)
    databases: dict[str, Database] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    spaces: dict[str, Space] = field(default_factory=dict)


def _references(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield from ANY_REFERENCE.findall(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _references(v)
    elif isinstance(value, list):
        for v in value:
            yield from _references(v)


def check(
    root: RootConfig | None,
    docs: list[LoadedDoc],
    sql: dict[str, list[SqlFile]],
    problems: list[Problem],
    failed: set[tuple[str, str]] | None = None,
) -> Checked | None:
    """Check ``docs`` against each other; ``failed`` names documents that exist but did not validate."""
    seen: dict[tuple[str, str], LoadedDoc] = {}
    for doc in docs:
        key = (doc.kind, doc.name)
        first = seen.get(key)
        if first is not None:
            problems.append(Problem(doc.file, doc.parsed.line_of(("name",)),
                                    f"duplicate {doc.kind} {doc.name!r} (first declared at "
                                    f"{first.file}:{first.parsed.line_of(('name',))})"))
            continue
        seen[key] = doc
    listed = root is not None
    if root is None:
        # reconciler.yaml is broken (reported): check the documents against the environments they declare,
        # so its one problem does not hide every other.
        names = [doc.name for doc in seen.values() if doc.kind == "Environment"]
        if not names:
            return None
        root = RootConfig(version=1, environments=names)
    out = Checked(root=root)
    buckets: dict[str, dict[str, Any]] = {
        "Environment": out.environments, "Resource": out.resources, "ConfigVariable": out.config,
        "Database": out.databases, "Group": out.groups, "App": out.apps, "Check": out.checks,
        "Space": out.spaces,
    }
    for (kind, name), doc in seen.items():
        buckets[kind][name] = doc.model
    _Checker(out, seen, sql, problems, failed or set(), listed).run()
    return out if listed else None


class _Checker:
    def __init__(
        self, out: Checked, docs: dict[tuple[str, str], LoadedDoc], sql: dict[str, list[SqlFile]],
        problems: list[Problem], failed: set[tuple[str, str]], listed: bool = True,
    ) -> None:
        self.failed = _Failed(failed)
        self.listed = listed  # False: reconciler.yaml did not load; environments come from the documents
        self.partial = {key for key, doc in docs.items() if doc.partial}
        self.out = out
        self.docs = docs
        self.sql = sql
        self.problems = problems
        self.envs = list(out.root.environments)

    def add(self, kind: str, name: str, path: tuple[str | int, ...], message: str) -> None:
        doc = self.docs[(kind, name)]
        self.problems.append(Problem(doc.file, doc.parsed.line_of(path), f"{kind} {name!r}: {message}"))

    def undeclared(self, kind: str, name: str, path: tuple[str | int, ...], what: str, target: str) -> None:
        self.add(kind, name, path, f"reference to undeclared {what} {target!r}")

    def exact(self, kind: str, name: str) -> bool:
        """Whether the document means exactly what it says (no unknown field was left out of it)."""
        return (kind, name) not in self.partial

    def run(self) -> None:
        self.environments()
        for resource in self.out.resources.values():
            self.resource(resource)
        for variable in self.out.config.values():
            self.config_variable(variable)
        for database in self.out.databases.values():
            self.database(database)
        for app in self.out.apps.values():
            self.app(app)
        for check in self.out.checks.values():
            self.check(check)

    def _env_known(self, kind: str, name: str, path: tuple[str | int, ...], env: str) -> bool:
        if env not in self.envs:
            self.add(kind, name, path, f"unknown environment {env!r} (declared in reconciler.yaml: "
                     f"{', '.join(self.envs)})")
            return False
        return True

    def _groups_known(self, kind: str, name: str, path: tuple[str | int, ...], groups: list[str]) -> None:
        for index, group in enumerate(groups):
            if group not in self.out.groups and ("Group", group) not in self.failed:
                self.undeclared(kind, name, (*path, index), "group", group)

    def environments(self) -> None:
        declared = self.out.environments
        for env in self.envs if self.listed else []:
            if env not in declared and ("Environment", env) not in self.failed:
                self.problems.append(Problem("reconciler.yaml", None,
                                             f"environment {env!r} is listed but has no 'kind: Environment' document"))
        for name, spec in declared.items():
            if name not in self.envs:
                self.add("Environment", name, ("name",), "not listed in reconciler.yaml 'environments'")
            source = spec.track.promoted_from
            if source is not None and self.listed:
                if source not in self.envs:
                    self.add("Environment", name, ("track", "promoted_from"),
                             f"promoted_from refers to undeclared environment {source!r}")
                elif name in self.envs and self.envs.index(source) >= self.envs.index(name):
                    self.add("Environment", name, ("track", "promoted_from"),
                             f"promoted_from {source!r} must come before {name!r} in the promotion order")
            self._groups_known("Environment", name, ("access", "edit"), spec.access.edit)
            self._groups_known("Environment", name, ("access", "use"), spec.access.use)

    def _check_value(
        self, kind: str, name: str, path: tuple[str | int, ...], value: Any, envs: list[str]
    ) -> None:
        for ref in _references(value):
            if ref.startswith("secret:"):
                if not SECRET_REFERENCE.fullmatch("${" + ref + "}"):
                    self.add(kind, name, path, f"malformed secret reference '${{{printable(ref)}}}'; "
                             "write ${secret:NAME}")
            elif ref.startswith("config:"):
                target = ref.removeprefix("config:")
                variable = self.out.config.get(target)
                if variable is None and ("ConfigVariable", target) in self.failed:
                    continue
                if not CONFIG_REFERENCE.fullmatch("${" + ref + "}") or variable is None:
                    self.undeclared(kind, name, path, "config variable", target)
                    continue
                for env in envs if self.exact("ConfigVariable", target) else []:
                    if not config_has_value(variable, env):
                        self.add(kind, name, path, f"config variable {target!r} has no value for environment {env!r}")
            else:
                self.add(kind, name, path, f"unknown reference '${{{printable(ref)}}}'; use "
                         "${secret:NAME} or ${config:NAME}")

    def _literal_secrets(self, kind: str, name: str, path: tuple[str | int, ...], options: dict[str, Any]) -> None:
        for key, value in options.items():
            if key.lower() not in SECRET_OPTION_KEYS or not isinstance(value, str) or not value:
                continue
            secret_configs = [
                v for v in CONFIG_REFERENCE.findall(value) if v in self.out.config and self.out.config[v].secret
            ]
            if not SECRET_REFERENCE.search(value) and not secret_configs:
                self.add(kind, name, (*path, key), f"option '{key}' holds a literal secret; reference it as "
                         "${secret:NAME} and provide the value through a secret backend")

    def _stored_secret_shape(self, kind: str, name: str, path: tuple[str | int, ...], value: Any) -> None:
        # Providers store a secret as {"$sensitive": ..., "fingerprint": ...}; a declared value of that
        # shape would be read back as a secret and never match again (endless drift).
        if isinstance(value, dict):
            if set(value) == set(STORED_SECRET_KEYS):
                self.add(kind, name, path, "a mapping with exactly the keys '$sensitive' and 'fingerprint' is "
                         "reserved for stored secrets; rename a key")
                return
            for key, item in value.items():
                self._stored_secret_shape(kind, name, (*path, key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._stored_secret_shape(kind, name, (*path, index), item)

    def resource(self, resource: Resource) -> None:
        envs = resource_environments(resource, self.envs) if self.exact("Resource", resource.name) else []
        if resource.type not in CREATABLE_RESOURCE_TYPES:
            self.add("Resource", resource.name, ("type",),
                     f"type {printable(resource.type)!r} cannot be created through Retool's API; use one of "
                     f"{', '.join(CREATABLE_RESOURCE_TYPES)}")
        self._check_value("Resource", resource.name, ("options",), resource.options, envs)
        self._literal_secrets("Resource", resource.name, ("options",), resource.options)
        self._stored_secret_shape("Resource", resource.name, ("options",), resource.options)
        for env, spec in (resource.environments or {}).items():
            if self._env_known("Resource", resource.name, ("environments", env), env):
                path = ("environments", env, "options")
                self._check_value("Resource", resource.name, path, spec.options, [env])
                self._literal_secrets("Resource", resource.name, path, spec.options)
                self._stored_secret_shape("Resource", resource.name, path, spec.options)

    def config_variable(self, variable: ConfigVariable) -> None:
        for env, value in variable.values.items():
            path = ("values", env)
            if env != DEFAULT:
                self._env_known("ConfigVariable", variable.name, path, env)
            if variable.secret and not SECRET_REFERENCE.fullmatch(value):
                self.add("ConfigVariable", variable.name, path,
                         "a secret variable's value must be a ${secret:NAME} reference, not a literal")
                continue
            if CONFIG_REFERENCE.search(value):
                self.add("ConfigVariable", variable.name, path, "a config variable cannot refer to another one")
                continue
            self._check_value("ConfigVariable", variable.name, path, value, [])

    def database(self, database: Database) -> None:
        for env, spec in database.environments.items():
            path = ("environments", env, "url")
            if not self._env_known("Database", database.name, ("environments", env), env):
                continue
            self._check_value("Database", database.name, path, spec.url, [])
            literal = SECRET_REFERENCE.sub("", spec.url)
            if "${" not in spec.url:
                try:
                    parts = urlsplit(literal)
                    if parts.password:
                        self.add("Database", database.name, path, "the URL holds a literal password; reference "
                                 "the URL (or the password) as ${secret:NAME}")
                    if parts.scheme not in ("postgresql", "postgres"):
                        self.add("Database", database.name, path, "the URL must be a postgresql:// URL")
                except ValueError:
                    self.add("Database", database.name, path, "the URL cannot be parsed")
        for file in self.sql.get(database.name, []):
            self._sql_parses(file)

    def _sql_parses(self, file: SqlFile) -> None:
        nul = file.text.find("\x00")
        if nul != -1:
            # The parser stops at a NUL as C strings do: what follows would be silently ignored.
            self.problems.append(Problem(file.path, file.text.count("\n", 0, nul) + 1,
                                         "SQL contains a NUL character; remove it"))
            return
        import pglast.parser  # only a desired state with SQL pays for the parser

        try:
            pglast.parser.parse_sql_json(file.text)  # as strict as parse_sql, without building the tree
        except pglast.parser.ParseError as exc:
            # pglast reports a character offset into the file, or none for "at end of input".
            end = len(file.text.rstrip())
            position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else end
            line = file.text.count("\n", 0, min(position, end)) + 1
            # "at or near" quotes the rest of the input, which after an unclosed quote is the rest of
            # the file: keep the message to one short line.
            message = " ".join(str(exc.args[0]).split())
            if len(message) > 200:
                message = message[:200] + "..."
            self.problems.append(Problem(file.path, line, f"SQL does not parse: {message}"))

    def app(self, app: App) -> None:
        envs = app_environments(app, self.envs) if self.exact("App", app.name) else []
        for index, env in enumerate(app.environments or []):
            self._env_known("App", app.name, ("environments", index), env)
        for index, res_name in enumerate(app.resources):
            resource = self.out.resources.get(res_name)
            if resource is None and ("Resource", res_name) in self.failed:
                continue
            if resource is None:
                self.undeclared("App", app.name, ("resources", index), "resource", res_name)
                continue
            missing = [e for e in envs if e not in resource_environments(resource, self.envs)
                       and self.exact("Resource", res_name)]
            if missing:
                self.add("App", app.name, ("resources", index),
                         f"resource {res_name!r} is not configured for environment {', '.join(missing)}")
        for index, var_name in enumerate(app.config):
            variable = self.out.config.get(var_name)
            if variable is None and ("ConfigVariable", var_name) in self.failed:
                continue
            if variable is None:
                self.undeclared("App", app.name, ("config", index), "config variable", var_name)
                continue
            for env in envs if self.exact("ConfigVariable", var_name) else []:
                if not config_has_value(variable, env):
                    self.add("App", app.name, ("config", index),
                             f"config variable {var_name!r} has no value for environment {env!r}")
        for index, db_name in enumerate(app.databases):
            database = self.out.databases.get(db_name)
            if database is None and ("Database", db_name) in self.failed:
                continue
            if database is None:
                self.undeclared("App", app.name, ("databases", index), "database", db_name)
                continue
            missing = [e for e in envs if e not in database.environments and self.exact("Database", db_name)]
            if missing:
                self.add("App", app.name, ("databases", index),
                         f"database {db_name!r} has no URL for environment {', '.join(missing)}")
        self._groups_known("App", app.name, ("access", "use"), app.access.use)
        self._groups_known("App", app.name, ("access", "edit"), app.access.edit)

    def check(self, check: Check) -> None:
        envs = check_environments(check, self.out.apps, list(self.envs))
        for index, env in enumerate(check.environments or []):
            self._env_known("Check", check.name, ("environments", index), env)
        envs = [e for e in envs if e in self.envs]
        if check.app is not None:
            app = self.out.apps.get(check.app)
            if app is None and ("App", check.app) not in self.failed:
                self.add("Check", check.name, ("app",), f"reference to undeclared app {check.app!r}")
            elif app is not None:
                missing = [e for e in envs if e not in app_environments(app, self.envs)]
                if missing:
                    self.add("Check", check.name, ("app",),
                             f"app {check.app!r} is not deployed to environment {', '.join(missing)}")
        if check.sql is not None:
            self._sql_check(check, envs)
        if check.http is not None:
            self._http_check(check, envs)

    def _sql_check(self, check: Check, envs: list[str]) -> None:
        assert check.sql is not None
        database = self.out.databases.get(check.sql.database)
        if database is None and ("Database", check.sql.database) not in self.failed:
            self.add("Check", check.name, ("sql", "database"),
                     f"reference to undeclared database {check.sql.database!r}")
        elif database is not None:
            missing = [e for e in envs if e not in database.environments]
            if missing:
                self.add("Check", check.name, ("sql", "database"),
                         f"database {check.sql.database!r} has no URL for environment {', '.join(missing)}")
        self._check_value("Check", check.name, ("sql", "query"), check.sql.query, envs)
        problem = check_query_problem(check.sql.query)
        if problem is not None:
            self.add("Check", check.name, ("sql", "query"), problem)

    def _http_check(self, check: Check, envs: list[str]) -> None:
        http = check.http
        assert http is not None
        resource = self.out.resources.get(http.resource)
        if resource is None and ("Resource", http.resource) not in self.failed:
            self.add("Check", check.name, ("http", "resource"), f"reference to undeclared resource {http.resource!r}")
        elif resource is not None:
            configured = resource_environments(resource, self.envs)
            missing = [e for e in envs if e not in configured]
            if missing:
                self.add("Check", check.name, ("http", "resource"),
                         f"resource {http.resource!r} is not configured for environment {', '.join(missing)}")
            without_url = [e for e in envs if e in configured and not _base_url(resource, e)]
            if without_url:
                self.add("Check", check.name, ("http", "resource"),
                         f"resource {http.resource!r} has no base_url option for environment "
                         f"{', '.join(without_url)}; HTTP checks call a REST resource's base_url")
        self._check_value("Check", check.name, ("http", "path"), http.path, envs)
        if http.body is not None:
            self._check_value("Check", check.name, ("http", "body"), http.body, envs)
        for header, value in http.headers.items():
            self._check_value("Check", check.name, ("http", "headers", header), value, envs)
            secret_configs = [v for v in CONFIG_REFERENCE.findall(value)
                              if v in self.out.config and self.out.config[v].secret]
            if (header.lower() in SECRET_HEADERS and value and not SECRET_REFERENCE.search(value)
                    and not secret_configs):
                self.add("Check", check.name, ("http", "headers", header),
                         f"header '{header}' holds a literal credential; reference it as ${{secret:NAME}}")


# Headers whose values are credentials: a literal there is a secret committed to Git.
SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "cookie"}


def _base_url(resource: Resource, env: str) -> bool:
    options = dict(resource.options)
    if resource.environments is not None and env in resource.environments:
        options.update(resource.environments[env].options)
    value = options.get("base_url")
    return isinstance(value, str) and bool(value.strip())


def check_query_problem(query: str) -> str | None:
    """Why a check's query cannot run as one read-only statement, or None.

    References are replaced by a placeholder first: ``'${secret:X}'`` is a string literal and
    ``${config:TABLE}`` a name once resolved. Writes are not refused here: the READ ONLY transaction
    the runner opens refuses them. What that transaction would not stop is refused: COPY (which can
    run programs and write files on the server) and statements that end the transaction.
    """
    text = ANY_REFERENCE.sub("x", query)
    if "\x00" in text:
        return "the query contains a NUL character; remove it"
    import pglast.parser  # only a desired state with SQL pays for the parser

    try:
        statements = pglast.parser.parse_sql(text)
    except pglast.parser.ParseError as exc:
        message = " ".join(str(exc.args[0]).split())
        return f"the query does not parse: {message[:200]}"
    if len(statements) != 1:
        return f"the query holds {len(statements)} statements; a check runs exactly one"
    node = type(statements[0].stmt).__name__
    if node == "TransactionStmt":
        return "the query is a transaction statement; a check runs one query inside its own read-only transaction"
    if node == "CopyStmt":
        return "COPY is not allowed in a check; write a SELECT"
    return None
