"""The daemon's configuration: a TOML file (SPEC §7) where every key has a safe default.

Found at ``--config FILE``, else ``$RECONCILER_CONFIG``, else ``./reconciler.toml``, else defaults.
Environment variables ``RECONCILER_<SECTION>__<KEY>`` override the file (pydantic-settings), which
is how containers usually set things. Values may be ``${secret:NAME}`` references; they are
resolved only where used, so the config object itself holds no secret.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from reconciler.durations import parse_duration
from reconciler.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- value checks: each raises ValueError with a plain sentence; load_settings adds the file and key --

_REFERENCE = re.compile(r"\$\{secret:[^}]*\}")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _positive_duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"must be longer than 0 (got {value!r})")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be 1 or more (got {value})")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"must be 0 or more (got {value})")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value


def _log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"{value!r} is not a log level; use {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
    return value.lower()


def _host_port(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not (host.strip("[]") and port.isdigit() and int(port) <= 65535):
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)")
    return value


def _http_url(example: str, echo: bool) -> AfterValidator:
    """An http(s) URL; ``echo=False`` for URLs that are credentials themselves (a Slack webhook's path)."""
    def check(value: str) -> str:
        if _REFERENCE.fullmatch(value):
            return value  # checked when resolved
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{value!r} is" if echo and parts.password is None else "is"
            raise ValueError(f"{shown} not an http:// or https:// URL with a host (e.g. {example})")
        return value

    return AfterValidator(check)


def _database_url(example: str) -> AfterValidator:
    """A SQLAlchemy URL; ``${secret:NAME}`` parts (a password, usually) are checked when resolved. The
    value is never echoed: it may hold a password."""
    def check(value: str) -> str:
        import sqlalchemy as sa

        try:
            url = sa.engine.make_url(_REFERENCE.sub("secret", value))
        except (sa.exc.ArgumentError, ValueError):
            if _REFERENCE.fullmatch(value):
                return value
            raise ValueError(f"is not a SQLAlchemy URL (e.g. {example} or postgresql+psycopg://user@host/db)") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"{url.get_backend_name()!r} is not a database SQLAlchemy can use here; "
                             "use sqlite:/// or postgresql+psycopg://")
        return value

    return AfterValidator(check)


def _postgresql_url(value: str) -> str:
    stripped = _REFERENCE.sub("secret", value)
    if not _REFERENCE.fullmatch(value) and urlsplit(stripped).scheme not in ("postgresql", "postgres"):
        raise ValueError("is not a postgresql:// URL (e.g. postgresql://scratch@db-scratch/postgres)")
    return value


