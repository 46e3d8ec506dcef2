"""Retool Spaces (issue 13): the admin workspace creates each team's Space from ``kind: Space``
documents, and each team's workspace reaches its own Space with that Space's token.

Retool's rules, as the fake plays them (docs.retool.com, *Configure Spaces*): only the admin Space
creates and manages Spaces; each Space has its own users, groups, resources and apps, invisible to
another Space's token; a new Space's admins are copied from the admin Space's users.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.core.objects import ObjectKey, PlatformObject
from reconciler.providers.retool import MemoryFingerprintBook, RetoolProvider, RetoolStateError
from tests.conftest import World
from tests.retool.example import Secrets, context, objects, reconcile
from tests.retool.fake import FakeRetool
from tests.retool.test_engine_integration import without_deny_windows

SPACES = (
    "kind: Space\nname: team-a\ndomain: team-a.retool.example.com\nadmins: [lead-a@example.com]\n"
    "---\nkind: Space\nname: team-b\ndomain: team-b.retool.example.com\nadmins: [Lead-B@example.com]\n"
)


@pytest.fixture
def admin_world(pyworld: World, fake: FakeRetool, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The admin workspace: the example repository, reconciled into the fake's admin Space, with prune on
    in production (which applies the instance's Spaces) and the team leads users of the admin Space."""
    assert fake.source_control is not None
    pyworld.configure(platform={
        "provider": "retool", "host": fake.url, "token": "${secret:RETOOL_TOKEN}", "manifest": fake.manifest_name,
        "source_control": {"url": fake.source_control.url}, "requests_per_minute": 60_000,
        "deploy_poll_interval": "10ms",
    })
    monkeypatch.setenv("RETOOL_TOKEN", fake.token)
    spec = pyworld.desired / "environments/production.yaml"
    spec.write_text(spec.read_text().replace("  prune: false", "  prune: true"))
    without_deny_windows(pyworld)
    fake.add_user("lead-a@example.com")
    fake.add_user("lead-b@example.com")
    yield pyworld


def release(world: World, tag: str) -> None:
    r = world.reconciler()
    staging = r.reconcile("staging")
    assert staging.result in ("Succeeded", "NoChanges"), staging.reason
    world.tag(tag, f"Release {tag}")
    production = r.reconcile("production")
    assert production.result == "Succeeded", production.reason


def team_objects(env: str, secrets: Secrets, group: str) -> dict[ObjectKey, PlatformObject]:
    """The example's objects without its app (a Space's Source Control is its own; not what this tests),
    with the team's own group."""
    out = {k: v for k, v in objects(env, secrets).items()
           if k[0] != "app" and not (k[0] == "permission" and "/app/" in k[1])}
    out[("group", group)] = PlatformObject("group", group, {"description": f"{group} members",
                                                            "members": [f"lead-{group[-1]}@example.com"]})
    return out


def test_the_admin_workspace_creates_both_spaces_and_a_second_run_writes_nothing(
    admin_world: World, fake: FakeRetool
) -> None:
    admin_world.write("spaces.yaml", SPACES)
    admin_world.commit("Team A's and team B's Spaces")

    r = admin_world.reconciler()
    staging = r.reconcile("staging")
    assert staging.result == "Succeeded", staging.reason
    # Spaces are the instance's: staging shows them applied with production, and creates none.
    assert [c for c in fake.writes() if c.path == "/spaces"] == []
    assert {i.id for i in r.plan("staging").drift if i.deferred_to == "production"} >= {
        "space:team-a", "space:team-b"}
    admin_world.tag("v1.0.0", "Release 1.0.0")
    production = r.reconcile("production")
    assert production.result == "Succeeded", production.reason

    created = [c.body for c in fake.writes() if (c.method, c.path) == ("POST", "/spaces")]
    assert created == [
        {"name": "team-a", "domain": "team-a.retool.example.com",
         "options": {"users_to_copy_as_admins": ["lead-a@example.com"]}},
        {"name": "team-b", "domain": "team-b.retool.example.com",
         "options": {"users_to_copy_as_admins": ["lead-b@example.com"]}},
    ]
    assert fake.members("admin", space="team-a") == ["lead-a@example.com"]
    assert fake.members("admin", space="team-b") == ["lead-b@example.com"]

    fake.clear_calls()
    assert r.reconcile("staging").result == "NoChanges"
    assert r.reconcile("production").result == "NoChanges"
    assert fake.writes() == []


def test_prune_deletes_a_space_the_reconciler_made_and_never_a_hand_made_one(
    admin_world: World, fake: FakeRetool
) -> None:
    admin_world.write("spaces.yaml", SPACES)
    admin_world.commit("Team A's and team B's Spaces")
    release(admin_world, "v1.0.0")
    hand_made = httpx.post(f"{fake.url}/api/v2/spaces", headers={"Authorization": f"Bearer {fake.token}"},
                           json={"name": "legacy", "domain": "legacy.retool.example.com"})
    assert hand_made.status_code == 200

    admin_world.write("spaces.yaml", SPACES.split("---\n")[0])
    admin_world.commit("Team B moves to its own instance")
    release(admin_world, "v1.1.0")

    with fake.lock:
        names = sorted(s.name for s in fake.spaces.values() if s.parent is not None)
    assert names == ["legacy", "team-a"]
    drift = admin_world.reconciler().plan("production").drift
    assert [(i.id, i.change, i.pruned) for i in drift if i.kind == "space"] == [("space:legacy", "delete", False)]


