"""reconciler.toml: a value that cannot work is refused at load, naming the file and the key.

Each case writes one bad value into an otherwise empty ``reconciler.toml`` and loads it the way
every command does; the last cases go through the real console script.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_settings
from reconciler.errors import ConfigError
from tests.conftest import cli_process


def instance(name: str, environments: str = '"staging"') -> str:
    """One [[platform.instances]] table hosting ``environments`` (TOML list items)."""
    return (f'[[platform.instances]]\nname = "{name}"\nhost = "https://retool-{len(name)}.example.com"\n'
            f'token = "t"\nenvironments = [{environments}]\n')


BAD = [
    ('[log]\nlevel = "loud"',
     "log.level: 'loud' is not a log level; use debug, info, warning, error or critical"),
    ('[api]\nlisten = "localhost"',
     "api.listen: 'localhost' is not host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)"),
    ('[api]\nlisten = "127.0.0.1:99999"',
     "api.listen: '127.0.0.1:99999' is not host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)"),
    ('[api]\nlisten = ":8080"',
     "api.listen: ':8080' is not host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080)"),
    ('[[api.tokens]]\nname = "ci"\nhash = "0123abcd"',
     "api.tokens[0].hash: is not sha256:<64 hex digits>; hash the token with "
     "python -c 'import hashlib,sys;print(\"sha256:\"+hashlib.sha256(sys.argv[1].encode()).hexdigest())' TOKEN"),
    ('[secrets]\nbackends = ["env", "vault"]',
     "secrets.backends[1]: unknown secret backend 'vault'; use 'env' or 'files:/path/to/dir'"),
    ('[secrets]\nbackends = ["files:"]',
     "secrets.backends[0]: unknown secret backend 'files:'; use 'env' or 'files:/path/to/dir'"),
    ('[platform]\nhost = "retool.example.com"',
     "platform.host: 'retool.example.com' is not an http:// or https:// URL with a host "
     "(e.g. https://retool.example.com)"),
    ('[platform]\nrequests_per_minute = 0', "platform.requests_per_minute: must be 1 or more (got 0)"),
    ('[platform]\nprovider = "retool"\nhost = "https://r.example.com"\ntoken = "t"\n' + instance("a"),
     "platform: give either host/token/space (one instance hosting every environment) or "
     "[[platform.instances]], not both"),
    ('[platform]\nprovider = "retool"\n' + instance("a") + instance("b"),
     "platform: environment 'staging' is hosted by two instances (a and b)"),
    ('[platform]\nprovider = "retool"\n' + instance("a") + instance("a", '"production"'),
     "platform: instance names must be unique (got a, a)"),
    ('[platform]\nprovider = "retool"\n' + instance("Staging 1"),
     "platform.instances[0].name: 'Staging 1' is not an instance name "
     "(lower-case letters, digits and '-', at most 30)"),
    ('[platform]\nprovider = "retool"\n' + instance("a", ""),
     "platform.instances[0].environments: name the environments this instance hosts"),
    ('[platform]\nprovider = "retool"\n' + instance("a") + 'retool_environments = {production = "production"}\n',
     "platform: instance a: retool_environments names production, which it does not host"),
    ("[platform]\n" + instance("a"),
     "platform: [[platform.instances]] are Retool instances; set provider = 'retool' or remove them"),
    ('[platform.source_control]\nurl = "https://git.example.com/apps.git"\nmerge = "auto"',
     "platform.source_control.merge: Input should be 'direct' or 'pull-request'"),
    ('[platform]\ntimeout = "soon"',
     "platform.timeout: 'soon' is not a duration; write it like '30s', '5m', '64h' or '1h30m'"),
    ('[platform]\nurl = "registry.db"',
     "platform.url: is not a SQLAlchemy URL (e.g. sqlite:////var/lib/reconciler/registry.db or "
     "postgresql+psycopg://user@host/db)"),
    ('[state]\nurl = "postgresql+psycopg://u:Pw-Canary-9@db:port/state"',
     "state.url: is not a SQLAlchemy URL (e.g. sqlite:////var/lib/reconciler/reconciler.db or "
     "postgresql+psycopg://user@host/db)"),
    ('[state]\nurl = "mongodb://db/state"',
     "state.url: 'mongodb' is not a database SQLAlchemy can use here; use sqlite:/// or postgresql+psycopg://"),
    ('[source]\nbranches = []', "source.branches: name at least one branch (the first is the control branch)"),
    ('[source]\nbranches = ["main", " "]', "source.branches[1]: is empty"),
    ('[source]\nurl = ""', "source.url: is empty; give a local path, file://, https:// or ssh:// URL"),
    ('[source]\nurl = "ftp://example.com/repo.git"',
     "source.url: 'ftp' is not a supported scheme; use a local path, file://, https:// or ssh://"),
    ('[source]\npoll_interval = "0s"', "source.poll_interval: must be longer than 0 (got '0s')"),
    ('[databases]\nlock_retries = -1', "databases.lock_retries: must be 0 or more (got -1)"),
    ('[databases]\nshadow_url = "mysql://scratch@db/x"',
     "databases.shadow_url: is not a postgresql:// URL (e.g. postgresql://scratch@db-scratch/postgres)"),
    ('[[notify.webhooks]]\nurl = "hooks.example.com/x"',
     "notify.webhooks[0].url: is not an http:// or https:// URL with a host (e.g. https://hooks.example.com/...)"),
    ('[[notify.webhooks]]\nurl = "https://hooks.example.com/x"\nevents = ["fail"]',
     "notify.webhooks[0].events[0]: Input should be 'drift', 'failed', 'blocked', 'promoted', 'recovered', "
     "'rolled_back' or 'break-glass'"),
    ('[daemon]\nlease_ttl = "0s"', "daemon.lease_ttl: must be longer than 0 (got '0s')"),
    ('[daemon]\nshutdown_timeout = "later"',
     "daemon.shutdown_timeout: 'later' is not a duration; write it like '30s', '5m', '64h' or '1h30m'"),
    ('[daemon]\nretry_delays = []', "daemon.retry_delays: list at least one delay (e.g. [\"15s\", \"1m\", \"10m\"])"),
    ('[daemon]\nretry_delays = ["15s", "0s"]', "daemon.retry_delays[1]: must be longer than 0 (got '0s')"),
]


@pytest.mark.parametrize(("toml", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_value_is_refused_with_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value) == f"{config}: {message}"
    assert "Pw-Canary" not in str(caught.value)


GOOD = [
    '[log]\nlevel = "WARNING"',
    '[api]\nlisten = "[::1]:0"',
    '[api]\nlisten = "0.0.0.0:8080"',
    '[secrets]\nbackends = ["env", "files:/run/secrets"]',
    '[platform]\nhost = "http://127.0.0.1:9000"',
    '[state]\nurl = "postgresql+psycopg://reconciler:${secret:STATE_DB_PASSWORD}@db:5432/state"',
    '[state]\nurl = "sqlite:////var/lib/reconciler/reconciler.db"',
    '[source]\nurl = "git@github.com:acme/internal-tools-state.git"',
    '[source]\nurl = "file:///srv/state.git"',
    '[databases]\nshadow_url = "${secret:SHADOW_URL}"\nlock_retries = 0',
    '[[notify.webhooks]]\nurl = "${secret:SLACK_WEBHOOK_URL}"\nformat = "slack"',
    '[daemon]\nretry_delays = ["500ms", "1s"]\ndrift_check_jitter = "0s"',
]


@pytest.mark.parametrize("toml", GOOD)
def test_a_good_value_is_accepted(tmp_path: Path, toml: str) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text(toml + "\n")
    load_settings(config)


def test_the_log_level_is_kept_in_lower_case(tmp_path: Path) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text('[log]\nlevel = "Debug"\n')
    assert load_settings(config).log.level == "debug"


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text('[log]\nlevel = "loud"\n\n[platform]\nrequests_per_minute = -5\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).splitlines() == [
        f"{config}: platform.requests_per_minute: must be 1 or more (got -5)",
        f"{config}: log.level: 'loud' is not a log level; use debug, info, warning, error or critical",
    ]


def test_the_daemon_refuses_a_bad_log_level_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n\n[log]\nlevel = "loud"\n')
    result = cli_process("run", "--config", str(config), "--source", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (f"error: {config}: log.level: 'loud' is not a log level; use debug, info, warning, "
                             "error or critical\n")
    assert not (tmp_path / "data").exists()  # refused before anything was started or created


def test_an_environment_variable_is_checked_like_the_file(tmp_path: Path) -> None:
    config = tmp_path / "reconciler.toml"
    config.write_text("")
    result = cli_process("status", "--config", str(config), env={"RECONCILER_API__LISTEN": "8080"})
    assert result.exit_code == 1
    assert result.stderr == ("error: RECONCILER_API__LISTEN: api.listen: '8080' is not host:port (e.g. 127.0.0.1:8080, "
                             "0.0.0.0:8080 or [::1]:8080)\n")
