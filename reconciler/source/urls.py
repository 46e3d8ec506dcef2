"""Repository locations and how to show them without credentials (cf. Flux ``sanitized.go``)."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

_REMOTE = re.compile(r"^(https?|ssh|git|file)://", re.IGNORECASE)
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


def is_remote(url: str) -> bool:
    """True for URLs that must be cloned into the cache (file:// included); False for local paths."""
    return bool(_REMOTE.match(url) or _SCP_LIKE.match(url))


def sanitize(url: str) -> str:
    """``url`` with any password or token removed, safe for logs, errors and the state DB."""
    if not _REMOTE.match(url):
        return url
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username if parts.password is None else None
    netloc = f"{user}@{host}" if user and parts.scheme == "ssh" else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def cache_key(url: str) -> str:
    """A directory name for the clone of ``url`` (credentials do not change the key)."""
    return hashlib.sha256(sanitize(url).encode()).hexdigest()[:16]
