// A new backup from a running primary (host/ft/state-transfer.ts, issue 10
// §2): after one replica failed, the survivor — the primary going on alone,
// or the backup that went live — sends a standby its machine's state while
// the guest runs (pre-copy rounds, then a pause), and the pair is in
// lockstep again: a second failure is survived too. The world's console
// must be the solo run's, byte for byte, and the transferred machine must
// end where the survivor would have.

import { beforeAll, describe, expect, it } from "vitest";
import { initHash } from "../../host/common/hash.js";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { PrimaryRole } from "../../host/ft/primary.js";
import { memoryLinkPair } from "../../host/ft/link.js";
import { BackupReplica, PrimaryReplica } from "../../host/ft/replica.js";
import { PreCopy, StateReceiver, TransferError } from "../../host/ft/state-transfer.js";
import { frameTagger, type FrameTagger } from "../../host/ft/wire.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { driveReplica } from "../../host/ft/driver.js";
import { stateHash } from "../../host/replay/state-hash.js";
import { outsideWorld, soloTicks } from "../helpers/ft-world.js";
import { guestImage } from "../helpers/replay.js";

const RAM = 4 << 20;
const CMDLINE = "ticks.elf ticks=300 every=30 hz=200";
// The standby test needs a primary that is still running when the first standby has been refused, however loaded the host.
const LONG_CMDLINE = "ticks.elf ticks=3000 every=300 hz=200";
let tagger: FrameTagger;
beforeAll(async () => {
  await initHash();
  tagger = await frameTagger(null);
});

const solo = () => soloTicks(RAM, CMDLINE);

type Replica = PrimaryReplica | BackupReplica;

/**
 * The pair, one replica stopped dead at `first`; the survivor takes a
 * standby (engine `standbyEngine`) once it is alone; then `second` stops
 * the survivor, or nothing does.
 */
async function run(first: { who: "primary" | "backup"; at: bigint }, second: bigint | null, standbyEngine: "wasm" | "ts") {
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
  const world = outsideWorld();
  const release = world.release;
  const lines: string[] = [];
  const figures: unknown[] = [];
  const common = {
    image: guestImage("ticks"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
    arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release,
    transferred: (f: unknown) => figures.push(f),
  };
  const [pl, bl] = memoryLinkPair(tagger);
  const now = performance.now();
  const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl, say: (l) => lines.push(`primary| ${l}`) }, now);
  const b = new BackupReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "backup", link: bl, say: (l) => lines.push(`backup| ${l}`) }, now);
  const dead = new Set<Replica>();
  const stopAt = (r: Replica, at: () => bigint | null) => () => {
    const a = at();
    if (a !== null && r.machine !== null && r.machine.engine.icount >= a) { dead.add(r); return true; }
    return false;
  };
  let survivor: Replica | null = null;
  let standby: BackupReplica | null = null;
  let standbyRun: Promise<unknown> = Promise.resolve();
  const firstVictim = first.who === "primary" ? p : b;
  // The survivor is stopped by `second` only after the standby joined (its count then is past `first.at`).
  const secondAt = (r: Replica) => () => (r === survivor && standby?.machine && second !== null ? second : null);
  const attach = async () => {
    for (;;) {
      await new Promise((r) => setTimeout(r, 5));
      const s = firstVictim === p ? b : p;
      const st = s.status().state;
      if (st === "alone" || st === "live") {
        survivor = s;
        const [sl, nl] = memoryLinkPair(tagger);
        standby = new BackupReplica({ ...common, engine: await loadEngine(standbyEngine, { ramSize: RAM }), name: "standby", link: nl, standby: true, say: (l) => lines.push(`standby| ${l}`) }, performance.now());
        s.attachBackup(sl, performance.now());
        standbyRun = driveReplica(standby, { stop: stopAt(standby, () => null) });
        return;
      }
      if (s.finished) return;
    }
  };
  await Promise.all([
    driveReplica(p, { stop: () => stopAt(p, () => (first.who === "primary" ? first.at : null))() || stopAt(p, secondAt(p))() }),
    driveReplica(b, { stop: () => stopAt(b, () => (first.who === "backup" ? first.at : null))() || stopAt(b, secondAt(b))() }),
    attach(),
  ]);
  await standbyRun;
  return { serial: world.serial(), contradictions: world.contradictions, lines, figures, survivor: survivor as Replica | null, standby: standby as BackupReplica | null, dead };
}

