// Checkpoint mode (host/ft/checkpoint.ts, checkpoint-replica.ts,
// docs/ft-checkpoint.md) in real time in one thread over the in-process
// link: the console the world sees equals a solo run's with no fault and
// with the primary stopped at several counts; the backup resumes from the
// last complete checkpoint — at or past the last one the primary saw
// acknowledged, with that checkpoint's state hash — and a checkpoint cut off
// mid-stream is never applied.

import { describe, expect, it } from "vitest";
import { initHash, toHex } from "../../host/common/hash.js";
import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { CheckpointReceiver } from "../../host/ft/checkpoint.js";
import { CheckpointBackup } from "../../host/ft/checkpoint-replica.js";
import { memoryLinkPair, type PeerLink } from "../../host/ft/link.js";
import { HoldTimes, type Output } from "../../host/ft/output-gate.js";
import { PrimaryRole } from "../../host/ft/primary.js";
import { PrimaryReplica } from "../../host/ft/replica.js";
import { TransferError } from "../../host/ft/state-transfer.js";
import { frameTagger, type Frame } from "../../host/ft/wire.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { driveReplica } from "../../host/ft/driver.js";
import { outsideWorld } from "../helpers/ft-world.js";
import { guestImage } from "../helpers/replay.js";

const RAM = 8 << 20;
const CMDLINE = "ticks.elf ticks=400 every=40 hz=200";

let soloOut: string | null = null;
async function solo(): Promise<string> {
  if (soloOut !== null) return soloOut;
  const out: number[] = [];
  const m = await bootLive(guestImage("ticks"), { engine: "wasm", ramSize: RAM, clock: "virtual", cmdline: CMDLINE, onSerial: (b) => out.push(b) });
  m.runSync(200_000_000);
  m.dispose();
  return (soloOut = Buffer.from(out).toString("latin1"));
}

/** A link that shows the test every frame sent and stops passing them when `cut()` says so (the sender died there). */
function watched(l: PeerLink, seen: (f: Frame) => void, cut: (f: Frame) => boolean): PeerLink {
  let dead = false;
  return {
    send(f) {
      if (dead || (dead = cut(f))) return;
      seen(f);
      l.send(f);
    },
    onFrame: (cb) => l.onFrame(cb),
    onClose: (cb) => l.onClose(cb),
    close: (r) => { if (!dead) l.close(r); },
    get closed() { return l.closed; },
    get stats() { return l.stats; },
  };
}

interface Fault {
  /** The primary stops dead at this count. */
  at?: bigint;
  /** Or: it dies while sending checkpoint `midStream`, after its PAGES and before its CHECKPOINT frame. */
  midStream?: number;
}

async function pair(fault: Fault | null, epochMs = 3) {
  await initHash(); // the checkpoints' state hashes
  const [pl, bl] = memoryLinkPair(await frameTagger(null));
  const arbiter = new MemoryArbiter();
  await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
  const world = outsideWorld();
  const lines: string[] = [];
  const hashes = new Map<number, { icount: bigint; hash: string }>();
  let died = false;
  const link = watched(pl, (f) => {
    if (f.type === "checkpoint") hashes.set(f.n, { icount: f.icount, hash: toHex(f.stateHash) });
  }, (f) => {
    if (fault?.midStream === undefined) return false;
    // Dies at checkpoint `midStream`'s CHECKPOINT frame: its PAGES went, the frame that completes it does not.
    if (f.type === "checkpoint" && f.n === fault.midStream) died = true;
    return died;
  });
  const common = {
    image: guestImage("ticks"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
    arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release: world.release, say: (l: string) => lines.push(l),
    checkpoint: { epochMs, hash: true },
  };
  const now = performance.now();
  const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link }, now);
  const b = new CheckpointBackup({ ...common, engine: await loadEngine("ts", { ramSize: RAM }), name: "backup", link: bl }, now);
  let ackedAtDeath = 0n;
  const stopPrimary = () => {
    const stop = died || (fault?.at !== undefined && p.machine.engine.icount >= fault.at);
    if (stop) ackedAtDeath = p.role.ackedIcount;
    return stop;
  };
  await Promise.all([driveReplica(p, { stop: stopPrimary }), driveReplica(b)]);
  return { serial: world.serial(), contradictions: world.contradictions, exit: world.exit(), lines, p, b, hashes, ackedAtDeath };
}

