"""Shared helpers of the benchmarks in ``bench/`` (plan.py, daemon.py, load.py); not a benchmark itself.

What lives here: the machine line every section prints, percentiles, replacing one section of
``docs/benchmarks.md`` while leaving the others alone, a small TOML writer for daemon
configurations, the example repository (``desired-state/`` committed to a fresh Git repository,
with its two CRM databases on an embedded PostgreSQL and every secret it references), HMAC
signatures for webhooks, ``/proc`` readings of CPU and memory, and Prometheus counter sums.

Everything is made in private temporary directories (``tempfile.mkdtemp``), never in pytest's.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import math
import os
import platform
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import structlog

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciler.providers.postgres import EmbeddedPostgres  # noqa: E402
from reconciler.source import workspace  # noqa: E402
from tests.daemon_support import to_toml  # noqa: E402

EXAMPLE = ROOT / "desired-state"
PYTHON = ROOT / ".venv" / "bin" / "python"
CLI = ROOT / ".venv" / "bin" / "reconciler"

# A package installed with pip comes with its bytecode compiled, so a user's `reconciler` process never
# compiles source. PYTHONDONTWRITEBYTECODE (set on some development machines) would make every process
# a benchmark starts compile the package's modules again (about 0.1 s each): the processes started
# here may write and reuse bytecode, as an installed package has it.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# -- reporting -------------------------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return (f"{cores} cores (`nproc` = {cores}){f', {cpu}' if cpu else ''}, {platform.system()} "
            f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}")


def code_version() -> str:
    """The commit measured, and whether product files had uncommitted changes (others work in this checkout)."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "reconciler", "pyproject.toml")
    return f"commit `{commit}`" + (" plus uncommitted changes to the product" if dirty else "")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages: other work on the machine skews every figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def conditions(load_before: str, code: str) -> str:
    """What a section says of the run: the load average before and now, and the code measured."""
    return f"load average {load_before} before, {load_average()} after; code: {code}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def verdict(value: float, goal: float) -> str:
    return "met" if value < goal else "**missed**"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first line of its module docstring."""
    return argparse.ArgumentParser(description=(doc or "").splitlines()[0])


def reproduce(command: str) -> str:
    """The closing lines of a benchmark's section: the command that measured it again."""
    return f"Reproduce with:\n\n```\n{command}\n```\n"


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts at ``heading`` in ``path`` (or append it), leaving the rest alone.

    The file is read right before writing, so sections other benchmarks wrote meanwhile survive.
    """
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = existing.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = existing.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + text + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def quiet_logs() -> None:
    """Only warnings from the product's structlog loggers while a benchmark runs in-process."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


# -- configuration ------------------------------------------------------------------------------------


# -- the example repository ------------------------------------------------------------------------------


@dataclass
class Example:
    """The example desired state committed to a fresh repository, with databases and secrets."""

    root: Path
    repo: Path
    config: Path
    secrets: dict[str, str]
    databases: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def desired(self) -> Path:
        return self.repo / "desired-state"

    @property
    def data_dir(self) -> Path:
        return Path(self.settings["data_dir"])

    def configure(self, **sections: Any) -> None:
        """Merge ``sections`` into the configuration file (a table's keys merge)."""
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(self.settings.get(key), dict):
                self.settings[key].update(value)
            else:
                self.settings[key] = value
        self.config.write_text(to_toml(self.settings))

    def commit(self, message: str) -> str:
        commit: str = workspace.commit_all(self.repo, message)
        return commit


@contextmanager
def embedded_postgres(base: Path) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(base / "pg") as server:
        yield server


def make_example(base: Path, pg: EmbeddedPostgres, environments: Sequence[str] = ("staging", "production")) -> Example:
    """Copy ``desired-state/`` into a new repository under ``base``, make a database per environment that
    has one, export every secret to ``os.environ`` and write ``reconciler.toml``; one commit on main."""
    suffix = uuid.uuid4().hex[:8]
    databases: dict[str, str] = {}
    with psycopg.connect(pg.url, autocommit=True) as conn:
        for env in environments:
            name = f"crm_{env[:4]}_{suffix}"
            conn.execute(f"create database {name}".encode())
            databases[env] = pg.database_url(name)
    repo = base / "repo"
    shutil.copytree(EXAMPLE, repo / "desired-state")
    workspace.init(repo)
    secrets = {
        "CRM_DB_STAGING_PASSWORD": "bench-db-staging",
        "CRM_DB_PRODUCTION_PASSWORD": "bench-db-production",
        "CRM_API_STAGING_TOKEN": "bench-api-staging",
        "CRM_API_PRODUCTION_TOKEN": "bench-api-production",
        "SEGMENT_STAGING_KEY": "bench-segment-staging",
        "SEGMENT_PRODUCTION_KEY": "bench-segment-production",
        "WEBHOOK_SECRET": "bench-webhook-" + suffix,
    }
    for env, url in databases.items():
        secrets[f"CRM_DB_{env.upper()}_ADMIN_URL"] = url
    os.environ.update(secrets)
    example = Example(base, repo, base / "reconciler.toml", secrets, databases)
    example.configure(data_dir=str(base / "data"), source={"url": str(repo)}, secrets={"backends": ["env"]})
    example.commit("Declare staging and production")
    return example


def set_config_value(desired: Path, old: str, new: str) -> None:
    """Edit the example's ``config/variables.yaml``: replace the value ``old`` by ``new``."""
    path = desired / "config" / "variables.yaml"
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"{old!r} not found in {path}")
    path.write_text(text.replace(old, new, 1))


# -- daemons -------------------------------------------------------------------------------------------


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """A memory line of ``/proc/<pid>/status`` (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def metric_samples(base_url: str, name: str, client: httpx.Client | None = None) -> dict[str, float]:
    """Every sample of the Prometheus metric ``name`` at ``base_url/metrics``, keyed by its labels."""
    text = (client.get(base_url + "/metrics") if client else httpx.get(base_url + "/metrics", timeout=10)).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            labels, value = line[len(name):].rsplit(" ", 1)
            out[labels] = float(value)
    return out


def metric_sum(base_url: str, name: str, client: httpx.Client | None = None) -> float:
    """Sum of every sample of the Prometheus metric ``name`` at ``base_url/metrics``."""
    return sum(metric_samples(base_url, name, client).values())
