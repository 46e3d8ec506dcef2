"""``reconciler import``: write the desired state of what already runs.

Teams arrive with a platform and databases set up by hand; this package reads them and writes the
desired-state folder that declares exactly that, so the first ``plan`` shows no changes.

* ``documents.py`` (pure) turns the live objects of each environment and the dumped schemas into
  documents, SQL and app files, with every secret value replaced by a ``${secret:NAME}``
  reference, and says what the format cannot express;
* ``importer.py`` (I/O) reads the platform through its provider and each database through the
  postgres provider, then writes the files, never over an existing one unless asked.

The CLI's ``import`` command calls ``importer.run_import``.
"""
