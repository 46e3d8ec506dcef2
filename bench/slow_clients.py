"""Benchmark: slow clients (issue 10, item 5) — ``/healthz`` latency while N slow connections are open.

A real ``reconciler run`` on loopback with the example desired state (staging ``Synced`` first)
and the product's default ``[api]`` limits unless given (``header_timeout = "10s"``,
``body_timeout = "30s"``, ``keepalive_timeout = "5s"``, ``max_connections = 512``). For each N in
``--slow``: N connections open ``POST /hooks/generic`` announcing ``Content-Length: 60000`` and
send one body byte every ``--interval`` seconds (the issue's attack; tests/slow_clients.py),
while one thread sends ``GET /healthz`` every 50 ms on a new connection each time, as a liveness
probe does, with a 10 s timeout. Recorded per N: how long opening the N connections took; the
probes' p50/p95/max latency and failures while they were being opened, and during the
``--window`` seconds after; the daemon's CPU time over the round; how long the server took to
close every slow connection (from the first one's opening to the last one's close).

``--nofile`` starts the daemon with that limit of open files (the issue's machine had 1,024), to
show that the connection cap keeps descriptors for ``/healthz``. Run with::

    .venv/bin/python bench/slow_clients.py [--slow 0,200,1000,3000] [--nofile 1024] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from benchkit import (
    argument_parser,
    code_version,
    conditions,
    cpu_seconds,
    embedded_postgres,
    load_average,
    machine,
    make_example,
    ms,
    percentile,
    reproduce,
    write_section,
)

from tests.daemon_support import DaemonProcess, start_daemon, wait_for
from tests.slow_clients import SlowClients

HEADING = "## Slow clients: /healthz while slow connections are open"
PROBE_EVERY = 0.05
PROBE_TIMEOUT = 10.0


@dataclass
class Probes:
    latencies: list[float] = field(default_factory=list)
    failed: int = 0

    def row(self) -> str:
        if not self.latencies:
            return "— | — | — | —"
        return (f"{ms(percentile(self.latencies, 50))} | {ms(percentile(self.latencies, 95))} | "
                f"{ms(max(self.latencies))} | {self.failed}/{len(self.latencies)}")


@dataclass
class Round:
    slow: int
    opening: Probes = field(default_factory=Probes)  # probes started while the slow ones were being opened
    held: Probes = field(default_factory=Probes)  # probes started after that, during the window
    opened_s: float = 0.0
    daemon_cpu_s: float = 0.0
    all_closed_s: float | None = None  # from the first slow connection's opening to the last one closed


def probe(url: str, stop: threading.Event, opened: threading.Event, result: Round) -> None:
    while not stop.is_set():
        into = result.held if opened.is_set() else result.opening
        start = time.perf_counter()
        try:
            ok = httpx.get(url + "/healthz", timeout=PROBE_TIMEOUT).status_code == 200
        except httpx.HTTPError:
            ok = False
        into.latencies.append(time.perf_counter() - start)
        into.failed += 0 if ok else 1
        stop.wait(PROBE_EVERY)


def one_round(daemon: DaemonProcess, slow: int, interval: float, window: float, cut_within: float) -> Round:
    result = Round(slow)
    address = urlsplit(daemon.url)
    assert address.hostname is not None and address.port is not None
    clients = SlowClients(address.hostname, address.port, interval=interval)
    stop, opened = threading.Event(), threading.Event()
    prober = threading.Thread(target=probe, args=(daemon.url, stop, opened, result))
    cpu = cpu_seconds(daemon.proc.pid)
    try:
        prober.start()
        start = time.monotonic()
        if slow:
            clients.open("body", slow)
        result.opened_s = time.monotonic() - start
        opened.set()
        stop.wait(window)
        stop.set()
        prober.join()
        if slow:
            try:
                wait_for(lambda: clients.open_count() == 0, timeout=cut_within, interval=0.1,
                         message="the server to close every slow connection")
                last = max(c.closed_at or 0.0 for c in clients.connections)
                result.all_closed_s = last - clients.connections[0].opened_at
            except AssertionError:
                result.all_closed_s = None
        result.daemon_cpu_s = cpu_seconds(daemon.proc.pid) - cpu
    finally:
        stop.set()
        clients.close()
    return result


def closed(r: Round, cut_within: float) -> str:
    if not r.slow:
        return "—"
    return f"{r.all_closed_s:.1f} s" if r.all_closed_s is not None else f"not within {cut_within:g} s"


def section(rounds: list[Round], args: argparse.Namespace, load: str, command: str) -> str:
    rows = "\n".join(
        f"| {r.slow} | {r.opened_s:.1f} s | {r.opening.row()} | {r.held.row()} | {r.daemon_cpu_s:.1f} s | "
        f"{closed(r, args.cut_within)} |" for r in rounds)
    limits = ", ".join(f"`{k} = {v!r}`" for k, v in api_limits(args).items()) or "the defaults"
    return f"""{HEADING}

