"""``python -m bench`` (``make bench``): run every benchmark in ``bench/``, one process each, in turn.

Each benchmark is a script of its own (``schema_drift.py``, ``plan.py``, ``daemon.py``, ``load.py``,
``cold_cli.py``, ``cli_latency.py``, ``loader.py``, ``retool_requests.py``; see their docstrings for
what they measure and their goals) and keeps its own options; this runs them with their defaults (``cold_cli.py`` alone
takes about an hour on a busy 2-core machine), or with smaller sizes under ``--quick`` (figures to
check that everything runs, not to publish). ``--write FILE``
passes ``--write FILE`` on, so each benchmark replaces its own section of that Markdown file
(``docs/benchmarks.md``); ``--only NAME`` runs some of them. Exits non-zero when one failed, after
running the others.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name → the script's options under --quick (the defaults otherwise)
BENCHMARKS: dict[str, list[str]] = {
    "schema_drift": ["--sizes", "20,200", "--repeat", "2"],
    "plan": ["--runs", "5", "--cli-runs", "2"],
    "daemon": ["--commits", "5", "--idle-seconds", "10", "--burst", "200", "--senders", "8"],
    "load": ["--envs", "10", "--webhooks", "1000", "--senders", "8"],
    "cold_cli": ["--sizes", "20", "--runs", "1"],
    "cli_latency": ["--runs", "2"],
    "loader": ["--sizes", "10,100,1000"],
    "retool_requests": ["--unmanaged", "50"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: check that every benchmark runs")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--write", type=Path, help="have each benchmark update its section of this Markdown file")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for name, quick in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else [])]
        if args.write:
            command += ["--write", str(args.write)]
        sys.stdout.write(f"== bench/{name}.py {' '.join(command[2:])}\n")
        sys.stdout.flush()
        started = time.monotonic()
        code = subprocess.call(command)
        sys.stdout.write(f"== bench/{name}.py {'ok' if code == 0 else f'FAILED (exit {code})'} "
                         f"in {time.monotonic() - started:.0f} s\n\n")
        sys.stdout.flush()
        if code != 0:
            failed.append(name)
    if failed:
        sys.stderr.write(f"failed: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
