"""The ``reconciler`` console script: a thin door in front of ``reconciler.cli``.

``reconciler run`` is a long-lived process that never renders rich terminal output (it logs JSON
lines or plain console lines). Keeping ``rich`` and ``pygments`` — which structlog would import
eagerly for pretty tracebacks — out of that process saves about 5 MB of resident memory, so the
door marks them unavailable before anything imports them, and tells typer to format ``run --help``
and usage errors as plain text. Every other command is unaffected.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        # A None entry in sys.modules makes "import rich" raise ImportError; structlog falls back
        # to plain output. Typer does not look at imports: it formats help and usage errors with
        # rich unless TYPER_USE_RICH says otherwise, which it reads when it is first imported.
        for name in ("rich", "pygments"):
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
        os.environ["TYPER_USE_RICH"] = "0"
    from reconciler.cli import main as cli_main

    cli_main()
