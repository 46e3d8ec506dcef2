"""Resource options: our flat ``options`` dict ↔ the nested shape Retool's API wants for each type.

Called by ``provider.RetoolProvider`` only. Users write options the way they think about a
connection (``host``, ``port``, ``database``, ``password``, ``base_url``, ``headers``); Retool's API
nests them per resource type (``database_options.host``, ``authentication_options.bearer_token``,
headers as ``[name, value]`` pairs). ``to_wire`` renders the flat form for a write (with secrets
revealed through a callback, at the last moment); ``from_wire`` reads an API answer back into the
flat form, marking values the API hides (``---encrypted-on-server---``) as ``HIDDEN``;
``merge_live`` lays what we remember having written over that, so that hidden values and
representation changes (``5432`` written, ``"5432"`` returned) do not look like drift.

Vocabulary, by Retool type (anything else is refused with the list of accepted keys, because a
connection option that silently goes nowhere is worse than an error):

- ``postgresql``, ``mysql``, ``redshift``, ``dbServer``: ``host``, ``port``, ``database`` (Retool's
  ``name``), ``username``, ``password``, ``ssl`` (``ssl_settings.enabled``), ``ssl_settings``,
  ``ssh_tunnel_options``, ``connection_string`` and the other ``database_options`` fields by
  their Retool names.
- ``restapi``: ``base_url``, ``headers``/``url_parameters``/``extra_body_values`` (mappings),
  ``authorization`` (the ``Authorization`` header), ``cookies_to_forward``,
  ``forward_all_cookies``, and authentication fields by their Retool names (``bearer_token``,
  ``basic_username``, ``basic_password``, ``oauth2_*``, ...), whose ``authentication_type`` is
  inferred.
- ``snowflake``: ``account_identifier``, ``user_role``, ``database``, ``schema``, ``warehouse``,
  ``username``, ``password`` (or ``private_key``/``private_key_passphrase``).
- Any other type (not creatable through the API, but readable): options pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.secrets.values import Sensitive

# Not a password: the mask Retool shows in place of a secret value.
SECRET_MARKER = "---encrypted-on-server---"  # noqa: S105


class _Hidden:
    """A value the API does not show (masked or omitted)."""

    def __repr__(self) -> str:
        return "HIDDEN"


HIDDEN: Any = _Hidden()

Reveal = Callable[[Sensitive], str]

DATABASE_TYPES = frozenset({"postgresql", "mysql", "redshift", "dbServer"})
_DATABASE_FIELDS = frozenset({
    "host", "port", "name", "username", "password", "ssl_settings", "ssh_tunnel_options",
    "connection_string", "disable_converting_queries_to_prepared_statements", "show_write_gui_only",
    "use_dynamic_database_names", "use_dynamic_database_hosts", "convert_mysql_dates_to_javascript",
})
_REST_TOP = frozenset({
    "base_url", "headers", "url_parameters", "extra_body_values", "cookies_to_forward",
    "forward_all_cookies",
})
_REST_PAIRS = frozenset({"headers", "url_parameters", "extra_body_values"})
# Authentication field prefix → Retool's authentication_type.
_AUTH_PREFIXES = (
    ("bearer_", "bearer"),
    ("basic_", "basic"),
    ("digest_", "digest"),
    ("oauth2_", "oauth2"),
    ("oauth1_", "oauth1"),
    ("auth0_", "auth0"),
    ("amazon_", "aws4"),
    ("auth_with_default_credential_provider_chain", "aws4"),
    ("enable_awsv4_authentication_via_headers", "aws4"),
)
_SNOWFLAKE_DB = frozenset({"schema", "warehouse", "disable_converting_queries_to_prepared_statements",
                           "show_write_gui_only"})


class OptionError(ValueError):
    """A declared option has no place in Retool's options for that resource type."""


def _auth_type(key: str) -> str | None:
    for prefix, kind in _AUTH_PREFIXES:
        if key.startswith(prefix):
            return kind
    return None


