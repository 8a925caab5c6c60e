"use strict";
// The dashboard script's pure part (mod_deploy/httpd/dashboard/dashboard_view.js),
// with node's test runner: node --test tests/unit/js/ (scripts/test runs it).
// Durations are checked against tests/unit/duration_cases.json, the table
// the C++ format_duration is tested with (tests/unit/test_duration.cc).
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const view = require("../../../mod_deploy/httpd/dashboard/dashboard_view.js");

const DASH = "\u2014";
const MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>";
const NOW = Date.parse("2026-11-21T10:10:00.000Z");

// A column table as the server serializes it (<body data-columns>), with a
// column of every kind.
const TABLE = {
  columns: {
    id: { kind: "link", key: "id" },
    target: { kind: "text", key: "target" },
    state: { kind: "badge", key: "state" },
    params: { kind: "params", key: "params" },
    outputs: { kind: "params", key: "outputs" },
    progress: { kind: "progress", key: "progress" },
    stage: { kind: "text", key: "stage" },
    requests: { kind: "text", key: "requests" },
    started: { kind: "time", key: "started_at" },
    elapsed: { kind: "elapsed", key: "started_at" },
    left: { kind: "countdown", key: "not_before" },
    duration: { kind: "duration", key: "" },
    result: { kind: "result", key: "" },
    by: { kind: "text", key: "submitted_by" },
    actions: { kind: "actions", key: "" },
  },
  sections: {
    running: ["id", "target", "state", "params", "progress", "stage", "outputs", "started", "elapsed", "by",
      "actions"],
    waiting: ["id", "requests", "left", "actions"],
    history: ["id", "state", "stage", "duration", "result", "actions"],
  },
};

const job = (fields) => ({
  id: 42,
  target: "webapp",
  state: "running",
  params: { version: "1.2.3" },
  outputs: { address: "10.0.0.7" },
  progress: 40,
  stage: "Provisioning",
  requests: 1,
  not_before: "2026-11-21T10:00:00.000Z",
  submitted_by: "alice",
  submitted_at: "2026-11-21T10:00:00.000Z",
  started_at: "2026-11-21T10:05:55.000Z",
  finished_at: null,
  exit_code: null,
  signal: null,
  links: { self: "/deploy/jobs/42", log: "/deploy/jobs/42/log", cancel: "/deploy/jobs/42/cancel" },
  ...fields,
});

const cells = (section, j) => {
  const out = {};
  for (const { field, cell } of view.rowOf(TABLE, section, j, NOW)) out[field] = cell;
  return out;
};

// Every node is plain data of a few known properties: dashboard.js sets
// them with createElement, Object.assign and textContent only.
const NODE_KEYS = new Set(["tag", "props", "data", "text", "children"]);
const PROPS = new Set(["className", "href", "method", "action", "type", "title"]);
const checkNode = (node) => {
  if (typeof node === "string") return;
  for (const key of Object.keys(node)) assert.ok(NODE_KEYS.has(key), `node property ${key}`);
  assert.match(node.tag, /^(a|span|code|form|button)$/);
  for (const prop of Object.keys(node.props || {})) assert.ok(PROPS.has(prop), `element property ${prop}`);
  for (const child of node.children || []) checkNode(child);
};

test("durations read as the shared table of cases says", () => {
  const file = path.join(__dirname, "..", "duration_cases.json");
  const cases = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.ok(cases.length >= 10);
  for (const [seconds, text] of cases) assert.equal(view.formatDuration(Math.round(seconds * 1000)), text, `${seconds} s`);
});

test("a row has the cells of its section's columns, in the table's order", () => {
  const row = view.rowOf(TABLE, "running", job({}), NOW);
  assert.deepEqual(row.map((c) => c.field), TABLE.sections.running);
  const waiting = view.rowOf(TABLE, "waiting", job({ state: "waiting", requests: 3 }), NOW);
  assert.deepEqual(waiting.map((c) => c.field), ["id", "requests", "left", "actions"]);
  assert.equal(waiting[1].cell.text, "3");
});

