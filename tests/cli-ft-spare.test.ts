// A spare over TCP (`lockstep backup --standby --listen`, `--spare
// HOST:PORT`, docs/ft.md "A new backup"), as a user runs it, on loopback:
// a standby waits; a primary and a backup both name it as their spare. The
// primary is killed with SIGKILL mid-run: the backup goes live in epoch 2
// and brings the standby in by state transfer; then the former backup is
// killed too: the standby goes live in epoch 3 and runs the guest to its
// end. Taking each output number once from the three numbered streams must
// give exactly the console of a solo run. And the refusals: a malformed
// --spare or standby command line (status 2), and a standby brought in by
// the primary of another guest (it refuses, says why, and waits on), and a
// spare that cannot be reached (the primary says so and goes on alone).

import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freeTcpPort, runLockstep, startLockstep, type LockstepProc } from "./helpers/cli.js";
import { mergeNumbered } from "./helpers/numbered-outputs.js";

const REPO = new URL("..", import.meta.url).pathname;
const GUEST = join(REPO, "guests/bin/ticks.elf");
const OTHER = join(REPO, "guests/bin/hello.elf");
const CMD = ["--clock", "virtual", "--mem", "8M", "--cmdline", "ticks=60000 every=500"];
const tmp = mkdtempSync(join(tmpdir(), "lockstep-ft-spare-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); });
let dirs = 0;

type Proc = LockstepProc;
const start = (args: string[]): Proc => startLockstep(REPO, args, children);

const until = async (what: () => boolean, why: string, ms = 20_000) => {
  for (const t0 = Date.now(); !what(); ) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${why}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const lines = (p: Proc) => p.out().split("\n").length - 1;


const newArbiter = () => {
  const arb = join(tmp, `arb${++dirs}`);
  mkdirSync(arb);
  return arb;
};

describe("lockstep backup --standby and --spare over TCP", () => {
  it("primary killed, the backup brings the standby in; backup killed, the standby goes live in epoch 3; the console is the solo run's", async () => {
    const solo = runLockstep(REPO, "run", GUEST, ...CMD);
    const arb = newArbiter();
    const [sPort, pPort] = [await freeTcpPort(), await freeTcpPort()];
    const common = [GUEST, ...CMD, "--arbiter", `file:${arb}`, "--outputs", "numbered", "--timeout-ms", "400"];
    const s = start(["backup", ...common, "--standby", "--listen", `127.0.0.1:${sPort}`]);
    const p = start(["primary", ...common, "--listen", `127.0.0.1:${pPort}`, "--spare", `127.0.0.1:${sPort}`]);
    await until(() => /waiting for the backup/.test(p.err()), "the primary to listen");
    const b = start(["backup", ...common, "--connect", `127.0.0.1:${pPort}`, "--spare", `127.0.0.1:${sPort}`]);
    await until(() => /waiting for a live primary on 127\.0\.0\.1:\d+/.test(s.err()), "the standby to listen");

    // Mid-run: once the primary has shown some output.
    await until(() => lines(p) >= 300, "the primary's output");
    p.child.kill("SIGKILL");
    await until(() => /paired again/.test(b.err()) || b.child.exitCode !== null, "the backup to bring the standby in");
    expect(b.err()).toMatch(/backup is live at instruction \d+ \(epoch 2\)/);
    expect(b.err()).toMatch(/spare 127\.0\.0\.1:\d+: connected; sending it the state/);
    expect(b.err()).toMatch(/a new backup has the state at instruction \d+ after \d+ pre-copy round\(s\), \d+ pages \(\d+ all zero\), [\d.]+ [KM]iB, pause [\d.]+ ms \(\d+ pages in it\), \d+ ms in all: paired again/);
    await until(() => /joined the primary at instruction \d+ \(state transferred\)/.test(s.err()), "the standby to join");

    // The pair (former backup, former standby) runs on a while, then the former backup dies too.
    const before = lines(b);
    await until(() => lines(b) >= before + 300, "the new pair's output");
    b.child.kill("SIGKILL");
    const sExit = await s.exit;
    expect(s.err()).toMatch(/backup won epoch 3: going live/);
    expect(s.err()).toMatch(/backup is live at instruction \d+ \(epoch 3\)/);
    expect(sExit, s.err()).toBe(0);
    expect([await p.exit, await b.exit]).toEqual([-9, -9]);
    expect(mergeNumbered(p.out(), b.out(), s.out())).toBe((await solo).stdout);
    // What the operator saw of the transfer, for the record.
    console.log([b.err(), s.err()].join(""));
  }, 60_000);

  it("a standby brought in by the primary of another guest refuses it, says why, and waits on", async () => {
    const arb = newArbiter();
    const [sPort, pPort] = [await freeTcpPort(), await freeTcpPort()];
    const common = ["--arbiter", `file:${arb}`, "--timeout-ms", "400"];
    const s = start(["backup", OTHER, ...CMD, ...common, "--standby", "--listen", `127.0.0.1:${sPort}`]);
    const p = start(["primary", GUEST, ...CMD, ...common, "--listen", `127.0.0.1:${pPort}`, "--spare", `127.0.0.1:${sPort}`]);
    await until(() => /waiting for the backup/.test(p.err()), "the primary to listen");
    // A backup that stops dead early: the primary goes on alone and calls the spare.
    const b = start(["backup", GUEST, ...CMD, ...common, "--connect", `127.0.0.1:${pPort}`, "--max-instructions", "200000"]);
    await until(() => /still waiting for a live primary/.test(s.err()), "the standby's refusal");
    expect(s.err()).toMatch(/refused the peer, not the primary of this VM: primary runs another VM \(configuration [0-9a-f]{16}, this one's [0-9a-f]{16}: the guest, --mem, --clock, --cmdline or --nic differ\)/);
    await until(() => /no new backup: /.test(p.err()), "the primary to give the spare up");
    expect(p.err()).toMatch(/primary won epoch 2/);
    expect(s.child.exitCode).toBe(null);
    for (const x of [p, b, s]) x.child.kill("SIGKILL");
    await Promise.all([p.exit, b.exit, s.exit]);
  }, 30_000);

  it("a spare that cannot be reached: the primary says so once, goes on alone and runs the guest to its end", async () => {
    const arb = newArbiter();
    const [nowhere, pPort] = [await freeTcpPort(), await freeTcpPort()];
    const short = [GUEST, "--clock", "virtual", "--mem", "8M", "--cmdline", "ticks=6000 every=500", "--arbiter", `file:${arb}`, "--timeout-ms", "400", "--outputs", "numbered"];
    const p = start(["primary", ...short, "--listen", `127.0.0.1:${pPort}`, "--spare", `127.0.0.1:${nowhere}`]);
    await until(() => /waiting for the backup/.test(p.err()), "the primary to listen");
    const b = start(["backup", ...short, "--connect", `127.0.0.1:${pPort}`, "--max-instructions", "100000"]);
    expect(await p.exit, p.err()).toBe(0);
    await b.exit;
    expect(p.err()).toMatch(/primary won epoch 2: going on without a backup/);
    expect(p.err().match(/spare 127\.0\.0\.1:\d+ cannot be reached \(nothing listens on 127\.0\.0\.1:\d+\): going on alone, trying again every 1000 ms/g)).toHaveLength(1);
    expect(mergeNumbered(p.out(), b.out())).toBe((await runLockstep(REPO, "run", ...short.slice(0, 7))).stdout);
  }, 30_000);

  it("refuses a malformed --spare, --standby without --listen, and --listen without --standby (status 2)", async () => {
    const a = `file:${tmp}`;
    for (const args of [
      ["primary", GUEST, "--listen", "127.0.0.1:1", "--arbiter", a, "--spare", "nowhere"],
      ["backup", GUEST, "--connect", "127.0.0.1:1", "--arbiter", a, "--spare", "127.0.0.1:99999"],
      ["backup", GUEST, "--standby", "--arbiter", a],
      ["backup", GUEST, "--standby", "--connect", "127.0.0.1:1", "--listen", "127.0.0.1:2", "--arbiter", a],
      ["backup", GUEST, "--listen", "127.0.0.1:1", "--arbiter", a],
    ]) {
      const r = await runLockstep(REPO, ...args);
      expect(r.status, args.join(" ") + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: .*(--spare|--standby|--listen)/);
    }
  }, 30_000);
});
