"""Open, clone and fetch the desired-state repository, and answer questions about its history.

Called by ``reconciler.app`` (and through it by the CLI and the daemon). A local path is
opened in place, so a commit is visible the moment it is made; a remote (``file://``, ``https://``,
``ssh://``) is cloned bare into the cache and fetched on demand. Every pygit2 error is turned into
``SourceError``/``ProviderError`` here, with the URL sanitised.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pygit2

from reconciler import logs
from reconciler.core.revisions import TagRef
from reconciler.errors import ProviderError, SourceError, clip
from reconciler.source import urls
from reconciler.source.trees import GitTree

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class CommitInfo:
    id: str
    tree_id: str
    message: str
    author: str
    time: int


@dataclass(frozen=True)
class SshKey:
    private_key: str
    public_key: str | None = None
    username: str = "git"
    passphrase: str = ""


class Repository:
    """One Git repository, local or a cached clone of a remote."""

    def __init__(
        self,
        url: str,
        cache_dir: Path | None = None,
        branches: list[str] | None = None,
        ssh_key: SshKey | None = None,
    ) -> None:
        self.url = url
        self.display_url = urls.sanitize(url)
        self.branches = branches or ["main"]
        self._ssh_key = ssh_key
        self._lock = threading.RLock()
        self._known: dict[str, str] = {}  # the refs as of the last fetch, read without the lock
        self.remote = urls.is_remote(url)
        if self.remote:
            if cache_dir is None:
                raise SourceError("a remote repository needs a cache directory (data_dir)")
            self._path = cache_dir / "git" / urls.cache_key(url)
            self._repo = self._open_or_clone()
            self.fetch()  # every user of a remote starts from what the remote has now
        else:
            self._path = Path(url)
            self._repo = self._open_local()

    # -- opening -------------------------------------------------------------------------

    def _open_local(self) -> pygit2.Repository:
        if not self._path.exists():
            raise SourceError(f"{self.display_url}: no such directory")
        found = pygit2.discover_repository(str(self._path))
        if found is None:
            raise SourceError(f"{self.display_url}: not a Git repository (run 'git init' or point at a clone)")
        try:
            return pygit2.Repository(found)
        except pygit2.GitError as exc:
            raise SourceError(f"{self.display_url}: cannot open the repository: {exc}") from exc

    def _callbacks(self) -> pygit2.RemoteCallbacks | None:
        if self._ssh_key is None:
            return None
        key = self._ssh_key
        pub = key.public_key or key.private_key + ".pub"
        return pygit2.RemoteCallbacks(
            credentials=pygit2.Keypair(key.username, pub, key.private_key, key.passphrase)
        )

    def _open_or_clone(self) -> pygit2.Repository:
        if (self._path / "HEAD").exists():
            try:
                repo = pygit2.Repository(str(self._path))
                _mirror_tags(repo)  # caches made before tags were mirrored get the setting too
                return repo
            except pygit2.GitError as exc:
                # The cache is ours and holds nothing that is not on the remote: clone it afresh.
                log.warning("git.cache_corrupt", path=str(self._path), error=str(exc))
                shutil.rmtree(self._path, ignore_errors=True)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        log.info("git.clone", url=self.display_url)
        try:
            repo = pygit2.init_repository(str(self._path), bare=True)
            repo.remotes.create("origin", self.url, "+refs/heads/*:refs/heads/*")
            _mirror_tags(repo)
        except (pygit2.GitError, OSError) as exc:
            raise SourceError(f"cannot create the cache for {self.display_url}: {exc}") from exc
        return repo

    @property
    def repo(self) -> pygit2.Repository:
        return self._repo

    # -- fetching ------------------------------------------------------------------------

    def fetch(self) -> bool:
        """Bring the cached clone up to date; return True when any ref moved. Local: no-op.

        Tags are mirrored exactly: a tag moved on the remote (``git push -f origin v1.0.0``) moves
        here too and a deleted one disappears, so the promotion gates see what a local clone would
        (the store, not the cache, remembers the first target of each tag name).
        """
        if not self.remote:
            return False
        with self._lock:
            before = self._ref_snapshot()
            refspecs = [f"+refs/heads/{b}:refs/heads/{b}" for b in self.branches]
            refspecs.append("+refs/tags/*:refs/tags/*")
            try:
                self._repo.remotes["origin"].fetch(
                    refspecs, callbacks=self._callbacks(), prune=pygit2.enums.FetchPrune.PRUNE
                )
            except (pygit2.GitError, KeyError, OSError) as exc:
                message = str(exc).replace(self.url, self.display_url)
                raise ProviderError(f"fetching {self.display_url} failed: {message}", delay=10) from exc
            self._known = self._ref_snapshot()
            return self._known != before

    def push_is_news(self, ref: str, after: str) -> bool:
        """Whether a push the remote reports (``ref`` moved to ``after``) may change what a fetch brings.

        Not news: a push to a branch this source does not fetch, or one that the last fetch already
        brought (a webhook redelivered, or sent by several hooks). Tags, deletions and anything unsure
        are news. Never waits for a fetch in progress: it reads what the last one saw.
        """
        if not self.remote or not ref.startswith("refs/heads/") or not after.strip("0"):
            return True
        if ref.removeprefix("refs/heads/") not in self.branches:
            return False
        return self._known.get(ref) != after

    def _ref_snapshot(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self._repo.listall_references():
            ref = self._repo.references.get(name)
            if ref is not None and ref.type == pygit2.enums.ReferenceType.DIRECT:
                out[name] = str(ref.target)
        return out

    def refs_fingerprint(self) -> str:
        """A cheap value that changes whenever a branch or tag moves (used by the watcher)."""
        with self._lock:
            snap = self._ref_snapshot()
        return "|".join(f"{k}={v}" for k, v in sorted(snap.items()))

    # -- questions -----------------------------------------------------------------------

    def branch_head(self, branch: str) -> str:
        with self._lock:
            for name in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
                ref = self._repo.references.get(name)
                if ref is not None:
                    try:
                        return str(ref.peel(pygit2.Commit).id)
                    except pygit2.GitError as exc:
                        raise SourceError(f"branch {branch!r} points at a missing commit: {exc}") from exc
        raise SourceError(f"branch {branch!r} does not exist in {self.display_url}")

    def tags(self) -> list[TagRef]:
        out: list[TagRef] = []
        with self._lock:
            for name in self._repo.listall_references():
                if not name.startswith("refs/tags/"):
                    continue
                ref = self._repo.references.get(name)
                if ref is None:
                    continue
                try:
                    obj = self._repo[ref.target]
                    commit = obj.peel(pygit2.Commit)
                except (pygit2.GitError, KeyError, ValueError):
                    log.warning("git.tag_unreadable", tag=name)
                    continue
                annotated = isinstance(obj, pygit2.Tag)
                out.append(
                    TagRef(
                        name=name.removeprefix("refs/tags/"),
                        target=str(commit.id),
                        annotated=annotated,
                        object_id=str(obj.id),
                        message=obj.message if isinstance(obj, pygit2.Tag) else "",
                    )
                )
        return out

    def tag(self, name: str) -> TagRef | None:
        for tag in self.tags():
            if tag.name == name:
                return tag
        return None

    def resolve(self, rev: str) -> str:
        """Return the full commit id of ``rev`` (a commit id, branch, tag or any rev-parse spec)."""
        with self._lock:
            try:
                obj = self._repo.revparse_single(rev)
                return str(obj.peel(pygit2.Commit).id)
            except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
                raise SourceError(f"unknown revision {clip(rev)!r} in {self.display_url}") from exc

    def commit(self, commit_id: str) -> CommitInfo:
        with self._lock:
            try:
                commit = self._repo[commit_id].peel(pygit2.Commit)
            except (KeyError, ValueError, pygit2.GitError) as exc:
                raise SourceError(f"commit {commit_id} is missing from {self.display_url}") from exc
            return CommitInfo(
                id=str(commit.id),
                tree_id=str(commit.tree_id),
                message=commit.message,
                author=commit.author.name,
                time=commit.commit_time,
            )

    def is_reachable(self, commit_id: str, branch: str) -> bool:
        """True when ``commit_id`` is the head of ``branch`` or one of its ancestors."""
        head = self.branch_head(branch)
        if head == commit_id:
            return True
        with self._lock:
            try:
                return bool(self._repo.descendant_of(head, commit_id))
            except (pygit2.GitError, KeyError, ValueError) as exc:
                raise SourceError(f"cannot walk the history of {branch!r}: {exc}") from exc

    def tree(self, commit_id: str, path: str) -> GitTree:
        """The folder ``path`` ('' or '.' for the root) inside ``commit_id``."""
        with self._lock:
            try:
                commit = self._repo[commit_id].peel(pygit2.Commit)
                tree: pygit2.Tree | None = commit.tree
                clean = path.strip("/")
                if clean not in ("", "."):
                    entry = commit.tree[clean]
                    obj = self._repo[entry.id]
                    tree = obj if isinstance(obj, pygit2.Tree) else None
            except KeyError:
                tree = None
            except (ValueError, pygit2.GitError) as exc:
                raise SourceError(f"cannot read {commit_id[:12]} in {self.display_url}: {exc}") from exc
        return GitTree(self._repo, tree, label=f"{path or '.'}@{commit_id[:12]}")

    def raw_object(self, object_id: str) -> bytes:
        with self._lock:
            return bytes(self._repo[object_id].read_raw())

    @property
    def git_dir(self) -> Path:
        return Path(self._repo.path)


def _mirror_tags(repo: pygit2.Repository) -> None:
    """Fetch tags only through our forced ``+refs/tags/*`` refspec.

    In libgit2's default tag mode ("auto") a fetch never overwrites a tag that exists locally, even
    with a forced refspec, so a force-pushed tag kept its old target in the cache and the moved-tag
    gate never saw it. ``--no-tags`` turns the automatic tag following off; the explicit forced
    refspec in ``fetch`` then updates, creates and (with prune) deletes tags like any other ref.
    """
    config = repo.config
    if "remote.origin.tagopt" not in config or config["remote.origin.tagopt"] != "--no-tags":
        config["remote.origin.tagopt"] = "--no-tags"
