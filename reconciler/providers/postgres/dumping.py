"""A live database's managed schemas as SQL that reloads to the same schema (``pg_dump --schema-only``).

Called by ``reconciler import`` (``reconciler/adopt/``) to write a Database's schema folder from
what runs. The dump comes from PostgreSQL's own ``pg_dump``: the embedded server's (pgserver),
Debian's (``/usr/lib/postgresql/*/bin``) or the one on ``PATH``, whichever is the newest; pg_dump
refuses a server newer than itself, so a server newer than every pg_dump found is reported with
what to install.

The output is made fit to be a declared schema file, which ``declared.py`` runs statement by
statement on one session, after other files perhaps and before others:

* ``CREATE SCHEMA x`` becomes ``CREATE SCHEMA IF NOT EXISTS x`` (a scratch database made from
  ``template0`` already has ``public``);
* pg_dump's ``SET statement_timeout = 0`` and ``SET lock_timeout = 0`` are dropped, so the
  configured timeouts stay in force while the schema loads;
* its empty ``search_path`` is dropped too (every name in the dump is schema-qualified), so a file
  a user adds after it still finds unqualified names;
* the version banner and psql meta-commands (``\\restrict`` in recent pg_dump releases) go.

The password never reaches the command line (where ``ps`` shows it) or a message: pg_dump gets
the URL without it and the password through ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from reconciler.errors import ProviderError, SchemaError
from reconciler.providers.postgres.sessions import Timeouts, connect, milliseconds
from reconciler.providers.postgres.urls import safe_url

DUMP_TIMEOUT = 600.0

_VERSION = re.compile(r"pg_dump \(PostgreSQL\) (\d+)(?:\.(\d+))?")
_BANNER = re.compile(r"^-- Dumped (from database|by pg_dump) version .*\n", re.MULTILINE)
_META = re.compile(r"^\\.*\n", re.MULTILINE)
_SESSION = re.compile(
    r"^(SET (statement_timeout|lock_timeout|idle_in_transaction_session_timeout|transaction_timeout) = 0;"
    r"|SELECT pg_catalog\.set_config\('search_path', '', false\);)\n",
    re.MULTILINE,
)
_CREATE_SCHEMA = re.compile(r"^CREATE SCHEMA (?!IF NOT EXISTS)", re.MULTILINE)
_BLANKS = re.compile(r"\n{3,}")


def pg_dump_candidates() -> list[Path]:
    """Every pg_dump on this machine: pgserver's, Debian's versioned ones, the one on PATH."""
    found: list[Path] = []
    try:
        import pgserver

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump")
    except ImportError:
        pass
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(Path(on_path))
    unique: dict[Path, Path] = {}
    for path in found:
        if path.is_file() and os.access(path, os.X_OK):
            unique.setdefault(path.resolve(), path)
    return list(unique.values())


def pg_dump_version(path: Path) -> tuple[int, int] | None:
    """The (major, minor) version of the pg_dump at ``path``, or None when it does not run."""
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def choose_pg_dump(server_major: int, candidates: Sequence[Path] | None = None) -> Path:
    """The newest pg_dump found, provided it is at least as new as the server."""
    versions = [(version, path) for path in (pg_dump_candidates() if candidates is None else candidates)
                if (version := pg_dump_version(path)) is not None]
    if not versions:
        raise ProviderError("no pg_dump was found (looked in pgserver, /usr/lib/postgresql/*/bin and PATH); "
                            f"install the PostgreSQL {server_major} client tools")
    version, path = max(versions, key=lambda pair: pair[0])
    if version[0] < server_major:
        raise ProviderError(f"the newest pg_dump found ({path}, version {version[0]}) is older than the "
                            f"server (version {server_major}); install the PostgreSQL {server_major} client tools")
    return path


def server_major(url: str, timeouts: Timeouts) -> int:
    try:
        with connect(url, timeouts) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
    except psycopg.Error as exc:
        raise ProviderError(f"cannot connect to {safe_url(url)}: {_first_line(exc)}") from exc
    assert row is not None
    return int(str(row[0])) // 10000


def clean_dump(text: str) -> str:
    """pg_dump's output made fit to be a declared schema file (see the module docstring)."""
    text = _BANNER.sub("", text)
    text = _META.sub("", text)
    text = _SESSION.sub("", text)
    text = _CREATE_SCHEMA.sub("CREATE SCHEMA IF NOT EXISTS ", text)
    return _BLANKS.sub("\n\n\n", text).strip() + "\n"


def dump_schema(
    url: str,
    managed_schemas: Sequence[str],
    *,
    timeouts: Timeouts | None = None,
    pg_dump: Path | None = None,
) -> str:
    """The DDL of ``managed_schemas`` in the database at ``url`` (no data, owners or grants)."""
    timeouts = timeouts or Timeouts()
    where = safe_url(url)
    program = pg_dump or choose_pg_dump(server_major(url, timeouts), None)
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ProviderError(f"{where}: not a usable database URL ({_first_line(exc)})") from exc
    password = params.pop("password", None)
    environment = dict(os.environ)
    if password is not None:
        environment["PGPASSWORD"] = str(password)
    # The same lock timeout as every other session on a managed database: a table held ACCESS
    # EXCLUSIVE ends the dump instead of hanging it.
    command = [str(program), "--schema-only", "--no-owner", "--no-privileges",
               f"--lock-wait-timeout={milliseconds(timeouts.lock_timeout)}ms"]
    command += [f"--schema={schema}" for schema in managed_schemas]
    command += ["--dbname", make_conninfo("", **params)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=DUMP_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProviderError(f"pg_dump of {where} did not finish within {DUMP_TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise ProviderError(f"pg_dump ({program}) could not run: {exc}") from exc
    if done.returncode != 0:
        detail = " ".join(line.strip() for line in done.stderr.strip().splitlines()[-3:])
        if password:
            detail = detail.replace(str(password), "(secret)")
        raise SchemaError(f"pg_dump of {where} failed: {detail or f'exit code {done.returncode}'}")
    return clean_dump(done.stdout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
