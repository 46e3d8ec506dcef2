"""Hostile YAML and SQL files: each is refused with one plain problem naming the file (and line).

Alias bombs, oversized files, deep nesting, encodings, control characters, duplicate and merge
keys, tags that PyYAML would act on or cannot read, and special files that would block a reader.
Each case starts from a valid copy of the example, so the problem listed is the only one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from reconciler.desired.loader import MAX_YAML_BYTES, load
from reconciler.desired.state import DesiredState
from reconciler.desired.yamldocs import MAX_NODES
from reconciler.errors import ValidationError
from reconciler.source.trees import DirectoryTree
from tests.conftest import cli_process


def problems(folder: Path) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load(DirectoryTree(folder))
    return [str(p) for p in caught.value.problems]


def add(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


BILLION_LAUGHS = "lol0: &l0 [lol]\n" + "".join(
    f"lol{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, "
    f"*l{i - 1}, *l{i - 1}]\n"
    for i in range(1, 10)
)


def test_an_alias_bomb_is_refused_before_it_expands(example_copy: Path) -> None:
    add(example_copy, "bomb.yaml", BILLION_LAUGHS)  # 10^9 nodes once expanded
    assert problems(example_copy) == [
        f"bomb.yaml:1: document is too large (over {MAX_NODES} nodes after expanding aliases); "
        "YAML alias bombs are refused"]


def test_a_file_over_one_mebibyte_is_refused_unread(example_copy: Path) -> None:
    text = "kind: Group\nname: big\ndescription: " + "a" * MAX_YAML_BYTES + "\n"
    add(example_copy, "big.yaml", text)
    assert problems(example_copy) == [
        f"big.yaml: file is {len(text)} bytes; YAML files are limited to {MAX_YAML_BYTES}"]


def test_a_thousand_nested_flow_sequences_are_refused(example_copy: Path) -> None:
    add(example_copy, "deep.yaml", "[" * 1000 + "]" * 1000)
    assert problems(example_copy) == ["deep.yaml:1: nesting deeper than 64 levels"]


def test_a_thousand_nested_block_mappings_are_refused(example_copy: Path) -> None:
    add(example_copy, "deep.yaml", "".join("  " * i + f"k{i}:\n" for i in range(1000)) + "  " * 1000 + "v\n")
    assert problems(example_copy) == ["deep.yaml:1000: invalid YAML: exceeded maximum nesting depth"]


def test_nesting_just_past_the_limit_names_the_line_where_it_goes_too_deep(example_copy: Path) -> None:
    add(example_copy, "deep.yaml", "".join("  " * i + f"k{i}:\n" for i in range(70)) + "  " * 70 + "v\n")
    assert problems(example_copy) == ["deep.yaml:66: nesting deeper than 64 levels"]


def test_a_file_that_is_not_utf8_is_refused(example_copy: Path) -> None:
    (example_copy / "groups.yaml").write_bytes(b"kind: Group\nname: \xff\xfe\n")
    assert problems(example_copy) == ["groups.yaml: not UTF-8 text (byte 18); save the file as UTF-8"]


def test_utf16_is_refused_as_not_utf8(example_copy: Path) -> None:
    (example_copy / "groups.yaml").write_bytes("kind: Group\nname: a\n".encode("utf-16"))
    assert problems(example_copy) == ["groups.yaml: not UTF-8 text (byte 0); save the file as UTF-8"]


def test_a_raw_nul_byte_is_one_line_problem_at_its_line(example_copy: Path) -> None:
    (example_copy / "groups.yaml").write_bytes(b"kind: Group\nname: a\x00b\n")
    assert problems(example_copy) == [
        "groups.yaml:2: invalid YAML: character U+0000 is not allowed (control characters are not allowed); "
        "remove it"]


def test_a_nul_escape_in_a_value_is_refused_before_it_reaches_a_database(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", 'kind: Group\nname: extra\ndescription: "before\\0after"\n')
    assert problems(example_copy) == ["extra.yaml:3: NUL characters ('\\0') are not allowed in values"]


def test_other_control_characters_are_refused_at_their_line(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: Group\nname: extra\ndescription: bell\x07\n")
    assert problems(example_copy) == [
        "extra.yaml:3: invalid YAML: character U+0007 is not allowed (control characters are not allowed); "
        "remove it"]


def test_duplicate_keys_are_refused_not_overwritten(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: Group\nname: extra\nname: other\n")
    assert problems(example_copy) == ["extra.yaml:3: duplicate key 'name'"]


def test_merge_keys_are_refused(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: Group\nbase: &b {description: x}\n<<: *b\nname: extra\n")
    assert problems(example_copy) == ["extra.yaml:3: merge keys ('<<') are not supported"]


def test_binary_values_are_refused(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: Group\nname: extra\ndescription: !!binary aGVsbG8=\n")
    assert problems(example_copy) == ["extra.yaml:3: binary values are not supported"]


def test_timestamps_are_kept_as_the_text_written(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: Group\nname: extra\ndescription: 2001-12-14t21:59:43.10-05:00\n"
        "---\nkind: Group\nname: 2001-13-45\n")
    state: DesiredState = load(DirectoryTree(example_copy))
    assert state.groups["extra"].description == "2001-12-14t21:59:43.10-05:00"
    assert "2001-13-45" in state.groups  # not a valid date, and no crash: a name like any other


def test_keys_keep_the_text_written_even_when_yaml_would_read_a_boolean(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", "kind: ConfigVariable\nname: A\nvalues: {default: x, no: y, on: z}\n")
    assert problems(example_copy) == [
        "extra.yaml:3: ConfigVariable 'A': unknown environment 'no' (declared in reconciler.yaml: staging, production)",
        "extra.yaml:3: ConfigVariable 'A': unknown environment 'on' (declared in reconciler.yaml: staging, production)"]


def test_python_object_tags_are_refused_and_never_run(example_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    add(example_copy, "extra.yaml", "kind: Group\nname: extra\n"
        f"description: !!python/object/apply:os.system [\"touch {marker}\"]\n")
    assert problems(example_copy) == [
        "extra.yaml:3: unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system"]
    assert not marker.exists()


@pytest.mark.parametrize(("value", "problem"), [
    ("!!set {a, b}", "unsupported YAML tag tag:yaml.org,2002:set"),
    ("!!omap [a: 1]", "unsupported YAML tag tag:yaml.org,2002:omap"),
    ("!custom [1]", "unsupported YAML tag !custom"),
    ("!!pairs x", "unsupported YAML tag tag:yaml.org,2002:pairs"),
    ("!!int abc", "'abc' is not a valid int"),
    ("!!bool maybe", "'maybe' is not a valid bool"),
    ("!!float", "'' is not a valid float"),
    ("9" * 5000, "'" + "9" * 40 + "...' is not a valid int"),
])
def test_tags_the_loader_cannot_honour_are_problems_at_their_line(example_copy: Path, value: str, problem: str) -> None:
    add(example_copy, "extra.yaml", f"kind: Group\nname: extra\ndescription: {value}\n")
    assert problems(example_copy) == [f"extra.yaml:3: {problem}"]


def test_control_characters_in_echoed_values_are_escaped(example_copy: Path) -> None:
    add(example_copy, "extra.yaml", 'kind: ConfigVariable\nname: A\nvalues: {default: "${secret:a\\nb}"}\n---\n'
        'kind: Database\nname: d\nschema: "../x\\x1b[31m"\nenvironments: {}\n')
    assert problems(example_copy) == [
        "extra.yaml:3: ConfigVariable 'A': malformed secret reference '${secret:a\\nb}'; write ${secret:NAME}",
        "extra.yaml:7: Database 'd': schema '../x\\x1b[31m' is outside the desired-state folder; use a path "
        "relative to it"]


def test_sql_after_a_nul_character_is_not_silently_dropped(example_copy: Path) -> None:
    (example_copy / "databases/crm/004_more.sql").write_text("create table a (x int);\n\x00create table b (y int);\n")
    assert problems(example_copy) == ["databases/crm/004_more.sql:2: SQL contains a NUL character; remove it"]


def test_a_sql_error_after_multibyte_text_names_its_own_line(example_copy: Path) -> None:
    (example_copy / "databases/crm/004_more.sql").write_text(
        "select 'ééééééééééééééééééééééééééééééééééééééééééééé';\nselect 1;\nselect from from;\n")
    assert problems(example_copy) == [
        'databases/crm/004_more.sql:3: SQL does not parse: syntax error at or near "from"']


def test_sql_ending_mid_statement_names_the_last_line(example_copy: Path) -> None:
    (example_copy / "databases/crm/004_more.sql").write_text("select 1;\n\nselect (((\n\n\n")
    assert problems(example_copy) == ["databases/crm/004_more.sql:3: SQL does not parse: syntax error at end of input"]


def test_an_unclosed_quote_in_sql_is_a_short_one_line_problem(example_copy: Path) -> None:
    (example_copy / "databases/crm/004_more.sql").write_text("select 1;\nselect 'abc\n" + "x\n" * 1000)
    [problem] = problems(example_copy)
    assert problem.startswith("databases/crm/004_more.sql:2: SQL does not parse: unterminated quoted string at or "
                              "near \"'abc x x x")
    assert problem.endswith("...")
    assert "\n" not in problem and len(problem) < 300


def load_within(folder: Path, seconds: float) -> list[str]:
    """``problems(folder)``, failing (instead of hanging the suite) when it takes over ``seconds``."""
    found: list[list[str]] = []
    worker = threading.Thread(target=lambda: found.append(problems(folder)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"loading {folder} blocked for over {seconds}s"
    return found[0]


@pytest.mark.parametrize("name", ["pipe.yaml", "databases/crm/004_pipe.sql", "apps/customer-support-dashboard/pipe"])
def test_a_fifo_is_reported_never_read(example_copy: Path, name: str) -> None:
    os.mkfifo(example_copy / name)  # reading it would block until a writer came
    assert load_within(example_copy, 30) == [
        f"{name}: is not a regular file (a FIFO, socket or device); the desired state holds only files and folders"]


def test_validate_of_an_alias_bomb_is_a_short_report_and_exit_1(example_copy: Path) -> None:
    add(example_copy, "bomb.yaml", BILLION_LAUGHS)
    result = cli_process("validate", str(example_copy))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"invalid: {example_copy} has 1 problem",
        f"  bomb.yaml:1: document is too large (over {MAX_NODES} nodes after expanding aliases); YAML alias bombs "
        "are refused"]
