"""Strict pydantic models of every document kind (SPEC §2).

Unknown fields are errors (``extra="forbid"``) so a typo never passes silently. These models are
also the source of the JSON Schemas in ``schemas/`` (``reconciler schemas export``). Loading and
cross-reference checks live in ``loader.py`` and ``validation.py``; this module only describes
shapes and the checks that need nothing but the one document.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from reconciler.durations import parse_duration

FORMAT_VERSION = 1

# Names end up in registry tables, Retool objects, URLs and Postgres identifiers: keep them tame.
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
]
# Git branch names: path-like (release/1.x) but no '..', '//', leading/trailing '/', or '.lock' end.
BRANCH_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,198}[A-Za-z0-9_-])?$"


def _branch(value: str) -> str:
    if ".." in value or "//" in value or value.endswith(".lock"):
        raise ValueError(f"{value!r} is not a Git branch name: no '..', no '//', no '.lock' at the end")
    return value


BranchName = Annotated[str, StringConstraints(pattern=BRANCH_PATTERN), AfterValidator(_branch)]
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")]
Text = Annotated[str, StringConstraints(max_length=2000)]
Duration = Annotated[str, StringConstraints(max_length=32)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


class RootConfig(Strict):
    """``reconciler.yaml`` at the root of the desired-state folder."""

    version: int = Field(description="Format version of the desired-state folder.")
    environments: list[Name] = Field(min_length=1, description="Promotion order, lowest first.")

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"format version {value} is newer than this reconciler understands ({FORMAT_VERSION}); "
                "upgrade reconciler"
            )
        if value < 1:
            raise ValueError("version must be 1")
        return value

    @field_validator("environments")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"environment listed twice: {', '.join(dupes)}")
        return value


# Key types ``ssh-keygen -Y sign`` can sign with (OpenSSH's names).
SSH_KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def ssh_key_fingerprint(blob: bytes) -> str:
    """OpenSSH's fingerprint of a public key blob: ``SHA256:`` and unpadded base64 (``ssh-keygen -l``)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def signer_id(entry: str) -> str:
    """The id a signing key is matched by: a GPG fingerprint in upper case without spaces, or an SSH
    public key's ``SHA256:...`` fingerprint. ValueError (an operator-facing sentence) for anything else."""
    text = entry.strip()
    words = text.split()
    if words and words[0] in SSH_KEY_TYPES:
        if len(words) < 2:
            raise ValueError(f"SSH key {words[0]!r} has no key data; paste the whole line of the .pub file")
        try:
            blob = base64.b64decode(words[1], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the {words[0]} key data is not base64; paste the whole line of the .pub file") from None
        length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
        if blob[4:4 + length] != words[0].encode():
            raise ValueError(f"the key data is not a {words[0]} key; paste the whole line of the .pub file")
        return ssh_key_fingerprint(blob)
    compact = "".join(words)
    if _HEX.match(compact) and len(compact) in (40, 64):
        return compact.upper()
    if _HEX.match(compact) and len(compact) in (8, 16):
        raise ValueError(f"{clip_key(text)} is a short GPG key id, which anyone can forge; give the full 40-digit "
                         "fingerprint ('gpg --fingerprint KEY')")
    raise ValueError(f"{clip_key(text)} is neither a GPG fingerprint (40 hex digits, 'gpg --fingerprint') nor an "
                     "SSH public key ('ssh-ed25519 AAAA...', the line of the .pub file)")


def clip_key(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _signer(value: str) -> str:
    signer_id(value)
    return value


SignerKey = Annotated[str, StringConstraints(min_length=1, max_length=16000), AfterValidator(_signer)]
SIGNERS_HELP = ("GPG fingerprints (40 hex digits) and/or SSH public keys (the line of the .pub file). GPG keys "
                "are verified with the environment's track.verify_signatures.gpg_keyring, which must hold them.")


def is_gpg_signer(entry: str) -> bool:
    words = entry.split()
    return not (words and words[0] in SSH_KEY_TYPES)


class SignatureVerification(Strict):
    gpg_keyring: str | None = Field(None, description="Path to a GPG keyring (public keys) trusted for tags.")
    ssh_allowed_signers: str | None = Field(None, description="Path to an SSH allowed-signers file.")
    commits: bool = Field(False, description="Also require a good signature on the commit itself.")


class Track(Strict):
    branch: BranchName | None = Field(None, description="Track the head of this branch.")
    tag: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="Glob of release tags; the highest semver tag wins."
    )
    from_branch: BranchName | None = Field(None, description="A tag counts only if reachable from this branch.")
    promoted_from: Name | None = Field(
        None, description="The same desired state must have synced and verified there first."
    )
    prereleases: bool = Field(False, description="Consider prerelease tags such as v1.2.0-rc.1.")
    verify_signatures: SignatureVerification | None = None
    soak: Duration | None = Field(
        None, description="With promoted_from: how long the release's desired state must have stayed Synced "
        "(with passing checks) there before it is promoted, e.g. 30m.",
    )

    @field_validator("soak")
    @classmethod
    def _soak(cls, value: str | None) -> str | None:
        return None if value is None else _check_duration(value)

    @model_validator(mode="after")
    def _one_of(self) -> Track:
        if (self.branch is None) == (self.tag is None):
            raise ValueError("track needs exactly one of 'branch' or 'tag'")
        if self.soak is not None and not self.promoted_from:
            raise ValueError("soak needs promoted_from: it is how long the release stays Synced there")
        if self.branch is not None and (self.from_branch or self.promoted_from or self.prereleases):
            raise ValueError("from_branch, promoted_from and prereleases only apply to 'tag' tracking")
        return self


class DenyWindow(Strict):
    deny: Annotated[str, StringConstraints(max_length=100)] = Field(
        description="Cron expression (5 fields) of when the window opens."
    )
    duration: Duration = Field(description="How long the window stays closed to new revisions, e.g. '64h'.")
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"

    @field_validator("deny")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 16 * * FRI'")
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _check_duration(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/London'") from None
        return value


class Sync(Strict):
    automatic: bool = Field(True, description="Apply as soon as the tracked revision moves.")
    self_heal: bool = Field(False, description="Correct out-of-band drift found by drift checks.")
    prune: bool = Field(False, description="Delete live platform objects that are no longer declared.")
    destructive_changes: Literal["allow", "require-approval", "deny"] = "require-approval"
    drift_check_interval: Duration = "5m"
    windows: list[DenyWindow] = Field(default_factory=list)
    run_checks: bool = Field(
        False, description="Run the environment's declared checks after every apply that changed something "
        "(after-schema ones before destructive schema steps); a failed check fails the run.",
    )
    on_failed_checks: Literal["report", "rollback"] = Field(
        "report", description="report: the run is Failed and nothing else happens. rollback: pin the previous "
        "revision whose checks passed and apply it (never through a destructive change).",
    )
    scheduled_checks: Literal["report", "rollback"] | None = Field(
        None, description="Also run the checks with every drift check (sync.drift_check_interval), against what "
        "runs. report: a failure makes the environment Failed and is notified once. rollback: as on_failed_checks: "
        "rollback after an apply. Needs run_checks: true.",
    )

    @model_validator(mode="after")
    def _scheduled_needs_run_checks(self) -> Sync:
        if self.scheduled_checks is not None and not self.run_checks:
            raise ValueError("scheduled_checks needs run_checks: true (checks that run on the drift schedule also "
                             "run after every apply, so a fixed release is checked when it applies)")
        return self

    @field_validator("drift_check_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _check_duration(value)


class Access(Strict):
    edit: list[Name] = Field(default_factory=list)
    use: list[Name] = Field(default_factory=list)


class Environment(Strict):
    kind: Literal["Environment"]
    name: Name
    description: Text = ""
    color: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] | None = None
    track: Track
    sync: Sync = Sync()
    access: Access = Access()
    allowed_signers: list[SignerKey] | None = Field(
        None, min_length=1,
        description="Who may release this environment: a release tag must be signed by one of these keys. "
        + SIGNERS_HELP,
    )
    approvers: list[SignerKey] | None = Field(
        None, min_length=1,
        description="Who may approve destructive changes here: an 'Approve:' trailer counts only in a release tag "
        "signed by one of these keys (a Database's own approvers take precedence). " + SIGNERS_HELP,
    )

    @model_validator(mode="after")
    def _signers_need_tags(self) -> Environment:
        if self.allowed_signers is not None and self.track.tag is None:
            raise ValueError("allowed_signers applies to release tags; this environment tracks a branch — track "
                             "'tag' instead, or remove allowed_signers")
        keys = [*(self.allowed_signers or []), *(self.approvers or [])]
        keyring = self.track.verify_signatures.gpg_keyring if self.track.verify_signatures else None
        if any(is_gpg_signer(k) for k in keys) and not keyring:
            raise ValueError("GPG fingerprints in allowed_signers/approvers need the public keys: set "
                             "track.verify_signatures.gpg_keyring to a keyring that holds them")
        return self


Options = dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")], Any]


class ResourceEnvironment(Strict):
    options: Options = Field(default_factory=dict)


class Resource(Strict):
    kind: Literal["Resource"]
    name: Name
    type: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,50}$")]
    description: Text = ""
    folder: Name | None = None
    options: Options = Field(default_factory=dict, description="Options shared by all environments.")
    environments: dict[Name, ResourceEnvironment] | None = Field(
        None, description="Per-environment options; when present the resource exists only in these."
    )


class ConfigVariable(Strict):
    kind: Literal["ConfigVariable"]
    name: VariableName
    description: Text = ""
    secret: bool = False
    values: dict[Name, Annotated[str, StringConstraints(max_length=10000)]] = Field(
        description="Value per environment; 'default' applies to any environment not listed."
    )


class DatabaseEnvironment(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="postgresql:// URL (TCP or ?host=/socket/dir), usually a ${secret:...} reference."
    )


class Database(Strict):
    kind: Literal["Database"]
    name: Name
    description: Text = ""
    schema_: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        alias="schema", description="Folder of .sql files, relative to the desired-state root."
    )
    managed_schemas: list[Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]] = Field(
        default_factory=lambda: ["public"]
    )
    environments: dict[Name, DatabaseEnvironment]
    approvers: list[SignerKey] | None = Field(
        None, min_length=1,
        description="Who may approve this database's destructive changes: an 'Approve:' trailer counts only in a "
        "release tag signed by one of these keys (overrides the environment's approvers). " + SIGNERS_HELP,
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _email(value: str) -> str:
    return value.lower()


# An address as people write them (no display name); compared in lower case, as Retool matches them.
EMAIL_PATTERN = r"^[^@\s,;<>()\[\]\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z]{2,63}$"
DOMAIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254), AfterValidator(_email)]