describe("a new backup from a running primary (ticks, virtual clock, in-process link)", () => {
  it("the backup fails; the primary, alone, takes a standby (TS engine) and the pair runs to the end in lockstep", async () => {
    const r = await run({ who: "backup", at: 60_000n }, null, "ts");
    const log = r.lines.join("\n");
    expect(r.serial, log).toBe(await solo());
    expect(r.contradictions).toBe(0);
    expect(log).toMatch(/primary\| primary won epoch 2/);
    expect(log).toMatch(/primary\| primary: a new backup has the state at instruction \d+ after \d+ pre-copy round\(s\)/);
    expect(log).toMatch(/standby\| backup: joined the primary at instruction \d+/);
    expect(r.figures).toHaveLength(1);
    // The standby followed from where it joined (it stops where it is when the primary ends the run, as any backup does).
    const joined = BigInt(/joined the primary at instruction (\d+)/.exec(log)![1]!);
    expect(r.standby!.machine!.engine.icount).toBeGreaterThan(joined);
    expect(r.standby!.machine!.engine.icount).toBeLessThanOrEqual(r.survivor!.machine!.engine.icount);
  });

  it("the primary fails; the backup goes live, takes a standby, and when it fails too the standby goes live (epoch 3)", async () => {
    const r = await run({ who: "primary", at: 40_000n }, 90_000n, "wasm");
    const log = r.lines.join("\n");
    expect(r.serial, log).toBe(await solo());
    expect(r.contradictions).toBe(0);
    expect(log).toMatch(/backup\| backup won epoch 2: going live/);
    expect(log).toMatch(/backup\| primary: a new backup has the state/);
    expect(log).toMatch(/standby\| backup won epoch 3: going live/);
  });
});

