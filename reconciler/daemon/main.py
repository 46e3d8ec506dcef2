"""``reconciler run``: start the supervisor and the HTTP API in one process; stop cleanly on SIGTERM.

SIGTERM or SIGINT: stop taking new work, let the change in flight finish (runs stop between two
changes), stop within ``daemon.shutdown_timeout``, exit 0. Unfinished runs of a crash (kill -9)
are found at the next start and reported as interrupted; the environment is planned again from
live state.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from reconciler import clock
from reconciler.api.app import create_app
from reconciler.api.auth import hash_token
from reconciler.config import ApiToken, Settings
from reconciler.daemon.supervisor import Daemon
from reconciler.durations import parse_duration
from reconciler.errors import ConfigError

log = structlog.get_logger(__name__)

ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a password
STATE_FILE = "daemon.json"


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return (host.strip("[]") or "127.0.0.1"), int(port)
    except ValueError:
        raise ConfigError(f"api.listen {listen!r} is not host:port") from None


class ApiServer:
    """uvicorn on a thread of its own (signals stay with the main thread)."""

    def __init__(self, app: Any, listen: str) -> None:
        host, port = split_listen(listen)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the API server did not start (is the address in use? see api.listen)")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def ensure_tokens(settings: Settings) -> Settings:
    """Without configured tokens, generate an admin token once into the data dir (like Argo CD's
    initial admin secret) so the API and dashboard are usable but never open."""
    if settings.api.tokens:
        return settings
    path = settings.data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
    else:
        token = secrets.token_urlsafe(32)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    log.info("api.admin_token", path=str(path.resolve()))
    tokens = [ApiToken(name="admin", hash=hash_token(token), scopes=["admin"])]
    return settings.model_copy(update={"api": settings.api.model_copy(update={"tokens": tokens})})


def write_state_file(data_dir: Path, url: str | None) -> None:
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "api": url}))
    os.replace(tmp, path)


def run_daemon(settings: Settings) -> int:
    from reconciler.wiring import build_reconciler

    clock.configure()  # RECONCILER_NOW, if set, is checked (and warned about) before anything starts
    settings = ensure_tokens(settings)
    reconciler = build_reconciler(settings)
    notifier = None
    if settings.notify.webhooks:
        from reconciler.daemon.notify import Notifier  # httpx is loaded only when there is someone to notify

        notifier = Notifier(settings, reconciler.store)
    daemon = Daemon(settings, reconciler, notifier)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("daemon.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    url = None
    try:
        if settings.api.enabled:
            server = ApiServer(create_app(daemon), settings.api.listen)
            url = server.start()
            log.info("api.listening", url=url)
        daemon.start()
        write_state_file(settings.data_dir, url)
        stop.wait()
    finally:
        clean = daemon.stop(parse_duration(settings.daemon.shutdown_timeout))
        if server is not None:
            server.stop()
        if notifier is not None:
            notifier.close()
        reconciler.close()
        (settings.data_dir / STATE_FILE).unlink(missing_ok=True)
        log.info("daemon.exit", clean=clean)
    return 0
