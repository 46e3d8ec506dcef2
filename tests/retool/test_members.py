"""Declared group membership and privileges on Retool (issue 13).

Members are users of the Space, by email: a user is added to the group; anyone else is invited
(``POST /user_invites`` into the group) and counts as a member while the invite is open. Privileges
are Retool's group fields, by their API names. Both are opt-in, instance-wide (only the most
protected environment on a shared instance writes them), and a second run writes nothing.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.objects import PlatformObject
from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider
from tests.retool.example import Secrets, context, reconcile
from tests.retool.fake import FakeRetool


def support(**fields: Any) -> dict[tuple[str, str], PlatformObject]:
    return {("group", "support-team"): PlatformObject("group", "support-team",
                                                      {"description": "Support engineers", **fields})}


def run(provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets, *, owner: bool = True,
        **fields: Any) -> list[Any]:
    env = "production" if owner else "staging"
    return reconcile(provider, context(env, secrets, book, owner=owner), support(**fields))


def test_members_and_privileges_are_created_updated_and_removed_and_a_second_run_writes_nothing(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.add_user("ann@example.com")
    fake.add_user("bob@example.com")

    run(provider, book, secrets, members=["ann@example.com", "carol@example.com"],
        universal_app_access="use", unpublished_release_access=True)

    group = fake.group("support-team")
    assert fake.members("support-team") == ["ann@example.com"]
    assert fake.invited("support-team") == ["carol@example.com"]  # not a user yet: invited into the group
    assert (group["universal_app_access"], group["unpublished_release_access"]) == ("use", True)
    assert group["usage_analytics_access"] is False  # not declared: left as Retool made it
    fake.clear_calls()
    assert run(provider, book, secrets, members=["ann@example.com", "carol@example.com"],
               universal_app_access="use", unpublished_release_access=True) == []
    assert fake.writes() == []

    run(provider, book, secrets, members=["bob@example.com", "carol@example.com"],
        universal_app_access="edit", unpublished_release_access=True, usage_analytics_access=True)

    group = fake.group("support-team")
    assert fake.members("support-team") == ["bob@example.com"]
    assert fake.invited("support-team") == ["carol@example.com"]  # still open: not invited twice
    assert (group["universal_app_access"], group["usage_analytics_access"]) == ("edit", True)
    patches = [c.body for c in fake.writes() if c.method == "PATCH"]
    assert patches == [{"operations": [
        {"op": "replace", "path": "/universal_app_access", "value": "edit"},
        {"op": "replace", "path": "/usage_analytics_access", "value": True},
    ]}]

    fake.claim_invite("carol@example.com")
    fake.clear_calls()
    assert run(provider, book, secrets, members=["bob@example.com", "carol@example.com"],
               universal_app_access="edit", unpublished_release_access=True, usage_analytics_access=True) == []
    assert fake.members("support-team") == ["bob@example.com", "carol@example.com"]

    run(provider, book, secrets, members=[])
    assert fake.members("support-team") == [] and fake.invited("support-team") == []


def test_an_invite_no_longer_declared_is_withdrawn(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    run(provider, book, secrets, members=["dave@example.com"])
    assert fake.invited("support-team") == ["dave@example.com"]
    run(provider, book, secrets, members=[])
    assert fake.invited("support-team") == []
    assert [(c.method, c.template) for c in fake.writes()] == [
        ("POST", "/groups"), ("POST", "/user_invites"), ("DELETE", "/groups/{groupId}/user_invites/{userInviteId}")]


def test_undeclared_members_and_privileges_are_left_alone(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.add_user("ann@example.com")
    run(provider, book, secrets, members=["ann@example.com"], theme_access=True)
    fake.clear_calls()

    assert run(provider, book, secrets) == []  # neither members nor privileges declared any more
    assert fake.writes() == []
    assert fake.members("support-team") == ["ann@example.com"]
    assert fake.group("support-team")["theme_access"] is True


def test_a_less_protected_environment_on_a_shared_instance_creates_the_group_bare(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.add_user("ann@example.com")
    run(provider, book, secrets, owner=False, members=["ann@example.com"], universal_resource_access="own")

    group = fake.group("support-team")
    assert fake.members("support-team") == [] and group["universal_resource_access"] == "none"

    run(provider, book, secrets, members=["ann@example.com"], universal_resource_access="own")
    assert fake.members("support-team") == ["ann@example.com"]
    assert fake.group("support-team")["universal_resource_access"] == "own"
