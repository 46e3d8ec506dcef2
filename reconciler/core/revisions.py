"""Release tags and their versions: which tags are releases of an environment, newest first (pure).

``source/`` lists the repository's tags as ``TagRef``s; ``core.targets`` picks what an environment
runs from them with these functions. A tag counts when its name matches the environment's glob and
the part after the glob's literal prefix is a semantic version (an optional leading ``v``
allowed). Prereleases are ignored unless the environment asks for them. Parsing and ordering are
the ``semver`` package's (SemVer 2.0.0: build metadata does not order, a release sorts after its
prereleases, numeric identifiers before alphanumeric ones).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from semver import Version

# The limit Python puts on converting a decimal string to an int (sys.get_int_max_str_digits).
_MAX_DIGITS = 4300


@dataclass(frozen=True)
class TagRef:
    """A tag of the repository as Git holds it."""

    name: str
    target: str  # the commit id the tag points at (peeled)
    annotated: bool
    object_id: str  # the tag object's id when annotated, else the commit id
    message: str  # the annotated tag's message ('' for lightweight tags)


def parse_semver(text: str) -> Version | None:
    """``text`` (with an optional leading ``v``) as a semantic version, or None when it is not one."""
    bare = text[1:] if text.startswith("v") else text
    # ASCII only: ``semver`` would read U+0661 (ARABIC-INDIC DIGIT ONE) as a digit.
    if not bare.isascii() or any(len(part) > _MAX_DIGITS for part in re.findall(r"\d+", bare)):
        return None
    try:
        version = Version.parse(bare)
    except ValueError:  # not SemVer 2.0.0
        return None
    return version.replace(build=None)


def is_prerelease(version: Version) -> bool:
    return version.prerelease is not None


def _literal_prefix(glob: str) -> str:
    cut = len(glob)
    for ch in "*?[":
        idx = glob.find(ch)
        if idx != -1:
            cut = min(cut, idx)
    return glob[:cut]


def tag_version(name: str, glob: str) -> Version | None:
    """The semantic version a tag name carries under ``glob``, or None when it does not match."""
    if not fnmatch.fnmatchcase(name, glob):
        return None
    prefix = _literal_prefix(glob)
    rest = name[len(prefix) :]
    if prefix.endswith("v") and rest.startswith("v"):
        return None  # 'vv1.0.0' under 'v*': the optional 'v' is already the glob's
    return parse_semver(rest) or parse_semver(name)


@dataclass(frozen=True)
class Release:
    tag: TagRef
    version: Version


def releases(tags: list[TagRef], glob: str, prereleases: bool) -> list[Release]:
    """Matching release tags, highest version first."""
    out = []
    for tag in tags:
        version = tag_version(tag.name, glob)
        if version is None or (is_prerelease(version) and not prereleases):
            continue
        out.append(Release(tag, version))
    return sorted(out, key=lambda r: (r.version, r.tag.name), reverse=True)


def short(commit_id: str | None) -> str:
    """A commit id as people read it: its first 12 characters."""
    return commit_id[:12] if commit_id else "-"