Issue 10's slow-client attack, on {machine()}.
{load[0].upper() + load[1:]}. Daemon limits: {limits}; the daemon's open-file limit:
{args.nofile or "inherited"}.

Each round: N connections to `POST /hooks/generic` announce `Content-Length: 60000` and send one
body byte every {args.interval:g} s, opened one after the other; meanwhile `GET /healthz` every 50 ms on
a new connection (10 s timeout), while they are being opened and for {args.window:g} s after.
Latency is the client's round trip; "failed" counts timeouts, errors and non-200 answers. "CPU"
is the daemon's user + system time over the round. "All closed" is the time from the first slow
connection's opening until the server had closed the last one.

| slow | opening | while opening: p50 | p95 | max | failed | then: p50 | p95 | max | failed | CPU | all closed |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

{reproduce(command)}"""


def api_limits(args: argparse.Namespace) -> dict[str, object]:
    limits: dict[str, object] = {}
    for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
        if getattr(args, key):
            limits[key] = getattr(args, key)
    if args.max_connections:
        limits["max_connections"] = args.max_connections
    return limits


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--slow", default="0,200,1000,3000", help="comma-separated numbers of slow connections")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between two bytes of a slow client")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of probing after the opening")
    parser.add_argument("--cut-within", type=float, default=120.0, help="how long to wait for the slow ones to go")
    parser.add_argument("--nofile", type=int, help="the daemon's limit of open files (RLIMIT_NOFILE)")
    parser.add_argument("--header-timeout")
    parser.add_argument("--body-timeout")
    parser.add_argument("--keepalive-timeout")
    parser.add_argument("--max-connections", type=int)
    parser.add_argument("--write", type=Path, help="update this Markdown file's 'Slow clients' section")
    args = parser.parse_args()
    load_before, code = load_average(), code_version()
    base = Path(tempfile.mkdtemp(prefix="reconciler-bench-slow-"))
    rounds: list[Round] = []
    try:
        with embedded_postgres(base) as pg:
            example = make_example(base, pg)
            limits = api_limits(args)
            if limits:
                example.configure(api=limits)
            own = resource.getrlimit(resource.RLIMIT_NOFILE)
            if args.nofile:  # the daemon inherits the limit; this process takes its own back at once
                resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, own[1]))
            try:
                daemon = start_daemon(example.config, example.data_dir, env=example.secrets, timeout=120,
                                      name="daemon-slow")
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, own)
            try:
                daemon.token = (example.data_dir / "admin.token").read_text().strip()
                daemon.wait_env("staging", timeout=300, state="Synced")
                for slow in [int(n) for n in args.slow.split(",")]:
                    r = one_round(daemon, slow, args.interval, args.window, args.cut_within)
                    rounds.append(r)
                    print(f"{slow:5d} slow, opened in {r.opened_s:.1f} s; /healthz while opening "
                          f"{r.opening.row()}; then {r.held.row()}; daemon CPU {r.daemon_cpu_s:.1f} s; "
                          f"all slow ones closed after {closed(r, args.cut_within)}", flush=True)
            finally:
                daemon.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    load = conditions(load_before, code)
    print(load)
    if args.write:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in api_limits(args).items())
        command = (f".venv/bin/python bench/slow_clients.py --slow {args.slow} --interval {args.interval:g} "
                   f"--window {args.window:g}{f' --nofile {args.nofile}' if args.nofile else ''}"
                   f"{' ' + flags if flags else ''} --write {args.write}")
        write_section(args.write, HEADING, section(rounds, args, load, command))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
