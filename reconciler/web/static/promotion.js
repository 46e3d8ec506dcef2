/*
 * Reconciler promotion page: renders GET <api>/releases into templates/promotion.html and polls it
 * (<api> is the body's data-api: /api/v1/workspaces/<name> for a named workspace, else /api/v1).
 *
 * Loaded only by the promotion page (besides dashboard.js, which does nothing there). Every value goes
 * into the DOM as text (textContent), never as HTML: tag names and reasons come from users' repositories.
 */
(function () {
  "use strict";

  var refreshMs = Math.max(1, Number(document.body.getAttribute("data-refresh") || "3")) * 1000;
  var apiBase = document.body.getAttribute("data-api") || "/api/v1";
  var WORDS = { runs: "runs", ran: "ran", next: "next", blocked: "blocked" };
  var last = null;
  var timer = null;

  function h(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function byId(id) { return document.getElementById(id); }

  function cell(data) {
    var td = h("td", "cell");
    td.setAttribute("data-environment", data.environment);
    var state = WORDS[data.state] ? data.state : "next";
    var label = state === "blocked" && data.blocked ? "blocked: " + data.blocked.gate : WORDS[state];
    td.appendChild(h("span", "badge cell-state cell-" + state, label));
    if (state === "ran" && data.ran_at) td.appendChild(h("span", "cell-line", "ran " + when(data.ran_at)));
    if (data.verified_at) td.appendChild(h("span", "cell-line", "verified " + when(data.verified_at)));
    if (data.checks) td.appendChild(h("span", "cell-line", "checks " + data.checks));
    if (state === "blocked" && data.blocked) td.title = data.blocked.reason;
    return td;
  }

  function render(view) {
    var head = byId("release-head");
    while (head.children.length > 1) head.removeChild(head.lastChild);
    view.environments.forEach(function (env) {
      var th = h("th", null, env);
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    var rows = byId("release-rows");
    rows.textContent = "";
    if (!view.rows.length) {
      var empty = h("tr");
      var td = h("td", "muted", "No release tags or tracked branches yet.");
      td.setAttribute("colspan", String(view.environments.length + 1));
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    var list = byId("next-list");
    list.textContent = "";
    view.rows.forEach(function (row) {
      var tr = h("tr");
      tr.setAttribute("data-revision", row.name);
      var th = h("th");
      th.setAttribute("scope", "row");
      th.appendChild(h("span", "rev-name", row.name));
      th.appendChild(h("span", "rev-meta", row.kind + " " + row.commit.slice(0, 12)));
      if (row.tree_id) th.appendChild(h("span", "rev-meta", "tree " + row.tree_id.slice(0, 12)));
      tr.appendChild(th);
      row.cells.forEach(function (c) { tr.appendChild(cell(c)); });
      rows.appendChild(tr);
      if (!row.next) return;
      var li = h("li");
      li.setAttribute("data-revision", row.name);
      li.appendChild(h("strong", null, row.name + " → " + row.next.environment));
      if (row.next.blocked) {
        li.appendChild(document.createTextNode(": blocked by "));
        li.appendChild(h("span", "badge cell-blocked", row.next.blocked.gate));
        li.appendChild(h("span", "why", row.next.blocked.reason));
        li.appendChild(h("code", "unblock", row.next.blocked.unblock));
      } else {
        li.appendChild(document.createTextNode(": no gate holds it"));
        li.appendChild(h("code", "unblock", row.next.next_step || ""));
      }
      list.appendChild(li);
    });
    if (!list.children.length) list.appendChild(h("li", "muted", "Every revision runs everywhere it can."));
  }

  function problem(message) {
    var el = byId("problem");
    el.hidden = !message;
    el.textContent = message ? "Could not load the promotion view: " + message : "";
  }

  function tick() {
    window.clearTimeout(timer);
    fetch(apiBase + "/releases?limit=10", { credentials: "same-origin", cache: "no-store",
                                         headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (text) {
        var view = JSON.parse(text);
        var key = JSON.stringify({ environments: view.environments, rows: view.rows });
        if (key !== last) {
          render(view);
          last = key;
        }
        problem(null);
        byId("updated").textContent = "Updated " + new Date().toLocaleTimeString();
      }, function (error) {
        problem(error && error.message ? error.message : "network error");
      })
      .then(function () {
        if (!document.hidden) timer = window.setTimeout(tick, refreshMs);
      });
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
  tick();
})();
