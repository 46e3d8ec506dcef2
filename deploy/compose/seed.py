"""Make the Git repository that deploy/compose.yaml's replicas follow, from the example folder.

Run by the compose service ``seed`` (inside the reconciler image) and by tests/deploy:

    python seed.py EXAMPLE_DIR REPO_DIR

The first run creates REPO_DIR with EXAMPLE_DIR as ``desired-state/``, commits it on ``main`` and
tags that commit ``v1.0.0`` (production follows release tags). Later runs copy the folder again
and commit only when something changed, so ``docker compose run --rm seed`` after editing
desired-state/ publishes the edit to staging.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pygit2

from reconciler.source import workspace

FOLDER = "desired-state"
FIRST_RELEASE = "v1.0.0"


def seed(example: Path, repo_dir: Path) -> str:
    """Copy ``example`` into the repository and commit when it changed; return the head commit."""
    if not (example / "reconciler.yaml").is_file():
        raise SystemExit(f"seed: {example} has no reconciler.yaml; mount the example desired-state/ folder there")
    fresh = not (repo_dir / ".git").exists()
    if fresh:
        repo_dir.mkdir(parents=True, exist_ok=True)
        workspace.init(repo_dir)
    shutil.rmtree(repo_dir / FOLDER, ignore_errors=True)
    shutil.copytree(example, repo_dir / FOLDER)
    repo = pygit2.Repository(str(repo_dir))
    repo.index.add_all()
    repo.index.write()
    if not repo.head_is_unborn and repo.index.write_tree() == repo.head.peel(pygit2.Commit).tree.id:
        return str(repo.head.target)
    head = workspace.commit_all(repo_dir, "Declare the desired state" if fresh else "Update the desired state")
    if fresh:
        workspace.tag(repo_dir, FIRST_RELEASE, f"Release {FIRST_RELEASE}")
    return head


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: python seed.py EXAMPLE_DIR REPO_DIR")
    head = seed(Path(argv[0]), Path(argv[1]))
    sys.stdout.write(f"seed: {argv[1]} main at {head[:12]}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
