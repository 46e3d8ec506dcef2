"""What a release of an app is, as the reconciler remembers it (data only, pure).

A platform provider that releases apps (Retool, through its Source Control repository) records each
release it makes in the release book (``providers.base.ReleaseBook``, kept by the state store), so
that every later environment runs that same release instead of making its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReleaseRecord:
    """A release of an app a provider made, as the release book keeps it (see ``ReleaseBook``)."""

    repository: str  # where the release lives (a platform's Source Control repository, sanitised URL)
    app: str
    key: str  # what was released: the app's source hash, or ``commit:<revision>`` without source
    version: str
    label: str  # the release label it was made from (a tag, or a short commit id)
    revision: str
    environment: str  # the environment whose run made it
    branch: str | None = None  # the branch the platform pushed it on, until merged
    commit: str | None = None
    merged: bool = False
