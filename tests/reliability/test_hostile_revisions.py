"""Odd tag names, branch names and revisions: ignored when they are not releases, refused with one
plain line when asked for, never a traceback.

Release selection is a pure function (``tag_version``); the end-to-end cases make the tags with the
``git`` CLI and drive the installed console script as a real process.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from semver import Version

from reconciler.core.revisions import tag_version
from reconciler.desired.loader import load
from reconciler.errors import ValidationError, clip
from reconciler.source.trees import DirectoryTree
from tests.conftest import CliResult, World, cli_process, git


@pytest.mark.parametrize(("name", "version"), [
    ("v1.0.0", Version(1, 0, 0)),
    ("v1.0.0+build.7", Version(1, 0, 0)),  # build metadata does not change the version
    ("v1.2.3-rc.1", Version(1, 2, 3, "rc.1")),
    ("v01.0.0", None),  # leading zero
    ("vv1.0.0", None),  # the glob's 'v' and the optional 'v' together
    ("v1.0.0-rc.1.", None),  # empty prerelease identifier
    ("v1.0.0-rc.01", None),  # leading zero in a numeric prerelease identifier
    ("v\u0661.\u0660.\u0660", None),  # Arabic-Indic digits
    ("v\uff11.0.0", None),  # fullwidth digit one
    ("v1.0", None),
    ("v1.0.0.0", None),
    ("v1.0.0-", None),
    ("vnext", None),
    ("V1.0.0", None),  # the glob is case-sensitive
    ("v" + "1" * 5000 + ".0.0", None),  # over Python's int conversion limit
    ("v1.0.0-" + "1" * 5000, None),
    ("v1.0.0-" + "x" * 300, Version(1, 0, 0, "x" * 300)),
])
def test_a_tag_name_carries_a_version_only_when_it_is_semver(name: str, version: Version | None) -> None:
    assert tag_version(name, "v*") == version


def test_a_tag_outside_the_glob_is_no_release() -> None:
    assert tag_version("release-1.0.0", "v*") is None
    assert tag_version("1.0.0", "v*") is None


def plan_json(world: World, *args: str) -> dict[str, object]:
    result = cli_process("plan", *args, "--format", "json", "--config", str(world.config))
    assert result.exit_code == 2, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


# Git itself refuses names with spaces, '..', '~', '^', ':' or a trailing '.', so those cannot be tags.
ODD_TAGS = ["vv2.0.0", "v02.0.0", "v\u0662.\u0660.\u0660", "v2.0.0-rc.1", "v2", "v2.0", "vnext", "v2.0.0-",
            "v2.0.0_" + "x" * 200, "v2.0.0-rc.-", "v-latest", "v2.0.0-\u00e9"]


def test_odd_tag_names_on_a_newer_commit_are_not_releases(pyworld: World) -> None:
    released = pyworld.commit("Release one")
    git(pyworld.repo, "tag", "v1.0.0", released)
    pyworld.write("groups.yaml", (pyworld.desired / "groups.yaml").read_text() + "---\nkind: Group\nname: later\n")
    newer = pyworld.commit("Newer, tagged oddly")
    for name in ODD_TAGS:
        git(pyworld.repo, "tag", name, newer)
    assert sorted(git(pyworld.repo, "tag", "--list").splitlines()) == sorted([*ODD_TAGS, "v1.0.0"])
    plan = plan_json(pyworld, "production")
    assert (plan["revision"], plan["ref"]) == (released, "v1.0.0")


def test_a_branch_name_with_a_slash_is_a_branch(example_copy: Path) -> None:
    staging = example_copy / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace("branch: main", "branch: release/1.x"))
    assert load(DirectoryTree(example_copy)).environments["staging"].track.branch == "release/1.x"


def test_a_branch_name_git_would_refuse_is_refused_in_plain_words(example_copy: Path) -> None:
    staging = example_copy / "environments/staging.yaml"
    staging.write_text(staging.read_text().replace("branch: main", "branch: release/../x"))
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(example_copy))
    assert [str(p) for p in caught.value.problems] == [
        "environments/staging.yaml:6: Environment 'staging': track.branch: 'release/../x' is not a Git branch "
        "name: no '..', no '//', no '.lock' at the end"]


def test_a_tracked_branch_that_does_not_exist_is_one_line(pyworld: World) -> None:
    pyworld.write("environments/staging.yaml",
                  (pyworld.desired / "environments/staging.yaml").read_text().replace("branch: main", "branch: nope"))
    pyworld.commit("Track a branch that is not there")
    result = cli_process("plan", "staging", "--config", str(pyworld.config))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: branch 'nope' does not exist in {pyworld.repo}"]


HOSTILE_REVS = ["HEAD~999", "../../x", ";rm -rf /", "$(touch pwned)", "--help", "-x", "", "HEAD^{tree}",
                "HEAD@{upstream}", "main..HEAD", "refs/../../etc/passwd", "v\u0661.0.0", "x" * 300]


def run_all(argvs: list[list[str]], cwd: Path) -> list[CliResult]:
    """Run the console script once per argv, a few at a time (each is a separate process)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda argv: cli_process(*argv, cwd=cwd), argvs))


