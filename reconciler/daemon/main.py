"""``reconciler run``: start the supervisor and the HTTP API in one process; stop cleanly on SIGTERM.

SIGTERM or SIGINT: stop taking new work, let the change in flight finish (runs stop between two
changes), stop within ``daemon.shutdown_timeout``, exit 0. Unfinished runs of a crash (kill -9)
are found at the next start and reported as interrupted; the environment is planned again from
live state.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from reconciler import clock, logs
from reconciler.api.app import create_app
from reconciler.api.auth import hash_token
from reconciler.api.connections import ConnectionLimits, guarded_protocol
from reconciler.api.daemon import Daemon as ApiDaemon
from reconciler.api.daemon import Host
from reconciler.app.reconcile import Reconciler
from reconciler.app.wiring import build_reconciler, build_secrets, shared_parts
from reconciler.config import ApiConfig, ApiToken, Settings
from reconciler.daemon.workspaces import Workspaces
from reconciler.durations import parse_duration
from reconciler.errors import ConfigError, SecretError
from reconciler.secrets.backends import Secrets

log = logs.get_logger(__name__)

ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a password
STATE_FILE = "daemon.json"
BACKLOG = 2048  # connections the kernel queues until accepted; the cap on open ones is api.max_connections
FILES_BESIDES_CONNECTIONS = 256  # the state store, Git packs, database connections, watches, logs


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return (host.strip("[]") or "127.0.0.1"), int(port)
    except ValueError:
        raise ConfigError(f"api.listen {listen!r} is not host:port") from None


def listen_socket(listen: str) -> socket.socket:
    """The API's listening socket, bound before anything else starts so a taken address fails at once."""
    host, port = split_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart over TIME_WAIT
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:  # in use, not an address of this host, a name that does not resolve, ...
        sock.close()
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    return sock


def ensure_file_limit(max_connections: int) -> None:
    """Raise this process's soft limit of open files so ``api.max_connections`` sockets fit.

    Past the limit, accepting fails and asyncio stops accepting for a second at a time, so new
    connections (``/healthz`` too) wait in the kernel's queue behind the ones the cap would close.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FILES_BESIDES_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < needed:
        log.warning("api.file_limit_low", open_files=raised, max_connections=max_connections,
                    detail="lower api.max_connections or raise the hard limit of open files (ulimit -Hn)")


class ApiServer:
    """uvicorn on a thread of its own (signals stay with the main thread), serving a bound socket."""

    def __init__(self, app: Any, sock: socket.socket, api: ApiConfig) -> None:
        limits = ConnectionLimits(header_timeout=parse_duration(api.header_timeout),
                                  body_timeout=parse_duration(api.body_timeout),
                                  max_connections=api.max_connections)
        config = uvicorn.Config(app, http=guarded_protocol(limits), ws="none", log_config=None, access_log=False,
                                lifespan="off", timeout_keep_alive=parse_duration(api.keepalive_timeout),  # type: ignore[arg-type]
                                timeout_graceful_shutdown=5)
        ensure_file_limit(api.max_connections)
        self.sock = sock
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="api", daemon=True)

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("the API server did not start")
            time.sleep(0.01)
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def check_webhook_secrets(settings: Settings, secrets_: Secrets, prefix: str = "source") -> None:
    """Refuse to start when a configured webhook secret does not resolve or is empty.

    Found at the first hook instead, the failure would be an answer to an unauthenticated caller;
    an empty secret would make every signature computable by anyone.
    """
    for key in ("webhook_secret", "gitlab_token"):
        template = getattr(settings.source, key)
        if not template:
            continue
        try:
            value = secrets_.resolve(template)
        except SecretError as exc:
            raise ConfigError(f"{prefix}.{key}: {exc}") from None
        if not value.strip():
            raise ConfigError(f"{prefix}.{key} is empty; set it to a long random value")


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


def http_app(daemon: ApiDaemon | Host) -> FastAPI:
    """The daemon's HTTP application: the API with the dashboard mounted on it."""
    from reconciler.web import mount_dashboard

    app = create_app(daemon)
    mount_dashboard(app, daemon)
    return app


def workspace_builder(settings: Settings, secrets_: Secrets) -> Callable[[Settings], tuple[Reconciler, object | None]]:
    """How ``Workspaces`` builds one workspace: its Reconciler over the one state database and schema
    provider every workspace shares, and its notifier when it has targets."""
    shared = shared_parts(settings, secrets_)
    several = bool(settings.workspaces)

    def build(workspace: Settings) -> tuple[Reconciler, object | None]:
        if several and settings.api.enabled:  # one workspace's unusable hook secret must not stop the others
            check_webhook_secrets(workspace, secrets_, f"workspaces[{workspace.workspace_name}].source")
        reconciler = build_reconciler(workspace, shared)
        notifier = None
        if workspace.notify.webhooks:
            from reconciler.daemon.notify import Notifier  # httpx is loaded only when there is someone to notify

            try:
                notifier = Notifier(workspace, reconciler)
            except BaseException:
                reconciler.close()
                raise
        return reconciler, notifier

    return build


def run_daemon(settings: Settings) -> int:
    with ExitStack() as cleanup:
        # Each step registers its own undoing, so a failed start stops only what had started.
        sock = None
        secrets_ = build_secrets(settings)  # one set of backends for the hook secrets and every workspace
        if settings.api.enabled:
            sock = listen_socket(settings.api.listen)
            cleanup.callback(sock.close)
            if not settings.workspaces:  # several: each workspace's are checked when it is built
                check_webhook_secrets(settings, secrets_)
        # RECONCILER_NOW, if set, is checked (and warned about) before anything reads the clock; after the
        # address and hook secrets, so a start refused for those says so in one line.
        clock.configure()
        settings = ensure_tokens(settings)
        daemon = Workspaces(settings, workspace_builder(settings, secrets_))
        cleanup.callback(daemon.close)
        daemon.build()
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("daemon.signal", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        url = None
        if sock is not None:
            server = ApiServer(http_app(daemon), sock, settings.api)
            cleanup.callback(server.stop)
            url = server.start()
            log.info("api.listening", url=url)
        outcome = {"clean": False}

        def stop_daemon() -> None:
            outcome["clean"] = daemon.stop(parse_duration(settings.daemon.shutdown_timeout))

        cleanup.callback(stop_daemon)
        daemon.start()
        cleanup.callback((settings.data_dir / STATE_FILE).unlink, missing_ok=True)
        write_state_file(settings.data_dir, url)
        stop.wait()
    log.info("daemon.exit", clean=outcome["clean"])
    return 0
