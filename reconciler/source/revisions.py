"""Which revision an environment tracks: semver parsing and release-tag selection (pure functions).

Called by ``reconcile.py`` with the tags the repository lists. A tag counts when its name matches
the environment's glob and the part after the glob's literal prefix is a semantic version (an
optional leading ``v`` allowed). Prereleases are ignored unless the environment asks for them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import total_ordering

from reconciler.source.repository import TagRef

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$",
    re.ASCII,  # semver digits are 0-9; without this '\d' also matches U+0661 (ARABIC-INDIC DIGIT ONE)
)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after its prereleases; numeric identifiers sort before alphanumeric ones.
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.prerelease)}" if self.prerelease else core


def parse_semver(text: str) -> SemVer | None:
    match = _SEMVER.match(text)
    if match is None:
        return None
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    try:
        version = SemVer(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)
        version._key()  # numeric prerelease identifiers are converted too
    except ValueError:  # a number over Python's 4300-digit conversion limit
        return None
    return version


def _literal_prefix(glob: str) -> str:
    cut = len(glob)
    for ch in "*?[":
        idx = glob.find(ch)
        if idx != -1:
            cut = min(cut, idx)
    return glob[:cut]


def tag_version(name: str, glob: str) -> SemVer | None:
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
    version: SemVer


def releases(tags: list[TagRef], glob: str, prereleases: bool) -> list[Release]:
    """Matching release tags, highest version first."""
    out = []
    for tag in tags:
        version = tag_version(tag.name, glob)
        if version is None or (version.is_prerelease and not prereleases):
            continue
        out.append(Release(tag, version))
    return sorted(out, key=lambda r: (r.version, r.tag.name), reverse=True)


def short(commit_id: str | None) -> str:
    return commit_id[:12] if commit_id else "-"
