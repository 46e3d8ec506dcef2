"""Bad input gets one plain line on stderr and exit 1 — never a traceback (the real console script)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import World, cli_process


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_corrupt_yaml_at_the_revision(pyworld: World) -> None:
    pyworld.write("groups.yaml", "kind: Group\nname: [unclosed\n")
    pyworld.commit("Corrupt a file")
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    line = one_line_error(result.stderr)
    assert line.startswith("error: desired state is invalid: groups.yaml:")
    assert "invalid YAML" in line


def test_missing_desired_state_folder(pyworld: World) -> None:
    pyworld.configure(source={"path": "no-such-folder"})
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert "desired-state folder not found" in one_line_error(result.stderr)


def test_validate_of_a_missing_folder(tmp_path: Path) -> None:
    result = cli_process("validate", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == f"error: {tmp_path / 'nope'}: no such directory"


def test_a_path_that_is_not_a_git_repository(pyworld: World, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli_process("plan", "staging", "--config", str(pyworld.config), "--source", str(plain))
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        f"error: {plain}: not a Git repository (run 'git init' or point at a clone)")


def test_an_unknown_environment(pyworld: World) -> None:
    result = cli_process("apply", "qa", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == "error: unknown environment 'qa' (declared: staging, production)"


def test_a_broken_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[source]\nurl = \n")
    result = cli_process("status", "--config", str(config))
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith(f"error: {config}: invalid TOML")


def test_an_unknown_configuration_key(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("[source]\nurll = \"x\"\n")
    result = cli_process("status", "--config", str(config))
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == f"error: {config}: source.urll: unknown key"
