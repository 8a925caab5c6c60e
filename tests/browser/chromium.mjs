// Debian's Chromium, headless, through playwright-core (no browser
// download), in a fresh profile: what every browser test here starts with.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// A persistent context in a new profile directory; `options` are more
// playwright context options (viewport, httpCredentials...). close() ends
// the browser and removes the profile.
export async function launchChromium(executablePath, options = {}) {
  const profile = mkdtempSync(join(tmpdir(), "mod_deploy-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    ...options,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Runs `checks(page)` on the context's page and exits the process: 0 when
// they passed and the page opened no dialog (each is dismissed), threw
// nothing and logged no console error; else 1, with why on stdout. `name`
// starts the last line. `onRequest(request)`: each request the page makes.
export async function runPageChecks(name, browser, checks, onRequest = () => {}) {
  const problems = { dialogs: [], pageErrors: [], consoleErrors: [] };
  let failed = false;
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("dialog", (dialog) => {
      problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => problems.pageErrors.push(String(error)));
    page.on("request", onRequest);
    await checks(page);
    for (const [what, list] of Object.entries(problems))
      if (list.length) throw new Error(`${what}: ${JSON.stringify(list)}`);
    console.log(`${name}: every check passed`);
  } catch (e) {
    failed = true;
    console.log(`FAILED: ${e.stack || e}`);
    console.log(`problems: ${JSON.stringify(problems)}`);
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