def test_an_admin_who_is_not_a_user_of_the_admin_space_is_refused_before_anything_is_made(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    space = PlatformObject("space", "team-c", {"domain": "team-c.example.com", "admins": ["nobody@example.com"]})
    with pytest.raises(RetoolStateError) as refused:
        reconcile(provider, context("production", secrets, book), {("space", "team-c"): space})
    assert "nobody@example.com is not a user of the admin Space" in str(refused.value)
    assert [c for c in fake.writes() if c.path == "/spaces"] == []


def test_a_spaces_admins_cannot_change_through_the_api_and_the_refusal_says_where_to_change_them(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets
) -> None:
    fake.add_user("lead-a@example.com")
    declared = {"domain": "team-a.example.com", "admins": ["lead-a@example.com"]}
    reconcile(provider, context("production", secrets, book),
              {("space", "team-a"): PlatformObject("space", "team-a", declared)})
    fake.clear_calls()
    changed = PlatformObject("space", "team-a", {**declared, "admins": ["lead-a@example.com", "x@example.com"]})
    with pytest.raises(RetoolStateError) as refused:
        reconcile(provider, context("production", secrets, book), {("space", "team-a"): changed})
    assert "only when it creates it" in str(refused.value)
    assert "Settings > Users" in str(refused.value)
    assert fake.writes() == []


def test_each_team_reaches_only_its_own_space_with_its_token(
    fake: FakeRetool, provider: RetoolProvider, book: MemoryFingerprintBook, secrets: Secrets,
    request: pytest.FixtureRequest,
) -> None:
    fake.add_user("lead-a@example.com")
    fake.add_user("lead-b@example.com")
    spaces = {("space", team): PlatformObject("space", team, {"domain": f"{team}.example.com",
                                                               "admins": [f"lead-{team[-1]}@example.com"]})
              for team in ("team-a", "team-b")}
    reconcile(provider, context("production", secrets, book), spaces)

    a_book, b_book = MemoryFingerprintBook(), MemoryFingerprintBook()
    # What a team's configuration builds: host = its Space's domain (here the fake), token = its Space's.
    team_a = RetoolProvider(fake.url, fake.space_token("team-a"), requests_per_minute=60_000, fingerprints=a_book,
                            space="team-a")
    team_b = RetoolProvider(fake.url, fake.space_token("team-b"), requests_per_minute=60_000, fingerprints=b_book,
                            space="team-b")
    request.addfinalizer(team_a.close)
    request.addfinalizer(team_b.close)
    a_objects = team_objects("production", secrets, "team-a")
    reconcile(team_a, context("production", secrets, a_book), a_objects)

    # Team A's objects are in team A's Space only: not in team B's, not in the admin Space.
    b_live = team_b.read("production", declared=frozenset(team_objects("production", secrets, "team-b")))
    assert ("group", "team-a") not in b_live and ("resource", "crm-db") not in b_live
    assert "team-a" not in fake.names("groups")
    assert fake.members("team-a", space="team-a") == ["lead-a@example.com"]  # its lead is a user there

    # Team B's token cannot see or change team A's group, and cannot make Spaces.
    group_id = fake.group("team-a", space="team-a")["id"]
    b_http = httpx.Client(base_url=f"{fake.url}/api/v2", headers={"Authorization": f"Bearer "
                                                                                   f"{fake.space_token('team-b')}"})
    try:
        assert b_http.get(f"/groups/{group_id}").status_code == 404
        assert b_http.delete(f"/groups/{group_id}").status_code == 404
        assert b_http.post("/spaces", json={"name": "rogue", "domain": "rogue.example.com"}).status_code == 403
    finally:
        b_http.close()
    assert fake.members("team-a", space="team-a") == ["lead-a@example.com"]

    # Team B's own run builds its Space and leaves team A's alone; a second run of each writes nothing.
    reconcile(team_b, context("production", secrets, b_book), team_objects("production", secrets, "team-b"))
    fake.clear_calls()
    assert reconcile(team_a, context("production", secrets, a_book), a_objects) == []
    assert reconcile(team_b, context("production", secrets, b_book),
                     team_objects("production", secrets, "team-b")) == []
    assert fake.writes() == []

    # A team's workspace cannot declare Spaces: the provider says why instead of Retool's 403.
    with pytest.raises(RetoolStateError) as refused:
        reconcile(team_a, context("production", secrets, a_book), {**a_objects, **{
            ("space", "team-a2"): PlatformObject("space", "team-a2", {"domain": "a2.example.com", "admins": []})}})
    assert "this Retool instance is the Space 'team-a'" in str(refused.value)
