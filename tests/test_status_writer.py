"""Only ``Store.record()`` writes an environment's status (issue 11; STYLE: "Status is written in one place").

An AST walk over the package: every INSERT/UPDATE/DELETE of the ``environment_status`` table is in
``Store._write_status`` (which only ``Store.record`` calls) or in ``Store.set_pin``, which writes the
pin column and nothing else (a pin is an operator's decision, not a status). No code outside
``reconciler/store`` touches the table, and ``update_status`` is gone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
STORE = PACKAGE / "store" / "store.py"
TABLE = "environment_status"
WRITES = {"insert", "update", "delete"}


@dataclass(frozen=True)
class Site:
    path: Path
    line: int
    function: str  # the enclosing function's qualified name, e.g. Store.record.write
    node: ast.Call

    def __str__(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.line} in {self.function}"


def _calls(path: Path) -> Iterator[tuple[str, ast.Call]]:
    """Every call in ``path`` with the qualified name of the function around it."""

    def walk(node: ast.AST, scope: str) -> Iterator[tuple[str, ast.Call]]:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{scope}.{child.name}" if scope else child.name
            if isinstance(child, ast.Call):
                yield scope, child
            yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text(), str(path)), "")


def _names_table(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == TABLE) or (isinstance(node, ast.Name) and node.id == TABLE)


def _status_writes() -> list[Site]:
    """``sa.insert(t.environment_status)``, ``update(...)``, ``delete(...)`` and ``t.environment_status.update()``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for scope, call in _calls(path):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name not in WRITES:
                continue
            if any(_names_table(arg) for arg in call.args) or (
                isinstance(func, ast.Attribute) and _names_table(func.value)
            ):
                found.append(Site(path, call.lineno, scope, call))
    return found


def _values_keywords(path: Path, function: str) -> set[str]:
    """The keyword names passed to ``.values(...)`` inside ``function`` of ``path``."""
    keys = set()
    for scope, call in _calls(path):
        if (scope == function or scope.startswith(f"{function}.")) and isinstance(call.func, ast.Attribute) \
                and call.func.attr == "values":
            keys |= {k.arg for k in call.keywords if k.arg is not None}
    return keys


def test_the_status_table_is_written_only_by_the_stores_status_writer_and_the_pin() -> None:
    sites = _status_writes()
    assert sites, "the walk must find the status writer itself"
    allowed = {"Store._write_status", "Store.set_pin"}
    stray = [str(s) for s in sites if s.path != STORE or not any(
        s.function == f or s.function.startswith(f"{f}.") for f in allowed)]
    assert stray == []


def test_only_record_calls_the_status_writer() -> None:
    callers = sorted({scope for path in PACKAGE.rglob("*.py") for scope, call in _calls(path)
                      if isinstance(call.func, ast.Attribute) and call.func.attr == "_write_status"})
    assert callers and all(c == "Store.record" or c.startswith("Store.record.") for c in callers), callers


def test_a_pin_writes_the_pin_column_and_nothing_else() -> None:
    # The row's key (workspace, environment) and the pin; no status column.
    assert _values_keywords(STORE, "Store.set_pin") <= {"workspace", "environment", "pinned_revision"}


def test_nothing_outside_the_store_touches_the_status_table_or_update_status() -> None:
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            named = (isinstance(node, ast.Attribute) and node.attr in (TABLE, "update_status")) or (
                isinstance(node, ast.Name) and node.id in (TABLE, "update_status")) or (
                isinstance(node, ast.FunctionDef) and node.name == "update_status")
            if named and (node.__class__ is ast.FunctionDef or path.parent.name != "store"):
                outside.append(f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}")
    assert outside == []


def test_only_record_decides_a_status_transition() -> None:
    callers = sorted({f"{path.relative_to(PACKAGE.parent)}:{scope}" for path in PACKAGE.rglob("*.py")
                      for scope, call in _calls(path)
                      if isinstance(call.func, ast.Name | ast.Attribute)
                      and (call.func.id if isinstance(call.func, ast.Name) else call.func.attr) == "transition"})
    assert callers and all(c.startswith("reconciler/store/store.py:Store.record") for c in callers), callers
