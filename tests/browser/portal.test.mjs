// examples/django-portal in a real browser: Debian's Chromium, headless,
// driven by playwright-core, logged in with Basic credentials (one login for
// /portal and /deploy). Started by tests/integration/test_django_portal.py,
// which runs httpd (mod_deploy and the portal under mod_wsgi) and owns the
// job's gates: this script prints `release NAME` when the page shows what it
// waited for. Every wait is bounded.
//
//   node portal.test.mjs --url http://127.0.0.1:PORT/portal/ --user alice \
//        --password s3cret --screenshot build/portal.png [--chromium /usr/bin/chromium]
//
// Exits 0 when every check passed, 1 otherwise (the reason on stdout).

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { launchChromium } from "./chromium.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    user: { type: "string" },
    password: { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
assert.ok(args.url && args.user && args.password && args.screenshot,
          "--url, --user, --password and --screenshot are required");

const STEP_TIMEOUT = 20000; // ms, for each thing a page must show
const log = (...words) => console.log(...words);
const release = (gate) => log(`release ${gate}`);

const browser = await launchChromium(args.chromium, {
  viewport: { width: 1200, height: 900 },
  httpCredentials: { username: args.user, password: args.password },
});
const context = browser.context;

const problems = []; // dialogs, page errors, console errors of every page
function watch(page, name) {
  page.on("dialog", (dialog) => {
    problems.push(`${name} dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${name} console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${name} threw: ${error}`));
  return page;
}

const text = (page, selector) => page.locator(selector).first().textContent({ timeout: STEP_TIMEOUT });
const waitFor = (page, what, fn, arg) =>
  page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT }).catch((e) => {
    throw new Error(`waiting for ${what}: ${e.message}`);
  });

let failed = false;
try {
  // The form: submit, and land on the job page at once, before the job ends.
  const jobPage = watch(context.pages()[0] ?? (await context.newPage()), "job page");
  const form = await jobPage.goto(new URL("deploy/", args.url).href, { waitUntil: "load" });
  assert.equal(form.status(), 200);
  await jobPage.selectOption("select[name=target]", "vm");
  await jobPage.fill("input[name=vm]", "web-01");
  await jobPage.fill("input[name=version]", "2.0.1");
  await Promise.all([
    jobPage.waitForURL(/\/portal\/jobs\/\d+\/$/, { timeout: STEP_TIMEOUT }),
    jobPage.click("#deploy button[type=submit]"),
  ]);
  const id = Number(jobPage.url().match(/\/jobs\/(\d+)\/$/)[1]);
  const rendered = await text(jobPage, '#job [data-field="state"]');
  assert.ok(["queued", "running"].includes(rendered), `job ${id} ${rendered} on arrival`);
  log(`redirected to job ${id} (${rendered})`);

  // The job page follows the job: progress, stage and log, live.
  await waitFor(jobPage, "the job page to follow its events",
                () => document.getElementById("live").textContent === "live");
  await waitFor(jobPage, "progress 20 Provisioning", () =>
    document.querySelector('#job progress').value === 20 &&
    document.querySelector('#job [data-field="stage"]').textContent === "Provisioning");
  await waitFor(jobPage, "the log so far", () =>
    document.getElementById("log").textContent.includes("creating web-01"));
  release("step1");
  await waitFor(jobPage, "progress 80 Configuring", () =>
    document.querySelector('#job progress').value === 80 &&
    document.querySelector('#job [data-field="stage"]').textContent === "Configuring");
  log("job page shows the progress live");

  // The history, in a second tab, while the job page stays open. Its event
  // stream is held back until the job has finished on the server: the page
  // was rendered with the job running, and ?since= must bring the change
  // that happened before the stream connected.
  const history = watch(await context.newPage(), "history");
  let letStreamThrough;
  const streamHeld = new Promise((resolve) => { letStreamThrough = resolve; });
  let streams = 0;
  await history.route(/\/deploy\/events/, async (route) => {
    if (streams++ === 0) await streamHeld;
    await route.continue();
  });
  assert.equal((await history.goto(args.url, { waitUntil: "load" })).status(), 200);
  const marker = `loaded-${Date.now()}`;
  await history.evaluate((m) => { window.__portalMarker = m; }, marker);
  const row = (jid) => `#jobs tr[data-job="${jid}"]`;
  const field = (jid, name) => text(history, `${row(jid)} [data-field="${name}"]`);
  assert.equal(await field(id, "version"), "2.0.1");
  assert.equal(await field(id, "state"), "running");
  release("step2");
  const deadline = Date.now() + STEP_TIMEOUT;
  const serverState = () => history.evaluate(async (jid) =>
    (await (await fetch(`${DEPLOY_BASE}/jobs/${jid}`)).json()).state, id);
  while ((await serverState()) !== "succeeded") {
    assert.ok(Date.now() < deadline, `job ${id} did not succeed on the server`);
    await history.waitForTimeout(100);
  }
  assert.equal(await field(id, "state"), "running", "the stream was held back");
  letStreamThrough();
  await waitFor(history, "the history to follow its events",
                () => document.getElementById("live").textContent === "live");
  await waitFor(history, `job ${id} succeeded in the history`, (sel) =>
    document.querySelector(`${sel} [data-field="state"]`)?.textContent === "succeeded", row(id));
  log("history caught up with a change made before its stream connected");

  // The job page, open all along, saw the end without a reload.
  await waitFor(jobPage, "the job page to show the end", () =>
    document.querySelector('#job [data-field="state"]').textContent === "succeeded" &&
    document.getElementById("live").textContent === "finished" &&
    !document.getElementById("cancel") &&
    document.getElementById("log").textContent.includes("deployed 2.0.1 to web-01"));

  // A job submitted after the page was rendered gets a row of its own, with
  // its parameters, and its end, from the stream.
  const second = await history.evaluate(async () => {
    const answer = await fetch(`${DEPLOY_BASE}/targets/vm`, {
      method: "POST", body: new URLSearchParams({ vm: "web-02", version: "3.1.4" }),
    });
    return { status: answer.status, job: await answer.json() };
  });
  assert.equal(second.status, 202, JSON.stringify(second));
  const id2 = second.job.id;
  await waitFor(history, `a row for job ${id2}`, (sel) => {
    const r = document.querySelector(sel);
    return r && r.querySelector('[data-field="version"]').textContent === "3.1.4" &&
      r.querySelector('[data-field="vm"]').textContent === "web-02" &&
      r.querySelector("a").textContent === `#${r.dataset.job}` &&
      r.querySelector('[data-field="state"]').textContent === "succeeded";
  }, row(id2));
  const order = await history.evaluate(() => [...document.querySelectorAll("#jobs tr")]
    .map((r) => Number(r.dataset.job)));
  assert.deepEqual(order, [id2, id], "newest first");
  log(`history shows job ${id2}, submitted after the page was rendered, to its end`);
  const logText = await jobPage.evaluate(() => document.getElementById("log").textContent);
  assert.equal(logText.split("creating web-01").length, 2, `the log is shown once:\n${logText}`);
  assert.equal(await history.evaluate(() => window.__portalMarker), marker, "history was reloaded");

  await history.screenshot({ path: args.screenshot, fullPage: true, animations: "disabled" });
  log(`screenshot: ${args.screenshot}`);
  assert.deepEqual(problems, [], "dialogs, errors or console errors");
  log("portal.test.mjs: every check passed");
} catch (e) {
  failed = true;
  log(`FAILED: ${e.stack || e}`);
  log(`problems: ${JSON.stringify(problems)}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
