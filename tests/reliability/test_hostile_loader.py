"""Fuzzing the loader: whatever lands in a desired-state folder, ``load`` returns or raises
``ValidationError`` whose problems each name a file (and a line where there is one) in one plain
sentence. No other exception ever escapes, whatever the YAML or SQL text.

Each property starts from a copy of the valid example folder and overwrites one file per example,
so every failure is the fuzzed file's doing (or its interaction with valid neighbours).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reconciler.desired.loader import ODD_FILE_NAME, load
from reconciler.desired.models import KIND_MODELS
from reconciler.errors import Problem, ValidationError
from reconciler.source.trees import DirectoryTree
from tests.conftest import EXAMPLE

# 150 examples per property in the suite; HOSTILE_EXAMPLES=2000 (or more) for a deeper hunt.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Fragments that steer random text towards the corners of the YAML grammar.
YAML_TOKENS = [
    ":", ": ", "- ", "&a ", "*a", "&b [*a, *a]", "[", "]", "{", "}", ", ", "!!binary ", "!!timestamp ", "!!int ",
    "!!float ", "!!bool ", "!!null ", "!!str ", "!!pairs ", "!!map ", "!!seq ", "9" * 5000, "2001-13-45",
    "!!python/object:os.system ", "!custom ", "!!set ", "!!omap ", "<<: ", "? ", "---\n", "...\n", "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n", "|\n", ">-\n", "'", '"', "\\0", "\\x07", "\\ud800", "#", "\n", "  ", "\t", "~", "null",
    "yes", "0x1F", ".inf", "2001-12-14", "kind: ", "name: ", "Group", "Resource", "Environment", "App",
    "Database", "ConfigVariable", "version: 1\n", "${secret:", "${config:X}", "}", "\u202e", "\U0001f600",
    "\ufeff", "\x85", "\u2028",
]
yaml_ish = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=12), max_size=40).map("".join)

SQL_TOKENS = [
    "create table ", "t (", "id int", ")", ";", "\n", "'", '"', "$$", "$tag$", "--", "/*", "*/", "select ",
    "drop schema public cascade", "é", "\U0001f600", "\x00", "\\", "E'\\x00'", "create index concurrently ",
    "do $$ begin end $$", "copy t from stdin;\n1\n\\.\n", "begin", "commit", "(((", "\t", " ",
]
sql_ish = st.lists(st.sampled_from(SQL_TOKENS) | st.text(max_size=12), max_size=40).map("".join)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = sorted({f for model in KIND_MODELS.values() for f in model.model_fields} | {
    "schema", "track", "sync", "options", "values", "environments", "access", "branch", "tag", "url"})


def load_outcome(folder: Path) -> list[Problem]:
    """Load ``folder``; return its problems (empty when valid). Any other exception fails the test."""
    try:
        load(DirectoryTree(folder))
    except ValidationError as exc:
        return exc.problems
    return []


def assert_well_formed(problems: list[Problem], folder: Path) -> None:
    """Every problem names a real file of the folder, a sane line, and says what is wrong in one line."""
    for problem in problems:
        assert problem.file, problem
        assert problem.file.isprintable(), problem
        if problem.message == ODD_FILE_NAME:
            continue  # the name is shown escaped, so it is not the name on disk
        assert (folder / problem.file).exists() or problem.file == "reconciler.yaml", problem
        assert problem.message.strip(), problem
        assert "\n" not in problem.message, problem
        if problem.line is not None:
            assert 1 <= problem.line <= last_line(folder / problem.file), problem


def last_line(path: Path) -> int:
    """The number of the last line of ``path`` as YAML counts lines (SQL files: newlines only)."""
    text = path.read_bytes().decode("utf-8", "replace") if path.is_file() else ""
    if path.suffix == ".sql":
        return text.count("\n") + 1
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def example_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        if "apps/customer-support-dashboard/" in path.as_posix() or path.name == "reconciler.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    return docs


EXAMPLE_DOCS = example_documents()


@st.composite
def near_valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document of the example with a few fields deleted, replaced or added at random depths."""
    doc: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCS)))
    for _ in range(draw(st.integers(1, 4))):
        target: Any = doc
        while isinstance(target, dict) and target and draw(st.booleans()):
            child = target[draw(st.sampled_from(sorted(target, key=str)))]
            if not isinstance(child, dict) or not child:
                break
            target = child
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete" and target:
            del target[draw(st.sampled_from(sorted(target, key=str)))]
        elif action == "replace" and target:
            target[draw(st.sampled_from(sorted(target, key=str)))] = draw(json_values)
        else:
            key = draw(st.sampled_from(FIELD_NAMES) | st.text(min_size=1, max_size=12))
            target[key] = draw(json_values)
    return doc


@given(text=yaml_ish)
@FUZZ
def test_arbitrary_yaml_text_is_loaded_or_refused_with_located_problems(example_copy: Path, text: str) -> None:
    (example_copy / "fuzz.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_well_formed(load_outcome(example_copy), example_copy)


@given(data=st.binary(max_size=300))
@FUZZ
def test_arbitrary_bytes_in_a_yaml_file_are_refused_with_located_problems(example_copy: Path, data: bytes) -> None:
    (example_copy / "fuzz.yaml").write_bytes(data)
    assert_well_formed(load_outcome(example_copy), example_copy)


@given(doc=near_valid_documents())
@FUZZ
def test_near_valid_documents_are_loaded_or_refused_with_located_problems(
    example_copy: Path, doc: dict[str, Any]
) -> None:
    # The mutated copy sits next to its original: a duplicate name is an expected problem, a crash is not.
    (example_copy / "fuzz.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert_well_formed(load_outcome(example_copy), example_copy)


@given(
    kind=st.sampled_from(sorted(KIND_MODELS)) | st.text(max_size=12),
    fields=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(min_size=1, max_size=12), json_values, max_size=6),
)
@FUZZ
def test_documents_with_random_fields_and_types_are_loaded_or_refused_with_located_problems(
    example_copy: Path, kind: str, fields: dict[str, Any]
) -> None:
    (example_copy / "fuzz.yaml").write_text(yaml.safe_dump({"kind": kind, **fields}, allow_unicode=True))
    assert_well_formed(load_outcome(example_copy), example_copy)


file_names = st.text(st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1, max_size=40)


@given(name=file_names.filter(lambda n: len(n.encode()) < 200 and n not in (".", "..")))
@FUZZ
def test_any_file_name_is_loaded_or_refused_with_a_printable_problem(example_copy: Path, name: str) -> None:
    path = example_copy / f"{name}.yaml"
    assume(not path.exists())  # not one of the example's own files
    path.write_text("kind: Group\nname: [\n")  # never valid: every name must come back as a problem
    try:
        problems = load_outcome(example_copy)
        assert_well_formed(problems, example_copy)
        assert len(problems) == 1, problems
    finally:
        path.unlink()


@given(text=sql_ish)
@FUZZ
def test_arbitrary_sql_text_parses_or_is_a_problem_at_a_line_of_that_file(example_copy: Path, text: str) -> None:
    sql = example_copy / "databases" / "crm" / "004_fuzz.sql"
    sql.write_text(text, encoding="utf-8", errors="surrogatepass")
    problems = load_outcome(example_copy)
    assert_well_formed(problems, example_copy)
    for problem in problems:
        assert problem.file == "databases/crm/004_fuzz.sql", problem
        assert problem.line is not None, problem
