"""Read a desired-state folder from a file tree into a validated ``DesiredState``.

Called by ``app/reconcile.py`` (Git trees at a revision) and by ``reconciler validate`` (a working
directory). Every problem is collected — bad YAML, unknown kinds and fields, missing fields,
duplicates, broken references, literal secrets, SQL that does not parse — and raised together as
one ``ValidationError`` whose problems each carry file and line.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import re
from typing import Any

import pydantic

from reconciler.desired import validation
from reconciler.desired.files import Entry, FileTree
from reconciler.desired.models import (
    BRANCH_PATTERN,
    DOMAIN_PATTERN,
    EMAIL_PATTERN,
    HEADER_NAME_PATTERN,
    KIND_MODELS,
    App,
    Database,
    RootConfig,
    Strict,
)
from reconciler.desired.state import AppSource, DesiredState, SqlFile
from reconciler.desired.validation import LoadedDoc
from reconciler.desired.yamldocs import LINE_BREAK, ParsedDoc, YamlProblem, parse_documents
from reconciler.errors import Problem, ValidationError

ROOT_FILE = "reconciler.yaml"
MAX_YAML_BYTES = 1 << 20
MAX_SQL_BYTES = 8 << 20
MAX_APP_BYTES = 32 << 20
MAX_DOCUMENTS = 20_000

_YAML = re.compile(r"\.ya?ml$")
# Plain sentences for the patterns of models.py: pydantic's own message quotes the regular expression.
PATTERN_RULES = {
    BRANCH_PATTERN: "a branch name has letters, digits, '.', '_', '-' and '/' (like release/1.x), starts and "
    "ends with a letter or digit, and has no '..' or '//'",
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$":
        "a name has 1 to 100 letters, digits, '.', '_' or '-', and starts with a letter or digit",
    r"^[A-Za-z_][A-Za-z0-9_]{0,99}$":
        "a variable name has 1 to 100 letters, digits or '_', and does not start with a digit",
    r"^#[0-9A-Fa-f]{6}$": "a colour is '#' and six hex digits, such as '#D4351C'",
    r"^[A-Za-z0-9_.-]{1,100}$": "an option key has 1 to 100 letters, digits, '.', '_' or '-'",
    r"^[A-Za-z0-9_-]{1,50}$": "a resource type has 1 to 50 letters, digits, '_' or '-'",
    HEADER_NAME_PATTERN: "a header name has 1 to 100 letters, digits or !#$%&'*+.^_`|~- (no spaces or colons)",
    r"^[a-z_][a-z0-9_]{0,62}$":
        "a schema name has 1 to 63 lower-case letters, digits or '_', and does not start with a digit",
    EMAIL_PATTERN: "an email address looks like name@example.com (no display name, no spaces)",
    DOMAIN_PATTERN: "a domain has letters, digits, '.' and '-', such as team-a.retool.example.com",
}
ODD_FILE_NAME = "the file name holds control or invisible characters; rename the file"
SPECIAL_FILE = "is not a regular file (a FIFO, socket or device); the desired state holds only files and folders"


def _pydantic_problems(file: str, doc: ParsedDoc, exc: pydantic.ValidationError, what: str) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        where = ".".join(validation.printable(str(p)) for p in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            message = f"{what}: unknown field '{where}' (check the spelling; unknown fields are not allowed)"
        elif kind == "missing":
            message = f"{what}: missing required field '{where}'"
        elif kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") in PATTERN_RULES:
            rule = PATTERN_RULES[err["ctx"]["pattern"]]
            shown = repr(err["input"]) if len(str(err["input"])) <= 60 else repr(str(err["input"])[:60]) + "..."
            if loc and loc[-1] == "[key]":
                where = ".".join(validation.printable(str(p)) for p in loc[:-2])
                message = f"{what}: {where}: key {shown} is not allowed; {rule}"
            else:
                message = f"{what}: {where}: {shown} is not allowed; {rule}"
        else:
            text = err["msg"].removeprefix("Value error, ")
            message = f"{what}: {where}: {text}" if where else f"{what}: {text}"
        out.append(Problem(file, doc.line_of(loc), message))
    return out


def _decode(file: str, raw: bytes, problems: list[Problem]) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(file, None, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"))
        return None


def _parse_yaml_files(
    tree: FileTree, entries: list[Entry], problems: list[Problem], unknown: dict[str, set[tuple[str, str]]]
) -> dict[str, list[ParsedDoc]]:
    """Every YAML file's documents; what the documents that cannot be read seem to declare goes in ``unknown``
    (by file)."""
    parsed: dict[str, list[ParsedDoc]] = {}
    for entry in entries:
        if not entry.path.isprintable():
            # A newline would split every message naming the file; an escape sequence would reach the
            # terminal of whoever runs 'reconciler validate'; U+202E would show the name reversed.
            problems.append(Problem(validation.printable(entry.path), None, ODD_FILE_NAME))
            if _YAML.search(entry.path):
                unknown[entry.path] = {validation.ANYTHING}  # not read: it may declare anything
            continue
        if entry.is_symlink:
            # Every link, not only *.yaml ones: a linked folder would hide the YAML below it. Links in
            # an App's or Database's folder are dropped here and reported against that document.
            problems.append(Problem(entry.path, None, "is a symbolic link; the desired state must not use links"))
            unknown[entry.path] = {validation.ANYTHING}  # what it points at is not read, but was meant to count
            continue
        if not _YAML.search(entry.path):
            continue
        if entry.special:
            problems.append(Problem(entry.path, None, SPECIAL_FILE))
            unknown[entry.path] = {validation.ANYTHING}
            continue
        if entry.size > MAX_YAML_BYTES:
            problems.append(
                Problem(entry.path, None, f"file is {entry.size} bytes; YAML files are limited to {MAX_YAML_BYTES}")
            )
            unknown[entry.path] = {validation.ANYTHING}  # not read at all: it may declare anything
            continue
        raw = tree.read(entry.path)
        text = _decode(entry.path, raw, problems)
        if text is None:
            unknown[entry.path] = _declared_names(raw.decode("utf-8", "replace"))
            continue
        try:
            parsed[entry.path] = parse_documents(text)
        except YamlProblem as exc:
            if entry.path == ROOT_FILE:
                problems.append(Problem(entry.path, exc.line, exc.message))
                continue
            unknown[entry.path] = set()
            parsed[entry.path] = _parse_each_document(entry.path, text, exc, problems, unknown[entry.path])
    return parsed


# A line that starts a YAML document. Inside a block scalar such a line would be indented, so splitting
# here only goes wrong in rare plain multi-line scalars; _parse_each_document guards against that.
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)
_TOP_KEY = r"^{key}:[ \t]*[\"']?([^\"'#\s]*)"
_KIND = re.compile(_TOP_KEY.format(key="kind"), re.MULTILINE)
_NAME = re.compile(_TOP_KEY.format(key="name"), re.MULTILINE)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


def _declared_names(text: str) -> set[tuple[str, str]]:
    """(kind, name) of each document in YAML text that does not parse, read from its top-level lines.

    What a broken document declares is unknown to the checks; without these names, every reference to
    it elsewhere would be reported as undeclared — an echo of the one real error. A kind or name that
    cannot be read is "*": a broken Group whose name is unreadable may be any group."""
    found = set()
    for chunk in _DOCUMENT_START.split(text):
        if not chunk.strip():
            continue
        kind, name = _KIND.search(chunk), _NAME.search(chunk)
        found.add((kind.group(1) if kind and kind.group(1) in KIND_MODELS else "*",
                   name.group(1) if name and _PLAIN_NAME.fullmatch(name.group(1)) else "*"))
    return found


def _parse_each_document(
    file: str, text: str, error: YamlProblem, problems: list[Problem], unknown: set[tuple[str, str]]
) -> list[ParsedDoc]:
    """The documents of a file that does not parse as a whole, one by one: those that parse are checked like
    any other, each one that does not is reported, and the names it seems to declare go in ``unknown``."""
    starts = [m.start() for m in _DOCUMENT_START.finditer(text) if m.start() > 0]
    docs: list[ParsedDoc] = []
    errors: list[YamlProblem] = []
    for begin, end in zip([0, *starts], [*starts, len(text)], strict=True):
        # Blank lines in front keep every line number what it is in the file.
        chunk = "\n" * len(LINE_BREAK.findall(text, 0, begin)) + text[begin:end]
        try:
            docs += parse_documents(chunk)
        except YamlProblem as exc:
            errors.append(exc)
            unknown.update(_declared_names(text[begin:end]))
    if not errors:
        # Split apart, every piece parses: the split was wrong (a '---' inside a value); trust nothing.
        problems.append(Problem(file, error.line, error.message))
        unknown.update(_declared_names(text))
        return []
    problems.extend(Problem(file, exc.line, exc.message) for exc in errors)
    return docs


class _Folders:
    """A set of folders, asked whether a path lies in one: each of the path's few ancestors is
    looked up once, instead of the path being compared with every folder (apps x files)."""

    def __init__(self, folders: list[str]) -> None:
        self._folders = {f.strip("/") for f in folders}

    def hold(self, path: str) -> bool:
        if not self._folders:
            return False
        cut = len(path)
        while cut > 0:
            if path[:cut] in self._folders:
                return True
            cut = path.rfind("/", 0, cut)
        return False


class _Listing:
    """The tree's entries sorted by path, so the entries below a folder are one slice (bisect)
    rather than a scan of every entry for each App and Database."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = sorted(entries, key=lambda e: e.path)
        self._paths = [e.path for e in self.entries]

    def below(self, folder: str) -> list[Entry]:
        start = folder + "/"
        # Every path that starts with "folder/" sorts between "folder/" and "folder0" ('0' follows '/').
        low = bisect.bisect_left(self._paths, start)
        high = bisect.bisect_left(self._paths, folder + "0", lo=low)
        return self.entries[low:high]


