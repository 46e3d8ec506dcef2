"""``[[workspaces]]`` in reconciler.toml: what each workspace's settings are, and precise refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import Settings, load_settings
from reconciler.errors import ConfigError

HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64
TWO = f"""
[[api.tokens]]
name = "ops"
hash = "{HASH_A}"
scopes = ["admin"]

[[workspaces]]
name = "team-a"
[workspaces.source]
url = "/srv/a"
[[workspaces.tokens]]
name = "a-ci"
hash = "{HASH_B}"
[[workspaces.notify.webhooks]]
url = "https://hooks.example.com/a"

[[workspaces]]
name = "team-b"
[workspaces.source]
url = "/srv/b"
[workspaces.platform]
url = "sqlite:////var/lib/b-registry.db"
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "reconciler.toml"
    path.write_text(text)
    return load_settings(path)


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value).replace(str(tmp_path / "reconciler.toml"), "reconciler.toml")


def test_a_configuration_without_workspaces_is_one_default_workspace(tmp_path: Path) -> None:
    settings = load(tmp_path, '[source]\nurl = "/srv/x"\n')
    assert settings.workspace_names() == ["default"]
    assert settings.for_workspace() is settings
    assert settings.for_workspace("default").workspace_name == "default"


def test_each_workspace_has_its_own_source_platform_tokens_and_notifications(tmp_path: Path) -> None:
    settings = load(tmp_path, f'data_dir = "{tmp_path}"\n' + TWO)
    a, b = settings.for_workspace("team-a"), settings.for_workspace("team-b")
    assert (a.workspace_name, a.source.url, b.source.url) == ("team-a", "/srv/a", "/srv/b")
    assert a.registry_url == f"sqlite:///{tmp_path / 'workspaces' / 'team-a' / 'registry.db'}"
    assert b.registry_url == "sqlite:////var/lib/b-registry.db"
    assert [t.name for t in a.api.tokens] == ["ops", "a-ci"] and [t.name for t in b.api.tokens] == ["ops"]
    assert [w.url for w in a.notify.webhooks] == ["https://hooks.example.com/a"] and b.notify.webhooks == []
    assert a.for_workspace() is a  # already one workspace's


def test_several_workspaces_need_a_choice(tmp_path: Path) -> None:
    settings = load(tmp_path, TWO)
    with pytest.raises(ConfigError, match=r"several workspaces are configured \(team-a, team-b\); choose one with "
                                          r"--workspace NAME"):
        settings.for_workspace()
    with pytest.raises(ConfigError, match="there is no workspace named 'team-c'; the configuration declares "
                                          "team-a, team-b"):
        settings.for_workspace("team-c")


@pytest.mark.parametrize(("text", "message"), [
    ('[source]\nurl = "/srv/x"\n' + TWO,
     "reconciler.toml: [source] is set at the top level and [[workspaces]] are declared; with workspaces, each one "
     "declares its own (move it into [workspaces.source] of each workspace)"),
    (TWO.replace('name = "team-b"', 'name = "team-a"'),
     "reconciler.toml: workspace names must be unique (team-a is declared more than once)"),
    (TWO.replace('name = "team-b"', 'name = "Team B"'),
     "reconciler.toml: workspaces[1].name: 'Team B' is not a workspace name (lower-case letters, digits and '-', "
     "at most 40, starting with a letter or digit)"),
    (TWO.replace(HASH_B, HASH_A),
     "reconciler.toml: token 'a-ci' of workspace team-a has the same hash as a token of [[api.tokens]]; a token "
     "belongs to one workspace (generate another one)"),
    ('[[workspaces]]\nname = "team-a"\n', "reconciler.toml: workspaces[0].source: Field required"),
    ('[[workspaces]]\nname = "a"\nsource = {url = "/a", colour = 1}\n',
     "reconciler.toml: workspaces[0].source.colour: unknown key"),
])
def test_an_inconsistent_workspaces_configuration_is_refused_precisely(tmp_path: Path, text: str,
                                                                         message: str) -> None:
    assert refusal(tmp_path, text) == message


def test_a_path_without_a_workspace_is_never_handed_to_another_while_one_is_down(tmp_path: Path) -> None:
    """team-b is configured but could not be built: a request that names no workspace is ambiguous
    (404 naming the choices), not team-a's because team-a is the only one running; team-b's own
    paths answer 503."""
    from types import SimpleNamespace

    from reconciler.api.access import Access
    from reconciler.api.errors import ApiError

    settings = load(tmp_path, TWO)
    host = SimpleNamespace(settings=settings, registry=None, workspaces={"team-a": object()})
    access = Access(host)  # type: ignore[arg-type]
    assert access.default_workspace(None) is None
    assert access.visible(None) == ["team-a", "team-b"]
    for path_params, status in (({}, 404), ({"ws": "team-b"}, 503)):
        with pytest.raises(ApiError) as refused:
            access.workspace(SimpleNamespace(path_params=path_params), None)  # type: ignore[arg-type]
        assert refused.value.status == status


def test_a_ref_change_is_owned_by_its_repository_not_by_one_whose_path_is_a_prefix(tmp_path: Path) -> None:
    """Two bare repositories /srv/git/pay and /srv/git/payments on one shared watcher: a ref change in
    payments belongs to payments (a prefix test gave it to pay, and relative_to then ended the watcher)."""
    from reconciler.daemon.watch import RefWatcher

    pay, payments = tmp_path / "pay", tmp_path / "payments"
    watcher = RefWatcher.of({pay: [lambda: None], payments: [lambda: None]})
    assert watcher._owner(str(payments / "refs" / "heads" / "main")) == payments
    assert watcher._owner(str(pay / "refs" / "heads" / "main")) == pay
    assert watcher._owner(str(payments / "objects" / "ab" / "cd")) is None


def test_readyz_answers_503_while_no_workspace_runs_and_never_shows_a_fetch_error_with_several(
        tmp_path: Path) -> None:
    """/readyz is unauthenticated: with several workspaces configured and only one built, it must not
    fall back to the single-workspace answer (which carries the fetch error, naming the source); with
    none built it answers 503, not a 500."""
    from types import SimpleNamespace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from reconciler.api.routes import health

    settings = load(tmp_path, TWO)
    running: dict[str, object] = {}
    app = FastAPI()
    health.install(app, SimpleNamespace(settings=settings, registry=None, workspaces=running))  # type: ignore[arg-type]
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
        running["team-a"] = SimpleNamespace(
            state=SimpleNamespace(ready=False, fetch_error="fetching https://user@git.example/a failed"),
            reconciler=SimpleNamespace(queries=SimpleNamespace(store_reachable=lambda: True)))
        answer = client.get("/readyz")
    assert answer.status_code == 200 and "git.example" not in answer.text
    assert answer.json()["workspaces"] == {"team-a": {"first_fetch_done": False, "fetch_failed": True},
                                           "team-b": {"first_fetch_done": False, "fetch_failed": True}}
