"""``reconciler run`` and ``--help`` as a user meets them: the installed console script, a real process.

A daemon that cannot start says why in one line and exits 1; help works for every command,
including ``run``, whose process keeps rich out of memory.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperGroup

from reconciler.cli import app
from reconciler.daemon.supervisor import Daemon
from tests.conftest import World, cli_process


def command_paths() -> list[str]:
    """Every command of the CLI, subcommands of groups included (``schemas export``)."""
    found: list[str] = []

    def walk(command: object, prefix: list[str]) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in sorted(command.commands.items()):
                walk(sub, [*prefix, name])
        else:
            found.append(" ".join(prefix))

    walk(typer.main.get_command(app), [])
    return found


def test_the_command_list_is_complete() -> None:
    assert {"validate", "plan", "apply", "drift", "status", "history", "pin", "unpin", "diff", "run", "demo",
            "init", "explain", "schemas export"} <= set(command_paths())


@pytest.mark.parametrize("command", command_paths())
def test_help_works_for_every_command(command: str) -> None:
    result = cli_process(*command.split(), "--help")
    assert result.exit_code == 0, result.stderr
    assert f"Usage: reconciler {command} [OPTIONS]" in result.stdout
    assert result.stderr == ""


def test_a_usage_error_of_run_is_a_plain_usage_message() -> None:
    result = cli_process("run", "--no-such-option")
    assert result.exit_code == 2
    assert "Usage: reconciler run [OPTIONS]" in result.stderr
    assert "No such option: --no-such-option" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_run_on_an_address_in_use_says_so_in_one_line(pyworld: World, taken_port: int) -> None:
    result = cli_process("run", "--config", str(pyworld.config), "--listen", f"127.0.0.1:{taken_port}")
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{taken_port}: Address already in use\n"
    assert not (pyworld.root / "data" / "daemon.json").exists()


def test_run_on_a_host_name_that_does_not_resolve_says_so(pyworld: World) -> None:
    result = cli_process("run", "--config", str(pyworld.config), "--listen", "no-such-host.invalid:8080")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot listen on no-such-host.invalid:8080: ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("key", ["webhook_secret", "gitlab_token"])
def test_a_webhook_secret_that_does_not_resolve_stops_the_start(pyworld: World, key: str) -> None:
    pyworld.configure(source={key: "${secret:MISSING_HOOK_SECRET}"})
    result = cli_process("run", "--config", str(pyworld.config), "--listen", "127.0.0.1:0",
                         unset=["MISSING_HOOK_SECRET"])
    assert result.exit_code == 1
    assert result.stderr == (f"error: source.{key}: secret MISSING_HOOK_SECRET is not set (searched: env)\n")


def test_an_empty_webhook_secret_stops_the_start(pyworld: World) -> None:
    """An empty HMAC key would make every signature computable by anyone."""
    pyworld.configure(source={"webhook_secret": "${secret:EMPTY_HOOK_SECRET}"})
    result = cli_process("run", "--config", str(pyworld.config), "--listen", "127.0.0.1:0",
                         env={"EMPTY_HOOK_SECRET": ""})
    assert result.exit_code == 1
    assert result.stderr == "error: source.webhook_secret is empty; set it to a long random value\n"


def test_stopping_a_daemon_that_never_started_raises_nothing(pyworld: World) -> None:
    """``run`` stops whatever it started when a later step of the start fails, the daemon included."""
    daemon = Daemon(pyworld.settings(), pyworld.reconciler())
    assert daemon.stop(timeout=5) is True
