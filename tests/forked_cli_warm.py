"""Imported by the forkserver of ``tests/forked_cli.py`` only: migra and schemainspect, imported the way
the product imports them (``diffing.warm_up``: without pkg_resources), before the processes are forked."""

from reconciler.providers.postgres.diffing import warm_up

warm_up()