def _unique_emails(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise ValueError(f"listed twice: {', '.join(dupes)}")
    return value


AccessLevel = Literal["none", "use", "edit", "own"]
# Retool's group privileges, by the names its API gives them (openapi.json, the group object).
GROUP_PRIVILEGES = (
    "universal_app_access", "universal_resource_access", "universal_workflow_access",
    "universal_query_library_access", "user_list_access", "audit_log_access", "unpublished_release_access",
    "usage_analytics_access", "theme_access", "account_details_access",
)


class GroupPrivileges(Strict):
    """What a group may do beyond its grants; a privilege left out is not managed (left as it is)."""

    universal_app_access: AccessLevel | None = Field(None, description="Access to every app: none, use, edit, own.")
    universal_resource_access: AccessLevel | None = Field(
        None, description="Access to every resource: none, use, edit, own.")
    universal_workflow_access: AccessLevel | None = Field(
        None, description="Access to every workflow: none, use, edit, own.")
    universal_query_library_access: Literal["none", "use", "edit"] | None = Field(
        None, description="Access to the Query Library: none, use, edit.")
    user_list_access: bool | None = Field(None, description="May see the user list.")
    audit_log_access: bool | None = Field(None, description="May see the audit log.")
    unpublished_release_access: bool | None = Field(
        None, description="May see and edit unpublished releases of apps (not only the published one).")
    usage_analytics_access: bool | None = Field(None, description="May see usage analytics.")
    theme_access: bool | None = Field(None, description="May edit themes.")
    account_details_access: bool | None = Field(None, description="May see account details.")

    def declared(self) -> dict[str, str | bool]:
        """The privileges this document sets, by Retool's name."""
        return {name: value for name in GROUP_PRIVILEGES if (value := getattr(self, name)) is not None}


class Group(Strict):
    kind: Literal["Group"]
    name: Name
    description: Text = ""
    members: Annotated[list[Email], AfterValidator(_unique_emails)] | None = Field(
        None, description="The group's members, by email. Left out: membership is not managed; [] : nobody.")
    privileges: GroupPrivileges = Field(
        default_factory=GroupPrivileges,
        description="Retool's group privileges by their API names; those left out are not managed.")


class Space(Strict):
    """A Retool Space (an isolated organisation on one instance), created from the admin Space."""

    kind: Literal["Space"]
    name: Name
    domain: Annotated[str, StringConstraints(pattern=DOMAIN_PATTERN)] = Field(
        description="The Space's domain (on Retool Cloud its subdomain), e.g. team-a.retool.example.com.")
    admins: Annotated[list[Email], AfterValidator(_unique_emails)] = Field(
        default_factory=list,
        description="Users of the admin Space made admins of the new Space when it is created (Retool's "
        "users_to_copy_as_admins), by email.")


class AppAccess(Strict):
    use: list[Name] = Field(default_factory=list)
    edit: list[Name] = Field(default_factory=list)


class App(Strict):
    kind: Literal["App"]
    name: Name
    description: Text = ""
    folder: Name | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    environments: list[Name] | None = Field(None, description="Default: every environment.")
    resources: list[Name] = Field(default_factory=list)
    config: list[VariableName] = Field(default_factory=list)
    databases: list[Name] = Field(default_factory=list)
    access: AppAccess = AppAccess()


HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_NAME_PATTERN)]
# A check must end in bounded time: a forgotten minus sign or an extra zero must not hold a run for hours.
MAX_CHECK_TIMEOUT = 600.0


