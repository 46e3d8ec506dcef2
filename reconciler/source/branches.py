"""Read, watch and merge branches of a Git repository we do not own (a platform's own repository).

Called by the ``retool`` provider for the Source Control repository its instances deploy from:
Retool's API pushes each change as a branch, and the change counts only once that branch is merged
into the deploy branch. ``merge`` merges it the way a person merging the pull request would (a
fast-forward when possible, else a merge commit) and pushes the result with the configured
credentials; ``is_merged`` answers whether someone else did; ``read`` returns a file of a branch.

The repository is cloned bare into a cache directory and fetched before every question, so the
answers are the remote's, never a stale copy. Only ``source/`` touches pygit2; every pygit2 error
leaves as ``ProviderError`` (worth retrying: the remote may be back), ``SourceError`` (a branch that
does not exist) or ``MergeConflictError`` (not worth retrying: a person must resolve it), with
credentials never in the message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pygit2

from reconciler import logs
from reconciler.errors import ProviderError, SourceError
from reconciler.source import urls
from reconciler.source.repository import SshKey

log = logs.get_logger(__name__)

MERGER = ("Reconciler", "reconciler@localhost")


@dataclass(frozen=True)
class GitCredentials:
    """How to authenticate to the remote: a user and password/token (https) or an SSH key."""

    username: str = "git"
    password: str | None = None
    ssh_key: SshKey | None = None

    def __repr__(self) -> str:
        return f"GitCredentials(username={self.username!r}, password=<redacted>, ssh_key=...)"


class MergeConflictError(ProviderError):
    """The branch cannot be merged without a person resolving conflicts; retrying will not help."""

    retryable = False


class BranchRepository:
    """One remote repository whose branches we read, watch and merge."""

    def __init__(self, url: str, cache_dir: Path, credentials: GitCredentials | None = None) -> None:
        self.url = url
        self.display_url = urls.sanitize(url)
        self._credentials = credentials
        self._lock = threading.RLock()
        path = cache_dir / "git-branches" / urls.cache_key(url)
        try:
            if (path / "HEAD").exists():
                self._repo = pygit2.Repository(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._repo = pygit2.init_repository(str(path), bare=True)
                self._repo.remotes.create("origin", url, "+refs/heads/*:refs/remotes/origin/*")
        except (pygit2.GitError, OSError) as exc:
            raise SourceError(f"cannot create the cache for {self.display_url}: {self._clean(exc)}") from exc

    # -- questions (each fetches first) ------------------------------------------------------------

    def head(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the remote, or None when it does not exist."""
        with self._lock:
            self._fetch()
            return self._head(branch)

    def is_merged(self, branch: str, into: str) -> bool:
        """Whether ``branch``'s commit is part of ``into`` on the remote (a deleted branch: unknown → False)."""
        with self._lock:
            self._fetch()
            theirs, ours = self._head(branch), self._head(into)
            if theirs is None or ours is None:
                return False
            return theirs == ours or bool(self._repo.descendant_of(ours, theirs))

    def contains(self, commit: str, into: str) -> bool:
        """Whether ``commit`` is part of ``into`` on the remote (works after the branch was deleted)."""
        with self._lock:
            self._fetch()
            ours = self._head(into)
            if ours is None:
                return False
            try:
                return commit == ours or bool(self._repo.descendant_of(ours, commit))
            except (pygit2.GitError, KeyError, ValueError):
                return False  # a commit we have never fetched is not in the branch

    def read(self, branch: str, path: str) -> bytes | None:
        """The file ``path`` on ``branch`` (None when the branch or the file does not exist)."""
        with self._lock:
            self._fetch()
            head = self._head(branch)
            if head is None:
                return None
            try:
                entry = self._repo[head].peel(pygit2.Commit).tree[path]
            except KeyError:
                return None
            blob = self._repo[entry.id]
            return bytes(blob.data) if isinstance(blob, pygit2.Blob) else None

    # -- the one write ---------------------------------------------------------------------------------

    def merge(self, branch: str, into: str, message: str) -> str:
        """Merge ``branch`` into ``into`` on the remote; return ``into``'s new commit.

        Nothing is pushed when ``branch`` is already part of ``into``. A conflict raises
        ``MergeConflictError``; a push the remote refuses (someone pushed meanwhile) raises
        ``SourceError``, and the next attempt fetches and merges again.
        """
        with self._lock:
            self._fetch()
            theirs, ours = self._head(branch), self._head(into)
            if theirs is None:
                raise SourceError(f"branch {branch!r} does not exist in {self.display_url}")
            if ours is None:
                raise SourceError(f"branch {into!r} does not exist in {self.display_url}")
            if theirs == ours or self._repo.descendant_of(ours, theirs):
                return ours
            if self._repo.descendant_of(theirs, ours):
                result = theirs  # a fast-forward, as a merged pull request with nothing else on main
            else:
                index = self._repo.merge_commits(ours, theirs)
                if index.conflicts is not None:
                    paths = sorted({(entry[1] or entry[0] or entry[2]).path for entry in index.conflicts
                                    if (entry[1] or entry[0] or entry[2]) is not None})
                    raise MergeConflictError(
                        f"branch {branch} conflicts with {into} in {self.display_url} ({', '.join(paths[:5])}); "
                        "merge it by hand, then the next run carries on"
                    )
                tree = index.write_tree(self._repo)
                who = pygit2.Signature(*MERGER)
                result = str(self._repo.create_commit(None, who, who, message, tree,
                                                      [pygit2.Oid(hex=ours), pygit2.Oid(hex=theirs)]))
            self._push(result, into)
            log.info("git.merged", repository=self.display_url, branch=branch, into=into, commit=result[:12])
            return result

    # -- plumbing ------------------------------------------------------------------------------------

    def _head(self, branch: str) -> str | None:
        ref = self._repo.references.get(f"refs/remotes/origin/{branch}")
        return None if ref is None else str(ref.target)

    def _credential(self) -> pygit2.Keypair | pygit2.UserPass | None:
        credentials = self._credentials
        if credentials is None:
            return None
        if credentials.ssh_key is not None:
            key = credentials.ssh_key
            public = key.public_key or key.private_key + ".pub"
            return pygit2.Keypair(key.username, public, key.private_key, key.passphrase)
        if credentials.password is not None:
            return pygit2.UserPass(credentials.username, credentials.password)
        return None

    def _callbacks(self) -> pygit2.RemoteCallbacks:
        return pygit2.RemoteCallbacks(credentials=self._credential())

    def _fetch(self) -> None:
        try:
            self._repo.remotes["origin"].fetch(callbacks=self._callbacks(), prune=pygit2.enums.FetchPrune.PRUNE)
        except (pygit2.GitError, KeyError, OSError) as exc:
            raise ProviderError(f"fetching {self.display_url} failed: {self._clean(exc)}", delay=30) from exc

    def _push(self, commit: str, into: str) -> None:
        local = "refs/heads/reconciler-merge"
        self._repo.references.create(local, pygit2.Oid(hex=commit), force=True)
        rejected: list[str] = []

        class Callbacks(pygit2.RemoteCallbacks):
            def push_update_reference(self, refname: str, message: str | None) -> None:
                if message:
                    rejected.append(message)

        callbacks = Callbacks(credentials=self._credential())
        try:
            self._repo.remotes["origin"].push([f"{local}:refs/heads/{into}"], callbacks=callbacks)
        except (pygit2.GitError, OSError) as exc:
            raise ProviderError(f"pushing the merge to {into} of {self.display_url} failed: {self._clean(exc)}; "
                                "the next attempt fetches and merges again", delay=30) from exc
        if rejected:
            raise ProviderError(f"{self.display_url} refused the merge into {into}: {rejected[0]}; "
                                "the next attempt fetches and merges again", delay=30)

    def _clean(self, exc: BaseException) -> str:
        text = str(exc).replace(self.url, self.display_url)
        password = self._credentials.password if self._credentials is not None else None
        return text.replace(password, "[redacted]") if password else text