describe("a new backup that is not one", () => {
  it("a primary alone does not stop on a goodbye (only a backup that did not join sends one then); paired, it does", () => {
    const T = { intervalMs: 20, timeoutMs: 200 };
    const p = new PrimaryRole({ timeouts: T, maxLag: 1000n, nowMs: 0 });
    p.startAlone();
    expect(p.received({ type: "bye", code: 1, reason: "not the primary of this VM" }, 1).stop).toBe(null);
    expect(p.state).toBe("alone");
    p.pairWith(0n, 2);
    expect(p.received({ type: "bye", code: 1, reason: "gone" }, 3).stop).toMatch(/the backup said goodbye: gone/);
  });

  it("a standby of another VM refuses the primary's link and stops; the primary, alone and live still, then takes the right one", async () => {
    const arbiter = new MemoryArbiter();
    await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
    const world = outsideWorld();
    const lines: string[] = [];
    const figures: unknown[] = [];
    const hash = new Uint8Array(32).fill(7);
    const common = {
      image: guestImage("ticks"), clock: "virtual" as const, cmdline: LONG_CMDLINE, configHash: hash, vm: "t",
      arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release: world.release,
      transferred: (f: unknown) => figures.push(f),
    };
    const engines = await Promise.all([0, 1, 2, 3].map(() => loadEngine("wasm", { ramSize: RAM })));
    const [pl, bl] = memoryLinkPair(tagger);
    const now = performance.now();
    const p = new PrimaryReplica({ ...common, engine: engines[0]!, name: "primary", link: pl, say: (l) => lines.push(`primary| ${l}`) }, now);
    const b = new BackupReplica({ ...common, engine: engines[1]!, name: "backup", link: bl, say: (l) => lines.push(`backup| ${l}`) }, now);
    const standbys: { s: BackupReplica; run: Promise<unknown> }[] = [];
    // As the CLI's spare keeper does: a standby is handed over between two steps of the primary, when it wants one.
    const bring = (configHash: Uint8Array, name: string) => {
      const [sl, nl] = memoryLinkPair(tagger);
      const s = new BackupReplica({ ...common, configHash, engine: engines[2 + standbys.length]!, name, link: nl, standby: true, say: (l) => lines.push(`${name}| ${l}`) }, performance.now());
      p.attachBackup(sl, performance.now());
      standbys.push({ s, run: driveReplica(s) });
    };
    await Promise.all([
      driveReplica(p, {
        stop: () => {
          if (p.wantsBackup && standbys.length === 0) bring(new Uint8Array(32).fill(8), "wrong");
          else if (p.wantsBackup && standbys.length === 1 && standbys[0]!.s.finished) bring(hash, "right");
          return false;
        },
      }),
      driveReplica(b, { stop: () => b.machine !== null && b.machine.engine.icount >= 30_000n }),
    ]);
    await Promise.all(standbys.map((x) => x.run));
    const log = lines.join("\n");
    expect(standbys).toHaveLength(2);
    const [wrong, right] = standbys.map((x) => x.s);
    expect(wrong!.refused, log).toMatch(/^primary runs another VM \(configuration 0707070707070707, this one's 0808080808080808: /);
    expect(wrong!.machine).toBe(null);
    expect(log).toMatch(/primary\| primary: no new backup: the (peer is not a backup of this VM|new backup said goodbye)/);
    expect(p.lostArbiter).toBe(false);
    expect(log).toMatch(/right\| backup: joined the primary at instruction \d+/);
    expect(figures).toHaveLength(1);
    expect(world.serial(), log).toBe(await soloTicks(RAM, LONG_CMDLINE));
    expect(world.contradictions).toBe(0);
  });
});

describe("PreCopy and StateReceiver", () => {
  it("the rounds and the pause rebuild the machine on the other engine, state hash and all, while the guest runs between frames", async () => {
    const a = await bootLive(guestImage("bench"), { engine: "wasm", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    a.runSync(300_000);
    const pre = new PreCopy(a, { finalPages: 4, maxRounds: 5 });
    const rx = new StateReceiver(RAM);
    await rx.ready;
    let done = false;
    let frames = 0;
    while (!done) {
      for (const f of pre.frames(2)) { if (f.type === "pages") rx.pages(f); frames++; }
      a.runSync(20_000); // the guest keeps writing memory meanwhile
      if (pre.roundSent) done = pre.nextRound();
      await new Promise((r) => setTimeout(r, 0)); // the hasher is made asynchronously
    }
    for (const f of pre.finish(0)) if (f.type === "pages") rx.pages(f);
    const at = a.saveState();
    // After the pause the guest runs on while the state's hash is computed over the copy.
    a.runSync(50_000);
    let state = pre.hashStep();
    while (state === null) state = pre.hashStep();
    expect(state.type).toBe("state");
    a.loadState(at); // back to the pause, to compare
    const b = await bootLive(guestImage("bench"), { engine: "ts", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    rx.install(b, state as Extract<typeof state, { type: "state" }>);
    expect(b.engine.icount).toBe(a.engine.icount);
    expect(Buffer.from(stateHash(b)).toString("hex")).toBe(Buffer.from(stateHash(a)).toString("hex"));
    expect(pre.figures.rounds).toBeGreaterThanOrEqual(1);
    expect(pre.figures.zeroPages).toBeGreaterThan(0);
    expect(frames).toBeGreaterThan(0);
    // Both go on alike.
    a.runSync(500_000);
    b.runSync(500_000);
    expect(Buffer.from(stateHash(b)).toString("hex")).toBe(Buffer.from(stateHash(a)).toString("hex"));
  });

  it("a page lost on the way, a page outside RAM, a state that is not JSON: refused, the machine unchanged", async () => {
    const a = await bootLive(guestImage("bench"), { engine: "wasm", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    a.runSync(100_000);
    const pre = new PreCopy(a, { finalPages: 1_000_000 });
    const all = pre.frames(1_000);
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      await new Promise((r) => setTimeout(r, 5)); // the hasher is made asynchronously
      ready = pre.nextRound();
    }
    expect(ready).toBe(true);
    pre.finish(0);
    let f = pre.hashStep();
    while (f === null) f = pre.hashStep();
    const state = f as Extract<typeof f, { type: "state" }>;
    const b = await bootLive(guestImage("bench"), { engine: "wasm", ramSize: RAM, clock: "virtual", onSerial: () => {} });
    const before = Buffer.from(stateHash(b)).toString("hex");
    const rx = new StateReceiver(RAM);
    await rx.ready;
    // Every page but one that is not all zero.
    const pages = all.flatMap((f) => (f.type === "pages" ? f.pages : []));
    const skip = pages.find((p) => p.data !== null)!.index;
    rx.pages({ type: "pages", round: 0, pages: pages.filter((p) => p.index !== skip) });
    expect(() => rx.install(b, state)).toThrow(/state hash over the pages received differs/);
    expect(Buffer.from(stateHash(b)).toString("hex")).toBe(before);
    expect(() => rx.pages({ type: "pages", round: 0, pages: [{ index: RAM / 4096, data: null }] })).toThrow(TransferError);
    const rx2 = new StateReceiver(RAM);
    await rx2.ready;
    expect(() => rx2.install(b, { ...state, json: new TextEncoder().encode("{not json") })).toThrow(/not UTF-8 JSON/);
    expect(() => rx.pages({ type: "pages", round: 1, pages: [] })).toThrow(/PAGES round 1 after STATE/);
  });
});