def _source_url(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty; give a local path, file://, https:// or ssh:// URL")
    scheme, sep, _ = value.partition("://")
    if sep and scheme.lower() not in ("file", "http", "https", "ssh", "git"):
        raise ValueError(f"{scheme!r} is not a supported scheme; use a local path, file://, https:// or ssh://")
    return value


def _secret_backend(value: str) -> str:
    if value != "env" and not (value.startswith("files:") and len(value) > len("files:")):
        raise ValueError(f"unknown secret backend {value!r}; use 'env' or 'files:/path/to/dir'")
    return value


def _token_hash(value: str) -> str:
    if not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", value):
        raise ValueError("is not sha256:<64 hex digits>; hash the token with python -c 'import hashlib,sys;"
                         "print(\"sha256:\"+hashlib.sha256(sys.argv[1].encode()).hexdigest())' TOKEN")
    return value


def _non_empty(message: str) -> AfterValidator:
    def check(value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError(message)
        return value

    return AfterValidator(check)


Duration = Annotated[str, AfterValidator(_duration)]
PositiveDuration = Annotated[str, AfterValidator(_positive_duration)]
PositiveInt = Annotated[int, AfterValidator(_positive)]
NotNegativeInt = Annotated[int, AfterValidator(_not_negative)]


class SourceConfig(Section):
    url: Annotated[str, AfterValidator(_source_url)] = "."
    branches: Annotated[list[Annotated[str, AfterValidator(_not_blank)]],
                        _non_empty("name at least one branch (the first is the control branch)")] = Field(
        default_factory=lambda: ["main"])
    path: str = "desired-state"
    poll_interval: PositiveDuration = "60s"
    webhook_secret: Annotated[str, AfterValidator(_not_blank)] | None = None
    gitlab_token: Annotated[str, AfterValidator(_not_blank)] | None = None
    ssh_key: str | None = None  # path to a private key for ssh:// remotes
    ssh_key_passphrase: str | None = None


class StateConfig(Section):
    url: Annotated[str, _database_url("sqlite:////var/lib/reconciler/reconciler.db")] | None = None  # default: data_dir


class SourceControlConfig(Section):
    """A Retool instance's Source Control repository: where releases and manifests live."""

    url: Annotated[str, AfterValidator(_source_url)]
    branch: Annotated[str, AfterValidator(_not_blank)] = "main"  # the deploy branch instances deploy from
    merge: Literal["direct", "pull-request"] = "direct"  # who merges the branches Retool's API pushes
    username: str = "git"
    password: Annotated[str, AfterValidator(_not_blank)] | None = None  # https token, usually ${secret:...}
    ssh_key: str | None = None
    ssh_key_passphrase: str | None = None
    poll_interval: PositiveDuration = "60s"  # pull-request: how often to look for the merge


def _instance_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,29}", value):
        raise ValueError(f"{value!r} is not an instance name (lower-case letters, digits and '-', at most 30)")
    return value


class RetoolInstance(Section):
    """One Retool instance (a host and its token) and the environments it hosts."""

    name: Annotated[str, AfterValidator(_instance_name)]
    host: Annotated[str, _http_url("https://retool.example.com", echo=True)]
    token: Annotated[str, AfterValidator(_not_blank)]
    environments: Annotated[list[Annotated[str, AfterValidator(_not_blank)]],
                            _non_empty("name the environments this instance hosts")]
    # Our environment → its Retool environment's name on this instance (default: the same name).
    retool_environments: dict[str, str] = Field(default_factory=dict)
    manifest: Annotated[str, AfterValidator(_not_blank)] | None = None  # this instance's release manifest
    source_control: SourceControlConfig | None = None
    requests_per_minute: PositiveInt | None = None  # default: platform.requests_per_minute
    # This entry is a Retool Space (host: the Space's domain, token: a token of that Space), by its name.
    space: Annotated[str, AfterValidator(_not_blank)] | None = None


class PlatformConfig(Section):
    provider: Literal["registry", "retool"] = "registry"
    # registry database; default: sqlite file in data_dir
    url: Annotated[str, _database_url("sqlite:////var/lib/reconciler/registry.db")] | None = None
    # retool, one instance hosting every environment:
    host: Annotated[str, _http_url("https://retool.example.com", echo=True)] | None = None
    token: Annotated[str, AfterValidator(_not_blank)] | None = None  # usually ${secret:RETOOL_TOKEN}
    # The instance is a Retool Space (host: the Space's domain, token: a token of that Space), by its name.
    space: Annotated[str, AfterValidator(_not_blank)] | None = None
    manifest: Annotated[str, AfterValidator(_not_blank)] | None = None
    source_control: SourceControlConfig | None = None
    # retool, several instances (instead of host/token above):
    instances: list[RetoolInstance] = Field(default_factory=list)
    requests_per_minute: PositiveInt = 45
    timeout: PositiveDuration = "30s"
    deploy_poll_interval: PositiveDuration = "2s"  # retool: how often a Source Control deployment is polled
    deploy_timeout: PositiveDuration = "10m"  # ... and for how long

    @model_validator(mode="after")
    def _one_topology(self) -> PlatformConfig:
        if not self.instances:
            return self
        if self.provider != "retool":
            raise ValueError("[[platform.instances]] are Retool instances; set provider = 'retool' or remove them")
        if self.host or self.token or self.space:
            raise ValueError("give either host/token/space (one instance hosting every environment) or "
                             "[[platform.instances]], not both")
        names = [i.name for i in self.instances]
        if len(set(names)) != len(names):
            raise ValueError(f"instance names must be unique (got {', '.join(names)})")
        seen: dict[str, str] = {}
        for instance in self.instances:
            for env in instance.environments:
                if env in seen:
                    raise ValueError(f"environment {env!r} is hosted by two instances "
                                     f"({seen[env]} and {instance.name})")
                seen[env] = instance.name
            unknown = sorted(set(instance.retool_environments) - set(instance.environments))
            if unknown:
                raise ValueError(f"instance {instance.name}: retool_environments names {', '.join(unknown)}, which it "
                                 "does not host")
        return self

    def placement(self, environments: list[str]) -> dict[str, str]:
        """Which instance hosts each of ``environments``: one per environment for the registry (they
        share nothing), the single instance for host/token, else as [[platform.instances]] say."""
        if self.provider == "registry":
            return {env: env for env in environments}
        if not self.instances:
            return {env: "retool" for env in environments}
        hosted = {env: i.name for i in self.instances for env in i.environments}
        return {env: hosted[env] for env in environments if env in hosted}


class SecretsConfig(Section):
    backends: list[Annotated[str, AfterValidator(_secret_backend)]] = Field(default_factory=lambda: ["env"])
    fingerprint_key: str | None = None  # hex, or ${secret:...}; default: generated into data_dir


class DatabasesConfig(Section):
    lock_timeout: PositiveDuration = "5s"
    statement_timeout: PositiveDuration = "5m"
    lock_retries: NotNegativeInt = 3
    shadow_url: Annotated[str, AfterValidator(_postgresql_url)] | None = None


class ApiToken(Section):
    name: str
    hash: Annotated[str, AfterValidator(_token_hash)]
    scopes: list[Literal["read", "sync", "admin"]] = ["read"]  # pydantic copies defaults per instance
    environments: list[str] | None = None  # sees and acts on these environments only, whatever its scopes
    apps: list[str] | None = None  # reads the registry endpoint for these apps only


class ApiConfig(Section):
    listen: Annotated[str, AfterValidator(_host_port)] = "127.0.0.1:8080"
    enabled: bool = True
    tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1 << 20, ge=1)
    # Slow clients (reconciler/api/connections.py): a request's head and body must arrive within
    # these totals, an idle keep-alive connection is closed after keepalive_timeout, and at most
    # max_connections are open at once.
    header_timeout: PositiveDuration = "10s"
    body_timeout: PositiveDuration = "30s"
    keepalive_timeout: PositiveDuration = "5s"
    max_connections: int = Field(default=512, ge=1)