describe("checkpoint mode: the pair in one thread over the in-process link (ticks, virtual clock)", () => {
  it("with no fault: the console is the solo run's, and checkpoints went every epoch", async () => {
    const r = await pair(null);
    expect(r.serial, r.lines.join("\n")).toBe(await solo());
    expect(r.exit).toBe(0);
    const f = r.p.status().checkpoints!;
    expect(f.checkpoints, r.lines.join("\n")).toBeGreaterThan(3);
    expect(r.b.status().checkpoints!.checkpoints).toBe(f.checkpoints);
    // Every output was held until a checkpoint covering it was acknowledged: the hold times are measured.
    const hold = r.p.status().holdMs!;
    expect(hold.outputs).toBe(r.serial.length + 1); // the COM1 bytes and the exit status
    expect(hold.maxMs).toBeGreaterThan(0);
    expect(r.lines.join("\n")).not.toMatch(/epoch 2/);
  });

  it.each([20_000n, 55_000n, 95_000n, 120_000n])("the primary stops dead at instruction %s: the backup resumes from the last acknowledged checkpoint (its state hash) and the console is the solo run's", async (at) => {
    const r = await pair({ at });
    const why = r.lines.join("\n");
    expect(r.serial, why).toBe(await solo());
    expect(r.contradictions).toBe(0);
    expect(why).toMatch(/backup is live at instruction \d+ \(epoch 2\), resumed from checkpoint \d+/);
    const from = r.b.resumedFrom!;
    if (at >= 55_000n) expect(from.n, why).toBeGreaterThan(0);
    // At or past the last checkpoint the primary saw acknowledged: every output it released is in the state resumed.
    expect(from.icount, why).toBeGreaterThanOrEqual(r.ackedAtDeath);
    if (from.n > 0) {
      expect(toHex(from.stateHash!), why).toBe(r.hashes.get(from.n)!.hash);
      expect(from.icount).toBe(r.hashes.get(from.n)!.icount);
    }
  });

  it("the primary dies while sending a checkpoint (its pages went, its CHECKPOINT frame did not): the backup resumes from the one before", async () => {
    const r = await pair({ midStream: 4 });
    const why = r.lines.join("\n");
    expect(r.serial, why).toBe(await solo());
    expect(r.b.resumedFrom!.n, why).toBe(3);
    expect(toHex(r.b.resumedFrom!.stateHash!)).toBe(r.hashes.get(3)!.hash);
    expect(why).toMatch(/resumed from checkpoint 3 \(checkpoint 4, incomplete, dropped\)/);
  });
});

