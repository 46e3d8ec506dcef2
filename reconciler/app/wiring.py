"""Build a ``Reconciler`` from settings: which providers, which store, which secrets, which source.

Called by the CLI, the daemon, the demo and the benchmarks. Tests and the demo replace parts with
ready-made ones through ``Overrides`` (typed: a part that is not given is built from settings).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reconciler.app.reconcile import Parts, Reconciler
from reconciler.clock import Clock
from reconciler.config import Settings, SourceControlConfig
from reconciler.durations import parse_duration
from reconciler.errors import ConfigError, SecretError
from reconciler.providers.base import FingerprintBook, PlatformProvider, ReleaseBook, SchemaProvider
from reconciler.secrets.backends import Secrets, backends_from_config
from reconciler.secrets.fingerprints import Fingerprinter, load_or_create_key
from reconciler.source.repository import Repository, SshKey
from reconciler.store.store import Store

if TYPE_CHECKING:
    from reconciler.providers.retool.provider import MergeMode, RetoolProvider


@dataclass(frozen=True)
class Overrides:
    """Ready-made parts to use instead of building them from settings."""

    secrets: Secrets | None = None
    store: Store | None = None
    repository: Repository | None = None
    platform: PlatformProvider | None = None
    schema: SchemaProvider | None = None
    no_schema: bool = False  # run without a schema provider (a desired state without databases)
    clock: Clock | None = None


def resolve_setting(secrets: Secrets, key: str, value: str) -> str:
    """A configuration value with its ``${secret:NAME}`` references resolved; a missing one names the key."""
    try:
        return secrets.resolve(value)
    except SecretError as exc:
        raise SecretError(f"{key}: {exc}") from None


def build_secrets(settings: Settings) -> Secrets:
    return Secrets(backends_from_config(settings.secrets.backends))


def build_repository(settings: Settings, secrets: Secrets) -> Repository:
    """The source repository, with the ssh key ``source.ssh_key`` names (its passphrase resolved)."""
    ssh_key = None
    if settings.source.ssh_key:
        passphrase = secrets.resolve(settings.source.ssh_key_passphrase) if settings.source.ssh_key_passphrase else ""
        ssh_key = SshKey(private_key=settings.source.ssh_key, passphrase=passphrase)
    # A workspace's clone is its own, even of a repository another workspace clones too: fetches of
    # two workspaces never share a directory.
    cache = settings.data_dir / "workspaces" / settings.workspace_name / "cache" if settings.workspaces \
        else settings.data_dir / "cache"
    return Repository(settings.source.url, cache_dir=cache, branches=settings.source.branches, ssh_key=ssh_key)


def build_platform(
    settings: Settings, secrets: Secrets, fingerprints: FingerprintBook, releases: ReleaseBook | None = None,
) -> PlatformProvider:
    """The platform provider: the registry, one Retool instance, or several (``RetoolPlatform``).

    Write-only values (secrets, options) are judged by what was written, and apps by the releases
    made: ``fingerprints`` and ``releases`` keep both (the state store, in a daemon).
    """
    if settings.platform.provider == "registry":
        from reconciler.providers.registry import RegistryProvider

        return RegistryProvider(resolve_setting(secrets, "platform.url", settings.registry_url))
    from reconciler.providers.retool.platform import Placement, RetoolPlatform

    platform = settings.platform
    books = (fingerprints, releases)
    if not platform.instances:
        if not platform.host or not platform.token:
            raise ConfigError("platform.provider = 'retool' needs platform.host and platform.token "
                              "(token = \"${secret:RETOOL_TOKEN}\"), or [[platform.instances]]")
        return _retool_instance(settings, secrets, books, "platform", platform.host, platform.token,
                                platform.manifest, platform.source_control, platform.requests_per_minute, None,
                                platform.space)
    instances = {
        i.name: _retool_instance(settings, secrets, books, f"platform.instances[{i.name}]", i.host, i.token,
                                 i.manifest, i.source_control, i.requests_per_minute or platform.requests_per_minute,
                                 i.name, i.space)
        for i in platform.instances
    }
    placements = {env: Placement(i.name, i.retool_environments.get(env, env))
                  for i in platform.instances for env in i.environments}
    return RetoolPlatform(instances, placements)


def _retool_instance(
    settings: Settings, secrets: Secrets, books: tuple[FingerprintBook, ReleaseBook | None], key: str, host: str,
    token: str, manifest: str | None, source_control: SourceControlConfig | None, requests_per_minute: int,
    name: str | None, space: str | None = None,
) -> RetoolProvider:
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
        fingerprints=books[0],
        releases=books[1],
        manifest=manifest,
        source_control=repository,
        deploy_branch=deploy_branch,
        merge=merge,
        merge_poll_interval=poll,
        deploy_poll_interval=parse_duration(settings.platform.deploy_poll_interval),
        deploy_timeout=parse_duration(settings.platform.deploy_timeout),
        instance=name,
        space=space,
    )


def build_schema(settings: Settings, shadow_url: str | None = None) -> SchemaProvider:
    from reconciler.providers.postgres.provider import PostgresProvider
    from reconciler.providers.postgres.sessions import ApplySettings

    return PostgresProvider(
        shadow_url=shadow_url or settings.databases.shadow_url,
        shared_cache=True,
        cache_dir=settings.data_dir / "cache" / "schemas",
        settings=ApplySettings(
            lock_timeout=parse_duration(settings.databases.lock_timeout),
            statement_timeout=parse_duration(settings.databases.statement_timeout),
            attempts=settings.databases.lock_retries + 1,
        ),
    )


def build_reconciler(settings: Settings, overrides: Overrides | None = None) -> Reconciler:
    given = overrides or Overrides()
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets = given.secrets or build_secrets(settings)
    if settings.secrets.fingerprint_key:
        try:
            key = bytes.fromhex(secrets.resolve(settings.secrets.fingerprint_key))
        except ValueError as exc:
            raise ConfigError("secrets.fingerprint_key must be hex (64 characters for 32 bytes)") from exc
    else:
        key = load_or_create_key(data_dir)
    # One workspace's view of the state store: every row it reads and writes is that workspace's.
    store = (given.store or Store(resolve_setting(secrets, "state.url", settings.state_url))).for_workspace(
        settings.workspace_name)
    repository = given.repository or build_repository(settings, secrets)
    platform = given.platform or build_platform(settings, secrets, store, store)
    schema = None if given.no_schema else given.schema or build_schema(settings)
    parts = Parts(settings=settings, repository=repository, store=store, platform=platform, schema=schema,
                  secrets=secrets, fingerprinter=Fingerprinter(key, secrets))
    return Reconciler(parts, clock=given.clock) if given.clock is not None else Reconciler(parts)


def shared_parts(settings: Settings, secrets: Secrets, overrides: Overrides | None = None) -> Overrides:
    """What every workspace of one daemon shares: the secret backends, the state database (each
    workspace has its own view of it) and the schema provider. Give the result to ``build_reconciler``
    with each workspace's settings (``Settings.for_workspace``); each has its own source, platform
    target, tokens and notifications."""
    given = overrides or Overrides()
    store = given.store or Store(resolve_setting(secrets, "state.url", settings.state_url))
    schema = None if given.no_schema else given.schema or build_schema(settings)
    return replace(given, secrets=secrets, store=store, schema=schema)