@pytest.fixture
def store_ready(pyworld: World) -> World:
    """``pyworld`` with its state store created: parallel first uses of a fresh SQLite store race."""
    assert cli_process("status", "--config", str(pyworld.config)).exit_code == 0
    return pyworld


def test_a_hostile_rev_is_refused_in_one_line_by_plan_and_diff(store_ready: World) -> None:
    world = store_ready
    config = ["--config", str(world.config)]
    cases = [(["plan", "staging", "--rev", rev, *config], rev) for rev in HOSTILE_REVS]
    cases += [(["diff", "--base", rev, "--head", "HEAD", *config], rev) for rev in HOSTILE_REVS[:3]]
    results = run_all([argv for argv, _ in cases], cwd=world.root)
    for (argv, rev), result in zip(cases, results, strict=True):
        assert (result.exit_code, result.stderr.splitlines()) == (
            1, [f"error: unknown revision {clip(rev)!r} in {world.repo}"]), argv
    assert not (world.root / "pwned").exists()


def test_a_hostile_rev_is_refused_in_one_line_by_pin(store_ready: World) -> None:
    result = cli_process("pin", "staging", "HEAD~999", "--config", str(store_ready.config))
    assert (result.exit_code, result.stderr.splitlines()) == (
        1, [f"error: unknown revision 'HEAD~999' in {store_ready.repo}"])


def test_a_hostile_rev_is_refused_in_one_line_by_apply(store_ready: World) -> None:
    result = cli_process("apply", "staging", "--rev", ";rm -rf /", "--config", str(store_ready.config))
    assert "Traceback" not in result.stderr
    assert (result.exit_code, result.stderr.splitlines()) == (
        1, [f"error: unknown revision ';rm -rf /' in {store_ready.repo}"])
    # A typo is the caller's mistake: no run is recorded and the environment is not marked Failed.
    history = cli_process("history", "staging", "--format", "json", "--config", str(store_ready.config))
    assert '"runs": []' in history.stdout


def test_a_hostile_environment_name_is_refused_in_one_line(store_ready: World) -> None:
    names = ["../../etc", "staging; drop table runs; --", "", "st\u0430ging", "x" * 300]
    results = run_all([["plan", name, "--config", str(store_ready.config)] for name in names], cwd=store_ready.root)
    for name, result in zip(names, results, strict=True):
        assert (result.exit_code, result.stderr.splitlines()) == (
            1, [f"error: unknown environment {clip(name)!r} (declared: staging, production)"]), name


# Rich markup in user text ('[/x]' once raised MarkupError, '[red]x' lost its brackets) is shown as written.
def test_a_rev_holding_rich_markup_is_shown_literally(store_ready: World) -> None:
    result = cli_process("apply", "staging", "--rev", "[/x]", "--config", str(store_ready.config))
    assert "Traceback" not in result.stderr
    assert (result.exit_code, result.stderr.splitlines()) == (
        1, [f"error: unknown revision '[/x]' in {store_ready.repo}"])
    red = cli_process("apply", "staging", "--rev", "[red]x", "--config", str(store_ready.config))
    assert red.stderr.splitlines() == [f"error: unknown revision '[red]x' in {store_ready.repo}"]


def test_validate_of_a_path_holding_rich_markup_is_one_line(tmp_path: Path) -> None:
    result = cli_process("validate", str(tmp_path / "[/x]"))
    assert "Traceback" not in result.stderr
    assert (result.exit_code, result.stderr.splitlines()) == (1, [f"error: {tmp_path / '[/x]'}: no such directory"])
