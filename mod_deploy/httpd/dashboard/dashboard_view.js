"use strict";
// The dashboard's pure part: no DOM here. What a cell shows, from the column
// table the server renders the page with (Column in httpd/deploy_dashboard.cc,
// serialized into <body data-columns>) and a job's JSON. A cell comes back as
// plain data: {text} or {nodes}, and optionally title, bad (a red cell),
// data (data-* attributes), progress (the bar's value, null when unknown).
// A node is a string (a text node) or {tag, props, data, text, children};
// dashboard.js turns them into elements with createElement and textContent
// only, never innerHTML, so nothing from a job is ever parsed as markup.
//
// In the page this file and dashboard.js are one nonce'd script; under node
// (tests/unit/js) it is a CommonJS module.
const dashboardView = (() => {
  const DASH = "\u2014";
  const FINAL = new Set(["succeeded", "failed", "timed_out", "canceled", "expired", "lost"]);

  const pad = (n) => String(n).padStart(2, "0");
  // "0s", "42s", "4m 05s", "1h 02m 09s", as format_duration (core/duration.h).
  const formatDuration = (ms) => {
    const s = Math.floor(Math.max(Number(ms) || 0, 0) / 1000);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
    return Math.floor(s / 3600) + "h " + pad(Math.floor(s / 60) % 60) + "m " + pad(s % 60) + "s";
  };
  // "2026-11-21 10:00:05" from the server's RFC 3339 UTC time.
  const displayTime = (iso) => (typeof iso === "string" && iso ? iso.slice(0, 10) + " " + iso.slice(11, 19) : DASH);
  const isFinal = (state) => FINAL.has(state);
  // Unfinished jobs have a section of their state's name; finished ones one.
  const sectionOf = (state) => (isFinal(state) ? "history" : state);
  const present = (value) => value !== null && value !== undefined;

  // The running time of a job started at `from` (ms), and the time left
  // until `until`: what an elapsed or countdown cell shows at `now`.
  const elapsedText = (from, now) => (Number.isFinite(from) ? formatDuration(now - from) : DASH);
  const countdownText = (until, now) => {
    const left = until - now;
    if (!Number.isFinite(left)) return DASH;
    return left > 0 ? "in " + formatDuration(left) : "now";
  };
  const millis = (iso) => (typeof iso === "string" ? Date.parse(iso) : NaN);

  const badge = (state) => ({ tag: "span", props: { className: "badge s-" + state }, text: state.replace("_", " ") });
  const jobLink = (job) => ({ tag: "a", props: { className: "mono", href: job.links.self }, text: "#" + job.id });

  // One function per formatter kind (CellKind in deploy_dashboard.cc): what a
  // cell of that kind shows of `job[key]` (or of the members the kind names).
  const KINDS = {
    link: (job) => ({ nodes: [jobLink(job)] }),
    text: (job, key) => ({ text: present(job[key]) ? String(job[key]) : DASH }),
    badge: (job) => ({ nodes: [badge(job.state)] }),
    params: (job, key) => ({
      nodes: Object.entries(job[key] || {}).map(([k, v]) => ({ tag: "code", text: k + "=" + v })),
    }),
    progress: (job) => {
      const value = present(job.progress) ? job.progress : null;
      return { progress: value, text: value === null ? DASH : value + "%" };
    },
    time: (job, key) => ({ text: displayTime(job[key]), title: present(job[key]) ? String(job[key]) : "" }),
    elapsed: (job, key, now) => {
      const from = millis(job[key]);
      return { text: elapsedText(from, now), data: { from: String(from) } };
    },
    countdown: (job, key, now) => {
      const until = millis(job[key]);
      return { text: countdownText(until, now), data: { until: String(until) } };
    },
    duration: (job) => ({
      text: job.started_at && job.finished_at
        ? formatDuration(millis(job.finished_at) - millis(job.started_at)) : DASH,
    }),
    result: (job) => {
      if (present(job.exit_code)) return { text: "exit " + job.exit_code, bad: job.exit_code !== 0 };
      if (present(job.signal)) return { text: "signal " + job.signal, bad: true };
      return { text: DASH, bad: false };
    },
    actions: (job) => {
      const nodes = [];
      if (job.started_at) nodes.push({ tag: "a", props: { href: job.links.log }, text: "log" });
      if (!isFinal(job.state)) {
        nodes.push({
          tag: "form",
          props: { className: "cancel", method: "post", action: job.links.cancel },
          data: { kind: "cancel" },
          children: [{ tag: "button", props: { type: "submit" }, text: "Cancel" }],
        });
      }
      return { nodes };
    },
  };

  // The cell of `column` ({kind, key}) for `job` at `now` (ms).
  const cellOf = (column, job, now) => {
    const kind = Object.prototype.hasOwnProperty.call(KINDS, column.kind) ? KINDS[column.kind] : null;
    if (!kind) throw new Error("mod_deploy: no formatter kind " + column.kind);
    return kind(job, column.key, now);
  };

  // The cells of `job`'s row in `section`, in the table's order: [{field, cell}].
  const rowOf = (table, section, job, now) =>
    table.sections[section].map((field) => ({ field, cell: cellOf(table.columns[field], job, now) }));

  // The "last result" cell of a target's row.
  const lastResultNodes = (job) => [
    jobLink(job), " ", badge(job.state), " ",
    { tag: "span", props: { className: "sub", title: job.finished_at }, text: displayTime(job.finished_at) },
  ];

  // Whether an event's data is a job that has a section in `table`.
  const isShownJob = (table, job) =>
    Boolean(job) && typeof job.id === "number" && typeof job.state === "string" &&
    Object.prototype.hasOwnProperty.call(table.sections, sectionOf(job.state));

  // The history section's view: {target, state, before}, "" or null for
  // "any" and "the first page". It lives in the page's query string (the
  // server renders the same view from it, as GET BASE/jobs reads it).
  // A value the page could not have sent is dropped, as the server does.
  const FINAL_STATES = ["succeeded", "failed", "timed_out", "canceled", "expired", "lost"];
  const parseHistoryView = (search, targets) => {
    const q = new URLSearchParams(search);
    const target = q.get("target") || "";
    const state = q.get("state") || "";
    const before = q.get("before") || "";
    return {
      target: targets.includes(target) ? target : "",
      state: FINAL_STATES.includes(state) ? state : "",
      before: /^[1-9][0-9]{0,15}$/.test(before) ? Number(before) : null,
    };
  };
  const queryOf = (pairs) => {
    const q = new URLSearchParams();
    for (const [name, value] of pairs) if (value !== "" && value !== null) q.append(name, String(value));
    return q.toString();
  };
  // The page's own query for `view` with `before` ("?target=a&before=7", or "").
  const historySearch = (view, before) => {
    const q = queryOf([["target", view.target], ["state", view.state], ["before", before]]);
    return q ? "?" + q : "";
  };
  // The query of GET BASE/jobs that reads `limit` jobs of `view` below `before`.
  const jobsQuery = (view, before, limit) =>
    queryOf([["target", view.target], ["state", view.state], ["limit", limit], ["before", before]]);

  const matchesHistory = (view, job) =>
    isFinal(job.state) && (!view.target || job.target === view.target) &&
    (!view.state || job.state === view.state) && (view.before === null || job.id < view.before);

  // What a job's event does to the history section: "update" its row
  // (shown), "insert" it at the top (a job that finished into the first
  // page's filter), or "none" (it does not belong here; on an older page
  // no new row pushes the others around).
  const historyChange = (view, job, shown) => {
    if (shown) return "update";
    return view.before === null && matchesHistory(view, job) ? "insert" : "none";
  };

  // The older page's `before` once the row of `trimmedId` left the bottom
  // of the page: that job must be on the older page, so the cursor rises
  // above it (null: there was no older page).
  const cursorAfterTrim = (cursor, trimmedId) =>
    (cursor === null ? trimmedId + 1 : Math.max(cursor, trimmedId + 1));

  // The history's order: the latest finish first (then the higher id), as
  // the server renders it and where a job that just finished goes.
  const historyOrder = (a, b) => {
    if (a.finished_at !== b.finished_at) return String(b.finished_at) < String(a.finished_at) ? -1 : 1;
    return b.id - a.id;
  };

  // A page from the jobs GET BASE/jobs answered, newest id first (`more`:
  // jobs may be left below the last one read, at `last`): the first `limit`
  // of the view's jobs in the history's order, and the older page's `before`
  // (the lowest id shown) or null.
  const pageOf = (view, jobs, limit, more, last) => {
    const matching = jobs.filter((job) => matchesHistory(view, job));
    const shown = matching.slice(0, limit);
    let older = null;
    if (matching.length > limit) older = shown[shown.length - 1].id;
    else if (more) older = last;
    return { jobs: shown.slice().sort(historyOrder), older };
  };

  // POSTs `data` (URLSearchParams) to `url`, a route that answers a job's
  // JSON (submit, cancel): {job} when it did, else {error: the text to show}.
  // `send`: fetch, unless a test gives its own.
  const postForJob = async (url, data, send = fetch) => {
    try {
      const response = await send(url, { method: "POST", body: data, headers: { Accept: "application/json" } });
      let answer = null;
      try {
        answer = await response.json();
      } catch (e) {
        answer = null;
      }
      if (response.ok && answer && typeof answer.id === "number") return { job: answer };
      return { error: (answer && answer.message) || "HTTP " + response.status };
    } catch (e) {
      return { error: "request failed: " + e.message };
    }
  };

  // The job page's stage timeline (stages_html in httpd/deploy_job_page.cc
  // renders the same): for each of the job's `stages`, its name, start, and
  // how long it took, or `from` (ms) for the open one, whose time so far
  // the page counts on.
  const stageRows = (job, now) =>
    (Array.isArray(job.stages) ? job.stages : []).map((stage) => {
      const started = millis(stage.started_at);
      const finished = millis(stage.finished_at);
      const open = !present(stage.finished_at);
      return {
        name: String(stage.name),
        started: displayTime(stage.started_at),
        title: present(stage.started_at) ? String(stage.started_at) : "",
        took: open ? elapsedText(started, now) : formatDuration(finished - started),
        from: open ? started : null,
      };
    });

  // The job of a `job` event's data; null (and a warning) for anything else.
  const jobOfEvent = (data) => {
    let job = null;
    try {
      job = JSON.parse(data);
    } catch (e) {
      job = null;
    }
    if (job && typeof job.id === "number" && typeof job.state === "string") return job;
    console.warn("mod_deploy: ignoring an event that is not a job");
    return null;
  };

  return {
    postForJob, jobOfEvent, DASH, formatDuration, displayTime, isFinal, sectionOf, elapsedText, countdownText,
    cellOf, rowOf, lastResultNodes, isShownJob, FINAL_STATES, parseHistoryView, historySearch,
    jobsQuery, matchesHistory, historyChange, cursorAfterTrim, historyOrder, pageOf, stageRows,
  };
})();

if (typeof module === "object" && module.exports) module.exports = dashboardView;
