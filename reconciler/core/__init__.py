"""The pure core: rendering, diffing, planning, target selection, gates and run outcomes.

Plain functions over plain data, with no I/O: nothing here reads Git, a database, a clock or the
network. The core imports only the desired-state models (``desired.models``, ``desired.state``)
and the leaf utilities (``errors``, ``durations``, ``secrets.values``); the import-linter contracts
in pyproject.toml hold it to that. ``app/`` gathers the facts, asks the core, and acts.
"""
