"""The daemon's configuration: a TOML file (SPEC §7) where every key has a safe default.

Found at ``--config FILE``, else ``$RECONCILER_CONFIG``, else ``./reconciler.toml``, else defaults.
Environment variables ``RECONCILER_<SECTION>__<KEY>`` override the file (pydantic-settings), which
is how containers usually set things. Values may be ``${secret:NAME}`` references; they are
resolved only where used, so the config object itself holds no secret.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from reconciler.durations import parse_duration
from reconciler.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class SourceConfig(Section):
    url: str = "."
    branches: list[str] = Field(default_factory=lambda: ["main"])
    path: str = "desired-state"
    poll_interval: str = "60s"
    webhook_secret: str | None = None
    gitlab_token: str | None = None
    ssh_key: str | None = None  # path to a private key for ssh:// remotes
    ssh_key_passphrase: str | None = None

    @field_validator("poll_interval")
    @classmethod
    def _poll(cls, value: str) -> str:
        return _duration(value)


class StateConfig(Section):
    url: str | None = None  # default: sqlite file in data_dir


class PlatformConfig(Section):
    provider: Literal["registry", "retool"] = "registry"
    url: str | None = None  # registry database; default: sqlite file in data_dir
    host: str | None = None  # retool
    token: str | None = None  # retool, usually ${secret:RETOOL_TOKEN}
    requests_per_minute: int = 45
    timeout: str = "30s"


class SecretsConfig(Section):
    backends: list[str] = Field(default_factory=lambda: ["env"])
    fingerprint_key: str | None = None  # hex, or ${secret:...}; default: generated into data_dir


class DatabasesConfig(Section):
    lock_timeout: str = "5s"
    statement_timeout: str = "5m"
    lock_retries: int = 3
    shadow_url: str | None = None

    @field_validator("lock_timeout", "statement_timeout")
    @classmethod
    def _timeouts(cls, value: str) -> str:
        return _duration(value)


class ApiToken(Section):
    name: str
    hash: str
    scopes: list[Literal["read", "sync", "admin"]] = ["read"]  # pydantic copies defaults per instance
    environments: list[str] | None = None  # sees and acts on these environments only, whatever its scopes
    apps: list[str] | None = None  # reads the registry endpoint for these apps only


class ApiConfig(Section):
    listen: str = "127.0.0.1:8080"
    enabled: bool = True
    tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = 1 << 20
    # Slow clients (reconciler/api/connections.py): a request's head and body must arrive within
    # these totals, an idle keep-alive connection is closed after keepalive_timeout, and at most
    # max_connections are open at once.
    header_timeout: str = "10s"
    body_timeout: str = "30s"
    keepalive_timeout: str = "5s"
    max_connections: int = Field(default=512, ge=1)

    @field_validator("header_timeout", "body_timeout", "keepalive_timeout")
    @classmethod
    def _timeouts(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"{value!r} must be longer than zero")
        return value


class NotifyWebhook(Section):
    url: str
    format: Literal["json", "slack"] = "json"
    events: list[str] | None = None


class NotifyConfig(Section):
    webhooks: list[NotifyWebhook] = Field(default_factory=list)


class LogConfig(Section):
    level: str = "info"
    format: Literal["auto", "json", "console"] = "auto"


class DaemonConfig(Section):
    drift_check_jitter: str = "0s"
    shutdown_timeout: str = "30s"
    lease_ttl: str = "60s"


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
            data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
        elif values is not None:
            data[section] = values
    try:
        return Settings(**data)
    except pydantic.ValidationError as exc:
        where = str(path) if path else "configuration"
        lines = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"])
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {key}: {message}")
        raise ConfigError("\n".join(lines)) from None