describe("checkpoint mode: a new backup for the replica that went live", () => {
  it("the primary fails; the backup goes live, takes a standby from a checkpoint of all of RAM, and when it fails too the standby goes live (epoch 3)", async () => {
    await initHash();
    const tagger = await frameTagger(null);
    const arbiter = new MemoryArbiter();
    await arbiter.claim({ vm: "t", epoch: 1, replica: "primary", atMs: 0, reason: "first start" });
    const world = outsideWorld();
    const lines: string[] = [];
    const common = {
      image: guestImage("ticks"), clock: "virtual" as const, cmdline: CMDLINE, configHash: new Uint8Array(32).fill(7), vm: "t",
      arbiter, timeouts: { intervalMs: 20, timeoutMs: 300 }, slice: 5_000, maxLag: 2_000_000n, release: world.release,
      checkpoint: { epochMs: 3, hash: true },
    };
    const [pl, bl] = memoryLinkPair(tagger);
    const now = performance.now();
    const p = new PrimaryReplica({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "primary", link: pl, say: (l) => lines.push(`primary| ${l}`) }, now);
    const b = new CheckpointBackup({ ...common, engine: await loadEngine("ts", { ramSize: RAM }), name: "backup", link: bl, say: (l) => lines.push(`backup| ${l}`) }, now);
    let standby: CheckpointBackup | null = null;
    let standbyRun: Promise<unknown> = Promise.resolve();
    const attach = async () => {
      while (b.status().state !== "live") {
        if (b.finished) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      const [sl, nl] = memoryLinkPair(tagger);
      standby = new CheckpointBackup({ ...common, engine: await loadEngine("wasm", { ramSize: RAM }), name: "standby", link: nl, standby: true, say: (l) => lines.push(`standby| ${l}`) }, performance.now());
      b.attachBackup(sl, performance.now());
      standbyRun = driveReplica(standby);
    };
    // The survivor fails once the standby holds a checkpoint past 70,000.
    const secondFailure = () => standby !== null && (standby as CheckpointBackup).status().icount > 70_000n;
    await Promise.all([
      driveReplica(p, { stop: () => p.machine.engine.icount >= 40_000n }),
      driveReplica(b, { stop: secondFailure }),
      attach(),
    ]);
    await standbyRun;
    const log = lines.join("\n");
    expect(world.serial(), log).toBe(await solo());
    expect(world.contradictions).toBe(0);
    expect(log).toMatch(/backup\| backup is live at instruction \d+ \(epoch 2\)/);
    expect(log).toMatch(/backup\| primary: a new backup joined at instruction \d+: paired again, a checkpoint of all of RAM first/);
    expect(log).toMatch(/standby\| backup is live at instruction \d+ \(epoch 3\), resumed from checkpoint [1-9]\d*/);
    const s = standby as CheckpointBackup | null;
    expect(s!.receiver.figures.pages, log).toBeGreaterThanOrEqual(RAM / 4096);
  });
});

describe("the primary's role in checkpoint mode", () => {
  const out = (seq: number, icount: bigint): Output => ({ seq, icount, channel: "serial", value: 64 + seq });
  it("holds outputs until a checkpoint covering their numbers is acknowledged, sends no log, and waits with four checkpoints unacknowledged", () => {
    const role = new PrimaryRole({ timeouts: { intervalMs: 10, timeoutMs: 100 }, maxLag: 1_000_000n, nowMs: 0, mode: "checkpoint", maxInFlight: 4 });
    role.logged({ icount: 5n, kind: 1, payload: new Uint8Array(8) });
    expect(role.ranTo(100n, 1).send).toEqual([]);
    expect(role.output(out(1, 50n)).release).toEqual([]);
    expect(role.output(out(2, 100n)).release).toEqual([]);
    role.checkpointSent(100n, 1, 2); // covers output 1 only: output 2, made at the same count, came after it was taken
    expect(role.output(out(3, 150n)).release).toEqual([]);
    role.checkpointSent(150n, 3, 3);
    expect(role.received({ type: "ack", icount: 100n }, 4).release.map((o) => o.seq)).toEqual([1]);
    expect(role.held).toBe(2);
    // An acknowledgement of a later checkpoint covers the earlier ones too.
    expect(role.received({ type: "ack", icount: 150n }, 5).release.map((o) => o.seq)).toEqual([2, 3]);
    for (let k = 1; k <= 4; k++) {
      expect(role.mayRun).toBe(true);
      role.checkpointSent(150n + BigInt(k), 3, 6);
    }
    expect(role.mayRun).toBe(false);
    role.received({ type: "ack", icount: 151n }, 7);
    expect(role.mayRun).toBe(true);
  });

  it("HoldTimes: each output's time from made to released", () => {
    const h = new HoldTimes();
    h.madeAt(1, 10);
    h.madeAt(2, 12);
    h.madeAt(3, 20);
    h.releasedAt(2, 30);
    expect(h.figures).toEqual({ outputs: 2, meanMs: 19, maxMs: 20 });
    h.releasedAt(3, 21);
    expect(h.figures).toEqual({ outputs: 3, meanMs: 13, maxMs: 20 });
  });

  it("HoldTimes by channel: median and 99th percentile to the histogram's 0.01 ms, never past the longest", () => {
    const h = new HoldTimes();
    // 100 frames held 0.5 ms to 50 ms (i/2 ms), and one console byte.
    for (let i = 1; i <= 100; i++) h.madeAt(i, 0, "frame");
    h.madeAt(101, 0, "serial");
    for (let i = 1; i <= 100; i++) h.releasedAt(i, i / 2);
    h.releasedAt(101, 0.25);
    const c = h.byChannel();
    expect(c.frame!.outputs).toBe(100);
    expect(c.frame!.medianMs).toBeCloseTo(25, 1);
    expect(c.frame!.p99Ms).toBeCloseTo(49.5, 1);
    expect(c.frame!.maxMs).toBe(50);
    expect(c.serial).toEqual({ outputs: 1, meanMs: 0.25, maxMs: 0.25, medianMs: 0.25, p99Ms: 0.25 });
  });
});

describe("CheckpointReceiver", () => {
  const boot = () => ({ cpu: { icount: "0" }, ram: new Uint8Array(4 * 4096) }) as never;
  const page = (fill: number) => new Uint8Array(4096).fill(fill);
  const commit = (n: number, icount: bigint, pages: number, outputSeq = 0): Extract<Frame, { type: "checkpoint" }> =>
    ({ type: "checkpoint", n, icount, outputSeq, pages, stateHash: new Uint8Array(32), json: new TextEncoder().encode(`{"n":${n}}`) });

  it("applies a checkpoint only when its CHECKPOINT frame comes; refuses one that does not add up, leaving the last as it was", () => {
    const r = new CheckpointReceiver(boot());
    r.pages({ type: "pages", round: 1, pages: [{ index: 2, data: page(9) }] });
    r.outputs({ type: "outputs", n: 1, outputs: [{ seq: 1, icount: 5n, channel: "serial", value: 65 }] });
    expect(r.last.n).toBe(0);
    expect(r.staged).toEqual({ n: 1, pages: 1, outputs: 1 });
    expect(r.commit(commit(1, 10n, 1, 1)).map((o) => o.seq)).toEqual([1]);
    expect(r.last).toEqual({ n: 1, icount: 10n, outputSeq: 1 });
    // Checkpoint 2 names two pages; one came.
    r.pages({ type: "pages", round: 2, pages: [{ index: 1, data: page(3) }] });
    expect(() => r.commit(commit(2, 20n, 2, 1))).toThrow(TransferError);
    expect(r.last.n).toBe(1);
    // Frames for a checkpoint other than the next, a page outside RAM, outputs that skip a number, a count not past the last.
    const fresh = new CheckpointReceiver(boot());
    expect(() => fresh.pages({ type: "pages", round: 2, pages: [] })).toThrow(/for checkpoint 2: the next is 1/);
    expect(() => fresh.pages({ type: "pages", round: 1, pages: [{ index: 4, data: null }] })).toThrow(/outside a RAM of 4 pages/);
    fresh.outputs({ type: "outputs", n: 1, outputs: [{ seq: 2, icount: 5n, channel: "serial", value: 65 }] });
    expect(() => fresh.commit(commit(1, 10n, 0, 2))).toThrow(/covers outputs 1..2/);
    const f3 = new CheckpointReceiver(boot());
    expect(() => f3.commit(commit(1, 0n, 0))).toThrow(/not past checkpoint 0/);
    // A standby's first checkpoint holds every page, and its outputs number on from where that checkpoint says.
    const sb = new CheckpointReceiver(boot(), { standby: true });
    sb.pages({ type: "pages", round: 1, pages: [{ index: 0, data: null }] });
    expect(() => sb.commit(commit(1, 50n, 1, 7))).toThrow(/must hold all 4 pages/);
    const sb2 = new CheckpointReceiver(boot(), { standby: true });
    sb2.pages({ type: "pages", round: 1, pages: [0, 1, 2, 3].map((index) => ({ index, data: page(index) })) });
    sb2.outputs({ type: "outputs", n: 1, outputs: [{ seq: 7, icount: 45n, channel: "serial", value: 66 }] });
    expect(sb2.commit(commit(1, 50n, 4, 7)).map((o) => o.seq)).toEqual([7]);
    expect(sb2.last).toEqual({ n: 1, icount: 50n, outputSeq: 7 });
  });
});