class RowCount(Strict):
    at_least: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        None, description="The query returns at least this many rows (0: it runs without error)."
    )
    exactly: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        None, description="The query returns exactly this many rows."
    )

    @model_validator(mode="after")
    def _one_of(self) -> RowCount:
        if (self.at_least is None) == (self.exactly is None):
            raise ValueError("rows needs exactly one of 'at_least' or 'exactly'")
        return self


class SqlCheck(Strict):
    database: Name = Field(description="A declared Database; the check connects with its URL for the environment.")
    query: Annotated[str, StringConstraints(min_length=1, max_length=100_000)] = Field(
        description="One SQL statement, run in a READ ONLY transaction with statement_timeout set to the "
        "check's timeout. May hold ${secret:NAME} and ${config:NAME} references."
    )
    expect: Literal[True] | None = Field(
        None, description="The query returns a row whose first column is true."
    )
    rows: RowCount | None = Field(None, description="The number of rows the query returns.")

    @model_validator(mode="after")
    def _one_of(self) -> SqlCheck:
        if (self.expect is None) == (self.rows is None):
            raise ValueError("an sql check needs exactly one of 'expect: true' or 'rows: {at_least: N}' / "
                             "'rows: {exactly: N}'")
        return self


class HttpCheck(Strict):
    resource: Name = Field(
        description="A declared REST resource; the request goes to its base_url with its headers and "
        "authentication as the environment sees them."
    )
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    path: Annotated[str, StringConstraints(max_length=2000)] = Field(
        "", description="Appended to the resource's base_url, e.g. '/health'."
    )
    headers: dict[HeaderName, Annotated[str, StringConstraints(max_length=10000)]] = Field(
        default_factory=dict, description="Headers added to (or replacing) the resource's own."
    )
    body: Annotated[str, StringConstraints(max_length=100_000)] | None = Field(
        None, description="Request body, sent as written (set Content-Type in headers)."
    )
    status: Annotated[int, Field(ge=100, le=599)] = Field(200, description="The expected response status.")
    json_path: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None, description="An RFC 9535 JSONPath into the JSON response body, e.g. '$.status'; it must "
        "match at least one value."
    )
    value: Any = Field(
        None, description="With json_path: the value the first match must equal (any JSON value)."
    )

    @field_validator("json_path")
    @classmethod
    def _json_path(cls, value: str | None) -> str | None:
        if value is not None:
            from jsonpath import JSONPathEnvironment, JSONPathError

            try:
                JSONPathEnvironment(strict=True).compile(value)
            except Exception as exc:  # JSONPathError, or whatever else odd input makes the parser raise
                if not isinstance(exc, JSONPathError | ValueError | LookupError | RecursionError):
                    raise
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(f"{value!r} is not an RFC 9535 JSONPath ({reason}); write it like '$.status' "
                                 "or '$.checks[0].ok'") from None
        return value

    @model_validator(mode="after")
    def _value_needs_path(self) -> HttpCheck:
        if "value" in self.model_fields_set and self.json_path is None:
            raise ValueError("'value' needs a 'json_path' that says where in the response to find it")
        return self


