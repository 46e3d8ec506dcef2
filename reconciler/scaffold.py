"""``reconciler init``: write a commented desired-state folder that validates, to start from.

Called by the CLI only. The files teach the format by example: every kind once, with comments
on what each field does and where secrets come from.
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
