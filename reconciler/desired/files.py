"""The file tree the loader reads a desired-state folder from: what it needs to know, not where it comes from.

``desired/loader.py`` reads through ``FileTree``; ``source/trees.py`` implements it over a Git tree
at a revision (``GitTree``) and over a working directory (``DirectoryTree``). The interface lives
here, with the loader, so the desired state depends on no source of files: ``source`` imports
``desired``, never the reverse (the import-linter contracts in pyproject.toml check it). Paths are
POSIX strings relative to the tree's root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Entry:
    path: str
    is_symlink: bool
    size: int
    special: bool = False  # a FIFO, socket or device: never read (reading a FIFO blocks forever)


class FileTree(Protocol):
    label: str

    def exists(self) -> bool: ...

    def entries(self) -> list[Entry]:
        """Every file and symlink below the root, sorted by path."""
        ...

    def read(self, path: str) -> bytes: ...

    def content_id(self) -> str:
        """An id that changes whenever any file below the root changes (the Git tree id in Git)."""
        ...
