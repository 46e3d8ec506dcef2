"""Run ``reconciler run`` as a real process on loopback and wait on its API with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

# How long a test waits for something before it fails. Generous on purpose: waiting costs nothing when
# the thing happens (the wait ends at once), and the suite must pass on a loaded 2-core machine.
PATIENCE = 120.0

# The instant every test's clock starts at unless the test sets its own: a Wednesday morning (UTC and
# London time), outside the example's Friday 16:00 + 64 h deny window, so a test that tags a release
# sees production apply whatever day the suite runs. Set through RECONCILER_NOW (reconciler/clock.py).
TEST_NOW = "2026-12-02T10:00:00Z"


def wait_for(condition: Callable[[], T | None], timeout: float = PATIENCE, interval: float = 0.05,
             message: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    url: str = ""
    token: str = ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def get(self, path: str) -> Any:
        with self.client() as c:
            response = c.get(path)
            response.raise_for_status()
            return response.json()

    def env(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/environments/{name}")
        return result

    def wait_env(self, name: str, timeout: float = PATIENCE, **expected: Any) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            env = self.env(name)
            return env if all(env.get(k) == v for k, v in expected.items()) else None

        try:
            return wait_for(check, timeout, message=f"{name} to have {expected}")
        except AssertionError as exc:
            last = self.env(name) if self.proc.poll() is None else "(daemon exited)"
            raise AssertionError(f"{exc}\nenvironment now: {last}\ndaemon log tail:\n{self.logs()[-4000:]}") from None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = PATIENCE) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_daemon(config: Path, data_dir: Path, env: dict[str, str] | None = None, timeout: float = PATIENCE,
                 name: str = "daemon", wrap: list[str] | None = None) -> DaemonProcess:
    """Start ``reconciler run``; its clock starts at TEST_NOW unless RECONCILER_NOW says otherwise
    (in our environment or ``env``; an empty value means the system clock). ``wrap`` goes before the
    command (it must ``exec`` it, so the process is the daemon's)."""
    clock = {"RECONCILER_NOW": TEST_NOW, "RECONCILER_NOW_SINCE": f"{time.time():.6f}"}
    exe = Path(sys.executable).parent / "reconciler"
    log_path = data_dir.parent / f"{name}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    state_file = data_dir / "daemon.json"
    state_file.unlink(missing_ok=True)
    handle = log_path.open("ab")
    proc = subprocess.Popen([*(wrap or []), str(exe), "run", "--config", str(config), "--listen", "127.0.0.1:0"],
                            stdout=handle, stderr=subprocess.STDOUT,
                            env={**clock, **os.environ, **(env or {})})
    handle.close()
    daemon = DaemonProcess(proc, data_dir, log_path)

    def started() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited with {proc.returncode}:\n{daemon.logs()[-3000:]}")
        return json.loads(state_file.read_text()) if state_file.exists() else None

    info = wait_for(started, timeout, message="the daemon to start")
    daemon.url = info["api"]
    token_file = data_dir / "admin.token"  # written only when no tokens are configured
    daemon.token = token_file.read_text().strip() if token_file.exists() else ""
    return daemon


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def to_toml(config: dict[str, Any]) -> str:
    """A small TOML writer for test configurations (tables, arrays of tables, scalars)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for table, values in config.items():
        if not isinstance(values, dict):
            continue
        plain = {k: v for k, v in values.items() if not (isinstance(v, list) and v and isinstance(v[0], dict))}
        lines += ["", f"[{table}]", *(f"{k} = {_toml_value(v)}" for k, v in plain.items())]
        for key, rows in values.items():
            if key not in plain:
                for row in rows:
                    lines += ["", f"[[{table}.{key}]]", *(f"{k} = {_toml_value(v)}" for k, v in row.items())]
    return "\n".join(lines) + "\n"
