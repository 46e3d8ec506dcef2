"""Local PostgreSQL servers: the embedded default (pgserver) and Debian's system PostgreSQL.

``EmbeddedPostgres`` is what ``reconciler demo`` and the tests use when no real server is
configured: a pgserver instance whose data directory the caller chooses (for example
``<data_dir>/pg``), listening only on a unix socket, stopped when ``stop()`` is called, when its
``with`` block ends, or at interpreter exit.

``temporary_server()`` is an embedded server in a private temporary directory for data nobody
keeps (no disk flushes), removed afterwards: ``reconciler diff`` loads the declared schemas of two
revisions there when no shadow server is configured.

``SystemPostgres`` starts the PostgreSQL binaries found on the machine (``initdb``/``pg_ctl``,
Debian's PostgreSQL 15 here) in a throw-away directory, on a unix socket only. The tests use it to
run the same checks against a second server version. As root, the binaries run as the
``postgres`` system user, because PostgreSQL refuses to run as root.

Both servers start without libfaketime in their environment: under its ``LD_PRELOAD`` the
server's timers never fire, so ``lock_timeout`` and ``statement_timeout`` never end a wait, and a
held lock hangs the session forever. The tests run the CLI and the daemon under ``faketime`` (a
weekend date); the database server keeps the machine's real clock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from reconciler import logs
from reconciler.errors import ProviderError
from reconciler.providers.postgres.urls import with_database

log = logs.get_logger(__name__)


def socket_url(socket_dir: Path | str, *, user: str = "postgres", database: str = "postgres",
               port: int = 5432) -> str:
    """A ``postgresql://`` URL for a server listening on a unix socket in ``socket_dir``."""
    port_part = "" if port == 5432 else f"&port={port}"
    return f"postgresql://{user}@/{database}?host={socket_dir}{port_part}"


def _server_environment() -> dict[str, str]:
    """Our environment without libfaketime (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if "faketime" not in p]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    return env


_ENVIRON_LOCK = threading.Lock()


@contextmanager
def _server_environ() -> Iterator[None]:
    """``os.environ`` as ``_server_environment`` while pgserver (which passes no ``env``) starts a server."""
    with _ENVIRON_LOCK:
        saved = dict(os.environ)
        clean = _server_environment()
        if clean == saved:
            yield
            return
        os.environ.clear()
        os.environ.update(clean)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL in ``data_dir``; reuse the directory to keep the data."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._server: Any = None
        self._url: str | None = None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        try:
            with _server_environ():
                server = get_server(self.data_dir, cleanup_mode="stop")
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            raise ProviderError(f"the embedded PostgreSQL in {self.data_dir} did not start: {exc}") from exc
        info = server.get_postmaster_info()
        self._server = server
        self._url = socket_url(info.socket_dir, port=int(info.port or 5432))
        log.info("embedded postgres started", data_dir=str(self.data_dir), socket_dir=str(info.socket_dir))
        return self

    @property
    def url(self) -> str:
        """URL of the server's ``postgres`` database (superuser ``postgres``, no password)."""
        if self._url is None:
            raise ProviderError("the embedded PostgreSQL is not running")
        return self._url

    def database_url(self, database: str) -> str:
        return with_database(self.url, database)

    def stop(self) -> None:
        """Stop the server (idempotent). The data directory is kept."""
        server, self._server, self._url = self._server, None, None
        if server is None:
            return
        server.cleanup()
        log.info("embedded postgres stopped", data_dir=str(self.data_dir))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def temporary_server() -> Iterator[EmbeddedPostgres]:
    """An embedded server in a new temporary directory, for scratch databases only; removed after.

    Raises ``ProviderError`` when it cannot start (pgserver missing or failing, no disk space).
    """
    try:
        base = Path(tempfile.mkdtemp(prefix="reconciler-shadow-"))
    except OSError as exc:
        raise ProviderError(f"no temporary directory for the embedded PostgreSQL: {exc}") from exc
    try:
        try:
            server = EmbeddedPostgres(base / "pg").start()
        except ImportError as exc:
            raise ProviderError(f"the embedded PostgreSQL is not installed: {exc}") from exc
        try:
            import psycopg

            with psycopg.connect(server.url, autocommit=True) as conn:
                # Nothing here outlives the process: skip the flushes that make DDL slow.
                for setting in ("fsync", "full_page_writes", "synchronous_commit"):
                    conn.execute(f"alter system set {setting} = off".encode())
                conn.execute(b"select pg_reload_conf()")
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def system_postgres_bin() -> Path | None:
    """The directory of the machine's PostgreSQL server binaries, or None when there are none."""
    pg_ctl = shutil.which("pg_ctl")
    candidates = [Path(pg_ctl).resolve().parent] if pg_ctl else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


class SystemPostgres:
    """A throw-away server from the system binaries, on a unix socket in a temporary directory."""

    def __init__(self, bin_dir: Path | None = None, base_dir: Path | None = None) -> None:
        found = bin_dir or system_postgres_bin()
        if found is None:
            raise ProviderError("no system PostgreSQL binaries (initdb, pg_ctl) were found")
        self.bin_dir = found
        self._base_dir = base_dir
        self._owns_base = base_dir is None
        self.base_dir: Path | None = None
        self._url: str | None = None

    @property
    def _as_user(self) -> list[str]:
        # PostgreSQL refuses to run as root; run its binaries as the ``postgres`` system user.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        try:
            subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=timeout,
                           env=_server_environment())
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
            raise ProviderError(f"{Path(args[0]).name} failed: {' '.join(detail)}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProviderError(f"{Path(args[0]).name} failed: {exc}") from exc

    def start(self) -> Self:
        if self._url is not None:
            return self
        base = self._base_dir or Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(base, user="postgres", group="postgres")
        self.base_dir = base
        data, sock = base / "data", base / "sock"
        self._run("mkdir", "-p", str(sock))
        self._run(str(self.bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        options = f"-c listen_addresses='' -k {sock} -c fsync=off -c full_page_writes=off"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                  "-o", options, "-w", "-t", "60", "start", timeout=90.0)
        self._url = socket_url(sock)
        log.info("system postgres started", bin_dir=str(self.bin_dir), base_dir=str(base))
        return self

    @property
    def url(self) -> str:
        if self._url is None:
            raise ProviderError("the system PostgreSQL is not running")
        return self._url

    def database_url(self, database: str) -> str:
        return with_database(self.url, database)

    def stop(self) -> None:
        """Stop the server and, when this object created it, remove its directory."""
        if self._url is None or self.base_dir is None:
            return
        self._url = None
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.base_dir / "data"), "-m", "fast",
                      "-w", "stop")
        finally:
            if self._owns_base:
                shutil.rmtree(self.base_dir, ignore_errors=True)
        log.info("system postgres stopped", base_dir=str(self.base_dir))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