def _reveal_all(value: Any, reveal: Reveal) -> Any:
    if isinstance(value, Sensitive):
        return reveal(value)
    if isinstance(value, Mapping):
        return {k: _reveal_all(v, reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal_all(v, reveal) for v in value]
    return value


def _pairs(value: Any, key: str) -> list[list[str]]:
    if isinstance(value, Mapping):
        return [[str(k), str(v)] for k, v in value.items()]
    if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        return [[str(p[0]), str(p[1])] for p in value]
    raise OptionError(f"option {key!r} must be a mapping of names to values")


def to_wire(resource_type: str, options: Mapping[str, Any], reveal: Reveal) -> dict[str, Any]:
    """Retool's ``options`` body for ``resource_type`` from our flat ``options``."""
    flat = {k: _reveal_all(v, reveal) for k, v in options.items()}
    if resource_type in DATABASE_TYPES:
        return _database_to_wire(flat)
    if resource_type == "restapi":
        return _rest_to_wire(flat)
    if resource_type == "snowflake":
        return _snowflake_to_wire(flat)
    return dict(flat)


def _database_to_wire(flat: dict[str, Any]) -> dict[str, Any]:
    db: dict[str, Any] = {}
    for key, value in flat.items():
        if key == "database":
            db["name"] = str(value)
        elif key == "port":
            db["port"] = str(value)
        elif key == "ssl":
            db.setdefault("ssl_settings", {})["enabled"] = bool(value)
        elif key == "ssl_settings" and isinstance(value, Mapping):
            db.setdefault("ssl_settings", {}).update(value)
        elif key in _DATABASE_FIELDS:
            db[key] = value
        else:
            accepted = ", ".join(sorted({"database", "ssl", *_DATABASE_FIELDS} - {"name"}))
            raise OptionError(f"option {key!r} is not a database option (accepted: {accepted})")
    return {"database_options": db}


def _rest_to_wire(flat: dict[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    auth: dict[str, Any] = {}
    for key, value in flat.items():
        if key == "authorization":
            wire.setdefault("headers", []).append(["Authorization", str(value)])
        elif key in _REST_PAIRS:
            wire.setdefault(key, [])
            wire[key] = _pairs(value, key) + wire[key]
        elif key in _REST_TOP:
            wire[key] = value
        elif key == "authentication_type" or _auth_type(key):
            auth[key] = value
        else:
            accepted = ", ".join(sorted({"authorization", "authentication_type", *_REST_TOP}))
            raise OptionError(
                f"option {key!r} is not a REST API option (accepted: {accepted}, and authentication "
                "fields such as bearer_token, basic_username, basic_password, oauth2_client_id)"
            )
    if auth:
        if "authentication_type" not in auth:
            kinds = {_auth_type(k) for k in auth}
            if len(kinds) != 1:
                raise OptionError("authentication options mix several methods; set authentication_type")
            auth = {"authentication_type": kinds.pop(), **auth}
        wire["authentication_options"] = auth
    return wire


def _snowflake_to_wire(flat: dict[str, Any]) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    db: dict[str, Any] = {}
    auth: dict[str, Any] = {}
    for key, value in flat.items():
        if key in ("account_identifier", "user_role"):
            wire[key] = value
        elif key == "database":
            db["name"] = value
        elif key in _SNOWFLAKE_DB:
            db[key] = value
        elif key in ("username", "password", "private_key", "private_key_passphrase",
                     "authentication_type") or key.startswith("oauth2_"):
            auth[key] = value
        else:
            raise OptionError(
                f"option {key!r} is not a Snowflake option (accepted: account_identifier, user_role, "
                "database, schema, warehouse, username, password, private_key, private_key_passphrase)"
            )
    if db:
        wire["database_options"] = db
    if auth:
        if "authentication_type" not in auth:
            if "private_key" in auth:
                kind = "snowflake_jwt"
            elif any(k.startswith("oauth2_") for k in auth):
                kind = "oauth2"
            else:
                kind = "snowflake"
            auth = {"authentication_type": kind, **auth}
        wire["authentication_options"] = auth
    return wire


def _shown(value: Any) -> Any:
    return HIDDEN if value == SECRET_MARKER else value


def from_wire(resource_type: str, wire: Mapping[str, Any]) -> dict[str, Any]:
    """Our flat options from Retool's ``options`` (hidden values become ``HIDDEN``)."""
    if resource_type in DATABASE_TYPES:
        flat: dict[str, Any] = {}
        db = wire.get("database_options") or {}
        for key, value in db.items():
            if key == "name":
                flat["database"] = _shown(value)
            elif key == "port" and isinstance(value, str) and value.isdigit():
                flat["port"] = int(value)  # Retool keeps ports as strings; people write numbers
            elif key == "ssl_settings" and isinstance(value, Mapping):
                rest = {k: v for k, v in value.items() if k != "enabled"}
                if "enabled" in value:
                    flat["ssl"] = value["enabled"]
                if any(v is not None for v in rest.values()):
                    flat["ssl_settings"] = {k: _shown(v) for k, v in rest.items() if v is not None}
            else:
                flat[key] = _shown(value)
        return flat
    if resource_type == "restapi":
        flat = {}
        for key, value in wire.items():
            if key == "authentication_options" and isinstance(value, Mapping):
                for auth_key, auth_value in value.items():
                    if auth_key != "authentication_type":
                        flat[auth_key] = _shown(auth_value)
                kind = value.get("authentication_type")
                implied = {_auth_type(k) for k in value if k != "authentication_type"}
                if kind not in (None, "none") and implied != {kind}:
                    flat["authentication_type"] = kind
            elif key in _REST_PAIRS and isinstance(value, list):
                pairs = {str(p[0]): _shown(p[1]) for p in value if isinstance(p, list) and len(p) == 2}
                if key == "headers":
                    for name in [n for n in pairs if n.lower() == "authorization"]:
                        flat["authorization"] = pairs.pop(name)
                if pairs:
                    flat[key] = pairs
            else:
                flat[key] = _shown(value)
        return flat
    if resource_type == "snowflake":
        flat = {}
        for key, value in wire.items():
            if key == "database_options" and isinstance(value, Mapping):
                for db_key, db_value in value.items():
                    flat["database" if db_key == "name" else db_key] = _shown(db_value)
            elif key == "authentication_options" and isinstance(value, Mapping):
                for auth_key, auth_value in value.items():
                    if auth_key != "authentication_type":
                        flat[auth_key] = _shown(auth_value)
            else:
                flat[key] = _shown(value)
        return flat
    return {k: _shown(v) for k, v in wire.items()}


def _same(remembered: Any, live: Any) -> bool:
    """Whether a remembered value and what the API shows are the same setting."""
    if remembered == live:
        return True
    if isinstance(remembered, bool) or isinstance(live, bool):
        return str(remembered).lower() == str(live).lower()
    if isinstance(remembered, int | float | str) and isinstance(live, int | float | str):
        return str(remembered) == str(live)
    if isinstance(remembered, Mapping) and isinstance(live, Mapping):
        return set(remembered) == set(live) and all(_same(remembered[k], live[k]) for k in remembered)
    return False


def merge_live(shown: Mapping[str, Any], remembered: Mapping[str, Any] | None) -> dict[str, Any]:
    """The live options to report: what the API shows, with what we remember laid over it.

    A secret we wrote (``Sensitive``) is reported from memory, since its value cannot be
    compared; a hidden value we did not write becomes an unknown secret (always drift); a shown
    value equal in substance to what we wrote keeps our representation.
    """
    remembered = remembered or {}
    out: dict[str, Any] = {}
    # Some endpoints omit write-only values instead of masking them: a secret we wrote and cannot
    # see is assumed to be still there (its edits are invisible either way).
    for key, mine in remembered.items():
        if isinstance(mine, Sensitive) and key not in shown:
            out[key] = mine
    for key, live in shown.items():
        mine = remembered.get(key, HIDDEN)
        if isinstance(mine, Sensitive):
            out[key] = mine
        elif live is HIDDEN:
            out[key] = mine if mine is not HIDDEN else Sensitive(template="(unknown)", fingerprint="")
        elif mine is not HIDDEN and _same(mine, live):
            out[key] = mine
        elif isinstance(live, Mapping) and isinstance(mine, Mapping):
            out[key] = merge_live(live, mine)
        else:
            out[key] = live
    return out
