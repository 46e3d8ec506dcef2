"""Watch a local repository's refs so a commit or tag is seen the moment it is written.

Used by the supervisor when ``source.url`` is a local path. watchfiles (inotify on Linux) costs
nothing while idle; only changes under ``refs/``, ``packed-refs`` and ``HEAD`` wake the daemon.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import structlog
import watchfiles

log = structlog.get_logger(__name__)


class RefWatcher:
    def __init__(self, git_dir: Path, on_change: Callable[[], None], debounce_ms: int = 50) -> None:
        self.git_dir = git_dir
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ref-watcher", daemon=True)

    def _interesting(self, _change: watchfiles.Change, path: str) -> bool:
        rel = Path(path).relative_to(self.git_dir).as_posix() if path.startswith(str(self.git_dir)) else path
        return not rel.endswith(".lock") and (rel.startswith("refs/") or rel in ("packed-refs", "HEAD"))

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        log.info("watch.start", git_dir=str(self.git_dir))
        try:
            for _changes in watchfiles.watch(
                self.git_dir, watch_filter=self._interesting, debounce=self.debounce_ms, step=50,
                stop_event=self._stop, rust_timeout=1000, yield_on_timeout=False, raise_interrupt=False,
            ):
                self.on_change()
        except Exception:
            log.exception("watch.failed", git_dir=str(self.git_dir))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
