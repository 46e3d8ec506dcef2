"""Declared checks (``kind: Check``): what "this release works" means beyond "live equals Git".

``prepared.py`` turns the checks of one environment into probes (pure: templates, no secrets);
``sql.py`` and ``http.py`` are the only code here that talks to a database or an endpoint;
``runner.py`` resolves secrets, runs each probe within its timeout and returns ``results.py``'s
plain dataclasses with every secret redacted. Called by ``reconciler check`` and the API's
``POST /api/v1/environments/{env}/checks``; the run loop will call the same runner after an apply.
"""