test("each kind shows the member its column names", () => {
  const c = cells("running", job({}));
  assert.deepEqual(c.id.nodes, [{ tag: "a", props: { className: "mono", href: "/deploy/jobs/42" }, text: "#42" }]);
  assert.equal(c.target.text, "webapp");
  assert.deepEqual(c.state.nodes, [{ tag: "span", props: { className: "badge s-running" }, text: "running" }]);
  assert.deepEqual(c.params.nodes, [{ tag: "code", text: "version=1.2.3" }]);
  assert.deepEqual(c.outputs.nodes, [{ tag: "code", text: "address=10.0.0.7" }]);
  assert.deepEqual(cells("running", job({ outputs: {} })).outputs.nodes, []);
  assert.deepEqual(c.progress, { progress: 40, text: "40%" });
  assert.equal(c.stage.text, "Provisioning");
  assert.deepEqual(c.started, { text: "2026-11-21 10:05:55", title: "2026-11-21T10:05:55.000Z" });
  assert.deepEqual(c.elapsed, { text: "4m 05s", data: { from: String(Date.parse("2026-11-21T10:05:55.000Z")) } });
  assert.equal(c.by.text, "alice");
  const other = view.rowOf({ ...TABLE, sections: { running: ["by"] }, columns: { by: { kind: "text", key: "target" } } },
                           "running", job({}), NOW);
  assert.equal(other[0].cell.text, "webapp", "the key, not the field, picks the member");
});

test("missing values show a dash", () => {
  const c = cells("running", job({ progress: null, stage: null, submitted_by: null, started_at: null }));
  assert.deepEqual(c.progress, { progress: null, text: DASH });
  assert.equal(c.stage.text, DASH);
  assert.equal(c.by.text, DASH);
  assert.deepEqual(c.started, { text: DASH, title: "" });
  assert.equal(c.elapsed.text, DASH);
  const h = cells("history", job({ state: "canceled", started_at: null, finished_at: "2026-11-21T10:06:00.000Z" }));
  assert.equal(h.duration.text, DASH);
  assert.deepEqual(h.result, { text: DASH, bad: false });
});

test("the countdown says how long until the quiet window ends, then now", () => {
  const soon = cells("waiting", job({ state: "waiting", not_before: "2026-11-21T10:14:05.000Z" }));
  assert.equal(soon.left.text, "in 4m 05s");
  assert.equal(soon.left.data.until, String(Date.parse("2026-11-21T10:14:05.000Z")));
  assert.equal(cells("waiting", job({ state: "waiting" })).left.text, "now");
  assert.equal(view.countdownText(NaN, NOW), DASH);
  assert.equal(view.elapsedText(NOW - 3729000, NOW), "1h 02m 09s");
});

test("a finished job shows its duration, its result and only its log", () => {
  const finished = { started_at: "2026-11-21T10:00:00.000Z", finished_at: "2026-11-21T10:04:05.900Z" };
  const ok = cells("history", job({ state: "succeeded", exit_code: 0, ...finished }));
  assert.equal(ok.duration.text, "4m 05s");
  assert.deepEqual(ok.result, { text: "exit 0", bad: false });
  assert.deepEqual(ok.actions.nodes, [{ tag: "a", props: { href: "/deploy/jobs/42/log" }, text: "log" }]);
  assert.equal(ok.state.nodes[0].text, "succeeded");
  assert.deepEqual(cells("history", job({ state: "failed", exit_code: 3, ...finished })).result, { text: "exit 3", bad: true });
  const timedOut = cells("history", job({ state: "timed_out", signal: 15, ...finished }));
  assert.deepEqual(timedOut.result, { text: "signal 15", bad: true });
  assert.equal(timedOut.state.nodes[0].text, "timed out");
});

test("an unfinished job can be canceled, and has a log once started", () => {
  const running = cells("running", job({})).actions.nodes;
  assert.equal(running.length, 2);
  assert.deepEqual(running[1], {
    tag: "form",
    props: { className: "cancel", method: "post", action: "/deploy/jobs/42/cancel" },
    data: { kind: "cancel" },
    children: [{ tag: "button", props: { type: "submit" }, text: "Cancel" }],
  });
  const queued = cells("running", job({ state: "queued", started_at: null })).actions.nodes;
  assert.deepEqual(queued.map((n) => n.tag), ["form"]);
});

