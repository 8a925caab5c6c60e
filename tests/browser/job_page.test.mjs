// The job page in a real browser: Debian's Chromium, headless, driven by
// playwright-core (no browser download). Started by
// tests/integration/test_job_page.py with the page of a running job whose
// three steps wait for gates: this script prints `release NAME` when the page
// shows what it waited for, and the Python side opens that gate. Then the
// page of a second job is opened and its Cancel button pressed, and the page
// of a third that writes 11 MB once the page is open. Every wait is bounded.
//
//   node job_page.test.mjs --url http://127.0.0.1:PORT/deploy/jobs/ID \
//        --cancel-url http://127.0.0.1:PORT/deploy/jobs/ID2 \
//        --big-url http://127.0.0.1:PORT/deploy/jobs/ID3 \
//        --screenshot build/job-page.png [--chromium /usr/bin/chromium]
//
// Exits 0 when every check passed, 1 otherwise (the reason on stdout).

import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { launchChromium, runPageChecks } from "./chromium.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    "cancel-url": { type: "string" },
    "big-url": { type: "string" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
assert.ok(args.url && args["cancel-url"] && args["big-url"] && args.screenshot,
  "--url, --cancel-url, --big-url and --screenshot are required");
const LOG_LIMIT = 10 * 1024 * 1024; // what the page keeps of a log
const BIG_LOG = 110000 * 100 + "the last line\n".length; // what the big job writes

const MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>";
const STEP_TIMEOUT = 20000; // ms, for each thing the page must show

const log = (...words) => console.log(...words);
const release = (gate) => log(`release ${gate}`);

const browser = await launchChromium(args.chromium, { viewport: { width: 1100, height: 900 } });
const eventUrls = [];
const onRequest = (request) => {
  if (new URL(request.url()).pathname.endsWith("/events")) eventUrls.push(request.url());
};

await runPageChecks("job_page.test.mjs", browser, async (page) => {
  const waitFor = async (what, fn, arg) => {
    try {
      return await page.waitForFunction(fn, arg, { timeout: STEP_TIMEOUT, polling: 50 });
    } catch (e) {
      throw new Error(`page never showed ${what}: ${e.message.split("\n")[0]}`);
    }
  };
  const facts = () => page.evaluate(() => {
    const out = {};
    for (const dd of document.querySelectorAll("dd[data-field]")) out[dd.dataset.field] = dd.textContent;
    const bar = document.querySelector("dd[data-field=progress] progress");
    out.bar = bar.hasAttribute("value") ? bar.value : null;
    out.log = document.getElementById("log").textContent;
    out.stages = [...document.querySelectorAll("#stage-list li")].map((li) => ({
      name: li.querySelector(".name").textContent,
      took: li.querySelector(".took").textContent,
      open: "from" in li.querySelector(".took").dataset,
    }));
    return out;
  });

  const response = await page.goto(args.url, { waitUntil: "load" });
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-type"], /^text\/html/);
  await waitFor("the live badge", () => document.getElementById("live").textContent === "live");
  assert.equal(eventUrls.length, 1);
  assert.match(eventUrls[0], /\/events\?since=\d+\.\d+$/, "the stream does not start at the page's copy");
  let seen = await facts();
  assert.equal(seen.params, "note=" + MARKUP, "the hostile parameter is not shown as text");
  assert.equal(seen.stage, "Provisioning");
  assert.equal(seen.bar, 10);
  assert.equal(seen.log, "::progress 10 Provisioning\ncreating the VM\n");
  assert.equal(seen.outputs, "none");
  assert.deepEqual(seen.stages.map((s) => [s.name, s.open]), [["Provisioning", true]]);
  assert.match(seen.stages[0].took, /^\d+s$/);
  log("page loaded with the server's copy and following events");

  const steps = [
    [60, "Configuring", "running <b>ansible</b>", "step1", "address=10.0.0.7"],
    [90, "Checking", "checking " + MARKUP, "step2", "address=10.0.0.7note=" + MARKUP],
  ];
  const timeline = ["Provisioning"];
  for (const [value, stage, line, gate, outputs] of steps) {
    release(gate);
    timeline.push(stage);
    await waitFor(`progress ${value} and the line ${line}`, ({ value, stage, line, outputs, rows }) => {
      const bar = document.querySelector("dd[data-field=progress] progress");
      return bar.value === value && document.querySelector("dd[data-field=stage]").textContent === stage &&
        document.getElementById("log").textContent.includes(line + "\n") &&
        document.querySelector("dd[data-field=outputs]").textContent === outputs &&
        document.querySelectorAll("#stage-list li").length === rows;
    }, { value, stage, line, outputs, rows: timeline.length });
    seen = await facts();
    assert.match(seen.progress, new RegExp(`^${value}%$`));
    // The timeline: every stage so far, each closed one with its duration,
    // only the newest open.
    assert.deepEqual(seen.stages.map((s) => s.name), timeline);
    assert.deepEqual(seen.stages.map((s) => s.open), timeline.map((_, i) => i === timeline.length - 1));
    for (const s of seen.stages) assert.match(s.took, /^\d+s$/);
    log(`bar at ${value}, stage ${stage}, the log has "${line}", outputs ${outputs}`);
  }
  // Nothing of the job became markup: no element inside the log or the facts
  // but the page's own, no dialog.
  assert.equal(await page.evaluate(() =>
    document.querySelectorAll("#log *, dd script, dd img, dd b, #stage-list script, #stage-list img").length), 0);
  assert.equal(await page.evaluate(() => document.querySelectorAll("script").length), 1);
  assert.match(seen.duration, /^\d+s$/, "the running duration");
  assert.equal(await page.isVisible("#cancel button"), true, "no cancel button while it runs");
  await page.screenshot({ path: args.screenshot, fullPage: true });
  log(`screenshot ${args.screenshot}`);

  release("step3");
  await waitFor("the job as succeeded", () =>
    document.querySelector("dd[data-field=state] .badge").textContent === "succeeded" &&
    document.getElementById("live").textContent === "finished");
  seen = await facts();
  assert.equal(seen.result, "exit 0");
  assert.match(seen.finished, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.ok(seen.log.endsWith("checking " + MARKUP + "\n::stage " + MARKUP + "\ndeployed\n"), seen.log);
  // The hostile last stage is text, and every stage closed: the last at the job's end.
  assert.deepEqual(seen.stages.map((s) => [s.name, s.open]),
    [...timeline, MARKUP].map((name) => [name, false]));
  assert.equal(await page.evaluate(() => document.querySelectorAll("#stage-list li *:not(span)").length), 0);
  assert.equal(seen.outputs, "address=10.0.0.7note=" + MARKUP);
  assert.equal(await page.isVisible("#cancel button"), false, "a cancel button on a finished job");
  // The finished job's stream is closed, not reopened.
  const streams = eventUrls.length;
  await page.waitForTimeout(4000);
  assert.equal(eventUrls.length, streams, "the page reconnected after the final state");
  log("the page followed the job to succeeded");

  // The second job's page cancels it.
  await page.goto(args["cancel-url"], { waitUntil: "load" });
  await waitFor("the second job's live badge", () => document.getElementById("live").textContent === "live");
  await page.click("#cancel button");
  await waitFor("the second job as canceled", () =>
    document.querySelector("dd[data-field=state] .badge").textContent === "canceled" &&
    document.querySelector("#cancel").hidden);
  log("cancel from the page canceled the second job");

  // More output than the page keeps: the oldest lines leave, and it says so.
  await page.goto(args["big-url"], { waitUntil: "load" });
  await waitFor("the big job's live badge", () => document.getElementById("live").textContent === "live");
  release("big1");
  try {
    await page.waitForFunction(() => document.getElementById("log").textContent.endsWith("the last line\n"),
      null, { timeout: 60000, polling: 200 });
  } catch (e) {
    throw new Error(`the big job's last line never came: ${e.message.split("\n")[0]}`);
  }
  const big = await page.evaluate(() => ({
    shown: new TextEncoder().encode(document.getElementById("log").textContent).length,
    cutHidden: document.getElementById("log-cut").hidden,
    cut: document.querySelector("#log-cut .text").textContent,
    whole: document.querySelector("#log-cut a").getAttribute("href"),
  }));
  assert.ok(big.shown <= LOG_LIMIT && big.shown > LOG_LIMIT - 100, `the page keeps ${big.shown} bytes`);
  assert.equal(big.cutHidden, false, "the cut is not said");
  assert.equal(big.cut, `The first ${BIG_LOG - big.shown} bytes of the log are not shown here.`);
  assert.match(big.whole, /\/jobs\/\d+\/log$/);
  log(`the big log: ${big.shown} bytes kept, ${BIG_LOG - big.shown} said to be cut`);
  release("big2");
  await waitFor("the big job as succeeded", () =>
    document.querySelector("dd[data-field=state] .badge").textContent === "succeeded");
}, onRequest);
