"""Merging a pushed branch into a deploy branch of a repository we do not own (source/branches.py).

The repository is a real bare Git repository; commits are made with the ``git`` CLI as the people
around it would make them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.errors import ProviderError, SourceError
from reconciler.source.branches import BranchRepository, GitCredentials, MergeConflictError


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@example.com", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with ``main`` and a working clone at tmp_path/work to push from."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "manifests").mkdir()
    (work / "manifests" / "production.yaml").write_text("apps: []\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "push", "-q", "origin", "HEAD:main")
    return bare


def push_branch(remote: Path, branch: str, path: str, text: str, base: str = "main") -> str:
    work = remote.parent / "work"
    git(work, "fetch", "-q", "origin")
    git(work, "checkout", "-q", "-B", branch, f"origin/{base}")
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", f"change {path}")
    git(work, "push", "-q", "-f", "origin", f"HEAD:{branch}")
    return git(work, "rev-parse", "HEAD")


def head(remote: Path, branch: str = "main") -> str:
    return git(remote, "rev-parse", branch)


def test_a_branch_ahead_of_main_is_fast_forwarded(remote: Path, tmp_path: Path) -> None:
    commit = push_branch(remote, "release-1", "dist/app/1.0.0.zip", "artifact")
    repo = BranchRepository(str(remote), tmp_path / "cache")

    assert repo.is_merged("release-1", "main") is False
    assert repo.merge("release-1", "main", "Merge release-1") == commit

    assert head(remote) == commit
    assert repo.is_merged("release-1", "main") and repo.contains(commit, "main")
    assert repo.read("main", "dist/app/1.0.0.zip") == b"artifact"


def test_two_branches_from_the_same_main_are_both_merged_with_a_merge_commit(remote: Path, tmp_path: Path) -> None:
    release = push_branch(remote, "release-1", "dist/app/1.0.0.zip", "artifact")
    manifest = push_branch(remote, "manifest-1", "manifests/production.yaml", "apps: [1.0.0]\n")
    repo = BranchRepository(str(remote), tmp_path / "cache")

    repo.merge("release-1", "main", "Merge release-1")
    merged = repo.merge("manifest-1", "main", "Merge manifest-1")

    assert head(remote) == merged
    assert git(remote, "rev-list", "--parents", "-n", "1", merged).split()[1:] == [release, manifest]
    assert repo.read("main", "manifests/production.yaml") == b"apps: [1.0.0]\n"
    assert repo.read("main", "dist/app/1.0.0.zip") == b"artifact"


def test_merging_what_is_merged_already_pushes_nothing(remote: Path, tmp_path: Path) -> None:
    push_branch(remote, "release-1", "dist/app/1.0.0.zip", "artifact")
    repo = BranchRepository(str(remote), tmp_path / "cache")
    first = repo.merge("release-1", "main", "Merge")

    assert repo.merge("release-1", "main", "Merge again") == first
    assert head(remote) == first


def test_a_conflict_is_refused_as_not_worth_retrying_and_main_is_left_alone(remote: Path, tmp_path: Path) -> None:
    push_branch(remote, "one", "manifests/production.yaml", "apps: [1]\n")
    push_branch(remote, "two", "manifests/production.yaml", "apps: [2]\n")
    repo = BranchRepository(str(remote), tmp_path / "cache")
    repo.merge("one", "main", "Merge one")
    before = head(remote)

    with pytest.raises(MergeConflictError, match=r"conflicts with main .*manifests/production\.yaml") as caught:
        repo.merge("two", "main", "Merge two")

    assert caught.value.retryable is False
    assert head(remote) == before


def test_a_missing_branch_and_an_unreachable_remote_are_told_apart(remote: Path, tmp_path: Path) -> None:
    repo = BranchRepository(str(remote), tmp_path / "cache")
    with pytest.raises(SourceError, match="branch 'nope' does not exist"):
        repo.merge("nope", "main", "Merge")

    gone = BranchRepository(f"https://user:s3cr3t@127.0.0.1:1/{remote.name}", tmp_path / "cache2",
                            GitCredentials(username="user", password="s3cr3t"))
    with pytest.raises(ProviderError) as caught:
        gone.head("main")
    assert caught.value.retryable is True
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in repr(GitCredentials(password="s3cr3t"))