test("markup from a job stays text in plain nodes", () => {
  const hostile = job({
    target: MARKUP, stage: MARKUP, submitted_by: MARKUP, params: { [MARKUP]: MARKUP }, outputs: { x: MARKUP },
  });
  const c = cells("running", hostile);
  assert.equal(c.stage.text, MARKUP);
  assert.equal(c.target.text, MARKUP);
  assert.deepEqual(c.params.nodes, [{ tag: "code", text: MARKUP + "=" + MARKUP }]);
  assert.deepEqual(c.outputs.nodes, [{ tag: "code", text: "x=" + MARKUP }]);
  assert.equal(view.stageRows(job({ stages: [{ name: MARKUP, started_at: null, finished_at: null }] }), NOW)[0].name,
    MARKUP);
  for (const { cell } of view.rowOf(TABLE, "running", hostile, NOW)) for (const node of cell.nodes || []) checkNode(node);
  for (const node of view.lastResultNodes(job({ state: "failed", finished_at: MARKUP }))) checkNode(node);
});

test("the stage timeline: each stage's start and duration, the open one counting", () => {
  const stages = [
    { name: "Create VM", started_at: "2026-11-21T10:05:55.000Z", finished_at: "2026-11-21T10:06:40.500Z" },
    { name: "Ansible", started_at: "2026-11-21T10:06:40.500Z", finished_at: null },
  ];
  assert.deepEqual(view.stageRows(job({ stages }), NOW), [
    { name: "Create VM", started: "2026-11-21 10:05:55", title: "2026-11-21T10:05:55.000Z", took: "45s", from: null },
    {
      name: "Ansible", started: "2026-11-21 10:06:40", title: "2026-11-21T10:06:40.500Z", took: "3m 19s",
      from: Date.parse("2026-11-21T10:06:40.500Z"),
    },
  ]);
  assert.deepEqual(view.stageRows(job({ stages: [] }), NOW), []);
  assert.deepEqual(view.stageRows(job({ stages: undefined }), NOW), []);
});

test("the target's last result links the job and shows when it finished", () => {
  const nodes = view.lastResultNodes(job({ state: "succeeded", finished_at: "2026-11-21T10:04:05.123Z" }));
  assert.equal(nodes[0].text, "#42");
  assert.equal(nodes[2].props.className, "badge s-succeeded");
  assert.deepEqual(nodes[4], {
    tag: "span", props: { className: "sub", title: "2026-11-21T10:04:05.123Z" }, text: "2026-11-21 10:04:05",
  });
});

test("only jobs with a section of the table are shown", () => {
  assert.ok(view.isShownJob(TABLE, job({})));
  assert.ok(view.isShownJob(TABLE, job({ state: "lost" })), "every final state goes to the history");
  assert.ok(!view.isShownJob(TABLE, job({ state: "queued" })), "this table has no queued section");
  assert.ok(!view.isShownJob(TABLE, job({ state: "constructor" })));
  assert.ok(!view.isShownJob(TABLE, job({ id: "42" })));
  assert.ok(!view.isShownJob(TABLE, null));
});

test("a column of an unknown kind is refused", () => {
  assert.throws(() => view.cellOf({ kind: "innerHTML", key: "stage" }, job({}), NOW), /no formatter kind innerHTML/);
  assert.throws(() => view.cellOf({ kind: "toString", key: "stage" }, job({}), NOW), /no formatter kind/);
});

// The history's filter and page (BASE/?target=&state=&before=).
const TARGETS = ["webapp", "db"];
const FIRST = { target: "", state: "", before: null };

test("the history's view is read from the query string, dropping what the page cannot send", () => {
  assert.deepEqual(view.parseHistoryView("", TARGETS), FIRST);
  assert.deepEqual(view.parseHistoryView("?target=db&state=failed&before=17", TARGETS),
                   { target: "db", state: "failed", before: 17 });
  assert.deepEqual(view.parseHistoryView("?target=" + encodeURIComponent(MARKUP) + "&state=running&before=01",
                                         TARGETS), FIRST, "unknown target, unfinished state, bad id");
  assert.deepEqual(view.parseHistoryView("?target=other&state=constructor&before=-3", TARGETS), FIRST);
  assert.deepEqual(view.parseHistoryView("?target=&state=&before=&auto", TARGETS), FIRST);
});

