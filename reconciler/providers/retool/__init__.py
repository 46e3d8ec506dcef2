"""The ``retool`` platform provider: reconcile into a Retool instance through its API v2.

``RetoolProvider`` (provider.py) implements ``PlatformProvider``; ``RetoolClient`` (client.py) is
the only code that talks HTTP to Retool; options.py maps resource options between our flat form
and Retool's per-type shape. The daemon's configuration builds the provider from
``[platform] provider = "retool"`` (see docs/retool.md).
"""

from reconciler.providers.retool.client import (
    RateLimiter,
    RetoolAuthError,
    RetoolClient,
    RetoolConflictError,
    RetoolError,
    RetoolNotFoundError,
    RetoolRateLimitedError,
    RetoolRejectedError,
    RetoolStateError,
    RetoolUnavailableError,
)
from reconciler.providers.retool.provider import MemoryFingerprintBook, RetoolProvider, release_version

__all__ = [
    "MemoryFingerprintBook",
    "RateLimiter",
    "RetoolAuthError",
    "RetoolClient",
    "RetoolConflictError",
    "RetoolError",
    "RetoolNotFoundError",
    "RetoolProvider",
    "RetoolRateLimitedError",
    "RetoolRejectedError",
    "RetoolStateError",
    "RetoolUnavailableError",
    "release_version",
]
