"""The Source Control repository behind fake Retool instances: a real bare Git repository on disk.

Used by ``FakeRetool`` (server.py) and by tests that act as the people around Retool: someone
protecting an app, editing it on the deploy branch, or merging a pull request. One repository may
serve several fake instances, as Retool's multi-instance releases share one repository between
instances (docs.retool.com/source-control/guides/multi-instance-releases).

What lives where, as Retool's documentation describes the repository of classic apps
(docs.retool.com/source-control/guides/multi-instance-releases/classic-apps-workflows):

- ``.retool/protected-apps.yaml``: the protected apps, as ``apps: [{uuid, name}]``. The uuid is the
  app's Source Control uuid, which the manifest names (not the id ``/apps`` gives it on an instance);
- ``apps/<name>/...``: each protected app's source;
- ``dist/apps/<uuid>/<version>.zip``: one release artifact per app version, a snapshot of the app's
  source when the release was made (Retool: "based on the latest version");
- ``manifests/<manifest>.yaml``: one manifest per instance, ``apps: [{uuid, release}]``.

Writes through the API (a manifest, a release) push a branch and change nothing else: only a merge
into the deploy branch makes them count, and instances deploy what the deploy branch holds.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import yaml

SIGNATURE = pygit2.Signature("Retool", "retool@example.com", 1_700_000_000, 0)
PEOPLE = pygit2.Signature("A Person", "person@example.com", 1_700_000_000, 0)
PROTECTED = ".retool/protected-apps.yaml"
# Zip members get a fixed date so the same snapshot is the same blob.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Pushed:
    """What a write through the API answers: the branch pushed and its commit."""

    branch: str
    commit_sha: str


class FakeSourceControl:
    """A bare repository at ``path`` whose ``deploy_branch`` the instances deploy from."""

    def __init__(self, path: Path, deploy_branch: str = "main") -> None:
        self.path = Path(path)
        self.deploy_branch = deploy_branch
        self.lock = threading.RLock()
        self.repo = pygit2.init_repository(str(self.path), bare=True, initial_head=deploy_branch)
        self._counter = 0
        self._commit_on(deploy_branch, {PROTECTED: yaml.safe_dump({"apps": []}).encode()}, "Initial commit",
                        author=PEOPLE)

    @property
    def url(self) -> str:
        """What a Git client clones: the repository's path."""
        return str(self.path)

    # == people around Retool ========================================================================

    def protect_app(self, name: str, files: Mapping[str, bytes] | None = None) -> str:
        """Protect an app (its source lands on the deploy branch); return its Source Control uuid."""
        with self.lock:
            existing = self.app_uuid(name)
            if existing is not None:
                return existing
            sc_uuid = str(uuid.uuid4())
            apps = [*self._protected(), {"uuid": sc_uuid, "name": name}]
            changes: dict[str, bytes | None] = {PROTECTED: yaml.safe_dump({"apps": apps}).encode()}
            for path, content in (files or {"main.rsx": f"<App name={name!r} />\n".encode()}).items():
                changes[f"apps/{name}/{path}"] = content
            self._commit_on(self.deploy_branch, changes, f"Protect {name}", author=PEOPLE)
            return sc_uuid

    def edit_app(self, name: str, files: Mapping[str, bytes]) -> str:
        """Someone changes an app's source on the deploy branch (a merged pull request); the new head."""
        with self.lock:
            return self._commit_on(self.deploy_branch, {f"apps/{name}/{p}": c for p, c in files.items()},
                                   f"Edit {name}", author=PEOPLE)

    def merge(self, branch: str) -> str:
        """Merge ``branch`` into the deploy branch as a person merging its pull request would."""
        with self.lock:
            ours = self.repo.branches[self.deploy_branch].peel(pygit2.Commit)
            theirs = self.repo.branches[branch].peel(pygit2.Commit)
            if self.repo.descendant_of(ours.id, theirs.id) or ours.id == theirs.id:
                return str(ours.id)
            index = self.repo.merge_commits(ours, theirs)
            if index.conflicts is not None:
                raise AssertionError(f"{branch} conflicts with {self.deploy_branch}")
            tree = index.write_tree(self.repo)
            commit = self.repo.create_commit(f"refs/heads/{self.deploy_branch}", PEOPLE, PEOPLE,
                                             f"Merge {branch}", tree, [ours.id, theirs.id])
            return str(commit)

    def branches(self) -> list[str]:
        with self.lock:
            return sorted(b for b in self.repo.branches.local if b != self.deploy_branch)

    def is_merged(self, branch: str) -> bool:
        with self.lock:
            head = self.head()
            tip = self.repo.branches[branch].target
            return str(tip) == head or self.repo.descendant_of(pygit2.Oid(hex=head), tip)

    def head(self, branch: str | None = None) -> str:
        with self.lock:
            return str(self.repo.branches[branch or self.deploy_branch].target)

    # == what the deploy branch (or a commit) holds ==================================================

    def read(self, path: str, commit: str | None = None) -> bytes | None:
        with self.lock:
            tree = self._commit(commit).tree
            try:
                entry = tree[path]
            except KeyError:
                return None
            blob = self.repo[entry.id]
            return blob.data if isinstance(blob, pygit2.Blob) else None

    def blob_id(self, path: str, commit: str | None = None) -> str | None:
        with self.lock:
            try:
                return str(self._commit(commit).tree[path].id)
            except KeyError:
                return None

    def app_uuid(self, name: str) -> str | None:
        return next((a["uuid"] for a in self._protected() if a["name"] == name), None)

    def app_name(self, sc_uuid: str) -> str | None:
        return next((a["name"] for a in self._protected() if a["uuid"] == sc_uuid), None)

    def protected_apps(self, commit: str | None = None) -> list[dict[str, str]]:
        return self._protected(commit)

    def manifest(self, name: str, commit: str | None = None) -> dict[str, Any] | None:
        raw = self.read(f"manifests/{name}.yaml", commit)
        if raw is None:
            return None
        data = yaml.safe_load(raw) or {}
        return {"name": name, "apps": list(data.get("apps") or []), "workflows": list(data.get("workflows") or [])}

    def manifests(self, commit: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            tree = self._commit(commit).tree
            try:
                folder = self.repo[tree["manifests"].id]
            except KeyError:
                return []
            assert isinstance(folder, pygit2.Tree)
            names = sorted(e.name[:-len(".yaml")] for e in folder if e.name.endswith(".yaml"))
            found = [self.manifest(n, commit) for n in names]
            return [m for m in found if m is not None]

    def releases(self, sc_uuid: str, commit: str | None = None) -> list[dict[str, Any]]:
        """The releases of an element on the deploy branch, oldest first, as the API lists them."""
        with self.lock:
            tree = self._commit(commit).tree
            try:
                folder = self.repo[tree[f"dist/apps/{sc_uuid}"].id]
            except KeyError:
                return []
            assert isinstance(folder, pygit2.Tree)
            out = []
            for entry in folder:
                blob = self.repo[entry.id]
                assert isinstance(blob, pygit2.Blob)
                with zipfile.ZipFile(io.BytesIO(blob.data)) as archive:
                    meta = json.loads(archive.read("release.json"))
                out.append(meta)
            return sorted(out, key=lambda r: (r["created_at"], r["release_version"]))

    def artifact(self, sc_uuid: str, version: str, commit: str | None = None) -> str | None:
        """The blob id of a release artifact (what 'the same artifact' means), or None."""
        return self.blob_id(f"dist/apps/{sc_uuid}/{version}.zip", commit)

    # == what the API's writes do ======================================================================

    def push_manifest(self, name: str, manifest: Mapping[str, Any], message: str | None) -> Pushed:
        body = {"version": "1.0.0", "name": name, "apps": list(manifest.get("apps") or []),
                "workflows": list(manifest.get("workflows") or [])}
        return self._push(f"retool-manifest-{name}", {f"manifests/{name}.yaml": yaml.safe_dump(body).encode()},
                          message or f"Update release manifest {name}")

    def push_manifest_entry(self, name: str, sc_uuid: str, release: str | None, message: str | None) -> Pushed:
        """Set (or with ``release=None`` remove) one element's release in a manifest, on a new branch."""
        current = self.manifest(name) or {"name": name, "apps": [], "workflows": []}
        apps = [a for a in current["apps"] if a.get("uuid") != sc_uuid]
        if release is not None:
            apps.append({"uuid": sc_uuid, "release": release})
        return self.push_manifest(name, {"apps": apps, "workflows": current["workflows"]}, message)

    def push_release(self, sc_uuid: str, version: str, description: str | None, created_at: str,
                     message: str | None) -> Pushed:
        """A release artifact of the app's source as the deploy branch holds it now, on a new branch."""
        name = self.app_name(sc_uuid)
        assert name is not None
        meta: dict[str, Any] = {"release_version": version, "created_at": created_at}
        if description is not None:
            meta["release_description"] = description
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, content in sorted(self._files_under(f"apps/{name}").items()):
                archive.writestr(zipfile.ZipInfo(path, ZIP_TIME), content)
            archive.writestr(zipfile.ZipInfo("release.json", ZIP_TIME), json.dumps(meta, sort_keys=True))
        return self._push(f"retool-release-{version}", {f"dist/apps/{sc_uuid}/{version}.zip": buffer.getvalue()},
                          message or f"Release {version} of {name}")

    # == plumbing ======================================================================================

    def _protected(self, commit: str | None = None) -> list[dict[str, str]]:
        raw = self.read(PROTECTED, commit)
        data = yaml.safe_load(raw) if raw else None
        return list((data or {}).get("apps") or [])

    def _commit(self, commit: str | None) -> pygit2.Commit:
        if commit is None:
            return self.repo.branches[self.deploy_branch].peel(pygit2.Commit)
        found = self.repo[commit]
        assert isinstance(found, pygit2.Commit)
        return found

    def _files_under(self, prefix: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}

        def walk(tree: pygit2.Tree, base: str) -> None:
            for entry in tree:
                obj = self.repo[entry.id]
                path = f"{base}/{entry.name}" if base else entry.name
                if isinstance(obj, pygit2.Tree):
                    walk(obj, path)
                elif isinstance(obj, pygit2.Blob):
                    out[path] = obj.data

        try:
            root = self.repo[self._commit(None).tree[prefix].id]
        except KeyError:
            return out
        assert isinstance(root, pygit2.Tree)
        walk(root, "")
        return out

    def _push(self, prefix: str, changes: Mapping[str, bytes | None], message: str) -> Pushed:
        with self.lock:
            self._counter += 1
            branch = f"{prefix}-{self._counter}-{uuid.uuid4().hex[:6]}"
            base = self.repo.branches[self.deploy_branch].target
            self.repo.branches.local.create(branch, self.repo[base])  # type: ignore[arg-type]
            sha = self._commit_on(branch, changes, message)
            return Pushed(branch, sha)

    def _commit_on(self, branch: str, changes: Mapping[str, bytes | None], message: str,
                   author: pygit2.Signature = SIGNATURE) -> str:
        """One commit on ``branch`` (created empty when missing) that writes or removes paths."""
        with self.lock:
            ref = self.repo.branches.local.get(branch) if not self.repo.is_empty else None
            parents = [ref.target] if ref is not None else []
            index = pygit2.Index()
            if parents:
                index.read_tree(self.repo[parents[0]].peel(pygit2.Tree))
            for path, content in changes.items():
                if content is None:
                    if path in index:
                        index.remove(path)
                else:
                    blob = self.repo.create_blob(content)
                    index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
            tree = index.write_tree(self.repo)
            commit = self.repo.create_commit(f"refs/heads/{branch}", author, author, message, tree, parents)
            return str(commit)