test("the history's view goes back into the page's query and into GET BASE/jobs", () => {
  assert.equal(view.historySearch(FIRST, null), "");
  const db = { target: "db", state: "timed_out", before: 9 };
  assert.equal(view.historySearch(db, null), "?target=db&state=timed_out");
  assert.equal(view.historySearch(db, 5), "?target=db&state=timed_out&before=5");
  assert.deepEqual(view.parseHistoryView(view.historySearch(db, 9), TARGETS), db, "a round trip");
  assert.equal(view.jobsQuery(db, 9, 51), "target=db&state=timed_out&limit=51&before=9");
  assert.equal(view.jobsQuery(FIRST, null, 51), "limit=51");
});

test("a live event inserts a finished job only into a first page whose filter it matches", () => {
  const done = job({ target: "webapp", state: "failed", id: 50 });
  assert.equal(view.historyChange(FIRST, done, false), "insert");
  assert.equal(view.historyChange({ target: "webapp", state: "failed", before: null }, done, false), "insert");
  assert.equal(view.historyChange({ target: "db", state: "", before: null }, done, false), "none");
  assert.equal(view.historyChange({ target: "", state: "succeeded", before: null }, done, false), "none");
  assert.equal(view.historyChange({ target: "", state: "", before: 80 }, done, false), "none",
               "an older page takes no new row");
  assert.equal(view.historyChange({ target: "", state: "", before: 80 }, done, true), "update",
               "a row shown is kept up to date on any page");
  assert.equal(view.historyChange(FIRST, job({ state: "running" }), false), "none");
});

test("a row pushed off the first page's bottom stays reachable through the older page", () => {
  assert.equal(view.cursorAfterTrim(null, 30), 31, "the first trim opens an older page");
  assert.equal(view.cursorAfterTrim(31, 29), 31);
  assert.equal(view.cursorAfterTrim(31, 40), 41, "an old id that finished late and then left");
});

test("a page of GET BASE/jobs keeps the view's finished jobs, latest finish first, and finds the older page", () => {
  const at = (s) => `2026-11-21T10:00:${String(s).padStart(2, "0")}.000Z`;
  const jobs = [
    job({ id: 9, state: "running", finished_at: null }),
    job({ id: 8, state: "succeeded", finished_at: at(1) }),
    job({ id: 7, state: "failed", finished_at: at(5) }),
    job({ id: 6, state: "succeeded", finished_at: at(3) }),
    job({ id: 5, state: "succeeded", finished_at: at(2) }),
  ];
  const page = view.pageOf(FIRST, jobs, 3, true, 5);
  assert.deepEqual(page.jobs.map((j) => j.id), [7, 6, 8], "the 3 newest finished, by finish");
  assert.equal(page.older, 6, "older: below the lowest id shown");
  assert.deepEqual(view.pageOf(FIRST, jobs, 10, false, 5).older, null, "nothing left");
  assert.deepEqual(view.pageOf(FIRST, jobs, 10, true, 5).older, 5, "not all read yet: on from the last read");
  const failed = view.pageOf({ target: "", state: "failed", before: null }, jobs, 3, false, 5);
  assert.deepEqual(failed.jobs.map((j) => j.id), [7]);
});

test("jobOfEvent takes a job and nothing else", () => {
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.deepEqual(view.jobOfEvent('{"id": 3, "state": "running"}'), { id: 3, state: "running" });
    assert.equal(view.jobOfEvent("not json"), null);
    assert.equal(view.jobOfEvent("null"), null);
    assert.equal(view.jobOfEvent('{"id": "3", "state": "running"}'), null);
    assert.equal(view.jobOfEvent('{"id": 3}'), null);
  } finally {
    console.warn = warn;
  }
});

test("postForJob answers the job, the server's message, the status or the failure", async () => {
  const answer = (status, body) => async () => ({
    ok: status >= 200 && status < 300,
    status,
    json: async () => JSON.parse(body),
  });
  const post = (send) => view.postForJob("/x", new URLSearchParams(), send);
  assert.deepEqual(await post(answer(202, '{"id": 7, "state": "canceled"}')), { job: { id: 7, state: "canceled" } });
  assert.deepEqual(await post(answer(409, '{"error": "conflict", "message": "job 7 has finished"}')),
    { error: "job 7 has finished" });
  assert.deepEqual(await post(answer(502, "<html>")), { error: "HTTP 502" });
  assert.deepEqual(await post(answer(202, '{"error": "x"}')), { error: "HTTP 202" });
  const offline = async () => {
    throw new Error("offline");
  };
  assert.deepEqual(await post(offline), { error: "request failed: offline" });
});
