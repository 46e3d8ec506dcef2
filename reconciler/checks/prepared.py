"""The checks of one environment as probes the runner can execute: pure, no I/O, no secret values.

``for_environment`` picks the checks declared for an environment and fills in what the
environment sees: the database's URL, the REST resource's ``base_url``, headers, query parameters
and authentication (shared options merged with the environment's, ``${config:NAME}`` expanded).
What comes out still holds ``${secret:NAME}`` references; the runner resolves them at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.desired.models import CONFIG_REFERENCE, Check, Resource, check_environments
from reconciler.desired.state import DesiredState
from reconciler.durations import parse_duration
from reconciler.errors import NotFoundError, clip

DEFAULT = "default"  # a ConfigVariable's value for environments it does not list
# Authentication a REST resource may declare that a check can reproduce with a header; the others
# (OAuth 2, AWS v4, digest, ...) need a flow of their own.
SUPPORTED_AUTH = {"none", "basic", "bearer"}


@dataclass(frozen=True)
class SqlProbe:
    database: str
    url: str  # template: may hold ${secret:NAME}
    query: str  # template
    expect_true: bool
    at_least: int | None
    exactly: int | None


@dataclass(frozen=True)
class HttpProbe:
    resource: str
    method: str
    url: str  # template: the resource's base_url joined with the check's path
    path: str  # as declared, for messages (a template never holds a secret value)
    params: dict[str, str] = field(default_factory=dict)  # templates
    headers: dict[str, str] = field(default_factory=dict)  # templates
    basic_auth: tuple[str, str] | None = None  # templates: user name and password
    body: str | None = None
    status: int = 200
    json_path: str | None = None
    value: Any = None
    has_value: bool = False
    problem: str | None = None  # why this probe cannot run as declared (the check fails with it)


@dataclass(frozen=True)
class PreparedCheck:
    name: str
    environment: str
    app: str | None
    when: str
    timeout: float  # seconds
    probe: SqlProbe | HttpProbe

    @property
    def kind(self) -> str:
        return "sql" if isinstance(self.probe, SqlProbe) else "http"

    @property
    def target(self) -> str:
        probe = self.probe
        return f"database {probe.database}" if isinstance(probe, SqlProbe) else f"resource {probe.resource}"


def environments_of(check: Check, state: DesiredState) -> list[str]:
    return check_environments(check, state.apps, state.environment_order)


def for_environment(state: DesiredState, env: str, names: list[str] | None = None) -> list[PreparedCheck]:
    """The checks declared for ``env``, in declaration order (only ``names`` when given).

    Raises ``NotFoundError`` for an unknown environment, or a name that is not a check of ``env``.
    """
    if env not in state.environments:
        raise NotFoundError(f"unknown environment {clip(env)!r} (declared: {', '.join(state.environment_order)})")
    mine = {name: check for name, check in state.checks.items() if env in environments_of(check, state)}
    for name in names or []:
        if name in mine:
            continue
        if name in state.checks:
            raise NotFoundError(f"check {clip(name)!r} does not run in {env} (its environments: "
                                f"{', '.join(environments_of(state.checks[name], state))})")
        known = ", ".join(mine) or "none"
        raise NotFoundError(f"no check named {clip(name)!r} in {env} (its checks: {known})")
    chosen = [check for name, check in mine.items() if not names or name in names]
    return [_prepare(state, env, check) for check in chosen]


def _prepare(state: DesiredState, env: str, check: Check) -> PreparedCheck:
    probe: SqlProbe | HttpProbe
    if check.sql is not None:
        sql = check.sql
        database = state.databases[sql.database]
        probe = SqlProbe(
            database=sql.database,
            url=database.environments[env].url,
            query=_expand(state, env, sql.query),
            expect_true=sql.expect is True,
            at_least=sql.rows.at_least if sql.rows else None,
            exactly=sql.rows.exactly if sql.rows else None,
        )
    else:
        assert check.http is not None
        probe = _http_probe(state, env, check)
    return PreparedCheck(check.name, env, check.app, check.when, parse_duration(check.timeout), probe)


def _http_probe(state: DesiredState, env: str, check: Check) -> HttpProbe:
    http = check.http
    assert http is not None
    options = _options(state.resources[http.resource], env)

    def expand(value: object) -> str:
        return _expand(state, env, str(value))

    headers: dict[str, str] = {}
    problem = None
    declared_headers = options.get("headers") or {}
    params = options.get("url_parameters") or {}
    if not isinstance(declared_headers, Mapping) or not isinstance(params, Mapping):
        problem = f"resource {http.resource}: headers and url_parameters must be mappings of name to value"
        declared_headers, params = {}, {}
    auth = str(options.get("authentication_type", "none"))
    if auth not in SUPPORTED_AUTH:
        problem = (f"resource {http.resource} uses {clip(auth, 40)} authentication, which checks cannot reproduce; "
                   "set the credential in the check's headers (a ${secret:NAME} reference)")
    if "authorization" in options:
        headers["Authorization"] = expand(options["authorization"])
    elif "bearer_token" in options:
        headers["Authorization"] = "Bearer " + expand(options["bearer_token"])
    basic = None
    if "basic_username" in options and "Authorization" not in headers:
        basic = (expand(options["basic_username"]), expand(options.get("basic_password", "")))
    for name, value in declared_headers.items():
        _set_header(headers, str(name), expand(value))
    for name, value in http.headers.items():
        _set_header(headers, name, expand(value))
    if any(name.lower() == "authorization" for name in headers):
        basic = None  # an explicit Authorization header wins over the resource's basic credentials
    base = expand(options.get("base_url", ""))
    path = expand(http.path)
    url = base.rstrip("/") + ("/" + path.lstrip("/") if path else "")
    return HttpProbe(
        resource=http.resource, method=http.method, url=url, path=http.path or "/",
        params={str(k): expand(v) for k, v in params.items()}, headers=headers, basic_auth=basic,
        body=expand(http.body) if http.body is not None else None, status=http.status,
        json_path=http.json_path, value=http.value, has_value="value" in http.model_fields_set, problem=problem,
    )


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Header names are case-insensitive: a check's ``authorization`` replaces the resource's ``Authorization``."""
    for existing in [n for n in headers if n.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def _options(resource: Resource, env: str) -> dict[str, Any]:
    over = resource.environments[env].options if resource.environments and env in resource.environments else {}
    return _merge(resource.options, over)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _expand(state: DesiredState, env: str, text: str) -> str:
    """``text`` with ``${config:NAME}`` replaced by the variable's value for ``env`` (which may itself be a
    ``${secret:NAME}`` reference, resolved later like any other)."""

    def value(match: Any) -> str:
        variable = state.config[match.group(1)]
        return variable.values.get(env, variable.values.get(DEFAULT, ""))

    return CONFIG_REFERENCE.sub(value, text)
