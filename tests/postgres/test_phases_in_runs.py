"""Dependency-safe phases through whole runs: plan, additive step, apps, destructive step behind its
approval, verify. The example's staging is switched to ``require-approval`` so the gate is real."""

from __future__ import annotations

import json

from tests.conftest import World, cli

STRICT_STAGING = """\
kind: Environment
name: staging
track:
  branch: main
sync:
  automatic: true
  destructive_changes: require-approval
"""


def _strict(world: World) -> None:
    world.write("environments/staging.yaml", STRICT_STAGING)
    world.commit("staging approves destructive changes")


def test_a_table_replaced_by_a_view_runs_as_one_group_once_its_drop_is_approved(pyworld: World) -> None:
    _strict(pyworld)
    pyworld.write("databases/crm/004_stats.sql", "create table ticket_stats (id bigint primary key, subject text);\n")
    pyworld.commit("ticket_stats as a table")
    r = pyworld.reconciler()
    assert r.reconcile("staging").result == "Succeeded"
    pyworld.write("databases/crm/004_stats.sql",
                  "create view ticket_stats as select id, subject from tickets;\n")
    pyworld.commit("ticket_stats becomes a view over tickets")

    shown = cli(pyworld, "plan", "staging", "--format", "json")
    assert shown.exit_code == 2
    group = "crm:drop-table:public.ticket_stats"
    grouped = {i["id"]: i.get("group") for i in json.loads(shown.stdout)["items"]}
    assert grouped[group] == group
    assert grouped["crm:create-view:public.ticket_stats"] == group
    text = cli(pyworld, "plan", "staging").stdout
    assert f"Group 1 [{group}]" in text and "crm:create-view:public.ticket_stats (safe)" in text

    blocked = r.reconcile("staging")
    assert blocked.result == "Blocked" and group in (blocked.reason or "")
    assert pyworld.query("staging", "select relkind::text from pg_class where relname = 'ticket_stats'") == [("r",)]

    done = r.reconcile("staging", approvals=[group])
    assert done.result == "Succeeded", done.reason
    assert pyworld.query("staging", "select relkind::text from pg_class where relname = 'ticket_stats'") == [("v",)]
    assert r.reconcile("staging").result == "NoChanges"


def test_an_enum_value_removed_under_the_dashboards_view_converges_in_one_run(pyworld: World) -> None:
    _strict(pyworld)
    r = pyworld.reconciler()
    assert r.reconcile("staging").result == "Succeeded"
    tickets = pyworld.desired / "databases/crm/002_tickets.sql"
    tickets.write_text(tickets.read_text().replace("('open', 'pending', 'closed')", "('open', 'closed')"))
    pyworld.commit("no more pending tickets")

    group = "crm:drop-enum-value:public.ticket_status.pending"
    items = json.loads(cli(pyworld, "plan", "staging", "--format", "json").stdout)["items"]
    assert {i["id"]: i.get("group") for i in items} == {
        "crm:drop-view:public.open_tickets": group,
        group: group,
        "crm:create-view:public.open_tickets": group,
    }
    done = r.reconcile("staging", approvals=[group])
    assert done.result == "Succeeded", done.reason
    labels = pyworld.query("staging", "select enum_range(null::ticket_status)::text")
    assert labels == [("{open,closed}",)]
    assert pyworld.query("staging", "select count(*) from open_tickets") == [(0,)]
