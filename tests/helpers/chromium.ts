// Debian's Chromium under Playwright (playwright-core: no browser download).
// Playwright adds headless mode and a temporary profile itself, and refuses
// --user-data-dir among the arguments. LOCKSTEP_CHROMIUM names another binary.

import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env.LOCKSTEP_CHROMIUM ?? "/usr/bin/chromium";

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set LOCKSTEP_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
