"""The ``reconciler secrets ENV`` report (also printed by ``validate --env ENV``): text, JSON, Markdown.

Names, backends, states and places only: a ``Needs`` holds no value, so nothing here can leak one.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.app.needs import Need, Needs, Status

STATE_WORDS = {
    Status.SET: "set", Status.MISSING: "MISSING", Status.EMPTY: "EMPTY", Status.UNREADABLE: "UNREADABLE",
    Status.NOT_A_URL: "NOT A URL", Status.IN_GIT: "in Git",
}


def _order(needs: Needs) -> list[Need]:
    """Problems first, then by the first place of use."""
    return sorted(needs.needs, key=lambda n: (n.ok, n.uses[0].file, n.uses[0].line or 0, n.name or ""))


def summary(needs: Needs) -> str:
    secrets = needs.secrets
    urls = sum(1 for n in needs.needs if n.database_url)
    head = f"{needs.environment} needs {len(secrets)} secret{'s' if len(secrets) != 1 else ''}"
    if urls:
        head += f" (with {urls} database URL{'s' if urls != 1 else ''})"
    problems = needs.problems
    if not problems:
        return head + "; every one is set"
    counts: dict[str, int] = {}
    for need in problems:
        counts[STATE_WORDS[need.status].lower()] = counts.get(STATE_WORDS[need.status].lower(), 0) + 1
    return head + "; " + ", ".join(f"{count} {word}" for word, count in counts.items())


def _state(need: Need) -> str:
    if need.status == Status.SET:
        return f"set ({need.backend})"
    if need.status == Status.MISSING:
        return "MISSING"
    return STATE_WORDS[need.status]


def hint(needs: Needs) -> str | None:
    """How to provide what is missing with the configured backends."""
    if not needs.problems:
        return None
    ways = []
    for label in needs.backends:
        if label == "env":
            ways.append("an environment variable NAME (export NAME=...)")
        elif label.startswith("files:"):
            ways.append(f"a file {label.removeprefix('files:').rstrip('/')}/NAME holding only the value")
    if not ways:
        return "No secret backend is configured: add secrets.backends = [\"env\"] to the configuration."
    return "Provide each as " + " or ".join(ways) + "; then run this again. Values are never shown."


def secrets_text(needs: Needs) -> str:
    lines = [summary(needs) + f" (backends, in order: {', '.join(needs.backends) or 'none'})", ""]
    ordered = _order(needs)
    width = max([len(n.name or "(database URL)") for n in ordered], default=0)
    where = max([len(u.where) for n in ordered for u in n.uses], default=0)
    for need in ordered:
        name = need.name or "(database URL)"
        extra = "  database URL" if need.database_url and need.name else ""
        lines.append(f"  {name.ljust(width)}  {_state(need)}{extra}")
        if need.detail:
            lines.append(f"  {'':{width}}  {need.detail}")
        for use in need.uses:
            lines.append(f"      {use.where.ljust(where)}  {use.document}, {use.field}")
    advice = hint(needs)
    if advice:
        lines += ["", advice]
    return "\n".join(lines) + "\n"


def need_json(need: Need) -> dict[str, Any]:
    return {
        "name": need.name,
        "status": need.status.value,
        "backend": need.backend,
        "detail": need.detail,
        "database_url": need.database_url,
        "uses": [{"file": u.file, "line": u.line, "document": u.document, "field": u.field, "database": u.database}
                 for u in need.uses],
    }


def secrets_json(needs: Needs) -> dict[str, Any]:
    return {
        "environment": needs.environment,
        "backends": needs.backends,
        "complete": not needs.problems,
        "missing": [n.name for n in needs.problems if n.name],
        "secrets": [need_json(n) for n in _order(needs)],
    }


def secrets_markdown(needs: Needs) -> str:
    lines = [f"### {summary(needs)}", "", "| Secret | State | Used at |", "|---|---|---|"]
    for need in _order(needs):
        places = "<br>".join(f"`{u.where}` {u.document} `{u.field}`" for u in need.uses)
        state = _state(need) + (f": {need.detail}" if need.detail else "")
        lines.append(f"| `{need.name or '(database URL)'}` | {state.replace('|', '/')} | {places.replace('|', '/')} |")
    advice = hint(needs)
    return "\n".join(lines + (["", advice] if advice else [])) + "\n"


def render_secrets(fmt: str, needs: Needs) -> str:
    if fmt == "json":
        return json.dumps(secrets_json(needs), indent=2, sort_keys=True)
    if fmt == "markdown":
        return secrets_markdown(needs)
    return secrets_text(needs)