NotifyEvent = Literal["drift", "failed", "blocked", "promoted", "recovered", "rolled_back", "break-glass"]


class NotifyWebhook(Section):
    url: Annotated[str, _http_url("https://hooks.example.com/...", echo=False)]
    format: Literal["json", "slack"] = "json"
    events: list[NotifyEvent] | None = None


class NotifyConfig(Section):
    webhooks: list[NotifyWebhook] = Field(default_factory=list)


class LogConfig(Section):
    level: Annotated[str, AfterValidator(_log_level)] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class DaemonConfig(Section):
    drift_check_jitter: Duration = "0s"
    shutdown_timeout: PositiveDuration = "30s"
    lease_ttl: PositiveDuration = "60s"
    # After a failed run: wait each delay in turn before the next attempt, then the last one for ever.
    retry_delays: Annotated[list[PositiveDuration],
                            _non_empty('list at least one delay (e.g. ["15s", "1m", "10m"])')] = Field(
        default_factory=lambda: ["15s", "30s", "1m", "2m", "5m", "10m"])


DEFAULT_WORKSPACE = "default"


def _workspace_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", value):
        raise ValueError(f"{value!r} is not a workspace name (lower-case letters, digits and '-', at most 40, "
                         "starting with a letter or digit)")
    return value


class WorkspaceConfig(Section):
    """One team's workspace (``[[workspaces]]``): its own source, platform target, tokens, hooks and
    notifications. Everything else (state store, secrets, databases, the API's address, the daemon's
    timing) is the daemon's and shared."""

    name: Annotated[str, AfterValidator(_workspace_name)]
    source: SourceConfig  # required: a workspace is first of all its repository
    platform: PlatformConfig = Field(default_factory=lambda: PlatformConfig())
    tokens: list[ApiToken] = Field(default_factory=list)  # see and act on this workspace only
    notify: NotifyConfig = Field(default_factory=lambda: NotifyConfig())


