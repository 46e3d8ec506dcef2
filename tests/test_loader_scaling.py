"""Loading a desired-state folder costs the same per document at any size (issue 12, part 3).

Counted, not timed: the number of Python function calls ``loader.load`` makes, which is what a
quadratic step (every file checked against every App's folder, every entry scanned once per App)
multiplies. Per document it must stay flat from a small folder to a ten times larger one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from reconciler.desired import loader
from reconciler.source.trees import DirectoryTree


def write_folder(folder: Path, apps: int) -> int:
    """``apps`` Apps, each with a source folder holding a JSON file and a YAML file (which is the
    App's, not desired state), plus as many resources and two environments; returns the documents."""
    (folder / "environments").mkdir(parents=True)
    (folder / "reconciler.yaml").write_text("version: 1\nenvironments: [staging, production]\n")
    for env in ("staging", "production"):
        (folder / "environments" / f"{env}.yaml").write_text(
            f"kind: Environment\nname: {env}\ntrack: {{branch: main}}\n")
    (folder / "resources").mkdir()
    (folder / "apps").mkdir()
    for n in range(apps):
        (folder / "resources" / f"res-{n:04d}.yaml").write_text(
            f"kind: Resource\nname: res-{n:04d}\ntype: restapi\noptions: {{base_url: https://{n}.example.com}}\n")
        source = folder / "apps" / f"app-{n:04d}"
        (source / "queries").mkdir(parents=True)
        (source / "app.json").write_text(f'{{"name": "app-{n:04d}"}}\n')
        (source / "queries" / "settings.yaml").write_text("not: [desired, state]\n")
        (folder / "apps" / f"app-{n:04d}.yaml").write_text(
            f"kind: App\nname: app-{n:04d}\nsource: apps/app-{n:04d}\nresources: [res-{n:04d}]\n")
    return 2 + 2 * apps


def calls_to_load(folder: Path) -> int:
    tree = DirectoryTree(folder)
    tree.entries()  # listing the folder is the tree's work, not the loader's
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        state = loader.load(tree)
    finally:
        sys.setprofile(None)
    assert len(state.apps) > 0
    return count


def test_loading_costs_the_same_per_document_in_a_ten_times_larger_folder(tmp_path: Path) -> None:
    small = write_folder(tmp_path / "small", apps=30)
    large = write_folder(tmp_path / "large", apps=300)
    per_document_small = calls_to_load(tmp_path / "small") / small
    per_document_large = calls_to_load(tmp_path / "large") / large
    assert per_document_large < 1.2 * per_document_small, (per_document_small, per_document_large)
