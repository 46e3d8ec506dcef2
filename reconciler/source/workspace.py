"""Write to a local Git repository: commit a working directory, create tags.

The product only reads Git; these helpers exist for ``reconciler demo`` and ``reconciler init``,
which build a repository the way a user would (commit on ``main``, tag a release). They live here
because ``source/`` is the only package that touches pygit2.
"""

from __future__ import annotations

from pathlib import Path

import pygit2

AUTHOR = pygit2.Signature("Reconciler Demo", "demo@reconciler.invalid")


def init(path: Path, branch: str = "main") -> pygit2.Repository:
    repo = pygit2.init_repository(str(path), initial_head=branch)
    config = repo.config
    config["user.name"] = AUTHOR.name
    config["user.email"] = AUTHOR.email
    return repo


def commit_all(path: Path, message: str) -> str:
    """Stage every file in the working directory of ``path`` and commit on the checked-out branch."""
    repo = pygit2.Repository(str(path))
    repo.index.add_all()
    repo.index.write()
    tree = repo.index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    oid = repo.create_commit("HEAD", AUTHOR, AUTHOR, message, tree, parents)
    return str(oid)


def tag(path: Path, name: str, message: str | None = None, target: str | None = None) -> str:
    """Create an annotated tag (``message`` given) or a lightweight one on ``target`` (default HEAD)."""
    repo = pygit2.Repository(str(path))
    commit = repo.revparse_single(target or "HEAD").peel(pygit2.Commit)
    if message is None:
        repo.create_reference(f"refs/tags/{name}", commit.id)
    else:
        repo.create_tag(name, commit.id, pygit2.enums.ObjectType.COMMIT, AUTHOR, message)
    return str(commit.id)