def _owned_folders(parsed: dict[str, list[ParsedDoc]]) -> list[str]:
    """App ``source`` and Database ``schema`` folders: YAML inside them is not desired state."""
    folders = []
    for docs in parsed.values():
        for doc in docs:
            data = doc.data
            if not isinstance(data, dict):
                continue
            if data.get("kind") == "App" and isinstance(data.get("source"), str):
                folders.append(data["source"])
            if data.get("kind") == "Database" and isinstance(data.get("schema"), str):
                folders.append(data["schema"])
    return [validation.normalise(f) for f in folders if validation.normalise(f) is not None]  # type: ignore[misc]


def _without_unknown_fields(model_cls: type[Strict], data: Any, exc: pydantic.ValidationError) -> Strict | None:
    """The document without its unknown fields, when they are its only problem (else None).

    A misspelt field is the most common mistake; it must not hide the rest of the document (its
    undeclared references, its literal secrets) until it is fixed."""
    errors = exc.errors(include_url=False)
    if not all(err["type"] == "extra_forbidden" for err in errors):
        return None
    cleaned = copy.deepcopy(data)
    try:
        for err in errors:
            *parents, last = err["loc"]
            target = cleaned
            for key in parents:
                target = target[key]
            del target[last]
        return model_cls.model_validate(cleaned)
    except (KeyError, IndexError, TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def _model_documents(
    parsed: dict[str, list[ParsedDoc]], problems: list[Problem], failed: set[tuple[str, str]]
) -> tuple[RootConfig | None, list[LoadedDoc]]:
    """Validate each document against its kind's model; names of documents that fail go in ``failed``
    so cross-reference checks do not repeat their error as "undeclared"."""
    root: RootConfig | None = None
    loaded: list[LoadedDoc] = []
    for file, docs in sorted(parsed.items()):
        if file == ROOT_FILE:
            if len(docs) != 1 or not isinstance(docs[0].data, dict):
                problems.append(Problem(file, 1, "must hold exactly one mapping: version and environments"))
                continue
            try:
                root = RootConfig.model_validate(docs[0].data)
            except pydantic.ValidationError as exc:
                problems.extend(_pydantic_problems(file, docs[0], exc, ROOT_FILE))
                stripped = _without_unknown_fields(RootConfig, docs[0].data, exc)
                root = stripped if isinstance(stripped, RootConfig) else None
            continue
        for doc in docs:
            data = doc.data
            if not isinstance(data, dict):
                problems.append(Problem(file, doc.line, "a document must be a mapping with 'kind' and 'name'"))
                continue
            kind = data.get("kind")
            name = data.get("name")
            if kind is None:
                problems.append(Problem(file, doc.line, "document has no 'kind'"))
                if isinstance(name, str):
                    failed.add(("*", name))  # meant to declare something by that name
                continue
            model_cls = KIND_MODELS.get(kind) if isinstance(kind, str) else None
            if model_cls is None:
                known = ", ".join(sorted(KIND_MODELS))
                problems.append(Problem(file, doc.line_of(("kind",)), f"unknown kind {kind!r} (known kinds: {known})"))
                if isinstance(name, str):
                    failed.add(("*", name))  # a misspelt kind ('Grup') still means the name exists
                continue
            what = f"{kind} {name!r}" if isinstance(name, str) else kind
            try:
                model = model_cls.model_validate(data)
            except pydantic.ValidationError as exc:
                if any(tuple(err["loc"]) == ("name",) for err in exc.errors()):
                    what = kind  # the refused name is quoted once, in its own problem
                problems.extend(_pydantic_problems(file, doc, exc, what))
                stripped = _without_unknown_fields(model_cls, data, exc)
                if stripped is not None:
                    loaded.append(LoadedDoc(file, doc, kind, data["name"], stripped, partial=True))
                elif isinstance(name, str):
                    failed.add((kind, name))
                continue
            loaded.append(LoadedDoc(file, doc, kind, data["name"], model))
            if len(loaded) > MAX_DOCUMENTS:
                problems.append(Problem(file, doc.line, f"more than {MAX_DOCUMENTS} documents"))
                return root, loaded
    return root, loaded


def _hash_files(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return "sha256:" + digest.hexdigest()


def load(tree: FileTree) -> DesiredState:
    """Load and validate the desired state in ``tree``; raise ``ValidationError`` with every problem."""
    problems: list[Problem] = []
    if not tree.exists():
        raise ValidationError([Problem(tree.label, None, "desired-state folder not found; check source.path")])
    entries = tree.entries()
    # Documents that could not be read (bad YAML, not UTF-8) are unknown: references to the names they
    # seem to declare are not reported as undeclared, which would bury the one real error under its echoes.
    # Every other reference is still checked, so one broken file hides no other problem.
    unknown: dict[str, set[tuple[str, str]]] = {}
    parsed = _parse_yaml_files(tree, entries, problems, unknown)
    owned = _Folders(_owned_folders(parsed))
    parsed = {f: d for f, d in parsed.items() if not owned.hold(f)}
    problems = [p for p in problems if not owned.hold(p.file)]
    failed = {key for file, keys in unknown.items() if not owned.hold(file) for key in keys}
    if ROOT_FILE not in parsed and not any(p.file == ROOT_FILE for p in problems):
        problems.append(
            Problem(ROOT_FILE, None, "missing: the desired-state folder needs a reconciler.yaml with "
                    "'version: 1' and 'environments: [...]'")
        )
    root, docs = _model_documents(parsed, problems, failed)
    by_path = {e.path: e for e in entries}
    listing = _Listing(entries)

    sql: dict[str, list[SqlFile]] = {}
    app_sources: dict[str, AppSource] = {}
    for doc in docs:
        if doc.kind == "Database":
            sql[doc.name] = _read_sql(tree, listing, by_path, doc, problems)
        elif doc.kind == "App":
            source = _read_app(tree, listing, by_path, doc, problems)
            if source is not None:
                app_sources[doc.name] = source

    state = validation.check(root, docs, sql, problems, failed)
    if problems or state is None:
        raise ValidationError(problems)
    return DesiredState(
        root=state.root,
        content_id=tree.content_id(),
        environments=state.environments,
        resources=state.resources,
        config=state.config,
        databases=state.databases,
        groups=state.groups,
        apps=state.apps,
        checks=state.checks,
        spaces=state.spaces,
        sql=sql,
        app_sources=app_sources,
        locations={(d.kind, d.name): (d.file, d.parsed.line) for d in docs},
        field_lines={(d.kind, d.name, "environments"): d.parsed.line_of(("environments",))
                     for d in docs if d.kind == "App"},
        line_maps={(d.kind, d.name): d.parsed.lines for d in docs},
    )


def _folder_entries(
    listing: _Listing, by_path: dict[str, Entry], doc: LoadedDoc, field: str, folder: str, problems: list[Problem]
) -> list[Entry] | None:
    line = doc.parsed.line_of((field,))
    clean = validation.normalise(folder)
    folder = validation.printable(folder)  # from here on only shown in messages
    if clean is None:
        problems.append(Problem(doc.file, line, f"{doc.kind} {doc.name!r}: {field} '{folder}' is outside the "
                                "desired-state folder; use a path relative to it"))
        return None
    parts = clean.split("/")
    for cut in range(1, len(parts) + 1):
        prefix = "/".join(parts[:cut])
        hit = by_path.get(prefix)
        if hit is not None and hit.is_symlink:
            problems.append(Problem(doc.file, line, f"{doc.kind} {doc.name!r}: {field} '{folder}' goes through "
                                    f"the symbolic link '{prefix}'; links are not followed"))
            return None
    inside = listing.below(clean)
    if not inside:
        problems.append(Problem(doc.file, line, f"{doc.kind} {doc.name!r}: {field} folder '{folder}' does not "
                                "exist or is empty"))
        return None
    links = [e.path for e in inside if e.is_symlink]
    if links:
        problems.append(Problem(doc.file, line, f"{doc.kind} {doc.name!r}: '{links[0]}' is a symbolic link; "
                                "links are not followed"))
        return None
    odd = [e.path for e in inside if not e.path.isprintable()]
    if odd:
        problems.append(Problem(validation.printable(odd[0]), None, ODD_FILE_NAME))
        return None
    specials = [e.path for e in inside if e.special]
    if specials:
        problems.append(Problem(specials[0], None, SPECIAL_FILE))
        return None
    return inside


def _read_sql(
    tree: FileTree, listing: _Listing, by_path: dict[str, Entry], doc: LoadedDoc, problems: list[Problem]
) -> list[SqlFile]:
    assert isinstance(doc.model, Database)
    folder = doc.model.schema_
    inside = _folder_entries(listing, by_path, doc, "schema", folder, problems)
    if inside is None:
        return []
    files = []
    for entry in sorted((e for e in inside if e.path.endswith(".sql")), key=lambda e: e.path):
        if entry.size > MAX_SQL_BYTES:
            problems.append(Problem(entry.path, None, f"SQL file is larger than {MAX_SQL_BYTES} bytes"))
            continue
        text = _decode(entry.path, tree.read(entry.path), problems)
        if text is not None:
            files.append(SqlFile(entry.path, text))
    if not files and inside:
        problems.append(Problem(doc.file, doc.parsed.line_of(("schema",)),
                                f"Database {doc.name!r}: schema folder '{validation.printable(folder)}' has no "
                                ".sql files"))
    return files


def _read_app(
    tree: FileTree, listing: _Listing, by_path: dict[str, Entry], doc: LoadedDoc, problems: list[Problem]
) -> AppSource | None:
    assert isinstance(doc.model, App)
    folder = doc.model.source
    inside = _folder_entries(listing, by_path, doc, "source", folder, problems)
    if inside is None:
        return None
    total = sum(e.size for e in inside)
    if total > MAX_APP_BYTES:
        problems.append(Problem(doc.file, doc.parsed.line_of(("source",)),
                                f"App {doc.name!r}: source folder is {total} bytes (limit {MAX_APP_BYTES})"))
        return None
    prefix = validation.normalise(folder) or ""
    files = {e.path[len(prefix) + 1 :]: tree.read(e.path) for e in inside}
    return AppSource(files=files, hash=_hash_files(files))


def parse_single(text: str) -> Any:
    """Parse one YAML document (helper for tests and ``init``)."""
    docs = parse_documents(text)
    return docs[0].data if docs else None
