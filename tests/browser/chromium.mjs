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