# Sections a workspace declares for itself: with [[workspaces]], the top level may not set them too.
WORKSPACE_SECTIONS = ("source", "platform")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECONCILER_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    data_dir: Path = Path(".reconciler")
    source: SourceConfig = Field(default_factory=SourceConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    databases: DatabasesConfig = Field(default_factory=DatabasesConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    workspaces: list[WorkspaceConfig] = Field(default_factory=list)
    # Which workspace these settings are for, once ``for_workspace`` made them (the default otherwise).
    _workspace: str = PrivateAttr(default=DEFAULT_WORKSPACE)
    _derived: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _workspaces_consistent(self) -> Settings:
        if not self.workspaces:
            return self
        given = [section for section in WORKSPACE_SECTIONS if section in self.model_fields_set]
        if given:
            raise ValueError(f"[{given[0]}] is set at the top level and [[workspaces]] are declared; with workspaces, "
                             f"each one declares its own (move it into [workspaces.{given[0]}] of each workspace)")
        names = [w.name for w in self.workspaces]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"workspace names must be unique ({', '.join(twice)} is declared more than once)")
        owners: dict[str, str] = {token.hash.lower(): "[[api.tokens]]" for token in self.api.tokens}
        for workspace in self.workspaces:
            for token in workspace.tokens:
                where = f"workspace {workspace.name}"
                other = owners.setdefault(token.hash.lower(), where)
                if other != where:
                    raise ValueError(f"token {token.name!r} of {where} has the same hash as a token of {other}; "
                                     "a token belongs to one workspace (generate another one)")
        return self

    @property
    def workspace_name(self) -> str:
        """The workspace these settings are for: ``default`` without [[workspaces]]."""
        return self._workspace

    def workspace_names(self) -> list[str]:
        """Every workspace this configuration declares, in order; one, ``default``, without [[workspaces]]."""
        return [w.name for w in self.workspaces] or [DEFAULT_WORKSPACE]

    def choose_workspace(self, name: str | None) -> str:
        """``name`` when it is declared; without it, the only workspace (a ``ConfigError`` naming the
        choices when there are several)."""
        names = self.workspace_names()
        if name is None:
            if len(names) == 1:
                return names[0]
            raise ConfigError(f"several workspaces are configured ({', '.join(names)}); choose one with "
                              "--workspace NAME")
        if name not in names:
            raise ConfigError(f"there is no workspace named {name!r}; the configuration declares "
                              f"{', '.join(names)}")
        return name

    def for_workspace(self, name: str | None = None) -> Settings:
        """The settings of one workspace: its source, platform target, tokens and notifications in
        the places a single-workspace configuration has them (plus the top-level tokens, which see
        every workspace, and the top-level notification targets, which hear from every workspace).

        Without [[workspaces]] that is these settings themselves. A workspace's registry defaults to
        a file of its own under ``data_dir/workspaces/<name>/``.
        """
        chosen = self.choose_workspace(name)
        if not self.workspaces or self._derived:
            return self
        workspace = next(w for w in self.workspaces if w.name == chosen)
        platform = workspace.platform
        if platform.provider == "registry" and platform.url is None:
            registry = (self.data_dir / "workspaces" / chosen / "registry.db").resolve()
            platform = platform.model_copy(update={"url": f"sqlite:///{registry}"})
        api = self.api.model_copy(update={"tokens": [*self.api.tokens, *workspace.tokens]})
        notify = NotifyConfig(webhooks=[*self.notify.webhooks, *workspace.notify.webhooks])
        derived = self.model_copy(update={"source": workspace.source, "platform": platform, "api": api,
                                          "notify": notify, "workspaces": [workspace]})
        derived._workspace = chosen
        derived._derived = True
        return derived

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables win over the file, which arrives as init values.
        return (env_settings, init_settings)

    @property
    def state_url(self) -> str:
        return self.state.url or f"sqlite:///{(self.data_dir / 'reconciler.db').resolve()}"

    @property
    def registry_url(self) -> str:
        return self.platform.url or f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"


def source_override(settings: Settings, url: str) -> Settings:
    """``settings`` (one workspace's) with its source's URL replaced by ``url`` (``--source``)."""
    try:
        checked = SourceConfig.model_validate({**settings.source.model_dump(), "url": url})
    except pydantic.ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--source: {message}") from None
    return settings.model_copy(update={"source": checked})  # keeps which workspace it is for


def config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get("RECONCILER_CONFIG")
    if env:
        return Path(env)
    default = Path("reconciler.toml")
    return default if default.exists() else None


def load_settings(explicit: Path | None = None, **overrides: Any) -> Settings:
    """Read the configuration; raise ``ConfigError`` with the file and key when it is wrong."""
    path = config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    for section, values in overrides.items():
        if isinstance(values, dict):
            given = {k: v for k, v in values.items() if v is not None}
            if given:  # an override that sets nothing does not make its section "set" (see [[workspaces]])
                data.setdefault(section, {}).update(given)
        elif values is not None:
            data[section] = values
    try:
        return Settings(**data)
    except pydantic.ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = list(err["loc"])
            key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            lines.append(f"{_origin(loc, path)}: {key}: {message}" if key else f"{_origin(loc, path)}: {message}")
        raise ConfigError("\n".join(lines)) from None


def _origin(loc: list[Any], path: Path | None) -> str:
    """Where a bad value came from: the environment variable that set it, else the file."""
    names = [str(p) for p in loc if isinstance(p, str)]
    for depth in (2, 1):
        variable = "RECONCILER_" + "__".join(names[:depth]).upper()
        if len(names) >= depth and any(k.upper() == variable for k in os.environ):
            return variable
    return str(path) if path else "configuration"
