// The pair as two processes over TCP (`lockstep primary` / `lockstep backup`,
// host/cli/replica-process.ts), as a user runs them: with no fault, with the
// primary or the backup killed with SIGKILL mid-run, and with a backup that
// has the wrong key. Each replica prints its outputs numbered (--outputs
// numbered); taking each number once from both streams must give exactly
// the console of a solo run (`lockstep run`, virtual clock).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freeTcpPort, runLockstep, startLockstep, type LockstepProc } from "./helpers/cli.js";
import { mergeNumbered } from "./helpers/numbered-outputs.js";

const REPO = new URL("..", import.meta.url).pathname;
const GUEST = join(REPO, "guests/bin/ticks.elf");
const CMD = ["--clock", "virtual", "--cmdline", "ticks=3000 every=500"];
const tmp = mkdtempSync(join(tmpdir(), "lockstep-ft-tcp-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

type Proc = LockstepProc;
const start = (args: string[]): Proc => startLockstep(REPO, args);


async function pairRun(o: { kill?: "primary" | "backup"; backupKey?: string; key?: string }) {
  const arb = join(tmp, `arb${++dirs}`);
  rmSync(arb, { recursive: true, force: true });
  (await import("node:fs")).mkdirSync(arb);
  const port = await freeTcpPort();
  const common = [GUEST, ...CMD, "--arbiter", `file:${arb}`, "--outputs", "numbered", "--timeout-ms", "1000"];
  const p = start(["primary", ...common, "--listen", `127.0.0.1:${port}`, ...(o.key ? ["--key", o.key] : [])]);
  for (let t = 0; !/waiting for the backup/.test(p.err()) && t < 400; t++) await new Promise((r) => setTimeout(r, 25));
  const b = start(["backup", ...common, "--connect", `127.0.0.1:${port}`, ...((o.backupKey ?? o.key) ? ["--key", (o.backupKey ?? o.key)!] : [])]);
  if (o.kill) {
    const victim = o.kill === "primary" ? p : b;
    // Mid-run: once the primary has shown some output.
    for (let t = 0; p.out().split("\n").length < 60 && t < 800; t++) await new Promise((r) => setTimeout(r, 10));
    victim.child.kill("SIGKILL");
  }
  return { p, b, pExit: await p.exit, bExit: await b.exit };
}

describe("lockstep primary / backup over TCP", () => {
  let solo: string | null = null;
  const soloRun = async () => (solo ??= (await runLockstep(REPO, "run", GUEST, ...CMD)).stdout);

  it("with no fault, the numbered outputs are the solo run's console; both exit 0", async () => {
    const r = await pairRun({});
    expect([r.pExit, r.bExit], r.p.err() + r.b.err()).toEqual([0, 0]);
    expect(mergeNumbered(r.p.out(), r.b.out())).toBe(await soloRun());
  });

  it("the primary killed with SIGKILL mid-run: the backup goes live; the console is the solo run's", async () => {
    const key = join(tmp, "k1");
    writeFileSync(key, "ab".repeat(32) + "\n", { mode: 0o600 });
    const r = await pairRun({ kill: "primary", key });
    expect(r.pExit).toBe(-9);
    expect(r.bExit, r.b.err()).toBe(0);
    expect(r.b.err()).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    expect(mergeNumbered(r.p.out(), r.b.out())).toBe(await soloRun());
  });

  it("the backup killed with SIGKILL mid-run: the primary goes on alone; the console is the solo run's", async () => {
    const r = await pairRun({ kill: "backup" });
    expect(r.bExit).toBe(-9);
    expect(r.pExit, r.p.err()).toBe(0);
    expect(r.p.err()).toMatch(/primary won epoch 2/);
    expect(mergeNumbered(r.p.out(), r.b.out())).toBe(await soloRun());
  });

  it("a backup with the wrong key is refused and logged; the primary keeps waiting", async () => {
    const good = join(tmp, "good"), bad = join(tmp, "bad");
    writeFileSync(good, "11".repeat(32), { mode: 0o600 });
    writeFileSync(bad, "22".repeat(32), { mode: 0o600 });
    const arb = join(tmp, "arbkey");
    (await import("node:fs")).mkdirSync(arb);
    const port = await freeTcpPort();
    const common = [GUEST, ...CMD, "--arbiter", `file:${arb}`];
    const p = start(["primary", ...common, "--listen", `127.0.0.1:${port}`, "--key", good]);
    for (let t = 0; !/waiting for the backup/.test(p.err()) && t < 400; t++) await new Promise((r) => setTimeout(r, 25));
    const b = start(["backup", ...common, "--connect", `127.0.0.1:${port}`, "--key", bad]);
    for (let t = 0; !/refused a connection/.test(p.err()) && t < 400; t++) await new Promise((r) => setTimeout(r, 25));
    expect(p.err()).toMatch(/refused a connection from 127\.0\.0\.1:\d+: /);
    expect(p.out()).toBe("");
    b.child.kill("SIGKILL");
    p.child.kill("SIGTERM");
    await Promise.all([p.exit, b.exit]);
  });

  it("refuses a missing --arbiter or --listen, and a malformed key file (status 2)", async () => {
    const badKey = join(tmp, "short");
    writeFileSync(badKey, "abc");
    for (const args of [["primary", GUEST, "--listen", "127.0.0.1:1"], ["backup", GUEST, "--arbiter", `file:${tmp}`], ["primary", GUEST, "--listen", "127.0.0.1:1", "--arbiter", `file:${tmp}`, "--key", badKey]]) {
      const r = await runLockstep(REPO, ...args);
      expect(r.status, args.join(" ") + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: /);
    }
  });
});
