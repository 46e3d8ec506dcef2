"""Paths out of the desired-state folder: traversal, absolute paths and symbolic links are refused,
and nothing outside the folder is ever opened — in a working directory and in a Git tree.

Every file the loader opens goes through ``Path.open`` (working directories) or the Git object
database (commits); the ``opened`` fixture records the former so a test can show that a link
pointing outside was never followed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.desired.loader import load
from reconciler.errors import ValidationError
from reconciler.source.repository import Repository
from reconciler.source.trees import DirectoryTree, GitTree
from tests.conftest import EXAMPLE, World, cli_process, git

OUTSIDER = "kind: Group\nname: outsider\ndescription: read from outside the folder\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the desired state holding a valid document and SQL, to be linked to."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "outsider.yaml").write_text(OUTSIDER)
    (folder / "001_outside.sql").write_text("create table outsider (id int);\n")
    return folder


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Every path opened through ``pathlib`` while the test runs, resolved."""
    seen: list[Path] = []
    real_open = Path.open

    def recording_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.resolve())
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", recording_open)
    yield seen


def problems_of(tree: DirectoryTree | GitTree) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load(tree)
    return [str(p) for p in caught.value.problems]


def edit(folder: Path, relative: str, old: str, new: str) -> None:
    path = folder / relative
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def assert_only_inside(opened: list[Path], folder: Path) -> None:
    root = folder.resolve()
    assert opened, "the loader read nothing at all"
    outside = [p for p in opened if not p.is_relative_to(root)]
    assert outside == []


# -- traversal -----------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ["../../etc", "/etc", "databases/../../..", "databases/crm/../../../x",
                                    "databases\\crm", "../desired-state/databases/crm"])
def test_a_schema_path_out_of_the_folder_is_refused(example_copy: Path, schema: str) -> None:
    edit(example_copy, "databases/crm.yaml", "schema: databases/crm ", f"schema: '{schema}' ")
    assert problems_of(DirectoryTree(example_copy)) == [
        f"databases/crm.yaml:4: Database 'crm': schema '{schema}' is outside the desired-state folder; use a "
        "path relative to it"]


@pytest.mark.parametrize("source", ["../../../etc", "/etc/ssh"])
def test_an_app_source_out_of_the_folder_is_refused(example_copy: Path, source: str) -> None:
    edit(example_copy, "apps/customer-support-dashboard.yaml", "source: apps/customer-support-dashboard ",
         f"source: '{source}' ")
    assert problems_of(DirectoryTree(example_copy)) == [
        f"apps/customer-support-dashboard.yaml:5: App 'customer-support-dashboard': source '{source}' is outside "
        "the desired-state folder; use a path relative to it",
        # No longer the app's source, its folder's YAML is read as desired state.
        "apps/customer-support-dashboard/queries.yaml:2: document has no 'kind'"]


# -- links in a working directory ----------------------------------------------------------------------


def test_a_linked_yaml_file_is_refused_and_not_read(example_copy: Path, outside: Path, opened: list[Path]) -> None:
    os.symlink(outside / "outsider.yaml", example_copy / "outsider.yaml")
    assert problems_of(DirectoryTree(example_copy)) == [
        "outsider.yaml: is a symbolic link; the desired state must not use links"]
    assert_only_inside(opened, example_copy)


def test_a_linked_folder_is_refused_and_not_entered(example_copy: Path, outside: Path, opened: list[Path]) -> None:
    os.symlink(outside, example_copy / "more")
    assert problems_of(DirectoryTree(example_copy)) == [
        "more: is a symbolic link; the desired state must not use links"]
    assert_only_inside(opened, example_copy)


def test_a_link_to_a_system_file_is_refused_and_not_read(example_copy: Path, opened: list[Path]) -> None:
    os.symlink("/etc/passwd", example_copy / "passwd.yml")
    assert problems_of(DirectoryTree(example_copy)) == [
        "passwd.yml: is a symbolic link; the desired state must not use links"]
    assert_only_inside(opened, example_copy)


def test_a_schema_folder_that_is_a_link_is_refused_and_its_sql_not_read(
    example_copy: Path, outside: Path, opened: list[Path]
) -> None:
    shutil.rmtree(example_copy / "databases/crm")
    os.symlink(outside, example_copy / "databases/crm")
    assert problems_of(DirectoryTree(example_copy)) == [
        "databases/crm.yaml:4: Database 'crm': schema 'databases/crm' goes through the symbolic link "
        "'databases/crm'; links are not followed"]
    assert_only_inside(opened, example_copy)


def test_a_linked_sql_file_in_the_schema_folder_is_refused_and_not_read(
    example_copy: Path, outside: Path, opened: list[Path]
) -> None:
    os.symlink(outside / "001_outside.sql", example_copy / "databases/crm/004_outside.sql")
    assert problems_of(DirectoryTree(example_copy)) == [
        "databases/crm.yaml:4: Database 'crm': 'databases/crm/004_outside.sql' is a symbolic link; links are not "
        "followed"]
    assert_only_inside(opened, example_copy)


