"""A fake Retool for tests: instances served on loopback, checked against Retool's OpenAPI document,
and the Source Control repository (a real bare Git repository) they share.

``FakeRetool`` (server.py) is one instance; ``FakeSourceControl`` (source_control.py) is the
repository. ``tests/retool/conftest.py`` shows how to start them; any test that needs "a Retool"
may use them the same way.
"""

from tests.retool.fake.server import DEFAULT_TOKEN, MASK, Call, FakeRetool, State, contract
from tests.retool.fake.source_control import FakeSourceControl, Pushed

__all__ = ["DEFAULT_TOKEN", "MASK", "Call", "FakeRetool", "FakeSourceControl", "Pushed", "State", "contract"]
