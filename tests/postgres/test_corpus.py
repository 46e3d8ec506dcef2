"""The schema change corpus: every pair in corpus/ reconciled from ``before`` to ``after``.

Each ``corpus/*.sql`` file holds a ``-- @before`` and an ``-- @after`` section and optional
directives:

* ``-- @schemas: public, reporting`` - the managed schemas (default ``public``);
* ``-- @expect: <query>`` - a query that must return true afterwards (a catalog check);
* ``-- @limit: <reason>`` - the diff engine cannot converge on this pair: the provider must
  raise ``SchemaError`` instead of looping (listed in docs/schema-engine-limits.md);
* ``-- @invisible: <reason>`` - the diff engine does not see this difference at all: the plan is
  empty (also listed in docs/schema-engine-limits.md).

Every other pair must plan at least one change and converge in one apply the way a run applies
it (``support.converge``: plan, additive phase planned again and applied, destructive phase
planned again and applied with its ids approved, verify with zero drift). They run on the
embedded server, one fresh database each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.errors import SchemaError
from reconciler.providers.postgres import PostgresProvider
from tests.postgres.support import CORPUS, converge, scalar

NewDatabase = Callable[[str], str]


@dataclass(frozen=True)
class Pair:
    name: str
    before: str
    after: str
    schemas: list[str]
    expect: list[str]
    limit: str | None
    invisible: str | None


def load(path: Path) -> Pair:
    text = path.read_text()
    _, _, rest = text.partition("-- @before\n")
    before, _, after = rest.partition("-- @after\n")

    def directive(name: str) -> list[str]:
        return [m.strip() for m in re.findall(rf"^-- @{name}:(.*)$", text, re.MULTILINE)]

    schemas = directive("schemas")
    return Pair(
        name=path.stem,
        before=before,
        after=after,
        schemas=[s.strip() for s in schemas[0].split(",")] if schemas else ["public"],
        expect=directive("expect"),
        limit=next(iter(directive("limit")), None),
        invisible=next(iter(directive("invisible")), None),
    )


PAIRS = [load(p) for p in sorted(CORPUS.glob("*.sql"))]


def test_the_corpus_has_at_least_forty_pairs() -> None:
    assert len([p for p in PAIRS if not p.limit and not p.invisible]) >= 40


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_pair_converges(pair: Pair, embedded_database: NewDatabase) -> None:
    url = embedded_database(pair.before)
    provider = PostgresProvider()
    files = [(f"{pair.name}.sql", pair.after)]
    planned = provider.plan("crm", url, files, pair.name, pair.schemas)
    if pair.invisible:
        assert planned == []
        return
    assert planned, "the pair changes nothing the diff engine can see"
    if pair.limit:
        with pytest.raises(SchemaError):
            converge(provider, "crm", url, files, pair.name, pair.schemas)
        return
    converge(provider, "crm", url, files, pair.name, pair.schemas)
    assert provider.plan("crm", url, files, pair.name, pair.schemas) == []
    for query in pair.expect:
        assert scalar(url, query) is True, query
