// The page in a real browser (npm run test:browser): Debian's Chromium driven
// by Playwright against the static build (dist-web/, built here) served by a
// tiny static server. The kv guest runs as a pair; keys are written through
// the kv panel; "Kill primary" is clicked; the backup must go live, the
// outside world's console must be a fault-free run's (the same requests sent
// to the guest run solo in Node) with every output number once and none
// missing, and every acknowledged key must read back. Any console error or
// page error fails the test; Tab must reach every control. A screenshot is
// saved to .scratch/page.png (docs/img/page.png is one of these).

import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../helpers/chromium.js";
import { kvSoloConsole, type KvOp } from "../helpers/kv-solo.js";
import { serveStatic, type StaticServer } from "../helpers/static-server.js";
import { buildWeb, ROOT } from "../helpers/web-build.js";

interface Seen {
  guest: string;
  mode: string;
  serial: string;
  serialSeqs: number[];
  segments: { slot: "primary" | "backup"; text: string }[];
  seqs: number[];
  events: string[];
  acked: KvOp[];
  reports: Record<"primary" | "backup", { status: { role: string; state: string; epoch: number } } | null>;
  ended: Record<"primary" | "backup", string | null>;
  ready: boolean;
  consoles: Record<"primary" | "backup", string>;
}

let server: StaticServer;
let browser: Browser;
let page: Page;
const problems: string[] = [];

