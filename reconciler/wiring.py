"""Build a ``Reconciler`` from settings: which providers, which store, which secrets.

Called by the CLI, the daemon and the demo. Tests pass ready-made parts as overrides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.config import Settings, SourceControlConfig
from reconciler.errors import ConfigError, SecretError
from reconciler.providers.base import PlatformProvider, SchemaProvider
from reconciler.reconcile import Reconciler
from reconciler.secrets.backends import Secrets, backends_from_config
from reconciler.secrets.fingerprints import Fingerprinter, load_or_create_key
from reconciler.source.repository import Repository, SshKey
from reconciler.store.store import Store

if TYPE_CHECKING:
    from reconciler.providers.retool.provider import MergeMode, RetoolProvider


def resolve_setting(secrets: Secrets, key: str, value: str) -> str:
    """A configuration value with its ``${secret:NAME}`` references resolved; a missing one names the key."""
    try:
        return secrets.resolve(value)
    except SecretError as exc:
        raise SecretError(f"{key}: {exc}") from None


def build_secrets(settings: Settings) -> Secrets:
    return Secrets(backends_from_config(settings.secrets.backends))


def build_platform(settings: Settings, secrets: Secrets, store: Store) -> PlatformProvider:
    if settings.platform.provider == "registry":
        from reconciler.providers.registry import RegistryProvider

        return RegistryProvider(resolve_setting(secrets, "platform.url", settings.registry_url))
    from reconciler.providers.retool.platform import Placement, RetoolPlatform

    platform = settings.platform
    if not platform.instances:
        if not platform.host or not platform.token:
            raise ConfigError("platform.provider = 'retool' needs platform.host and platform.token "
                              "(token = \"${secret:RETOOL_TOKEN}\"), or [[platform.instances]]")
        return _retool_instance(settings, secrets, store, "platform", platform.host, platform.token,
                                platform.manifest, platform.source_control, platform.requests_per_minute, None)
    instances = {
        i.name: _retool_instance(settings, secrets, store, f"platform.instances[{i.name}]", i.host, i.token, i.manifest,
                                 i.source_control, i.requests_per_minute, i.name)
        for i in platform.instances
    }
    placements = {env: Placement(i.name, i.retool_environments.get(env, env))
                  for i in platform.instances for env in i.environments}
    return RetoolPlatform(instances, placements)


def _retool_instance(
    settings: Settings, secrets: Secrets, store: Store, key: str, host: str, token: str, manifest: str | None,
    source_control: SourceControlConfig | None, requests_per_minute: int, name: str | None,
) -> RetoolProvider:
    from reconciler.durations import parse_duration
    from reconciler.providers.retool.provider import RetoolProvider
    from reconciler.source.branches import BranchRepository, GitCredentials

    repository = None
    merge: MergeMode = "direct"
    deploy_branch = "main"
    poll = 60.0
    if source_control is not None:
        password = resolve_setting(secrets, f"{key}.source_control.password", source_control.password) \
            if source_control.password else None
        ssh_key = None
        if source_control.ssh_key:
            passphrase = resolve_setting(secrets, f"{key}.source_control.ssh_key_passphrase",
                                         source_control.ssh_key_passphrase) if source_control.ssh_key_passphrase else ""
            ssh_key = SshKey(private_key=source_control.ssh_key, passphrase=passphrase,
                             username=source_control.username)
        repository = BranchRepository(
            source_control.url, settings.data_dir / "cache",
            GitCredentials(username=source_control.username, password=password, ssh_key=ssh_key),
        )
        merge, deploy_branch = source_control.merge, source_control.branch
        poll = parse_duration(source_control.poll_interval)
    return RetoolProvider(
        host=host,
        token=resolve_setting(secrets, f"{key}.token", token),
        requests_per_minute=requests_per_minute,
        timeout=parse_duration(settings.platform.timeout),
        # Write-only values (secrets, options) are judged by what we wrote, and apps by the releases we
        # made: both records live in the store.
        fingerprints=store,
        releases=store,
        manifest=manifest,
        source_control=repository,
        deploy_branch=deploy_branch,
        merge=merge,
        merge_poll_interval=poll,
        deploy_poll_interval=parse_duration(settings.platform.deploy_poll_interval),
        deploy_timeout=parse_duration(settings.platform.deploy_timeout),
        instance=name,
    )


def build_schema(settings: Settings) -> SchemaProvider:
    from reconciler.durations import parse_duration
    from reconciler.providers.postgres.apply import ApplySettings
    from reconciler.providers.postgres.provider import PostgresProvider

    return PostgresProvider(
        shadow_url=settings.databases.shadow_url,
        shared_cache=True,
        settings=ApplySettings(
            lock_timeout=parse_duration(settings.databases.lock_timeout),
            statement_timeout=parse_duration(settings.databases.statement_timeout),
            attempts=settings.databases.lock_retries + 1,
        ),
    )


def build_reconciler(settings: Settings, **overrides: Any) -> Reconciler:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets: Secrets = overrides.get("secrets") or build_secrets(settings)
    if settings.secrets.fingerprint_key:
        try:
            key = bytes.fromhex(secrets.resolve(settings.secrets.fingerprint_key))
        except ValueError as exc:
            raise ConfigError("secrets.fingerprint_key must be hex (64 characters for 32 bytes)") from exc
    else:
        key = load_or_create_key(data_dir)
    store = overrides.get("store") or Store(resolve_setting(secrets, "state.url", settings.state_url))
    ssh_key = None
    if settings.source.ssh_key:
        passphrase = secrets.resolve(settings.source.ssh_key_passphrase) if settings.source.ssh_key_passphrase else ""
        ssh_key = SshKey(private_key=settings.source.ssh_key, passphrase=passphrase)
    repository = overrides.get("repository") or Repository(
        settings.source.url, cache_dir=data_dir / "cache", branches=settings.source.branches, ssh_key=ssh_key,
    )
    platform = overrides.get("platform") or build_platform(settings, secrets, store)
    schema = overrides["schema"] if "schema" in overrides else build_schema(settings)
    return Reconciler(
        settings=settings, repository=repository, store=store, platform=platform, schema=schema,
        secrets=secrets, fingerprinter=Fingerprinter(key, secrets),
        **({"clock": overrides["clock"]} if "clock" in overrides else {}),
    )
