"""Plans and reports that show the change: change words, whole values with the differing part marked,
created objects one field per line, a closing summary; reasons cut at a word; 'unpin' of an unpinned
environment; the heal hint as one command."""

from __future__ import annotations

import datetime as dt
import json

import psycopg

from reconciler.app.queries import RunRecord, StatusRow
from reconciler.core.changes import Change, DriftItem, Phase, Risk
from reconciler.core.outcome import EnvironmentStatus, EnvState
from reconciler.core.plan import build_plan
from reconciler.reports.drift import render_plan, summary
from reconciler.reports.status import render_history, render_status
from reconciler.reports.values import clip_words
from reconciler.store.store import Store
from tests.conftest import World, cli

OLD_URL = "https://api-staging.internal.example.com"
NEW_URL = "https://api-staging-v2.internal.example.com"
REVISION = "0b4c011ae91c" * 3 + "0b4c"


def change_base_url(world: World) -> None:
    world.write("config/variables.yaml", (world.desired / "config/variables.yaml").read_text().replace(
        f"default: {OLD_URL}", f"default: {NEW_URL}"))
    world.commit("Move the CRM API to v2")


def test_an_update_shows_both_values_whole_with_the_difference_marked(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    change_base_url(pyworld)
    result = cli(pyworld, "plan", "staging")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    at = lines.index("~ update  config-variable:API_CRM_BASE_URL:value")
    assert lines[at + 1: at + 4] == [
        f"      live      {OLD_URL}",
        f"      declared  {NEW_URL}",
        " " * 35 + "^^^",  # under "-v2", the part that differs
    ]
    # The resource that reads the variable through ${config:API_CRM_BASE_URL} changes with it.
    assert "~ update  resource:crm-api:options.base_url" in lines
    assert lines[-1] == "2 to update"
    markdown = cli(pyworld, "plan", "staging", "--format", "markdown").stdout
    assert ("| ~ update | `config-variable:API_CRM_BASE_URL:value` | "
            f"<code>https://api-staging<b>-v2</b>.internal.example.com</code> | `{OLD_URL}` | safe |") in markdown
    assert "**2 to update**" in markdown


def test_a_create_shows_one_field_per_line_not_a_json_blob(pyworld: World) -> None:
    result = cli(pyworld, "plan", "staging")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    at = lines.index("+ create  resource:crm-db")
    assert lines[at + 1: at + 9] == [
        "      description       CRM database (read/write for support tools)",
        "      folder            CRM",
        "      options.database  crm",
        "      options.host      db-staging.internal",
        "      options.password  (secret)",
        "      options.port      5432",
        "      options.ssl       true",
        "      options.username  retool",
    ]
    assert "{" not in "\n".join(line for line in lines if not line.startswith("      "))
    items = json.loads(cli(pyworld, "plan", "staging", "--format", "json").stdout)["items"]
    creates = sum(1 for i in items if i["change"] == "create")
    assert lines[-1] == f"{creates} to create"
    markdown = cli(pyworld, "plan", "staging", "--format", "markdown").stdout
    assert ("| + create | `resource:crm-db` | `description`: `CRM database (read/write for support tools)`<br>"
            "`folder`: `CRM`<br>`options.database`: `crm`<br>") in markdown


def test_the_summary_says_a_destructive_change_needs_approval(pyworld: World) -> None:
    world = pyworld
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.0.0", "Release 1.0.0")
    assert cli(world, "apply", "production").exit_code == 0
    sql = world.desired / "databases/crm/001_customers.sql"
    sql.write_text(sql.read_text().replace("    plan        text not null default 'free',\n", ""))
    change_base_url(world)
    assert cli(world, "apply", "staging").exit_code == 0
    world.tag("v1.1.0", "Release 1.1.0")
    result = cli(world, "plan", "production")
    assert result.exit_code == 2
    assert "- delete  crm:drop-column:public.customers.plan  (destructive)" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 to update, 1 to delete — 1 destructive, needs approval"


def test_diff_counts_one_change_in_the_singular(pyworld: World) -> None:
    pyworld.write("config/variables.yaml", (pyworld.desired / "config/variables.yaml").read_text().replace(
        "production: support@example.com", "production: help@example.com"))
    pyworld.commit("Change the support address")
    result = cli(pyworld, "diff", "--base", "main~1", "--head", "main")
    assert result.exit_code == 2
    assert "production: 1 change\n" in result.stdout
    assert "      old       support@example.com\n      new       help@example.com\n" in result.stdout
    changed = cli(pyworld, "diff", "--base", "main~1", "--head", "main", "--format", "markdown").stdout
    assert "### production: 1 change\n" in changed


def test_unpin_of_an_environment_that_is_not_pinned_writes_nothing(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    store = Store(pyworld.settings().state_url)
    before = store.status("staging")
    result = cli(pyworld, "unpin", "staging")
    assert result.exit_code == 0
    assert result.stdout == "staging was not pinned; nothing changed (it follows its tracked ref)\n"
    assert store.status("staging") == before
    store.close()


def test_the_heal_hint_is_one_command(pyworld: World) -> None:
    assert cli(pyworld, "apply", "staging").exit_code == 0
    with psycopg.connect(pyworld.databases["staging"], autocommit=True) as conn:
        conn.execute("alter table customers add column legacy_notes text")
    result = cli(pyworld, "drift", "staging")
    assert result.exit_code == 2
    heal = [line for line in result.stdout.splitlines() if line.startswith("To heal")]
    assert heal == ["To heal: reconciler apply staging --approve crm:drop-column:public.customers.legacy_notes"]


# -- the renderers on their own ------------------------------------------------------------------


def item(id_: str, change: Change, declared: object, live: object, risk: Risk = Risk.SAFE,
         kind: str = "config-variable", pruned: bool = False) -> DriftItem:
    return DriftItem(id_, kind, id_.split(":")[1], None, change, declared, live, risk,
                     Phase.PRUNE if change == Change.DELETE and kind != "schema" else Phase.CONFIG, pruned=pruned)


def test_a_long_value_wraps_and_the_change_is_shown_with_its_context() -> None:
    old = "Support engineers and the on-call rota of the customer support organisation, who answer day and night"
    new = old.replace("day and night", "day and night, in three time zones")
    plan = build_plan("staging", REVISION, [item("group:support:description", Change.UPDATE, new, old)])
    text = render_plan("text", plan)
    lines = text.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("      declared  "))
    wrapped = [lines[at].removeprefix("      declared  ")] + [
        line.strip() for line in lines[at + 1:] if line.startswith(" " * 16)]
    assert len(wrapped) == 2 and " ".join(wrapped) == new  # whole, over two lines
    assert all(len(line) <= 100 for line in lines)
    assert "      change    …er day and night → …er day and night, in three time zones\n" in text


def test_control_characters_in_values_are_shown_escaped() -> None:
    plan = build_plan("staging", REVISION, [item("config-variable:X:value", Change.UPDATE, "a\x1b[31mb", "a\nb")])
    text = render_plan("text", plan)
    assert "\x1b" not in text
    assert "      live      a\\nb\n      declared  a\\x1b[31mb\n" in text


def test_summary_counts_changes_and_risks() -> None:
    items = [
        item("resource:a", Change.CREATE, {"type": "restapi"}, None, kind="resource"),
        item("resource:b", Change.CREATE, {"type": "restapi"}, None, kind="resource"),
        item("config-variable:C:value", Change.UPDATE, "x", "y"),
        DriftItem("crm:drop-column:public.t.c", "schema", "crm", "public.t.c", Change.DELETE, None, "text",
                  Risk.DESTRUCTIVE, Phase.SCHEMA_DESTRUCTIVE, sql="alter table t drop column c"),
        DriftItem("crm:create-index:public.i", "schema", "crm", "public.i", Change.CREATE, "index", None,
                  Risk.LOCK_RISK, Phase.SCHEMA_ADDITIVE, sql="create index i on t (c)"),
    ]
    assert summary(items, "require-approval") == ("3 to create, 1 to update, 1 to delete — 1 destructive, needs "
                                                  "approval; 1 lock-risk")
    assert summary(items, "allow") == "3 to create, 1 to update, 1 to delete — 1 destructive, allowed here; 1 lock-risk"
    assert summary(items) == "3 to create, 1 to update, 1 to delete — 1 destructive; 1 lock-risk"


def test_drift_names_undeclared_objects_and_what_to_do_by_hand() -> None:
    items = [item("config-variable:C:value", Change.UPDATE, "x", "y"),
             item("group:old-team", Change.DELETE, None, {"description": "Gone"}, Risk.DESTRUCTIVE, kind="group")]
    plan = build_plan("production", REVISION, items)
    first_seen = {i.id: dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC) for i in items}
    text = render_plan("text", plan, "v1.0.0", first_seen, kind="drift")
    assert "1 to update, 1 undeclared (prune is off) — 1 destructive\n" in text
    assert "To heal: reconciler apply production\n" in text
    assert "By hand: remove group old-team in the platform, or declare it in Git\n" in text
    assert "- delete  group:old-team  (destructive)" in text
    assert "      description  Gone\n" in text


def test_reasons_are_cut_at_a_word_with_an_ellipsis() -> None:
    reason = ("v1.2.0 is not reachable from main: merge the release branch into main first, then cut a new "
              "release tag from main so that production can follow it")
    assert clip_words(reason, 100) == ("v1.2.0 is not reachable from main: merge the release branch into main "
                                       "first, then cut a new…")
    assert clip_words("short reason", 100) == "short reason"
    status = EnvironmentStatus("production", EnvState.BLOCKED, reason)
    assert "so…" in render_status("text", [StatusRow(status, "tag v*", REVISION, "v1.2.0", None)])
    run = RunRecord("a" * 32, "production", REVISION, None, "v1.2.0", "tag", dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
                    None, "Blocked", reason, [], [], None, None)
    text = render_history("text", "production", [run])
    assert "then cut a new…" in text