const seen = () => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { lockstepPage: unknown }).lockstepPage, (_k, v) => (typeof v === "bigint" ? String(v) : v))) as Seen);
async function until(what: string, ok: (s: Seen) => boolean, ms = 30_000): Promise<Seen> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await seen();
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; events:\n${s.events.join("\n")}`);
    await page.waitForTimeout(100);
  }
}

/** One request through the panel, waiting for its acknowledgement. */
async function kv(op: "put" | "get" | "incr", key: string, value = ""): Promise<void> {
  const before = (await seen()).acked.length;
  await page.fill("#kv-key", key);
  if (op === "put") await page.fill("#kv-value", value);
  await page.click(op === "put" ? "#kv-put" : op === "get" ? "#kv-get" : "#kv-incr");
  await until(`${op} ${key} acknowledged`, (s) => s.acked.length > before, 20_000);
}

/**
 * Every output number once, in order, none missing; each replica's console
 * shows what the outside world took from it, the pieces read in order are
 * the outside world's stream, and that is the fault-free run's.
 */
async function expectFaultFreeConsole(s: Seen): Promise<void> {
  expect(s.seqs).toEqual(s.seqs.map((_, i) => i + 1));
  expect(s.serialSeqs.length).toBe(s.serial.length);
  expect(s.segments.map((x) => x.text).join("")).toBe(s.serial);
  for (const slot of ["primary", "backup"] as const) {
    expect(s.consoles[slot]).toBe(s.segments.filter((x) => x.slot === slot).map((x) => x.text).join(""));
  }
  // The fault-free run: the same requests to the guest alone, in Node.
  const faultFree = await kvSoloConsole("kv.elf verbose=1", s.acked);
  expect(faultFree.startsWith(s.serial)).toBe(true);
  expect(s.serial).toBe(faultFree);
}

/** Reads back every key written so far and checks the values. */
async function readBack(): Promise<Seen> {
  const puts = new Map((await seen()).acked.filter((a) => a.op === "put").map((p) => [p.key, p.value]));
  for (const key of puts.keys()) await kv("get", key);
  const s = await until("the last reply's line on the console", (x) => (x.serial.match(/\n/g) ?? []).length >= 3 + x.acked.length);
  const gets = s.acked.filter((a) => a.op === "get").slice(-puts.size);
  expect(gets.map((g) => [g.key, g.value])).toEqual([...puts]);
  return s;
}

beforeAll(async () => {
  await buildWeb();
  server = await serveStatic(`${ROOT}dist-web`);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1050 } });
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(server.url);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe("the page in Chromium", () => {
  test("the kv guest as a pair: keys written, the primary killed, the backup live, the console the fault-free run's, every acknowledged key readable", async () => {
    await until("the kv guest ready", (s) => s.ready && s.guest === "kv" && s.serial.includes("kv: ready"));
    for (let i = 1; i <= 5; i++) await kv("put", `key${i}`, `value ${i}`);
    await kv("incr", "counter");
    // The primary is killed between requests: then no request is in flight, none is resent, and the console must
    // be exactly the fault-free run's (a resent request that had been executed prints "(replayed)").
    await page.waitForTimeout(300);
    await page.click("#kill-primary");
    const live = await until("the backup live", (s) => s.reports.backup?.status.state === "live", 20_000);
    expect(live.ended.primary ?? "killed").toBe("killed");
    expect(live.events.some((e) => /going live|won epoch/.test(e))).toBe(true);
    for (let i = 6; i <= 8; i++) await kv("put", `key${i}`, `value ${i}`);
    await kv("incr", "counter");
    // Every acknowledged key reads back from the survivor.
    const s = await readBack();
    expect(s.acked.filter((a) => a.op === "incr").map((a) => a.value)).toEqual(["1", "2"]);
    expect(s.consoles.backup.length).toBeGreaterThan(0);

    await expectFaultFreeConsole(s);
    mkdirSync(`${ROOT}.scratch`, { recursive: true });
    await page.screenshot({ path: `${ROOT}.scratch/page.png` });
    expect(problems).toEqual([]);
  }, 180_000);

  test("checkpoint mode: the primary killed, a new backup brought the state, the new primary killed too: the console is still the fault-free run's", async () => {
    await page.selectOption("#mode", "checkpoint");
    await until("the kv guest ready in checkpoint mode", (s) => s.ready && s.mode === "checkpoint" && s.serial.includes("kv: ready"));
    for (let i = 1; i <= 3; i++) await kv("put", `c${i}`, `first ${i}`);
    await page.waitForTimeout(300);
    await page.click("#kill-primary");
    await until("the backup live", (s) => s.reports.backup?.status.state === "live", 20_000);
    await kv("put", "c4", "after the first failover");
    await page.click("#new-backup");
    // The new backup sits in the emptied slot (the primary's) and follows once it has the state.
    await until("the new backup following", (s) => s.reports.primary?.status.state === "following" && s.reports.backup?.status.state === "paired", 20_000);
    await kv("incr", "n");
    await page.waitForTimeout(300);
    await page.click("#kill-primary");
    await until("the new backup live", (s) => s.reports.primary?.status.state === "live" && s.reports.primary.status.epoch === 3, 20_000);
    await kv("put", "c5", "after the second failover");
    await kv("incr", "n");
    const s = await readBack();
    expect(s.acked.filter((a) => a.op === "incr").map((a) => a.value)).toEqual(["1", "2"]);
    await expectFaultFreeConsole(s);
    expect(problems).toEqual([]);
  }, 180_000);

  test("the embedding example (web/examples/single.html) runs its VM to the end", async () => {
    const example = await browser.newPage();
    const errors: string[] = [];
    example.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    example.on("pageerror", (e) => errors.push(e.message));
    await example.goto(`${server.url}examples/single.html`);
    await example.waitForFunction(() => /\[exit-port, exit status 0, \d+ instructions\]/.test(document.querySelector("#console")?.textContent ?? ""), null, { timeout: 30_000 });
    const text = (await example.textContent("#console")) ?? "";
    // ticks=200 every=20: ten tick lines, then the guest's summary.
    expect(text.match(/^tick \d+:/gm)?.length).toBe(10);
    expect(text).toContain("ticks: 200 ticks, done");
    expect(errors).toEqual([]);
    await example.close();
  });

  test("Tab reaches every control", async () => {
    const controls = await page.$$eval("button, select, input", (els) => els.map((e) => e.id));
    expect(controls.length).toBeGreaterThanOrEqual(10);
    // From the top of the page (a click on the heading), Tab forward until every control was reached or the focus came round again.
    await page.click("h1");
    const reached = new Set<string>();
    const order: string[] = [];
    for (let i = 0; i < 200 && controls.some((id) => !reached.has(id)); i++) {
      await page.keyboard.press("Tab");
      const id = await page.evaluate(() => { const a = document.activeElement; return a ? a.id || a.tagName.toLowerCase() : ""; });
      order.push(id);
      reached.add(id);
    }
    expect(controls.filter((id) => !reached.has(id)), `the Tab order: ${order.join(" ")}`).toEqual([]);
    // Focus is visible: the focused control has an outline.
    await page.focus("#kill-backup");
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Tab");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe("none");
    expect(problems).toEqual([]);
  });
});
