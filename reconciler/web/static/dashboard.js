/*
 * Reconciler dashboard: renders the daemon's JSON API into the page and polls it every few seconds.
 *
 * Loaded by every dashboard page (reconciler/web/templates/layout.html); <body data-page> says which
 * page this is. Every value goes into the DOM as text (textContent, setAttribute), never as HTML:
 * drift values and descriptions come from users' YAML. A section is rebuilt only when its data
 * changed, and open run plans stay open, so refreshing never flickers or loses the reader's place.
 */
(function () {
  "use strict";

  var body = document.body;
  var pageKind = body.getAttribute("data-page");
  var refreshMs = Math.max(1, Number(body.getAttribute("data-refresh") || "3")) * 1000;
  var STATES = ["Synced", "OutOfSync", "Progressing", "Blocked", "Failed", "Unknown"];
  var RESULTS = ["Succeeded", "NoChanges", "Failed", "Blocked", "Interrupted", "Progressing", "Waiting"];
  var CHANGE_WORDS = { create: "missing live", update: "changed", "delete": "not declared" };
  var PLAN_WORDS = { create: "create", update: "update", "delete": "delete" };

  // -- DOM helpers ----------------------------------------------------------------------------------

  function h(tag, attrs) {
    var el = document.createElement(tag);
    var key;
    attrs = attrs || {};
    for (key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      var value = attrs[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(el, c); });
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }

  function byId(id) { return document.getElementById(id); }

  function known(value, list) { return list.indexOf(value) >= 0 ? value : "Unknown"; }

  // -- formatting -----------------------------------------------------------------------------------

  function shortRev(rev) { return rev ? rev.slice(0, 12) : ""; }

  function ago(iso, now) {
    var then = Date.parse(iso);
    if (isNaN(then)) return "";
    var s = Math.max(0, Math.round((now - then) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }

  function absolute(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function when(iso) {
    if (!iso) return h("span", { class: "none" }, "never");
    return h("time", { datetime: iso, title: absolute(iso), "data-ago": iso }, ago(iso, Date.now()));
  }

  function refreshAges() {
    var now = Date.now();
    var nodes = document.querySelectorAll("time[data-ago]");
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = ago(nodes[i].getAttribute("data-ago"), now);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "running";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  }

  function revision(rev, ref) {
    if (!rev) return h("span", { class: "none" }, "none");
    return h("span", { class: "rev" },
      h("code", { title: rev, "data-full": rev }, shortRev(rev)),
      ref ? h("span", { class: "ref" }, ref) : null);
  }

  function stateBadge(state) {
    var s = known(state, STATES);
    return h("span", { class: "badge state-" + s }, state || "Unknown");
  }

  function resultBadge(result) {
    var r = RESULTS.indexOf(result) >= 0 ? result : "Unknown";
    return h("span", { class: "badge result-" + r }, result || "Unknown");
  }

  function riskBadge(risk) {
    var r = ["safe", "destructive", "lock-risk", "data-dependent"].indexOf(risk) >= 0 ? risk : "unknown";
    return h("span", { class: "risk risk-" + r }, risk || "unknown");
  }

  function scalar(v) {
    return v === null || v === undefined || typeof v !== "object";
  }

  // Declared and live values: text as it is, an object as a key/value list (nested parts as JSON).
  function value(v) {
    if (v === null || v === undefined) return h("span", { class: "none" }, "absent");
    if (Array.isArray(v)) {
      if (!v.length) return h("span", { class: "none" }, "empty list");
      if (v.every(scalar)) return h("span", { class: "value" }, v.map(String).join(", "));
      return h("pre", { class: "value" }, JSON.stringify(v, null, 2));
    }
    if (typeof v === "object") {
      var keys = Object.keys(v);
      if (!keys.length) return h("span", { class: "none" }, "no fields");
      return h("dl", { class: "kv" }, keys.map(function (key) {
        var field = v[key];
        return [h("dt", {}, key), h("dd", {}, scalar(field) ? String(field)
          : h("code", {}, JSON.stringify(field)))];
      }));
    }
    return h("span", { class: "value" }, String(v));
  }

  // Narrow screens show tables as stacked cards (CSS display: block), which drops the implicit
  // table roles in some screen readers; explicit roles keep the cells announced with their headers.
  function tableRoles(table) {
    table.setAttribute("role", "table");
    var parts = table.querySelectorAll("thead, tbody");
    for (var i = 0; i < parts.length; i++) parts[i].setAttribute("role", "rowgroup");
    var rows = table.querySelectorAll("tr");
    for (i = 0; i < rows.length; i++) rows[i].setAttribute("role", "row");
    var cells = table.querySelectorAll("th, td");
    for (i = 0; i < cells.length; i++) {
      var c = cells[i];
      if (c.tagName === "TD") c.setAttribute("role", "cell");
      else c.setAttribute("role", c.parentNode.parentNode.tagName === "THEAD" ? "columnheader" : "rowheader");
    }
    return table;
  }

  function cell(label, content, attrs) {
    var a = attrs || {};
    a["data-label"] = label;
    return h("td", a, content);
  }

  // -- status line ----------------------------------------------------------------------------------

  function updated() {
    var el = byId("updated");
    if (!el) return;
    var now = new Date();
    el.replaceChildren("Updated ", h("time", { datetime: now.toISOString(), title: absolute(now.toISOString()) },
      now.toLocaleTimeString()), " · refreshes every " + refreshMs / 1000 + " s");
  }

  function problem(message) {
    var el = byId("problem");
    if (!el) return;
    if (message) {
      el.textContent = "Could not refresh: " + message + ". Showing the last data; trying again every " +
        refreshMs / 1000 + " s.";
      el.hidden = false;
    } else if (!el.hidden) {
      el.hidden = true;
      el.textContent = "";
    }
  }

  function getJSON(path) {
    return fetch(path, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          // The session ended (token revoked or cookie expired): the page itself shows the sign-in form.
          window.location.reload();
          throw new Error("signed out");
        }
        if (!response.ok) {
          return response.json().then(
            function (data) { throw new Error((data && data.error) || ("HTTP " + response.status)); },
            function () { throw new Error("HTTP " + response.status); });
        }
        return response.json();
      });
  }

  // A section is rebuilt only when its data changed since the last poll.
  var seen = {};
  function changed(key, data) {
    var text = JSON.stringify(data);
    if (seen[key] === text) return false;
    seen[key] = text;
    return true;
  }

  // -- overview -------------------------------------------------------------------------------------

  // A workspace's pages live under /workspaces/<name> and read /api/v1/workspaces/<name>; the only
  // (or default) workspace's under / and /api/v1, as before workspaces.
  var apiBase = body.getAttribute("data-api") || "/api/v1";
  var pageBase = body.getAttribute("data-base") || "";

  function environmentRow(env) {
    var href = pageBase + "/environments/" + encodeURIComponent(env.name);
    var run = env.last_run;
    return h("tr", { "data-environment": env.name },
      h("th", { scope: "row", "data-label": "Environment" }, h("a", { href: href, class: "env-link" }, env.name)),
      cell("State", h("div", { class: "state-cell" },
        stateBadge(env.state),
        env.pinned_revision ? h("span", { class: "pill", title: "pinned at " + env.pinned_revision }, "pinned") : null,
        env.reason ? h("p", { class: "reason" }, env.reason) : null)),
      cell("Tracks", env.tracked_ref ? h("span", { class: "ref" }, env.tracked_ref) : h("span", { class: "none" }, "—")),
      cell("Desired revision", revision(env.desired_revision, env.desired_ref)),
      cell("Applied revision", [revision(env.applied_revision, env.applied_ref), behind(env)]),
      cell("Drift", driftCount(env.drift_count, href), { class: "num" }),
      cell("Last run", run ? h("span", { class: "last-run" }, resultBadge(run.result), " ", when(run.started_at),
        h("span", { class: "muted" }, " · " + run.trigger)) : h("span", { class: "none" }, "no runs yet")));
  }

  // The applied revision is not the desired one yet (a run is due, waiting, blocked or failed).
  function behind(env) {
    if (!env.desired_revision || env.desired_revision === env.applied_revision) return null;
    return h("span", { class: "pill pill-behind", title: "desired " + env.desired_revision }, "not the desired revision");
  }

  function driftCount(count, href) {
    if (count === null || count === undefined) return h("span", { class: "none", title: "not checked yet" }, "—");
    if (count === 0) return h("span", { class: "drift-none" }, "0");
    return h("a", { href: href + "#drift-title", class: "drift-some" }, String(count));
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function summary(envs) {
    var counts = {};
    var drift = 0;
    envs.forEach(function (env) {
      counts[env.state] = (counts[env.state] || 0) + 1;
      drift += env.drift_count || 0;
    });
    var parts = [plural(envs.length, "environment", "environments")];
    STATES.forEach(function (state) {
      if (counts[state]) parts.push(counts[state] + " " + state);
    });
    parts.push(plural(drift, "drift item", "drift items"));
    return parts.join(" · ");
  }

  function renderOverview(data) {
    var rows = byId("environment-rows");
    if (!changed("environments", data.environments)) return;
    byId("summary").textContent = summary(data.environments);
    if (!data.environments.length) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" },
        "No environments declared yet: add environments/*.yaml to the desired-state repository.")));
      return;
    }
    rows.replaceChildren.apply(rows, data.environments.map(environmentRow));
    tableRoles(byId("environments"));
  }

  function pollOverview() {
    return getJSON(apiBase + "/environments").then(renderOverview);
  }

  // -- environment page -------------------------------------------------------------------------------

  var envName = body.getAttribute("data-environment");
  var envPath = apiBase + "/environments/" + encodeURIComponent(envName || "");
  var openRuns = {};

  function renderSummary(env) {
    if (!changed("summary", env)) return;
    var state = byId("env-state");
    state.replaceChildren(stateBadge(env.state));
    var reason = byId("env-reason");
    reason.textContent = env.reason || "";
    reason.hidden = !env.reason;
    var facts = byId("env-facts");
    var items = [
      ["Tracks", env.tracked_ref ? h("span", { class: "ref" }, env.tracked_ref) : "—"],
      ["Desired revision", fullRevision(env.desired_revision, env.desired_ref)],
      ["Applied revision", [fullRevision(env.applied_revision, env.applied_ref), behind(env)]],
      ["Pinned", env.pinned_revision ? fullRevision(env.pinned_revision, null) : "no"],
      ["Drift items", env.drift_count === null || env.drift_count === undefined ? "not checked yet" : String(env.drift_count)],
      ["Last drift check", when(env.last_checked_at)]
    ];
    facts.replaceChildren.apply(facts, items.map(function (pair) {
      return h("div", {}, h("dt", {}, pair[0]), h("dd", {}, pair[1]));
    }));
  }

  function fullRevision(rev, ref) {
    if (!rev) return h("span", { class: "none" }, "none");
    return h("span", { class: "rev" },
      h("code", { class: "full", title: rev }, shortRev(rev)),
      ref ? h("span", { class: "ref" }, ref) : null,
      h("span", { class: "visually-hidden" }, " (full id " + rev + ")"));
  }

  function renderDrift(report) {
    var key = { items: report.items, revision: report.revision, ref: report.ref };
    byId("drift-checked").replaceChildren(report.checked_at ? h("span", {}, "Checked ", when(report.checked_at),
      " against ", revision(report.revision, report.ref)) : "Not checked yet");
    if (!changed("drift", key)) return;
    var count = byId("drift-count");
    count.textContent = String(report.items.length);
    var target = byId("drift");
    if (!report.items.length) {
      target.replaceChildren(h("p", { class: "all-clear" }, "No drift: live state matches the applied revision."));
      return;
    }
    var rows = report.items.map(function (item) {
      return h("tr", {},
        h("th", { scope: "row", "data-label": "Drift item" },
          h("code", { class: "id" }, item.id), " ",
          h("span", { class: "change change-" + item.change }, CHANGE_WORDS[item.change] || item.change)),
        cell("Declared (Git)", value(item.declared)),
        cell("Live", value(item.live)),
        cell("Risk", riskBadge(item.risk)),
        cell("First seen", when(item.first_seen)),
        cell("To heal", h("code", { class: "cmd" }, item.heal)));
    });
    var table = h("table", { class: "grid stack drift-table" },
      h("caption", { class: "visually-hidden" }, "Differences between Git and live state"),
      h("thead", {}, h("tr", {},
        ["Drift item", "Declared (Git)", "Live", "Risk", "First seen", "To heal"].map(function (label) {
          return h("th", { scope: "col" }, label);
        }))),
      h("tbody", {}, rows));
    target.replaceChildren(h("div", { class: "table-wrap" }, tableRoles(table)));
  }

  // The checks of the environment's last run: name, result, time, and what was seen or the error.
  function renderChecks(env) {
    var run = env.last_run;
    var checks = run && run.checks ? run.checks : [];
    if (!changed("checks", { id: run ? run.id : null, checks: checks })) return;
    byId("checks-count").textContent = checks.length ? String(checks.length) : "";
    byId("checks-run").replaceChildren(run && checks.length
      ? h("span", {}, "Last run ", when(run.started_at), " at ", revision(run.revision, run.ref)) : "");
    var target = byId("checks");
    if (!checks.length) {
      target.replaceChildren(h("p", { class: "muted" }, run ? "The last run ran no checks." : "No run yet."));
      return;
    }
    var failed = checks.filter(function (c) { return !c.passed; }).length;
    var rows = checks.map(function (c) {
      return h("tr", { class: c.passed ? "check-passed" : "check-failed" },
        h("th", { scope: "row", "data-label": "Check" }, h("code", { class: "id" }, c.name)),
        cell("Target", c.target || "—"),
        cell("When", c.when || "—"),
        cell("Result", c.passed ? h("span", { class: "yes" }, "passed") : h("span", { class: "no" }, "failed")),
        cell("Time", duration(c.duration_seconds)),
        cell("Detail", c.passed ? (c.detail || "") : h("pre", { class: "check-error" }, c.error || c.detail || "")));
    });
    var table = h("table", { class: "grid stack checks-table" },
      h("caption", { class: "visually-hidden" }, "The checks of the last run: " + (checks.length - failed)
        + " passed, " + failed + " failed"),
      h("thead", {}, h("tr", {}, ["Check", "Target", "When", "Result", "Time", "Detail"].map(function (label) {
        return h("th", { scope: "col" }, label);
      }))),
      h("tbody", {}, rows));
    target.replaceChildren(h("div", { class: "table-wrap" }, tableRoles(table)));
  }

  function planTable(run) {
    var applied = {};
    (run.applied || []).forEach(function (id) { applied[id] = true; });
    var rows = run.plan.map(function (item) {
      return h("tr", {},
        h("th", { scope: "row", "data-label": "Change" },
          h("span", { class: "change change-" + item.change }, PLAN_WORDS[item.change] || item.change), " ",
          h("code", { class: "id" }, item.id)),
        cell("Declared", [value(item.declared), item.sql ? h("pre", { class: "sql" }, item.sql) : null]),
        cell("Live before", value(item.live)),
        cell("Risk", riskBadge(item.risk)),
        cell("Applied", applied[item.id] ? h("span", { class: "yes" }, "yes") : h("span", { class: "no" }, "no")));
    });
    return h("div", { class: "table-wrap" }, tableRoles(h("table", { class: "grid stack plan-table" },
      h("caption", { class: "visually-hidden" }, "The run's plan"),
      h("thead", {}, h("tr", {}, ["Change", "Declared", "Live before", "Risk", "Applied"].map(function (label) {
        return h("th", { scope: "col" }, label);
      }))),
      h("tbody", {}, rows))));
  }

  function runItem(run) {
    var planned = run.plan ? run.plan.length : 0;
    var appliedCount = run.applied ? run.applied.length : 0;
    var li = h("li", { class: "run result-line-" + (RESULTS.indexOf(run.result) >= 0 ? run.result : "Unknown"),
      "data-run": run.id },
      h("div", { class: "run-head" }, resultBadge(run.result), " ", when(run.started_at)),
      h("dl", { class: "run-facts" },
        h("div", {}, h("dt", {}, "Trigger"), h("dd", {}, run.trigger)),
        h("div", {}, h("dt", {}, "Revision"), h("dd", {}, revision(run.revision, run.ref))),
        h("div", {}, h("dt", {}, "Took"), h("dd", {}, duration(run.duration_seconds))),
        h("div", {}, h("dt", {}, "Changes"), h("dd", {}, planned ? appliedCount + " of " + planned + " applied"
          : "none")),
        run.drift_after !== null && run.drift_after !== undefined
          ? h("div", {}, h("dt", {}, "Left after"), h("dd", {}, String(run.drift_after))) : null,
        h("div", {}, h("dt", {}, "Run"), h("dd", {}, h("code", { title: run.id }, run.id.slice(0, 8))))),
      run.reason ? h("p", { class: "reason" }, run.reason) : null);
    if (planned) {
      var details = h("details", { class: "plan" },
        h("summary", {}, "Plan: " + planned + (planned === 1 ? " change" : " changes")));
      var fill = function () {
        if (details.open && details.childElementCount === 1) details.appendChild(planTable(run));
      };
      if (openRuns[run.id]) {
        details.open = true;
        fill();
      }
      details.addEventListener("toggle", function () {
        if (details.open) openRuns[run.id] = true; else delete openRuns[run.id];
        fill();
      });
      li.appendChild(details);
    }
    return li;
  }

  function renderRuns(data) {
    if (!changed("runs", data.runs)) return;
    var list = byId("runs");
    if (!data.runs.length) {
      list.replaceChildren(h("li", { class: "muted" }, "No runs yet."));
      return;
    }
    list.replaceChildren.apply(list, data.runs.map(runItem));
  }

  function pollEnvironment() {
    return Promise.all([
      getJSON(envPath).then(function (env) { renderSummary(env); renderChecks(env); }),
      getJSON(envPath + "/drift").then(renderDrift),
      getJSON(envPath + "/runs?limit=25").then(renderRuns)
    ]);
  }

  function colour() {
    var c = body.getAttribute("data-color");
    // The server only passes plain hex colours; checked again because it ends up in CSS.
    if (c && /^#[0-9A-Fa-f]{6}$/.test(c)) document.documentElement.style.setProperty("--env-color", c);
  }

  function syncForm() {
    var form = byId("sync-form");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = byId("sync-status");
      var button = form.querySelector("button");
      button.disabled = true;
      status.textContent = "Asking the daemon…";
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)).toString()
      }).then(function (response) {
        return response.json().then(function (data) {
          status.textContent = response.ok ? data.detail : ("Refused: " + data.error);
        });
      }).catch(function () {
        status.textContent = "Could not reach the daemon.";
      }).then(function () {
        button.disabled = false;
        tick();
      });
    });
  }

  // -- polling -----------------------------------------------------------------------------------------

  var poll = pageKind === "overview" ? pollOverview : pageKind === "environment" ? pollEnvironment : null;
  var timer = null;
  var inFlight = false;

  function tick() {
    if (!poll || inFlight) return;
    inFlight = true;
    window.clearTimeout(timer);
    poll().then(function () {
      problem(null);
      updated();
    }, function (error) {
      problem(error && error.message ? error.message : "network error");
    }).then(function () {
      refreshAges();
      inFlight = false;
      if (!document.hidden) timer = window.setTimeout(tick, refreshMs);
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) tick();  // catch up at once when the tab comes back; no polling while hidden
  });

  if (pageKind === "environment") {
    colour();
    syncForm();
  }
  if (poll) tick();
})();
