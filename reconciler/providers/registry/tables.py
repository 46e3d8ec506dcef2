"""SQLAlchemy tables of the built-in registry (the embedded stand-in for a platform like Retool).

Every row belongs to one environment, so each environment's live state is independent. Secret
values are never stored: a secret field holds ``{"$sensitive": <template>, "fingerprint": ...}``;
the HTTP registry endpoint resolves the template at request time. Like a real platform, the
registry keeps the files of each deployed app (``registry_app_files``), so what runs can be read
back (``reconciler import``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

environments = Table(
    "registry_environments", metadata,
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("color", String(16)),
)

folders = Table(
    "registry_folders", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
)

resources = Table(
    "registry_resources", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("type", String(50), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("folder", String(100)),
    Column("options", JSON, nullable=False),
)

config_variables = Table(
    "registry_config_variables", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("secret", Boolean, nullable=False, default=False),
    Column("value", JSON, nullable=False),
)

groups = Table(
    "registry_groups", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, default=""),
)

# A group's declared members and privileges, kept beside ``groups`` (a table of its own, so registries
# made before groups had them gain it by ``create_all`` without a migration). ``members`` is NULL when
# membership is not managed; ``privileges`` holds only the privileges declared.
group_settings = Table(
    "registry_group_settings", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("members", JSON),
    Column("privileges", JSON, nullable=False),
)

# Spaces (``kind: Space``), stored like any other object: the registry has no Spaces of its own.
spaces = Table(
    "registry_spaces", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("domain", String(255), nullable=False),
    Column("admins", JSON, nullable=False),
)

permissions = Table(
    "registry_permissions", metadata,
    Column("environment", String(100), primary_key=True),
    Column("group_name", String(100), primary_key=True),
    Column("object_type", String(20), primary_key=True),
    Column("object_name", String(100), primary_key=True),
    Column("access", String(10), nullable=False),
)

apps = Table(
    "registry_apps", metadata,
    Column("environment", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("folder", String(100)),
    Column("source_hash", String(80)),
    Column("resources", JSON, nullable=False),
    Column("config", JSON, nullable=False),
    Column("revision", String(64)),
    Column("release", String(100)),
    Column("deployed_at", DateTime(timezone=True)),
)

app_files = Table(
    "registry_app_files", metadata,
    Column("environment", String(100), primary_key=True),
    Column("app", String(100), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)
