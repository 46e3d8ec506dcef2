"""Where the fake Retool used to live; it is the package ``tests.retool.fake`` now."""

from tests.retool.fake.server import DEFAULT_TOKEN, MASK, FakeRetool, openapi

__all__ = ["DEFAULT_TOKEN", "MASK", "FakeRetool", "openapi"]
