"""``reconciler init``: write a commented desired-state folder that validates, and a ``reconciler.toml``.

Called by the CLI only. The files teach the format by example: every kind once, with comments
on what each field does and where secrets come from. The configuration holds only safe defaults
and comments: no token hash, webhook secret or key that would pass as a real one.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ConfigError

FILES: dict[str, str] = {
    "reconciler.yaml": """\
# Reconciler reads every *.yaml file below this folder. This file names the environments,
# in promotion order (lowest first). Each needs a 'kind: Environment' document.
version: 1
environments: [staging, production]
""",
    "environments/staging.yaml": """\
kind: Environment
name: staging
description: Pre-release copies of every tool
color: "#1D70B8"
track:
  branch: main                  # every new commit on main is applied here
sync:
  automatic: true
  self_heal: true               # revert out-of-band edits found by drift checks
  prune: true                   # delete platform objects removed from Git
  destructive_changes: allow    # staging may drop columns without approval
  drift_check_interval: 1m
access:
  edit: [admins]
  use: [users]
""",
    "environments/production.yaml": """\
kind: Environment
name: production
description: The real thing
color: "#D4351C"
track:
  tag: "v*"                     # the highest semver release tag is applied...
  from_branch: main             # ...if its commit is on main...
  promoted_from: staging        # ...and the same desired state verified in staging first
sync:
  self_heal: false              # report drift; do not revert it silently
  prune: false
  destructive_changes: require-approval   # put "Approve: <drift id>" in the tag message
  drift_check_interval: 5m
  windows:
    - {deny: "0 16 * * FRI", duration: 64h, timezone: UTC}   # no releases over the weekend
access:
  edit: [admins]
  use: [users]
""",
    "groups.yaml": """\
kind: Group
name: admins
description: May edit every tool
---
kind: Group
name: users
description: May use the tools
""",
    "config/variables.yaml": """\
kind: ConfigVariable
name: SUPPORT_EMAIL
description: Shown in the app's footer
values:
  default: support-staging@example.com   # any environment not listed
  production: support@example.com
---
kind: ConfigVariable
name: ANALYTICS_KEY
secret: true                    # values must be ${secret:NAME} references, resolved at run time
values:
  staging: "${secret:ANALYTICS_STAGING_KEY}"
  production: "${secret:ANALYTICS_PRODUCTION_KEY}"
""",
    "resources/app-db.yaml": """\
kind: Resource
name: app-db
type: postgresql
description: The app's database
folder: Data
options: {port: 5432, ssl: true}          # shared by every environment
environments:
  staging:
    options: {host: db-staging.internal, database: app, username: tools, password: "${secret:APP_DB_STAGING_PASSWORD}"}
  production:
    options: {host: db.internal, database: app, username: tools, password: "${secret:APP_DB_PRODUCTION_PASSWORD}"}
""",
    "databases/app.yaml": """\
kind: Database
name: app
schema: databases/app             # .sql files applied in lexical order = the declared schema
managed_schemas: [public]
environments:
  staging: {url: "${secret:APP_DB_STAGING_ADMIN_URL}"}
  production: {url: "${secret:APP_DB_PRODUCTION_ADMIN_URL}"}
""",
    "databases/app/001_tables.sql": """\
create table accounts (
    id bigint generated always as identity primary key,
    name text not null,
    created_at timestamptz not null default now()
);
""",
    "apps/admin-panel.yaml": """\
kind: App
name: admin-panel
description: Look up and edit accounts
folder: Tools
source: apps/admin-panel          # the app's files, deployed as they are
resources: [app-db]
config: [SUPPORT_EMAIL]
databases: [app]
access: {use: [users], edit: [admins]}
""",
    "apps/admin-panel/app.json": """\
{"name": "admin-panel", "pages": [{"id": "accounts", "components": [{"type": "table", "query": "accounts"}]}]}
""",
}


CONFIG = """\
# Reconciler's configuration. Every key has a safe default; these are the ones you are most likely
# to change (docs/configuration.md lists them all). A value written ${{secret:NAME}} is read from
# the secret backends below, never from this file. 'reconciler secrets ENV' lists every secret an
# environment needs and which are missing.
data_dir = ".reconciler"        # the state database, the registry, the fingerprint key, the clone cache

[source]
url = "."                       # the Git repository holding the desired state: a path, or a
                                # file://, https:// or ssh:// URL. Plans read committed revisions.
branches = ["main"]             # the branches to fetch; staging tracks main
path = "{path}"{padding}  # the desired-state folder inside the repository
poll_interval = "60s"           # how often 'reconciler run' fetches a remote (a local path is watched)
# webhook_secret = "${{secret:WEBHOOK_SECRET}}"   # HMAC key of /hooks/github and /hooks/generic

[platform]
provider = "registry"           # the built-in platform, a SQLite database in data_dir. For Retool:
# provider = "retool"
# host = "https://retool.example.com"
# token = "${{secret:RETOOL_TOKEN}}"

[secrets]
backends = ["env"]              # ${{secret:NAME}} reads the environment variable NAME
# backends = ["files:/run/secrets", "env"]      # first the file /run/secrets/NAME, then the variable

[api]
listen = "127.0.0.1:8080"       # 'reconciler run' serves the API and the dashboard here
# Who may call the API: the sha256 of each token is stored, never the token. Make one with
#   python3 -c 'import hashlib,sys;print("sha256:"+hashlib.sha256(sys.argv[1].encode()).hexdigest())' TOKEN
# then add:
#   [[api.tokens]]
#   name = "ci"
#   hash = "sha256:<the 64 hex digits printed>"
#   scopes = ["read", "sync"]
"""


def config_text(desired_path: str) -> str:
    """The commented ``reconciler.toml`` for a desired-state folder at ``desired_path`` in the repository."""
    quoted = desired_path.replace("\\", "\\\\").replace('"', '\\"')
    return CONFIG.format(path=quoted, padding=" " * max(0, 21 - len(quoted)))


def write_config(target: Path, desired_path: str) -> bool:
    """Write ``target`` (a reconciler.toml) unless it exists: an existing configuration is never replaced."""
    try:
        with target.open("x", encoding="utf-8") as handle:
            handle.write(config_text(desired_path))
    except FileExistsError:
        return False
    return True


def scaffold(target: Path) -> list[Path]:
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} is not empty; choose a new folder")
    written = []
    for relative, text in FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