def test_a_linked_file_in_an_app_source_is_refused_and_not_read(
    example_copy: Path, outside: Path, opened: list[Path]
) -> None:
    os.symlink("/etc/passwd", example_copy / "apps/customer-support-dashboard/passwd")
    assert problems_of(DirectoryTree(example_copy)) == [
        "apps/customer-support-dashboard.yaml:5: App 'customer-support-dashboard': "
        "'apps/customer-support-dashboard/passwd' is a symbolic link; links are not followed"]
    assert_only_inside(opened, example_copy)


def test_validate_reports_links_in_one_short_report(example_copy: Path, outside: Path) -> None:
    os.symlink(outside, example_copy / "more")
    os.symlink("/etc/passwd", example_copy / "passwd.yaml")
    result = cli_process("validate", str(example_copy))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"invalid: {example_copy} has 2 problems",
        "  more: is a symbolic link; the desired state must not use links",
        "  passwd.yaml: is a symbolic link; the desired state must not use links"]


# -- file names ------------------------------------------------------------------------------------------

ODD_FILE_NAME = "the file name holds control or invisible characters; rename the file"


@pytest.mark.parametrize(("name", "shown"), [
    ("ev\nil.yaml", "ev\\nil.yaml"),
    ("\x1b[31mred.yaml", "\\x1b[31mred.yaml"),
    ("x\u202elmay.yaml", "x\\u202elmay.yaml"),  # shows as 'xyaml.l' in a terminal
    ("notes\r.txt", "notes\\r.txt"),
])
def test_a_file_name_with_control_characters_is_refused_and_shown_escaped(
    example_copy: Path, name: str, shown: str
) -> None:
    (example_copy / name).write_text("kind: [\n")
    assert problems_of(DirectoryTree(example_copy)) == [f"{shown}: {ODD_FILE_NAME}"]


def test_a_sql_file_name_with_a_newline_is_refused(example_copy: Path) -> None:
    (example_copy / "databases/crm/00\n4.sql").write_text("select (((")
    assert problems_of(DirectoryTree(example_copy)) == [f"databases/crm/00\\n4.sql: {ODD_FILE_NAME}"]


def test_validate_writes_no_terminal_escape_from_a_file_name(example_copy: Path) -> None:
    (example_copy / "\x1b[2J\x1b[Hvalid.yaml").write_text("kind: [\n")  # would clear the screen
    result = cli_process("validate", str(example_copy))
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr + result.stdout
    assert result.stderr.splitlines()[1] == f"  \\x1b[2J\\x1b[Hvalid.yaml: {ODD_FILE_NAME}"


# -- links committed to Git ----------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A Git repository (made with the git CLI) holding the example under desired-state/."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root / "desired-state")
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    return root


def commit_tree(repo: Path, path: str = "desired-state") -> GitTree:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    repository = Repository(str(repo))
    return repository.tree(repository.branch_head("main"), path)


def test_a_file_name_with_a_newline_committed_to_git_is_refused(repo: Path) -> None:
    (repo / "desired-state/ev\nil.yaml").write_text("kind: Group\nname: evil\n")
    assert problems_of(commit_tree(repo)) == [f"ev\\nil.yaml: {ODD_FILE_NAME}"]


def test_a_symlink_committed_to_git_is_refused(repo: Path) -> None:
    (repo / "desired-state/groups.yaml").unlink()
    os.symlink("/etc/passwd", repo / "desired-state/groups.yaml")
    tree = commit_tree(repo)
    assert git(repo, "ls-files", "-s", "desired-state/groups.yaml").startswith("120000 ")
    assert problems_of(tree) == ["groups.yaml: is a symbolic link; the desired state must not use links"]


def test_a_linked_folder_committed_to_git_is_refused(repo: Path, outside: Path) -> None:
    os.symlink(outside, repo / "desired-state/more")
    assert problems_of(commit_tree(repo)) == ["more: is a symbolic link; the desired state must not use links"]


def test_a_schema_folder_committed_as_a_link_is_refused(repo: Path) -> None:
    shutil.rmtree(repo / "desired-state/databases/crm")
    os.symlink("../../../../etc", repo / "desired-state/databases/crm")
    assert problems_of(commit_tree(repo)) == [
        "databases/crm.yaml:4: Database 'crm': schema 'databases/crm' goes through the symbolic link "
        "'databases/crm'; links are not followed"]


@pytest.mark.parametrize("path", ["../..", "/etc", "desired-state/../../x", "linked"])
def test_a_source_path_out_of_the_repository_finds_no_desired_state(repo: Path, path: str) -> None:
    os.symlink("desired-state", repo / "linked")
    assert problems_of(commit_tree(repo, path)) == [
        f"{path}@{git(repo, 'rev-parse', 'HEAD')[:12]}: desired-state folder not found; check source.path"]


def test_plan_at_a_revision_with_a_committed_link_is_one_line_and_exit_1(pyworld: World) -> None:
    (pyworld.desired / "groups.yaml").unlink()
    os.symlink("/etc/passwd", pyworld.desired / "groups.yaml")
    git(pyworld.repo, "add", "-A")
    git(pyworld.repo, "commit", "-q", "-m", "Link a system file")
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: desired state is invalid: groups.yaml: is a symbolic link; the desired state must not use links"]
