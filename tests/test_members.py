"""Declared group membership and privileges, and ``kind: Space``, on the registry provider (issue 13).

Members (by email) and privileges (Retool's names) are opt-in: a group that declares neither leaves
them alone. Each is created, updated and removed like any other declared field, and a second run
finds nothing to do. Spaces are stored like any other object. The same on Retool:
``tests/retool/test_members.py`` and ``tests/retool/test_spaces.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core.objects import PlatformObject
from reconciler.errors import ConfigError
from reconciler.providers.registry.provider import RegistryProvider
from tests.conftest import World
from tests.test_validate import problems

GROUPS = "groups.yaml"
BASE = (
    "kind: Group\nname: support-team\ndescription: Support engineers\n"
    "---\nkind: Group\nname: platform-admins\ndescription: Platform team; may edit every tool\n"
)


def live_group(world: World, name: str, env: str = "staging") -> PlatformObject:
    registry = RegistryProvider(world.settings().registry_url)
    try:
        return registry.read(env)[("group", name)]
    finally:
        registry.close()


def apply(world: World, groups: str, message: str) -> Any:
    world.write(GROUPS, groups)
    world.commit(message)
    return world.reconciler().reconcile("staging")


def test_members_and_privileges_are_created_updated_and_removed(pyworld: World) -> None:
    first = apply(pyworld, BASE.replace("description: Support engineers\n", (
        "description: Support engineers\nmembers: [Ann@Example.com, bob@example.com]\n"
        "privileges: {universal_app_access: use, usage_analytics_access: true}\n")), "Support's members")
    assert first.result == "Succeeded", first.error
    fields = live_group(pyworld, "support-team").fields
    assert fields["members"] == ["ann@example.com", "bob@example.com"]
    assert (fields["universal_app_access"], fields["usage_analytics_access"]) == ("use", True)
    assert "members" not in live_group(pyworld, "platform-admins").fields

    again = pyworld.reconciler().reconcile("staging")
    assert again.result == "NoChanges"

    second = apply(pyworld, BASE.replace("description: Support engineers\n", (
        "description: Support engineers\nmembers: [bob@example.com, carol@example.com]\n"
        "privileges: {universal_app_access: edit, unpublished_release_access: true}\n")), "Carol replaces Ann")
    assert second.result == "Succeeded", second.error
    changed = {i.id for i in second.plan.items}
    assert changed == {"group:support-team:members", "group:support-team:universal_app_access",
                       "group:support-team:unpublished_release_access"}
    fields = live_group(pyworld, "support-team").fields
    assert fields["members"] == ["bob@example.com", "carol@example.com"]
    assert fields["universal_app_access"] == "edit"

    emptied = apply(pyworld, BASE.replace("description: Support engineers\n",
                                          "description: Support engineers\nmembers: []\n"), "Nobody in support")
    assert emptied.result == "Succeeded", emptied.error
    assert live_group(pyworld, "support-team").fields["members"] == []


def test_undeclared_members_and_privileges_are_left_alone(pyworld: World) -> None:
    apply(pyworld, BASE.replace("description: Support engineers\n",
                                "description: Support engineers\nmembers: [ann@example.com]\n"), "Ann")
    outcome = apply(pyworld, BASE, "Stop managing support's members")
    assert outcome.result == "NoChanges"
    assert live_group(pyworld, "support-team").fields["members"] == ["ann@example.com"]


def test_a_space_is_stored_like_any_other_object(pyworld: World) -> None:
    space = "---\nkind: Space\nname: team-a\ndomain: team-a.retool.example.com\nadmins: [lead@example.com]\n"
    outcome = apply(pyworld, BASE + space, "Team A's Space")
    assert outcome.result == "Succeeded", outcome.error
    registry = RegistryProvider(pyworld.settings().registry_url)
    try:
        live = registry.read("staging")[("space", "team-a")]
    finally:
        registry.close()
    assert dict(live.fields) == {"domain": "team-a.retool.example.com", "admins": ["lead@example.com"]}
    assert pyworld.reconciler().reconcile("staging").result == "NoChanges"


def test_bad_emails_and_privileges_are_reported_with_their_line(pyworld: World) -> None:
    pyworld.write(GROUPS, BASE + "members: [ann@example.com, not-an-email, ANN@example.com]\n"
                  "privileges: {universal_app_access: everything, publish: true}\n"
                  "---\nkind: Space\nname: team-b\nadmins: [x@example.com]\n")
    found = problems(pyworld.desired)
    assert any("members.1: 'not-an-email' is not allowed; an email address looks like name@example.com" in p
               for p in found), found
    assert any("privileges.universal_app_access" in p for p in found), found
    assert any("unknown field 'privileges.publish'" in p for p in found), found
    assert any("missing required field 'domain'" in p for p in found), found


def test_a_retool_instance_entry_may_say_it_is_a_space(pyworld: World) -> None:
    pyworld.configure(platform={"provider": "retool", "host": "https://team-a.retool.example.com",
                                "token": "${secret:RETOOL_TEAM_A_TOKEN}", "space": "team-a"})
    assert pyworld.settings().platform.space == "team-a"
    pyworld.configure(platform={"provider": "retool", "space": "team-a", "instances": [
        {"name": "team-a", "host": "https://team-a.retool.example.com", "token": "t", "space": "team-a",
         "environments": ["staging", "production"]}]})
    pyworld.config.write_text(pyworld.config.read_text().replace(
        'host = "https://team-a.retool.example.com"\ntoken = "${secret:RETOOL_TEAM_A_TOKEN}"\n', "", 1))
    with pytest.raises(ConfigError) as refused:
        pyworld.settings()
    assert "give either host/token/space" in str(refused.value)
