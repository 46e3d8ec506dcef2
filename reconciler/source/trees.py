"""File trees the loader reads the desired state from: a Git tree at a revision, or a directory.

Both implement ``desired.files.FileTree``, the interface the loader reads, so validation of a
working directory (``reconciler validate``) and loading at a revision (plan, apply, the daemon)
share one loader. Paths are POSIX strings relative to the tree's root. Symlinks are reported,
never followed, so a desired-state folder cannot reach outside itself.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pygit2  # a GitTree is made by Repository, which imported it already

from reconciler.desired.files import Entry
from reconciler.errors import SourceError

# Git's mode for a symbolic link.
_GIT_SYMLINK = 0o120000


def _inside(path: str) -> bool:
    parts = path.split("/")
    return not path.startswith("/") and ".." not in parts


class DirectoryTree:
    """A folder in a working directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._entries: list[Entry] | None = None

    def exists(self) -> bool:
        return self.root.is_dir()

    def entries(self) -> list[Entry]:
        if self._entries is None:
            found: list[Entry] = []
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                base = Path(dirpath)
                # Symlinked directories are listed (as symlinks) but never entered.
                for name in list(dirnames):
                    full = base / name
                    if full.is_symlink():
                        dirnames.remove(name)
                        found.append(Entry(full.relative_to(self.root).as_posix(), True, 0))
                dirnames[:] = [d for d in dirnames if d != ".git"]
                for name in filenames:
                    full = base / name
                    rel = full.relative_to(self.root).as_posix()
                    info = full.lstat()
                    if stat.S_ISLNK(info.st_mode):
                        found.append(Entry(rel, True, 0))
                    elif not stat.S_ISREG(info.st_mode):
                        found.append(Entry(rel, False, 0, special=True))
                    else:
                        found.append(Entry(rel, False, info.st_size))
            self._entries = sorted(found, key=lambda e: e.path)
        return self._entries

    def read(self, path: str) -> bytes:
        if not _inside(path):
            raise SourceError(f"{path}: path is outside the desired-state folder")
        full = self.root / path
        if full.is_symlink():
            raise SourceError(f"{path}: is a symbolic link; the desired state must not use links")
        if not full.is_file():
            raise SourceError(f"{path}: is not a regular file")
        return full.read_bytes()

    def content_id(self) -> str:
        digest = hashlib.sha256()
        for entry in self.entries():
            digest.update(entry.path.encode() + b"\0")
            digest.update(b"L" if entry.is_symlink else b"S" if entry.special else self.read(entry.path))
            digest.update(b"\0")
        return "sha256:" + digest.hexdigest()


class GitTree:
    """The desired-state folder inside one commit."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree | None, label: str) -> None:
        self._repo = repo
        self._tree = tree
        self.label = label
        self._entries: list[Entry] | None = None
        self._blobs: dict[str, pygit2.Oid] = {}

    @property
    def tree_id(self) -> str | None:
        return str(self._tree.id) if self._tree is not None else None

    def exists(self) -> bool:
        return self._tree is not None

    def entries(self) -> list[Entry]:
        if self._entries is None:
            found: list[Entry] = []
            if self._tree is not None:
                self._walk(self._tree, "", found)
            self._entries = sorted(found, key=lambda e: e.path)
        return self._entries

    def _walk(self, tree: pygit2.Tree, prefix: str, found: list[Entry]) -> None:
        for obj in tree:
            path = f"{prefix}{obj.name}"
            if obj.type_str == "tree":
                self._walk(self._repo[obj.id], path + "/", found)  # type: ignore[arg-type]
            elif obj.type_str == "blob":
                symlink = obj.filemode == _GIT_SYMLINK
                self._blobs[path] = obj.id
                blob = self._repo[obj.id]
                found.append(Entry(path, symlink, 0 if symlink else blob.size))  # type: ignore[attr-defined]
            # Submodules (commits) are not part of the desired state.

    def read(self, path: str) -> bytes:
        if not _inside(path):
            raise SourceError(f"{path}: path is outside the desired-state folder")
        self.entries()
        oid = self._blobs.get(path)
        if oid is None:
            raise SourceError(f"{path}: no such file in {self.label}")
        return bytes(self._repo[oid].data)  # type: ignore[attr-defined]

    def content_id(self) -> str:
        return str(self._tree.id) if self._tree is not None else "empty"
