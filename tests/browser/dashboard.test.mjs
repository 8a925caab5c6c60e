// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core (no browser download). Started by
// tests/integration/test_dashboard.py, which runs httpd and owns the jobs'
// release files: this script prints `release NAME` when the page shows what
// it waited for, and the Python side opens that gate. Every wait is bounded.
//
//   node dashboard.test.mjs --url http://127.0.0.1:PORT/deploy/ \
//        --screenshot build/dashboard.png [--chromium /usr/bin/chromium]
//
// Exits 0 when every check passed, 1 otherwise (the reason on stdout).

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { launchChromium } from "./chromium.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
assert.ok(args.url && args.screenshot, "--url and --screenshot are required");

const MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>";
const STEP_TIMEOUT = 20000; // ms, for each thing the page must show

const log = (...words) => console.log(...words);
const release = (gate) => log(`release ${gate}`);

const browser = await launchChromium(args.chromium, {
  viewport: { width: 1400, height: 1100 },
});
const context = browser.context;

const dialogs = [];
const consoleErrors = [];
const pageErrors = [];
const eventRequests = []; // {url, lastEventId}
let failed = false;

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("request", async (request) => {
    if (!new URL(request.url()).pathname.endsWith("/events")) return;
    const entry = { url: request.url(), lastEventId: null };
    eventRequests.push(entry);
    const headers = await request.allHeaders().catch(() => ({}));
    entry.lastEventId = headers["last-event-id"] ?? null;
  });

  const response = await page.goto(args.url, { waitUntil: "load" });
  assert.equal(response.status(), 200);
  const marker = `loaded-${Date.now()}`;
  await page.evaluate((m) => { window.__dashboardMarker = m; }, marker);
  await page.waitForFunction(() => document.getElementById("live").textContent === "live", null,
                             { timeout: STEP_TIMEOUT });
  log("page loaded and following events");

  // Rows rendered by the server before any event.
  const pre = await page.evaluate(() => ({
    running: document.querySelectorAll("#running tbody tr").length,
    queued: document.querySelectorAll("#queued tbody tr").length,
    waiting: document.querySelectorAll("#waiting tbody tr").length,
  }));
  assert.deepEqual(pre, { running: 1, queued: 2, waiting: 1 }, "server-rendered sections");

  // One table of columns: what the script builds for a job is what the
  // server rendered for it (the clock-driven cells aside).
  const mismatches = await page.evaluate(async () => {
    const table = JSON.parse(document.body.dataset.columns);
    const textOf = (node) => (typeof node === "string" ? node
      : (node.text ?? "") + (node.children || []).map(textOf).join(""));
    const out = [];
    for (const tr of document.querySelectorAll("tr[data-job]")) {
      const job = await (await fetch(tr.querySelector("td[data-field=id] a").href)).json();
      const cells = dashboardView.rowOf(table, tr.dataset.section, job, Date.now());
      cells.forEach(({ field, cell }, i) => {
        const td = tr.cells[i];
        const text = cell.nodes ? cell.nodes.map(textOf).join("") : cell.text;
        if (td.dataset.field !== field) out.push(`${job.id}: cell ${i} is ${td.dataset.field}, not ${field}`);
        else if (field !== "elapsed" && field !== "left" && td.textContent !== text)
          out.push(`${job.id} ${field}: server ${JSON.stringify(td.textContent)}, script ${JSON.stringify(text)}`);
        else if ("title" in cell && td.title !== cell.title) out.push(`${job.id} ${field} title: ${td.title}`);
      });
      if (tr.cells.length !== cells.length) out.push(`${job.id}: ${tr.cells.length} cells, not ${cells.length}`);
    }
    return out;
  });
  assert.deepEqual(mismatches, [], "server and script render a job differently");

  // Start a job with the page's own deploy form.
  const webappForm = page.locator('tr[data-target="webapp"] form');
  await webappForm.locator('input[name="version"]').fill("1.2.3");
  await webappForm.locator("button").click();
  const webappResult = webappForm.locator(".result[data-job]");
  await webappResult.waitFor({ timeout: STEP_TIMEOUT });
  const jobId = Number(await webappResult.getAttribute("data-job"));
  assert.match(await webappResult.textContent(), new RegExp(`job #${jobId} accepted`));
  log(`deploy form started job ${jobId}`);

  const row = `tr[data-job="${jobId}"]`;
  const seen = [];
  const waitFor = async (what, fn, arg) => {
    try {
      return await page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT, polling: 50 });
    } catch (e) {
      throw new Error(`page never showed ${what}: ${e.message.split("\n")[0]}`);
    }
  };
  const barOf = (sel) => {
    const bar = document.querySelector(`#running ${sel} progress`);
    return bar && bar.hasAttribute("value") ? bar.value : null;
  };
  for (const [value, stage, gate] of [[10, "A", "step1"], [60, "B", "step2"], [90, "C", "step3"]]) {
    await waitFor(`progress ${value}`, ({ sel, value, stage }) => {
      const bar = document.querySelector(`#running ${sel} progress`);
      const td = document.querySelector(`#running ${sel} td[data-field=stage]`);
      return bar && bar.value === value && td && td.textContent === stage;
    }, { sel: row, value, stage });
    seen.push(await page.evaluate(barOf, row));
    log(`bar at ${seen.at(-1)}, stage ${stage}`);
    release(gate);
  }
  await waitFor("the job in the history as succeeded", (sel) => {
    const badge = document.querySelector(`#history ${sel} td[data-field=state] .badge`);
    return badge && badge.textContent === "succeeded" && !document.querySelector(`#running ${sel}`);
  }, row);
  assert.deepEqual(seen, [10, 60, 90], "the bar advanced 10 -> 60 -> 90");
  const historyRow = await page.evaluate((sel) => {
    const cells = {};
    for (const td of document.querySelector(`#history ${sel}`).cells) cells[td.dataset.field] = td.textContent;
    return cells;
  }, row);
  assert.equal(historyRow.result, "exit 0");
  assert.equal(historyRow.params, "version=1.2.3");
  assert.match(historyRow.duration, /^\d+s$/);
  assert.equal(historyRow.actions, "log");
  assert.match(await page.locator('tr[data-target="webapp"] td[data-field=last]').textContent(),
               new RegExp(`#${jobId} succeeded`));
  log("job succeeded without a reload");

  // The stream ends every 2 s (DeployEventsTimeout): EventSource reconnects
  // and resumes with Last-Event-ID, which the next job's events prove.
  const deadline = Date.now() + STEP_TIMEOUT;
  while (!eventRequests.some((r) => r.lastEventId) && Date.now() < deadline)
    await page.waitForTimeout(100);
  const resumed = eventRequests.find((r) => r.lastEventId);
  assert.ok(resumed, `no reconnect sent Last-Event-ID: ${JSON.stringify(eventRequests)}`);
  assert.match(eventRequests[0].url, /\/events\?since=\d+$/);
  log(`event stream reconnected ${eventRequests.length - 1} time(s), Last-Event-ID ${resumed.lastEventId}`);

  // Markup in a parameter and in the stage is shown as text and never runs.
  const markupForm = page.locator('tr[data-target="markup"] form');
  await markupForm.locator('input[name="note"]').fill(MARKUP);
  await markupForm.locator("button").click();
  const markupResult = markupForm.locator(".result[data-job]");
  await markupResult.waitFor({ timeout: STEP_TIMEOUT });
  const markupId = Number(await markupResult.getAttribute("data-job"));
  const markupRow = `tr[data-job="${markupId}"]`;
  await waitFor("the markup job's stage", ({ sel, text }) => {
    const td = document.querySelector(`#running ${sel} td[data-field=stage]`);
    return td && td.textContent === text;
  }, { sel: markupRow, text: MARKUP });
  const cells = await page.evaluate((sel) => {
    const tr = document.querySelector(`#running ${sel}`);
    return {
      params: tr.querySelector("td[data-field=params]").textContent,
      elements: tr.querySelectorAll("td[data-field=stage] *, td[data-field=params] code *").length,
    };
  }, markupRow);
  assert.equal(cells.params, `note=${MARKUP}`);
  assert.equal(cells.elements, 0, "markup became elements");
  release("markup");
  await waitFor("the markup job in the history", ({ sel, text }) => {
    const tr = document.querySelector(`#history ${sel}`);
    return tr && tr.querySelector("td[data-field=stage]").textContent === text;
  }, { sel: markupRow, text: MARKUP });
  log(`markup job ${markupId} shown as text`);

  // The page's cancel button on a queued job: the row moves to the history.
  const queuedIds = await page.$$eval("#queued tbody tr", (rows) => rows.map((r) => r.dataset.job));
  const victim = queuedIds.at(-1); // the oldest queued job
  await page.locator(`#queued tr[data-job="${victim}"] form.cancel button`).click();
  await waitFor("the canceled job in the history", (sel) => {
    const badge = document.querySelector(`#history ${sel} .badge`);
    return badge && badge.textContent === "canceled" && !document.querySelector(`#queued ${sel}`);
  }, `tr[data-job="${victim}"]`);
  assert.equal(await page.locator("#queued h2 .count").textContent(), String(queuedIds.length - 1));
  log(`cancel button canceled job ${victim}`);

  // Everything above happened in the page loaded first.
  const still = await page.evaluate(() => ({
    marker: window.__dashboardMarker,
    navigations: performance.getEntriesByType("navigation").length,
    images: document.images.length,
    scripts: document.scripts.length,
  }));
  assert.deepEqual(still, { marker, navigations: 1, images: 0, scripts: 1 }, "page was reloaded or injected");

  await page.screenshot({ path: args.screenshot, fullPage: true, animations: "disabled" });
  log(`screenshot: ${args.screenshot}`);

  // The history: filtered and paged without leaving the page, in the URL.
  // test_dashboard.py finished 55 jobs of "quick" (a deploy form, /bin/true)
  // before the page was loaded.
  const base = new URL(args.url).pathname.replace(/\/$/, "");
  const historyRows = () => page.$$eval("#history tbody tr", (trs) => trs.map((tr) => ({
    id: Number(tr.dataset.job),
    target: tr.querySelector("td[data-field=target]").textContent,
    state: tr.querySelector("td[data-field=state]").textContent,
  })));
  const quickIds = await page.evaluate(async (b) =>
    (await (await fetch(`${b}/jobs?target=quick&limit=1000`)).json()).map((j) => j.id), base);
  assert.ok(quickIds.length >= 55, `quick jobs: ${quickIds.length}`);
  const waitView = (what, search, rowCount) => waitFor(what, ({ search, rowCount }) =>
    location.search === search && document.querySelectorAll("#history tbody tr").length === rowCount &&
    document.querySelector("#history h2 .count").textContent === String(rowCount), { search, rowCount });

  await page.selectOption("#history-filter select[name=state]", "canceled");
  await waitView("the canceled jobs only", "?state=canceled", 1);
  assert.deepEqual(await historyRows(), [{ id: Number(victim), target: "db", state: "canceled" }]);
  log("filter by state: only the canceled job");

  await page.selectOption("#history-filter select[name=state]", "");
  await page.selectOption("#history-filter select[name=target]", "quick");
  await waitView("the first page of quick", "?target=quick", 50);
  let shown = await historyRows();
  assert.ok(shown.every((r) => r.target === "quick" && r.state === "succeeded"), JSON.stringify(shown));
  assert.deepEqual(shown.map((r) => r.id).sort((x, y) => y - x), quickIds.slice(0, 50));
  const lowest = quickIds[49];
  assert.equal(await page.getAttribute("a[data-page=older]", "href"), `${base}/?target=quick&before=${lowest}`);
  assert.equal(await page.isHidden("a[data-page=newest]"), true);
  log("filter by target: 50 quick jobs and an older link");

  await page.click("a[data-page=older]");
  await waitView("the older page of quick", `?target=quick&before=${lowest}`, quickIds.length - 50);
  assert.deepEqual((await historyRows()).map((r) => r.id).sort((x, y) => y - x), quickIds.slice(50));
  assert.equal(await page.isHidden("a[data-page=older]"), true, "nothing is older");
  log(`older page: ${quickIds.length - 50} jobs`);

  // On an older page a job that finishes pushes no rows around.
  const quickForm = page.locator('tr[data-target="quick"] form');
  const deployQuick = async () => {
    const result = quickForm.locator(".result");
    const before = await result.getAttribute("data-job");
    await quickForm.locator("button").click();
    const handle = await waitFor("a new quick job", ({ before }) => {
      const r = document.querySelector('tr[data-target="quick"] form .result');
      return r.dataset.job && r.dataset.job !== before && r.dataset.job;
    }, { before });
    const id = Number(await handle.jsonValue());
    await waitFor(`job ${id} finished`, ({ b, id }) => fetch(`${b}/jobs/${id}`).then((r) => r.json())
      .then((j) => j.state === "succeeded"), { b: base, id });
    // Its events have reached the page once the target's last result shows it.
    await waitFor(`job ${id} as quick's last result`, (id) =>
      document.querySelector('tr[data-target="quick"] td[data-field=last]').dataset.job === String(id), id);
    return id;
  };
  const whileOlder = await deployQuick();
  assert.deepEqual((await historyRows()).map((r) => r.id).sort((x, y) => y - x), quickIds.slice(50),
                   "a new job entered an older page");
  assert.equal(await page.locator(`tr[data-job="${whileOlder}"]`).count(), 0, "the finished job is on no section");

  await page.goBack();
  await waitView("back to the first page", "?target=quick", 50);
  log("back to the first page");

  // A live finish appears only where it matches the filter.
  await page.selectOption("#history-filter select[name=state]", "failed");
  await waitView("quick's failed jobs (none)", "?target=quick&state=failed", 0);
  assert.equal(await page.isVisible("#history .empty"), true);
  const unmatched = await deployQuick();
  assert.deepEqual(await historyRows(), [], `job ${unmatched} (succeeded) shown under state=failed`);
  await page.selectOption("#history-filter select[name=state]", "");
  await waitView("the first page of quick again", "?target=quick", 50);
  const matched = await deployQuick();
  await waitFor(`job ${matched} at the top of the history`, (id) => {
    const first = document.querySelector("#history tbody tr");
    return first && first.dataset.job === String(id);
  }, matched);
  assert.equal((await historyRows()).length, 50, "the page keeps 50 rows");
  log(`live finish ${matched} on top of the filtered page, ${unmatched} kept out of state=failed`);

  // The view survives a reload: the server renders it from the URL.
  await page.selectOption("#history-filter select[name=state]", "succeeded");
  await waitView("quick's succeeded jobs", "?target=quick&state=succeeded", 50);
  const olderHref = await page.getAttribute("a[data-page=older]", "href");
  const beforeReload = await historyRows();
  await page.reload({ waitUntil: "load" });
  assert.equal(new URL(page.url()).search, "?target=quick&state=succeeded");
  assert.deepEqual(await page.evaluate(() => ({
    target: document.querySelector("#history-filter select[name=target]").value,
    state: document.querySelector("#history-filter select[name=state]").value,
  })), { target: "quick", state: "succeeded" });
  assert.deepEqual((await historyRows()).map((r) => r.id).sort(), beforeReload.map((r) => r.id).sort());
  assert.equal(await page.getAttribute("a[data-page=older]", "href"), olderHref);
  log("the filtered view survived a reload");

  assert.deepEqual(dialogs, [], "a dialog opened");
  assert.deepEqual(pageErrors, [], "the page threw");
  assert.deepEqual(consoleErrors, [], "the console logged errors");
  log("dashboard.test.mjs: every check passed");
} catch (e) {
  failed = true;
  log(`FAILED: ${e.stack || e}`);
  log(`dialogs: ${JSON.stringify(dialogs)}`);
  log(`console errors: ${JSON.stringify(consoleErrors)}`);
  log(`page errors: ${JSON.stringify(pageErrors)}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
