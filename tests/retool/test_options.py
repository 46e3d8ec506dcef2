"""Resource options: our flat form ↔ Retool's nested, per-type form (pure functions, no server)."""

from __future__ import annotations

import pytest

from reconciler.errors import ConfigError
from reconciler.providers.retool import RetoolClient
from reconciler.providers.retool.options import HIDDEN, SECRET_MARKER, OptionError, from_wire, merge_live, to_wire
from reconciler.secrets.values import Sensitive

PASSWORD = Sensitive("${secret:DB_PASSWORD}", "hmac-sha256:aaaa")
TOKEN = Sensitive("Bearer ${secret:API_TOKEN}", "hmac-sha256:bbbb")


def reveal(value: Sensitive) -> str:
    return {"${secret:DB_PASSWORD}": "pw", "Bearer ${secret:API_TOKEN}": "Bearer tk"}[value.template]


def test_database_options_nest_under_database_options_with_retools_names_and_types() -> None:
    flat = {"host": "db.internal", "port": 5432, "database": "crm", "username": "retool",
            "password": PASSWORD, "ssl": True}

    assert to_wire("postgresql", flat, reveal) == {"database_options": {
        "host": "db.internal", "port": "5432", "name": "crm", "username": "retool", "password": "pw",
        "ssl_settings": {"enabled": True},
    }}


def test_rest_options_turn_mappings_into_pairs_and_infer_the_authentication_type() -> None:
    flat = {"base_url": "https://api", "headers": {"Accept": "application/json"}, "authorization": TOKEN,
            "url_parameters": {"v": "2"}}

    assert to_wire("restapi", flat, reveal) == {
        "base_url": "https://api",
        "headers": [["Accept", "application/json"], ["Authorization", "Bearer tk"]],
        "url_parameters": [["v", "2"]],
    }
    assert to_wire("restapi", {"base_url": "https://api", "bearer_token": "t"}, reveal) == {
        "base_url": "https://api",
        "authentication_options": {"authentication_type": "bearer", "bearer_token": "t"},
    }


def test_authentication_fields_of_two_methods_need_an_explicit_type() -> None:
    with pytest.raises(OptionError, match="set authentication_type"):
        to_wire("restapi", {"base_url": "u", "bearer_token": "t", "basic_username": "u"}, reveal)


def test_snowflake_options_split_into_database_and_authentication_options() -> None:
    flat = {"account_identifier": "acme", "database": "DW", "warehouse": "WH", "username": "u",
            "password": PASSWORD}

    assert to_wire("snowflake", flat, reveal) == {
        "account_identifier": "acme",
        "database_options": {"name": "DW", "warehouse": "WH"},
        "authentication_options": {"authentication_type": "snowflake", "username": "u", "password": "pw"},
    }


def test_an_option_with_no_place_in_retool_is_refused_with_the_accepted_keys() -> None:
    with pytest.raises(OptionError, match=r"'hostname' is not a database option \(accepted: .*host,"):
        to_wire("mysql", {"hostname": "x"}, reveal)


def test_types_retool_cannot_create_pass_their_options_through() -> None:
    assert to_wire("mongodb", {"connection_string": PASSWORD}, reveal) == {"connection_string": "pw"}


def test_reading_back_marks_masked_values_hidden_and_drops_server_defaults() -> None:
    wire = {
        "base_url": "https://api",
        "headers": [["Accept", "application/json"], ["Authorization", "Bearer tk"]],
        "authentication_options": {"authentication_type": "none"},
    }
    database = {"database_options": {"host": "h", "port": "5432", "name": "crm", "password": SECRET_MARKER,
                                     "ssl_settings": {"enabled": False}}}

    assert from_wire("restapi", wire) == {
        "base_url": "https://api", "headers": {"Accept": "application/json"}, "authorization": "Bearer tk",
    }
    assert from_wire("postgresql", database) == {
        "host": "h", "port": 5432, "database": "crm", "password": HIDDEN, "ssl": False,
    }


def test_live_options_keep_what_we_wrote_where_retool_shows_the_same_or_nothing() -> None:
    remembered = {"host": "h", "port": 5432, "password": PASSWORD, "ssl": True}

    same = merge_live({"host": "h", "port": "5432", "password": HIDDEN, "ssl": True}, remembered)
    moved = merge_live({"host": "other", "port": "5433", "password": HIDDEN, "ssl": True}, remembered)
    unknown = merge_live({"host": "h", "password": HIDDEN}, None)

    assert same == remembered
    assert moved == {"host": "other", "port": "5433", "password": PASSWORD, "ssl": True}
    assert unknown == {"host": "h", "password": Sensitive("(unknown)", "")}


def test_a_host_with_credentials_or_an_empty_token_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="must not carry credentials"):
        RetoolClient("https://user:pw@retool.example.com", "tok")
    with pytest.raises(ConfigError, match="token is empty"):
        RetoolClient("https://retool.example.com", "")


def test_the_api_base_is_added_to_the_host_once() -> None:
    for host in ("retool.example.com", "https://retool.example.com/", "https://retool.example.com/api/v2"):
        client = RetoolClient(host, "tok")
        assert client.base_url == "https://retool.example.com/api/v2"
        client.close()
