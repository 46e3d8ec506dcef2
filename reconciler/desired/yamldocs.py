"""Parse YAML text into plain values while remembering the line of every key.

The loader needs line numbers for its error messages, which ``yaml.safe_load`` throws away, so we
compose the node graph with libyaml (C) and convert it ourselves. The conversion also defends
against hostile input: alias expansion ("billion laughs") and nesting depth are bounded, and
duplicate keys are reported instead of silently overwriting each other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is part of the PyYAML wheels
    _Loader = yaml.SafeLoader

MAX_NODES = 200_000  # per file, counting every alias expansion
MAX_DEPTH = 64
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Tags a scalar may carry; the collection tags' constructors (!!map, !!set, !!pairs, ...) return
# generators when given a scalar.
_SCALAR_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "timestamp", "binary")}

Path = tuple[str | int, ...]

# What YAML counts as a line break (libyaml's marks count lines this way).
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class YamlProblem(Exception):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class ParsedDoc:
    line: int  # line where the document starts (1-based)
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of ``path``."""
        for cut in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:cut]))
            if found is not None:
                return found
        return self.line


class _Converter:
    def __init__(self) -> None:
        self.count = 0
        self.scalars = SafeConstructor()

    def convert(self, node: Node, path: Path, lines: dict[Path, int], depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblem(node.start_mark.line + 1, f"document is too large (over {MAX_NODES} nodes "
                              "after expanding aliases); YAML alias bombs are refused")
        if depth > MAX_DEPTH:
            raise YamlProblem(node.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in (_MAP, _SEQ):
            # Explicit tags on collections (!!set, !!omap, !!python/object, !custom) would otherwise be
            # dropped silently and the collection read as a plain one.
            raise YamlProblem(node.start_mark.line + 1, f"unsupported YAML tag {node.tag}")
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise YamlProblem(key_node.start_mark.line + 1, "merge keys ('<<') are not supported")
                if not isinstance(key_node, ScalarNode):
                    raise YamlProblem(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
                key = self._scalar(key_node)
                if not isinstance(key, str | int | bool | float) or key is None:
                    raise YamlProblem(key_node.start_mark.line + 1, f"unsupported mapping key {key!r}")
                # Keys are names: 'no', 'on' and '0x1F' stay as written, not 'False', 'True' and '31'.
                key = key if isinstance(key, str) else key_node.value
                if key in out:
                    raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key {key!r}")
                child = (*path, key)
                lines[child] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, child, lines, depth + 1)
            return out
        if isinstance(node, SequenceNode):
            return [
                self.convert(item, (*path, index), lines, depth + 1) for index, item in enumerate(node.value)
            ]
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        raise YamlProblem(node.start_mark.line + 1, f"unsupported YAML node {node.tag}")

    def _scalar(self, node: ScalarNode) -> Any:
        constructor = SafeConstructor.yaml_constructors.get(node.tag) if node.tag in _SCALAR_TAGS else None
        if constructor is None:
            raise YamlProblem(node.start_mark.line + 1, f"unsupported YAML tag {node.tag}")
        if node.tag == _TIMESTAMP:
            return node.value  # keep dates as the text the user wrote (even 2001-13-45)
        try:
            value = constructor(self.scalars, node)
        except (ValueError, LookupError, AttributeError, TypeError, yaml.YAMLError):
            # An explicit tag on text it cannot read ("!!int abc", "!!bool maybe", an empty "!!float"), or an
            # integer too long for Python to convert (over 4300 digits).
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise YamlProblem(node.start_mark.line + 1,
                              f"{shown!r} is not a valid {node.tag.rsplit(':', 1)[-1]}") from None
        if isinstance(value, bytes):
            raise YamlProblem(node.start_mark.line + 1, "binary values are not supported")
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or infinity: PostgreSQL refuses them, and NaN never equals itself, so
            # a stored one would drift for ever.
            raise YamlProblem(node.start_mark.line + 1, f"{node.value!r} is not a finite number; quote it "
                              "if you mean text")
        if isinstance(value, str) and "\x00" in value:
            # Only reachable through an escape ("\0", "\x00"); PostgreSQL cannot store it, so a
            # value holding one would fail half-way through an apply.
            raise YamlProblem(node.start_mark.line + 1, "NUL characters ('\\0') are not allowed in values")
        return value


def _last_line(text: str) -> int:
    return len(LINE_BREAK.findall(text)) + 1


def parse_documents(text: str) -> list[ParsedDoc]:
    """Every document of a YAML stream, with line maps. Raises ``YamlProblem`` on bad YAML."""
    converter = _Converter()
    docs: list[ParsedDoc] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            lines: dict[Path, int] = {}
            data = converter.convert(node, (), lines, 0)
            docs.append(ParsedDoc(node.start_mark.line + 1, data, lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # libyaml marks the end of the stream one line past a last line with no line break.
        last = _last_line(text)
        line = min(mark.line + 1, last) if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        context = min(exc.context_mark.line + 1, last) if exc.context_mark is not None else None
        if exc.context and context is not None and line is not None and context != line:
            problem += f" ({exc.context.removeprefix('while ')} started on line {context})"
        raise YamlProblem(line, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses anywhere (NUL and other control characters); libyaml gives the
        # byte offset of the first one, and its own message spans two lines.
        before = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "ignore")
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlProblem(_last_line(before), f"invalid YAML: character U+{character:04X} is not allowed "
                          f"({exc.reason}); remove it") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise YamlProblem(None, f"invalid YAML: {first}") from None
    except RecursionError:
        raise YamlProblem(None, f"nesting deeper than {MAX_DEPTH} levels") from None
    return docs
