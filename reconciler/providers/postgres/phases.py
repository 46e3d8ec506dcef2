"""Dependency-safe order and phases of one database's schema statements (pure).

``classify`` calls ``arrange`` with its classified statements, in the diff engine's order, and
gets back the order to apply them in, which of them wait for the destructive step, and the
groups they form there.

The split is the one of SPEC §5: additive statements run before the apps move, destructive ones
after. Splitting alone reorders statements that depend on each other (a view created before the
table of the same name is dropped; a column added to an inheritance parent before a child's copy
with another type is gone; a default set to a function before the function exists), so the
statements are first linked:

* **same name**: a dropped table, view, materialized view, sequence, type or index and every
  statement that creates the same name or works on it; a drop and a create of the same object
  (a replacement) - these move between phases *together*;
* **views**: a view dropped before the changes to the relations it reads that it would block
  (type changes, dropped columns, recreated enums); a view created after the changes to the
  relations it reads;
* **functions**: a function created before the statements that call it or that work on tables
  and views calling it; a function dropped after them;
* **inheritance**: a column dropped from a table before it is added to its inheritance parent
  or child.

The order is the engine's, except where a link says otherwise (a stable topological sort; a
cycle falls back to the engine's order). A destructive statement runs in the destructive step,
and so does everything that must run after it or that moves together with it: such a set is a
*group*, named by the id of its first destructive statement, and it runs (and waits for its
approvals) as a whole. Statements that must only run *before* a destructive one stay in the
additive step, which runs earlier anyway.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.providers.postgres.diffing import SchemaFacts

# Actions that create or drop a name in the namespace of tables, views, sequences, indexes and types.
_CREATES = {"create-table", "create-view", "create-materialized-view", "create-sequence", "create-type",
            "create-index", "create-domain"}
_DROPS = {"drop-table", "drop-view", "drop-materialized-view", "drop-sequence", "drop-type", "drop-index",
          "drop-domain"}
_VIEW_CREATES = {"create-view", "create-materialized-view"}
_VIEW_DROPS = {"drop-view", "drop-materialized-view"}
_FUNCTION_CREATES = {"create-function", "create-procedure"}
_FUNCTION_DROPS = {"drop-function", "drop-procedure"}
# Changes a view that reads the relation is in the way of (PostgreSQL refuses them while it exists).
_BLOCKED_BY_VIEWS = {"alter-column-type", "drop-column", "drop-table", "drop-view", "drop-materialized-view",
                     "alter-enum", "drop-enum-value", "drop-expression", "drop-type"}
# Changes that give a relation the shape a view created over it expects.
_SHAPING = {"alter-column-type", "add-column", "create-table", "create-view", "create-materialized-view",
            "alter-enum", "drop-enum-value"}


@dataclass(frozen=True)
class Statement:
    """What ``arrange`` needs to know about one classified statement."""

    action: str
    obj: str
    sql: str
    destructive: bool
    # The relations and types it works on ("schema.name"), its own name included.
    touches: frozenset[str]
    identity: tuple[str, str] | None = None
    drop: bool = False


@dataclass(frozen=True)
class Arrangement:
    """Positions into the statements ``arrange`` was given."""

    order: tuple[int, ...]  # apply order
    late: frozenset[int]  # run with the destructive step
    groups: Mapping[int, int]  # member -> its group's first destructive statement (groups of two or more)


def arrange(statements: Sequence[Statement], facts: SchemaFacts) -> Arrangement:
    """Order ``statements`` (in the engine's order) so none runs before one it depends on."""
    links = _Links(len(statements))
    _link_names(statements, links)
    _link_types(statements, links)
    _link_views(statements, facts, links)
    _link_functions(statements, facts, links)
    _link_inheritance(statements, facts, links)
    order = _topological(links.after)
    late = _late(statements, links)
    return Arrangement(tuple(order), frozenset(late), _groups(statements, links, late, order))


class _Links:
    def __init__(self, size: int) -> None:
        self.after: list[set[int]] = [set() for _ in range(size)]  # i -> statements that must follow i
        self.together: list[set[int]] = [set() for _ in range(size)]

    def before(self, first: int, then: int) -> None:
        if first != then:
            self.after[first].add(then)

    def join(self, a: int, b: int) -> None:
        if a != b:
            self.together[a].add(b)
            self.together[b].add(a)


def _link_names(statements: Sequence[Statement], links: _Links) -> None:
    touching: dict[str, list[int]] = {}
    for i, s in enumerate(statements):
        for name in s.touches:
            touching.setdefault(name, []).append(i)
    dropped_identities = {s.identity: i for i, s in enumerate(statements) if s.drop and s.identity}
    for j, s in enumerate(statements):
        pair = dropped_identities.get(s.identity) if s.identity and not s.drop else None
        if pair is not None:
            links.join(pair, j)
            links.before(pair, j)
    for i, s in enumerate(statements):
        if s.action not in _DROPS:
            continue
        for j in touching.get(s.obj, ()):
            if j == i:
                continue
            links.join(i, j)
            # What works on the old object comes before its drop; what works on the new one after.
            if j < i:
                links.before(j, i)
            else:
                links.before(i, j)


def _link_types(statements: Sequence[Statement], links: _Links) -> None:
    """A type or domain is created before the statements that name it (columns, casts, other domains)."""
    for i, made in enumerate(statements):
        if made.action not in {"create-type", "create-domain"}:
            continue
        schema, name = made.obj.split(".", 1)
        named = re.compile(r'(?<![\w$])("?' + re.escape(schema) + r'"?\.)?"?' + re.escape(name) + r'"?(?![\w$])',
                           re.IGNORECASE)
        for j, s in enumerate(statements):
            if j != i and s.obj != made.obj and named.search(s.sql):
                links.before(i, j)


def _link_views(statements: Sequence[Statement], facts: SchemaFacts, links: _Links) -> None:
    views = [(i, s) for i, s in enumerate(statements) if s.action in _VIEW_CREATES | _VIEW_DROPS]
    if not views:
        return
    replaced = {s.obj for s in statements if s.action in _VIEW_DROPS} & {
        s.obj for s in statements if s.action in _VIEW_CREATES}
    for i, view in views:
        reads = facts.live_dependencies.get(view.obj, frozenset()) | facts.declared_dependencies.get(
            view.obj, frozenset())
        if not reads:
            continue
        if view.action in _VIEW_DROPS:
            for j, s in enumerate(statements):
                if s.action in _BLOCKED_BY_VIEWS and s.touches & reads:
                    links.before(i, j)
        else:
            # A view recreated around a change waits for it: the apps still read the old shape.
            wanted = _SHAPING | _BLOCKED_BY_VIEWS if view.obj in replaced else _SHAPING
            for j, s in enumerate(statements):
                if s.action in wanted and s.touches & reads:
                    links.before(j, i)


def _function_name(obj: str) -> str:
    return obj.split("(", 1)[0]


def _link_functions(statements: Sequence[Statement], facts: SchemaFacts, links: _Links) -> None:
    for i, fn in enumerate(statements):
        creates = fn.action in _FUNCTION_CREATES
        if not creates and fn.action not in _FUNCTION_DROPS:
            continue
        name = _function_name(fn.obj)
        users = facts.function_users.get(name, frozenset())
        call = re.compile(r'(?<![\w$])"?' + re.escape(name.rsplit(".", 1)[-1]) + r'"?\s*\(', re.IGNORECASE)
        for j, s in enumerate(statements):
            if j == i or (s.action in _FUNCTION_CREATES | _FUNCTION_DROPS and _function_name(s.obj) == name):
                continue
            if creates and (s.touches & users or call.search(s.sql)):
                links.before(i, j)
            elif not creates and s.touches & users:
                links.before(j, i)


def _link_inheritance(statements: Sequence[Statement], facts: SchemaFacts, links: _Links) -> None:
    if not facts.live_parents:
        return
    adds = {s.obj: j for j, s in enumerate(statements) if s.action == "add-column"}
    drops = {s.obj: j for j, s in enumerate(statements) if s.action == "drop-column"}
    for obj, i in drops.items():
        table, column = obj.rsplit(".", 1)
        parent = facts.live_parents.get(table)
        children = [c for c, p in facts.live_parents.items() if p == table]
        for relative in [parent, *children]:
            j = adds.get(f"{relative}.{column}") if relative else None
            if j is not None:
                links.before(i, j)
        for child in children:  # a child's own copy goes after the parent's (it is inherited before)
            j = drops.get(f"{child}.{column}")
            if j is not None:
                links.before(i, j)


def _topological(after: list[set[int]]) -> list[int]:
    """Engine order wherever the links allow it; a cycle is broken at its earliest statement."""
    pending = [0] * len(after)
    for followers in after:
        for j in followers:
            pending[j] += 1
    ready = [i for i, n in enumerate(pending) if n == 0]
    heapq.heapify(ready)
    done: list[int] = []
    placed = [False] * len(after)
    while len(done) < len(after):
        if not ready:
            # A cycle (the links over-approximate): take its first statement in engine order.
            heapq.heappush(ready, next(i for i in range(len(after)) if not placed[i]))
        i = heapq.heappop(ready)
        if placed[i]:
            continue
        placed[i] = True
        done.append(i)
        for j in after[i]:
            pending[j] -= 1
            if pending[j] == 0 and not placed[j]:
                heapq.heappush(ready, j)
    return done


def _late(statements: Sequence[Statement], links: _Links) -> set[int]:
    late = {i for i, s in enumerate(statements) if s.destructive}
    stack = list(late)
    while stack:
        i = stack.pop()
        for j in links.after[i] | links.together[i]:
            if j not in late:
                late.add(j)
                stack.append(j)
    return late


def _groups(statements: Sequence[Statement], links: _Links, late: set[int], order: list[int]) -> dict[int, int]:
    rank = {i: n for n, i in enumerate(order)}
    preceding: dict[int, set[int]] = {}
    for i in late:
        for j in links.after[i] & late:
            preceding.setdefault(j, set()).add(i)
    seen: set[int] = set()
    groups: dict[int, int] = {}
    for start in sorted(late, key=rank.__getitem__):
        if start in seen:
            continue
        component, stack = {start}, [start]
        while stack:
            i = stack.pop()
            for j in (links.after[i] | links.together[i] | preceding.get(i, set())) & late:
                if j not in component:
                    component.add(j)
                    stack.append(j)
        seen |= component
        if len(component) < 2:
            continue
        carrier = min((i for i in component if statements[i].destructive), key=rank.__getitem__,
                      default=min(component, key=rank.__getitem__))
        for i in component:
            groups[i] = carrier
    return groups
