"""The built-in ``registry`` platform provider: live platform state in SQL tables."""

from reconciler.providers.registry.provider import RegistryProvider

__all__ = ["RegistryProvider"]
