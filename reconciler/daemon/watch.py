"""Watch local repositories' refs so a commit or tag is seen the moment it is written.

Used by the supervisor when ``source.url`` is a local path, and by ``daemon/workspaces.py`` for
every workspace with a local source at once: one watcher thread for all of them, since each
watcher wakes a few times a second to look at its stop flag and twenty would cost a daemon of
twenty workspaces its idle budget. watchfiles (inotify on Linux) costs nothing else while idle;
only changes under ``refs/``, ``packed-refs`` and ``HEAD`` wake the repository's callbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import watchfiles

from reconciler import logs

log = logs.get_logger(__name__)


class RefWatcher:
    """Calls ``on_change`` when refs of ``git_dir`` change; ``RefWatcher.of`` watches several at once."""

    def __init__(self, git_dir: Path, on_change: Callable[[], None], debounce_ms: int = 50) -> None:
        self.targets: dict[Path, list[Callable[[], None]]] = {git_dir: [on_change]}
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ref-watcher", daemon=True)

    @classmethod
    def of(cls, targets: Mapping[Path, list[Callable[[], None]]], debounce_ms: int = 50) -> RefWatcher:
        """One watcher for every repository of ``targets`` (git dir → the callbacks of its workspaces)."""
        first, *_ = targets
        watcher = cls(first, lambda: None, debounce_ms)
        watcher.targets = {path: list(callbacks) for path, callbacks in targets.items()}
        return watcher

    @property
    def git_dir(self) -> Path:
        return next(iter(self.targets))

    def _owner(self, path: str) -> Path | None:
        """The watched git dir ``path`` is in, when the change is to its refs."""
        for git_dir in self.targets:
            if Path(path).is_relative_to(git_dir):  # not a prefix test: /srv/git/pay is not in /srv/git/payments
                rel = Path(path).relative_to(git_dir).as_posix()
                if not rel.endswith(".lock") and (rel.startswith("refs/") or rel in ("packed-refs", "HEAD")):
                    return git_dir
        return None

    def _interesting(self, _change: watchfiles.Change, path: str) -> bool:
        return self._owner(path) is not None

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        log.info("watch.start", git_dirs=[str(d) for d in self.targets])
        try:
            for changes in watchfiles.watch(
                *self.targets, watch_filter=self._interesting, debounce=self.debounce_ms, step=50,
                stop_event=self._stop, rust_timeout=1000, yield_on_timeout=False, raise_interrupt=False,
            ):
                moved = {owner for _change, path in changes if (owner := self._owner(path)) is not None}
                for git_dir in moved:
                    for callback in self.targets[git_dir]:
                        callback()
        except Exception:
            log.exception("watch.failed", git_dirs=[str(d) for d in self.targets])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
