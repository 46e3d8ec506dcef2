"""``reconciler`` processes forked from one that imported the CLI already, for tests that start many.

``tests/reliability/test_faults.py`` kills twenty ``reconciler apply`` processes at random points. A
new interpreter spends most of a second importing (typer, SQLAlchemy, pygit2, psycopg, migra)
before it applies anything, more on a loaded machine. multiprocessing's forkserver imports those
modules once, in a process of its own started from the test's, and forks each ``reconciler``
process from there: every one is still a process of its own, with its own database connections and
state, running ``reconciler.entry.main`` (the console script's body) with the given arguments and
environment, and ``SIGKILL`` ends it like any other. Its output goes to /dev/null.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.process import BaseProcess

# What ``reconciler apply`` imports on its way to the first change (-X importtime), except the modules
# that import ``reconciler.store.store``: it names this process's lease owner after the pid at import
# (``store.OWNER``), which must be the pid of each forked process, never the forkserver's.
PRELOAD = [
    "reconciler.entry",
    "reconciler.cli",
    "reconciler.config",
    "reconciler.core.gates",
    "reconciler.core.outcome",
    "reconciler.core.render",
    "reconciler.core.targets",
    "reconciler.core.topology",
    "reconciler.checks.runner",
    "reconciler.desired.loader",
    "reconciler.reports.drift",
    "reconciler.secrets.backends",
    "reconciler.secrets.fingerprints",
    "reconciler.source.repository",
    "reconciler.store.migrations",
    "reconciler.providers.postgres.provider",
    "reconciler.providers.registry.provider",
    "tests.forked_cli_warm",  # migra and schemainspect, as the product imports them
    "jsonpath",
    "pglast",
    "psycopg",
    "pygit2",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
]
PER_PROCESS = "reconciler.store.store"


def _main(argv: list[str], environ: dict[str, str]) -> None:
    """The console script in the forked process: our environment, ``argv``, output to /dev/null."""
    if PER_PROCESS in sys.modules:
        raise AssertionError(f"{PER_PROCESS} was imported before the fork: take its importer out of PRELOAD")
    os.environ.clear()
    os.environ.update(environ)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.argv = ["reconciler", *argv]
    from reconciler.entry import main

    main()


def start(*argv: str) -> BaseProcess:
    """Start ``reconciler *argv`` with this process's environment as it is now; it runs on its own."""
    context = multiprocessing.get_context("forkserver")
    # Read when the forkserver starts (the first call in this test process); later calls reuse it.
    context.set_forkserver_preload([__name__, *PRELOAD])
    process = context.Process(target=_main, args=(list(argv), dict(os.environ)), name="reconciler")
    process.start()
    return process