class Check(Strict):
    kind: Literal["Check"]
    name: Name
    description: Text = ""
    environments: list[Name] | None = Field(
        None, description="Default: the environments its app is deployed to, or every environment.")
    app: Name | None = Field(None, description="The app this check verifies (it must run in those environments).")
    when: Literal["after-apply", "after-schema"] = Field(
        "after-apply",
        description="after-schema: once additive schema changes are applied, before destructive ones; "
        "after-apply: once the whole apply is done.",
    )
    timeout: Duration = Field("10s", description="How long the check may take, e.g. '10s' (at most 10m).")
    sql: SqlCheck | None = None
    http: HttpCheck | None = None

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        seconds = parse_duration(value)
        if seconds <= 0 or seconds > MAX_CHECK_TIMEOUT:
            raise ValueError(f"{value!r} is out of range; a check's timeout is more than 0s and at most 10m")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Check:
        if (self.sql is None) == (self.http is None):
            raise ValueError("a check needs exactly one of 'sql' or 'http'")
        return self


Document = Environment | Resource | ConfigVariable | Database | Group | App | Check | Space

KIND_MODELS: dict[str, type[Strict]] = {
    "Environment": Environment,
    "Resource": Resource,
    "ConfigVariable": ConfigVariable,
    "Database": Database,
    "Group": Group,
    "App": App,
    "Check": Check,
    "Space": Space,
}

SECRET_REFERENCE = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")
CONFIG_REFERENCE = re.compile(r"\$\{config:([A-Za-z_][A-Za-z0-9_]*)\}")
ANY_REFERENCE = re.compile(r"\$\{([^}]*)\}")

# A ConfigVariable's value for every environment it does not list.
DEFAULT = "default"


def resource_environments(resource: Resource, all_envs: list[str]) -> list[str]:
    """The environments ``resource`` exists in: those it lists, else every one."""
    return list(resource.environments) if resource.environments is not None else list(all_envs)


def app_environments(app: App, all_envs: list[str]) -> list[str]:
    """The environments ``app`` is deployed to: those it lists, else every one."""
    return list(app.environments) if app.environments is not None else list(all_envs)


def check_environments(check: Check, apps: Mapping[str, App], all_envs: list[str]) -> list[str]:
    """The environments ``check`` runs in: those it lists, else those its app is deployed to, else every one."""
    if check.environments is not None:
        return list(check.environments)
    app = apps.get(check.app) if check.app is not None else None
    return app_environments(app, all_envs) if app is not None else list(all_envs)


def config_has_value(variable: ConfigVariable, env: str) -> bool:
    return env in variable.values or DEFAULT in variable.values
