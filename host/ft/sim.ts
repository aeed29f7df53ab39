// The whole fault-tolerant pair in one process, under a simulated clock and
// network, from a seed: both roles (primary.ts, backup.ts), both machines,
// the channel, the arbiter (in memory) and the outside world (a console that
// drops repeated output numbers). Nothing here reads a real clock or waits,
// so a run is a function of its options: a failing seed reruns alone,
// exactly.
//
// The channel is the real one: each side's frames go through a FramedLink
// (link.ts: FrameWriter out, FrameReader in), so the numbering rules apply —
// a repeat is dropped and counted, a gap or a damaged frame closes the link.
// Between the links each direction (sim-channel.ts) delays frames and, from
// a seed, drops, duplicates, swaps, corrupts and jitters them. A closed link
// says nothing to the roles: its peer just goes silent, and failure
// detection and the arbiter decide, as for a real partition.
//
// A fault kills the primary or the backup, cuts the channel both ways or one
// way, or pauses a replica (it reads, runs and says nothing, then comes
// back), when the primary reaches an instruction count. The backup may be
// slow (its slices take longer). The run ends when every replica has
// finished, stopped or died, or at `maxMs` of simulated time.

import type { EngineKind } from "../engine/engine.js";
import type { ClockMode } from "../machine/guest-time.js";
import { Machine, type RunOutcome } from "../machine/machine.js";
import { KINDS } from "../replay/event-kinds.js";
import { LiveGate, seededEntropy, type World } from "../replay/live-gate.js";
import type { LogEntry } from "../replay/log-format.js";
import { EntryQueue, ReplayGate } from "../replay/replay-gate.js";
import type { EngineLoader } from "../replay/session.js";
import { stateHash } from "../replay/state-hash.js";
import { initHash } from "../common/hash.js";
import { MemoryArbiter, type Arbiter } from "./arbiter.js";
import { BackupRole, type BackupReady } from "./backup.js";
import { DEFAULT_TIMEOUTS, type Timeouts } from "./failure-detector.js";
import { FramedLink } from "./link.js";
import { OutputCounter, type Output, type OutputChannel } from "./output-gate.js";
import { PrimaryRole, type PrimaryReady } from "./primary.js";
import { SimChannel, type ChannelCounts, type ChannelNoise } from "./sim-channel.js";
import { SwitchGate } from "./switch-gate.js";
import { frameTagger, WIRE_VERSION } from "./wire.js";

export type { ChannelNoise } from "./sim-channel.js";

export type FaultKind =
  | "primary" | "backup" // the replica dies
  | "partition" // the channel is cut both ways
  | "cut-to-backup" | "cut-to-primary" // the channel is cut one way: nothing reaches that side
  | "pause-primary" | "pause-backup"; // the replica does nothing for `pauseMs`, then goes on

export const FAULT_KINDS: readonly FaultKind[] = ["primary", "backup", "partition", "cut-to-backup", "cut-to-primary", "pause-primary", "pause-backup"];

export interface SimFault {
  kind: FaultKind;
  /**
   * When: at the primary's instruction count, or at the end of the primary's
   * `slices`-th slice (default 0) after the one in which its guest took the
   * k-th typed input (1 = the first) — where an output made from an input
   * the backup has not received would be seen if it were released early.
   */
  at: bigint | { afterInput: number; slices?: number };
  /**
   * Whether what the failed side had sent but not yet delivered is lost with
   * it (default true: the worst case, a crash that takes its socket buffers).
   */
  loseInFlight?: boolean;
  /** pause-*: how long the replica is stopped (simulated ms; default twice the timeout). */
  pauseMs?: number;
}

export interface SimOptions {
  image: Uint8Array;
  /** The primary's and the backup's engines. */
  engines: [EngineKind, EngineKind];
  loadEngine: EngineLoader;
  ramSize: number;
  clock: ClockMode;
  cmdline?: string;
  /** One-way delay of every frame (ms of simulated time). */
  delayMs?: number;
  /** Frame-level faults on each direction, drawn from `seed`. */
  noise?: { toBackup?: ChannelNoise; toPrimary?: ChannelNoise; seed?: number };
  /**
   * "message" (default): one frame per message, as a worker's port; "stream":
   * a byte stream, as TCP, each frame arriving in pieces.
   */
  framing?: "message" | "stream";
  timeouts?: Timeouts;
  /** Instructions per slice (the primary sends a progress record after each). */
  slice?: number;
  /** Instructions the primary may run past the backup's acknowledgement. */
  maxLag?: bigint;
  /** Instructions the primary may run past where the backup's guest has run (RAN frames; default maxLag). */
  runAhead?: bigint;
  /** Simulated ms each slice of the primary takes. */
  msPerSlice?: number;
  /** How many times as long as the primary's a slice of the backup takes (default 1). */
  backupSlowdown?: number;
  fault?: SimFault;
  /** Bytes typed on COM1 at simulated times; they reach each replica that takes itself for live then (none: lost). */
  input?: { atMs: number; bytes: Uint8Array }[];
  /** Simulated time after which the run is given up. */
  maxMs?: number;
  arbiter?: Arbiter;
}

/** What the outside world saw, with repeats dropped by their numbers. */
export interface WorldView {
  serial: number[];
  debugcon: number[];
  frames: Uint8Array[];
  exitStatus: number | null;
  /** Outputs that arrived again with a number already seen (dropped). */
  repeats: number;
  /** Repeats whose value differed from the first: a contradiction (must stay 0). */
  contradictions: number;
}

export type Who = "primary" | "backup";

/** One direction of the channel, as it went. */
export interface DirectionReport extends ChannelCounts {
  /** Frames the receiving reader dropped as repeats. */
  repeatsDropped: number;
  /** Why the receiving link closed, if it did. */
  closed: string | null;
}

export interface SimReport {
  world: WorldView;
  /** Which replica was live at the end, and in which epoch. */
  live: Who | "none";
  epoch: number;
  /** Simulated ms from the fault to the new primary going live (failover), if it did. */
  failoverMs: number | null;
  endMs: number;
  /** What happened, in order, for a failing seed's report. */
  timeline: string[];
  /** Instructions each replica retired. */
  icounts: [bigint, bigint];
  /** Every output the live replica made, by number (what the world should have seen: one history). */
  survivorOutputs: Output[];
  /** The live replica's machine at the end: its instruction count and state hash (host/replay/state-hash.ts). */
  survivor: { icount: bigint; stateHash: Uint8Array } | null;
  /**
   * The logs: every entry the primary's gate logged; the entries the backup
   * replayed before it went live (null: it never did); the entries its own
   * gate logged after.
   */
  logs: { primary: LogEntry[]; backupReplayed: LogEntry[] | null; backupLive: LogEntry[] };
  /** The highest count the backup acknowledged that reached the primary. */
  ackedIcount: bigint;
  /** Why each role stopped, in its own words (null: it did not stop). */
  stops: Record<Who, string | null>;
  /** Whether each replica was still running (not killed) at the end. */
  alive: Record<Who, boolean>;
  /** Who released outputs to the world, in which epoch (as the releaser knew it), and how many. */
  releases: { by: Who; epoch: number; count: number }[];
  channel: { toBackup: DirectionReport; toPrimary: DirectionReport };
  /** Input bytes typed while no replica was live to take them. */
  inputLost: number;
}

/** The outside world: outputs by number, each number taken once. */
export class World1 {
  private seen = new Map<number, string>();
  readonly view: WorldView = { serial: [], debugcon: [], frames: [], exitStatus: null, repeats: 0, contradictions: 0 };

  take(o: Output): void {
    const key = `${o.channel}:${o.value instanceof Uint8Array ? Array.from(o.value).join(",") : o.value}`;
    const had = this.seen.get(o.seq);
    if (had !== undefined) {
      this.view.repeats++;
      if (had !== key) this.view.contradictions++;
      return;
    }
    this.seen.set(o.seq, key);
    // Numbers arrive in order from one live replica; a new one after a
    // failover starts at or below the next unseen number.
    const v = this.view;
    switch (o.channel) {
      case "serial": v.serial.push(o.value as number); break;
      case "debugcon": v.debugcon.push(o.value as number); break;
      case "frame": v.frames.push(o.value as Uint8Array); break;
      case "exit": v.exitStatus = o.value as number; break;
      default: break;
    }
  }
}

/** A replica: its machine, how its outputs are numbered, and when it may act next. */
interface Replica {
  machine: Machine;
  counter: OutputCounter;
  alive: boolean;
  ended: RunOutcome | null;
  /** Simulated ms before which it does nothing (running a slice, or paused). */
  busyUntil: number;
  /** Typed bytes that reached it while it was busy. */
  input: Uint8Array[];
}

export function simWorld(now: () => number, seed: number): Partial<World> {
  return { hostNs: () => now() * 1e6, epochMs: () => Date.UTC(2026, 6, 1), entropy: seededEntropy(seed) };
}

export async function runPairSim(o: SimOptions): Promise<SimReport> {
  const timeouts = o.timeouts ?? DEFAULT_TIMEOUTS;
  const slice = o.slice ?? 100_000;
  const msPerSlice = o.msPerSlice ?? 1;
  const slowdown = o.backupSlowdown ?? 1;
  const maxMs = o.maxMs ?? 600_000;
  const arbiter = o.arbiter ?? new MemoryArbiter();
  const vm = "sim";
  let now = 0;
  const timeline: string[] = [];
  const note = (s: string) => timeline.push(`${now} ms: ${s}`);
  const world = new World1();
  const releases = new Map<string, { by: Who; epoch: number; count: number }>();
  // The epoch each replica knows: a claim is for the next one after it, so a
  // replica cut off from a takeover cannot win the epoch after the winner's.
  const known: Record<Who, number> = { primary: 1, backup: 1 };
  const release = (by: Who, outs: readonly Output[]) => {
    if (outs.length === 0) return;
    const key = `${by}:${known[by]}`;
    const r = releases.get(key) ?? { by, epoch: known[by], count: 0 };
    r.count += outs.length;
    releases.set(key, r);
    for (const x of outs) world.take(x);
  };
  const stops: Record<Who, string | null> = { primary: null, backup: null };

  // ---- the primary: live, logging to its role
  const primaryRole = new PrimaryRole({ timeouts, maxLag: o.maxLag ?? 5_000_000n, runAhead: o.runAhead, nowMs: now });
  const primaryLog: LogEntry[] = [];
  let inputsToPrimary = 0;
  const pGate = new LiveGate({
    clock: o.clock, world: simWorld(() => now, 0x5eed), record: (icount, kind, payload) => {
      if (kind === KINDS.SERIAL_RX.code) inputsToPrimary++;
      const e = { icount, kind, payload };
      primaryLog.push(e);
      primaryRole.logged(e);
    },
  });
  let primaryOut: Output[] = [];
  const primaryAll: Output[] = [];
  const backupAll: Output[] = [];
  const p: Replica = { machine: null!, counter: null!, alive: true, ended: null, busyUntil: 0, input: [] };
  p.machine = Machine.create(o.image, {
    engine: await o.loadEngine(o.engines[0], { ramSize: o.ramSize }), clock: o.clock, cmdline: o.cmdline, gate: pGate,
    ...tap((c, v) => { const x = p.counter.next(c, v); primaryOut.push(x); primaryAll.push(x); }),
  });
  p.counter = new OutputCounter(() => p.machine.engine.icount);

  // ---- the backup: replaying what arrives, live after a won claim
  const backupRole = new BackupRole({ timeouts, nowMs: now });
  const queue = new EntryQueue();
  /** Every entry handed to the replay gate, in order (the gate consumes them from the front). */
  const received: LogEntry[] = [];
  const backupLiveLog: LogEntry[] = [];
  let backupReplayed: LogEntry[] | null = null;
  /** The backup's live gate logs here once it runs the guest (not the calendar base a go-live gate logs as it is made). */
  let recordLive = false;
  const liveRecord = (icount: bigint, kind: number, payload: Uint8Array) => { if (recordLive) backupLiveLog.push({ icount, kind, payload }); };
  let replayGate: ReplayGate | null = null;
  let bGate: SwitchGate | null = null;
  let backupOut: Output[] = [];
  const b: Replica = { machine: null!, counter: null!, alive: true, ended: null, busyUntil: 0, input: [] };
  let backupLive = false;
  const bEngine = await o.loadEngine(o.engines[1], { ramSize: o.ramSize });
  /**
   * The backup's machine is built when it can be: at once under the virtual
   * clock, on the first entry under the host clock (the calendar base, a
   * WALLCLOCK entry, comes first in the stream and the machine needs it).
   */
  const backupReady = (goingLive = false): boolean => {
    if (b.machine) return true;
    if (o.clock === "host" && queue.length === 0 && !goingLive) return false;
    // Going live before anything arrived (the primary died at once): the
    // world saw nothing, so the backup boots as a fresh primary, its log
    // starting with its own calendar base.
    const fresh = o.clock === "host" && queue.length === 0;
    recordLive = fresh;
    replayGate = new ReplayGate({ clock: fresh ? "virtual" : o.clock, queue });
    bGate = new SwitchGate(fresh ? new LiveGate({ clock: o.clock, world: simWorld(() => now, 0xb0b), record: liveRecord }) : replayGate);
    b.machine = Machine.create(o.image, {
      engine: bEngine, clock: o.clock, cmdline: o.cmdline, gate: bGate,
      ...tap((c, v) => { const x = b.counter.next(c, v); backupOut.push(x); backupAll.push(x); }),
    });
    b.counter = new OutputCounter(() => b.machine.engine.icount);
    return true;
  };

  // ---- the channel: a FramedLink each side, a simulated wire each way
  const { toBackup, toPrimary, pLink, bLink, deliver, report: channelReport } = await simWire(o, () => now, note);
  pLink.onFrame((f) => { if (p.alive) applyPrimary(primaryRole.received(f, now)); });
  bLink.onFrame((f) => { if (b.alive) applyBackup(backupRole.onMessage(f, now)); });
  const configHash = new Uint8Array(32); // both sides run this one VM: nothing to tell apart
  pLink.send({ type: "hello", role: "primary", version: WIRE_VERSION, configHash, epoch: 1, startIcount: 0n, replica: "primary" });
  bLink.send({ type: "hello", role: "backup", version: WIRE_VERSION, configHash, epoch: 1, startIcount: 0n, replica: "backup" });

  let epoch = 1;
  const first = await arbiter.claim({ vm, epoch, replica: "primary", atMs: now, reason: "first start" });
  if (!first.won) throw new Error(`the arbiter already holds epoch ${first.holder.epoch} of ${vm} (reset it)`);
  let failoverMs: number | null = null;
  let faultAt: number | null = null;
  let primaryFinished = false;
  let ackedIcount = 0n;

  function applyPrimary(r: PrimaryReady): PrimaryReady {
    for (const f of r.send) pLink.send(f);
    release("primary", r.release);
    if (r.release.length > 0) for (const f of primaryRole.delivered(r.release[r.release.length - 1]!.seq, now)) pLink.send(f);
    if (primaryRole.ackedIcount > ackedIcount) ackedIcount = primaryRole.ackedIcount;
    if (r.stop) { note(`primary stops: ${r.stop}`); stops.primary = r.stop; }
    return r;
  }
  function applyBackup(r: BackupReady): BackupReady {
    for (const f of r.send) bLink.send(f);
    if (r.entries.length > 0) {
      queue.push(r.entries);
      for (const e of r.entries) received.push(e);
    }
    if (r.stop) { note(`backup stops: ${r.stop}`); stops.backup = r.stop; }
    return r;
  }
  const claimFor = async (who: Who) => {
    const want = known[who] + 1;
    const res = await arbiter.claim({ vm, epoch: want, replica: who, atMs: now, reason: `${who === "primary" ? "backup" : "primary"} silent` });
    const detail = res.won ? "" : `${res.holder.replica} (epoch ${res.holder.epoch})`;
    if (res.won) known[who] = epoch = want;
    note(`${who} claims epoch ${want}: ${res.won ? "won" : `lost to ${detail}`}`);
    return { won: res.won, detail };
  };

  // A function, not a test in place: the role's state changes under calls the compiler cannot see into.
  const primaryStopped = () => primaryRole.state === "stopped";
  /** Whether a replica takes itself for the live one: outside input goes to it. */
  const primaryTakesInput = () => p.alive && !p.ended && (primaryRole.state === "paired" || primaryRole.state === "alone");
  const backupTakesInput = () => backupLive && b.alive && !b.ended;
  /** Typed bytes that reached a replica while it was busy go in when it next acts (if it still takes input). */
  const feed = (r: Replica, takes: boolean) => {
    for (const bytes of r.input.splice(0)) {
      if (takes) r.machine.serialInput(bytes);
      else inputLost += bytes.length;
    }
  };

  const input = [...(o.input ?? [])].sort((x, y) => x.atMs - y.atMs);
  let inputLost = 0;
  let slicesSinceInput: number | null = null;
  const faultDue = (): boolean => {
    const f = o.fault;
    if (!f || faultAt !== null) return false;
    if (typeof f.at === "bigint") return p.machine.engine.icount >= f.at;
    if (inputsToPrimary < f.at.afterInput) return false;
    if (slicesSinceInput === null) slicesSinceInput = 0;
    return slicesSinceInput++ >= (f.at.slices ?? 0);
  };
  /** What a slice of the backup's `n` instructions costs it in simulated ms. */
  const backupCost = (n: bigint) => Math.max(1, Math.ceil((msPerSlice * slowdown * Number(n)) / slice));

  for (; now < maxMs; now++) {
    // Typing reaches every replica that takes itself for live now.
    while (input.length > 0 && input[0]!.atMs <= now) {
      const { bytes } = input.shift()!;
      const toP = primaryTakesInput(), toB = backupTakesInput();
      if (toP) p.input.push(bytes);
      if (toB) b.input.push(bytes);
      if (!toP && !toB) inputLost += bytes.length;
    }

    // The primary: what arrived, a slice, time passing.
    if (p.alive && now >= p.busyUntil && !primaryStopped()) {
      p.busyUntil = now + msPerSlice;
      deliver(toPrimary, pLink);
      feed(p, primaryTakesInput());
      if (!p.ended && primaryRole.mayRun && !primaryStopped()) {
        const at = o.fault?.at;
        const budget = typeof at === "bigint" && at > p.machine.engine.icount ? Math.min(slice, Number(at - p.machine.engine.icount)) : slice;
        const r = p.machine.runSync(budget);
        if (r.reason !== "limit" && r.reason !== "idle") p.ended = r;
        for (const x of primaryOut) applyPrimary(primaryRole.output(x));
        primaryOut = [];
        applyPrimary(primaryRole.ranTo(p.machine.engine.icount, now));
      }
      if (p.ended && !primaryFinished && primaryRole.held === 0 && !primaryStopped()) {
        primaryFinished = true;
        applyPrimary(primaryRole.finish(`guest ${p.ended.reason}`));
        stops.primary = `finished: its guest ended (${p.ended.reason}) with every output out`;
        note(`primary's guest ended (${p.ended.reason}) at ${p.machine.engine.icount}; every output out`);
      }
      if (!primaryStopped()) {
        const t = applyPrimary(primaryRole.tick(now));
        if (t.claim) {
          const c = await claimFor("primary");
          applyPrimary(primaryRole.claimed(c.won, c.detail));
          if (c.won) { note("primary goes on alone"); failoverMs = faultAt === null ? null : now - faultAt; }
        }
      }
    }

    // A fault, when the primary reaches its count.
    if (o.fault && faultDue()) {
      const f = o.fault;
      faultAt = now;
      const lose = f.loseInFlight ?? true;
      const pauseMs = f.pauseMs ?? 2 * timeouts.timeoutMs;
      note(`fault: ${f.kind}${f.kind.startsWith("pause") ? ` for ${pauseMs} ms` : ""} at primary instruction ${p.machine.engine.icount}`);
      strike(f.kind, { toBackup, toPrimary }, { primary: p, backup: b }, { now, lose, pauseMs });
    }

    // The backup follows (or, live, runs on its own).
    if (b.alive && now >= b.busyUntil && !backupLive && backupRole.state !== "stopped") {
      b.busyUntil = now + 1;
      deliver(toBackup, bLink);
      // One slice a step (as host/ft/replica.ts does), so its frames are read and answered between slices.
      if (backupRole.state === "following" && backupReady() && !b.ended && b.machine.engine.icount < backupRole.limit) {
        const before = b.machine.engine.icount;
        const left = backupRole.limit - before;
        const r = b.machine.runSync(left < BigInt(slice) ? Number(left) : slice);
        if (r.reason !== "limit" && r.reason !== "idle") b.ended = r;
        b.busyUntil = now + backupCost(b.machine.engine.icount - before);
        for (const x of backupOut) backupRole.output(x);
        backupOut = [];
        applyBackup(backupRole.ranTo(b.machine.engine.icount, now));
      }
      const t = applyBackup(backupRole.tick(now));
      if (t.claim) {
        const c = await claimFor("backup");
        const r = applyBackup(backupRole.claimed(c.won, c.detail));
        if (r.goLive) {
          backupReady(true);
          // Replay everything that arrived, then go live where it ends.
          release("backup", r.goLive);
          while (!b.ended && (replayGate!.remaining > 0 || b.machine.engine.icount < backupRole.limit)) {
            const left = backupRole.limit > b.machine.engine.icount ? Number(backupRole.limit - b.machine.engine.icount) : slice;
            const before = [b.machine.engine.icount, replayGate!.remaining];
            const rr = b.machine.runSync(left);
            if (rr.reason !== "limit" && rr.reason !== "idle") b.ended = rr;
            // Idle with entries left that it cannot reach: they are for a count it will not get to.
            if (rr.reason === "idle" && b.machine.engine.icount === before[0] && replayGate!.remaining === before[1]) break;
          }
          release("backup", backupOut);
          backupOut = [];
          backupReplayed = received.slice(0, queue.consumed);
          if (bGate!.mode === "replay") {
            bGate!.switchTo(new LiveGate({ clock: o.clock, world: simWorld(() => now, 0xb0b), startGuestNs: b.machine.nowNs(), record: liveRecord }));
          }
          recordLive = true;
          backupLive = true;
          failoverMs = faultAt === null ? null : now - faultAt;
          note(`backup is live at instruction ${b.machine.engine.icount} (epoch ${epoch}), ${r.goLive.length} kept outputs sent again, ${queue.length} entries it could not reach`);
        }
      }
    } else if (b.alive && now >= b.busyUntil && backupLive && !b.ended) {
      feed(b, backupTakesInput());
      const before = b.machine.engine.icount;
      const r = b.machine.runSync(slice);
      if (r.reason !== "limit" && r.reason !== "idle") b.ended = r;
      b.busyUntil = now + backupCost(b.machine.engine.icount - before);
      release("backup", backupOut);
      backupOut = [];
    }

    // Done when neither replica will do anything more: each has died,
    // stopped, or (live) run its guest to the end with its outputs out.
    const primarySettled = !p.alive || primaryStopped();
    const backupSettled = !b.alive || backupRole.state === "stopped" || (backupLive && b.ended !== null);
    if (primarySettled && backupSettled) break;
  }

  const live: Who | "none" = backupLive && b.alive ? "backup" : (p.alive && !primaryStopped()) || primaryFinished ? "primary" : "none";
  const survivorMachine = live === "backup" ? b.machine : live === "primary" ? p.machine : null;
  const report: SimReport = {
    world: world.view, live, epoch, failoverMs, endMs: now, timeline,
    icounts: [p.machine.engine.icount, b.machine ? b.machine.engine.icount : 0n],
    survivorOutputs: live === "backup" ? backupAll : live === "primary" ? primaryAll : [],
    survivor: survivorMachine ? { icount: survivorMachine.engine.icount, stateHash: stateHash(survivorMachine) } : null,
    logs: { primary: primaryLog, backupReplayed, backupLive: backupLiveLog },
    ackedIcount, stops, alive: { primary: p.alive, backup: b.alive },
    releases: [...releases.values()],
    channel: channelReport(),
    inputLost,
  };
  // Pooled cores make the next run's machines cheap (docs/cpu.md).
  p.machine.dispose();
  if (b.machine) b.machine.dispose();
  else bEngine.dispose();
  return report;
}

/**
 * The simulated channel: a FramedLink each side (the real encoder and
 * reader), a SimChannel each way with the options' delay, noise and framing;
 * `deliver` hands a side's link what has arrived for it by now.
 */
export async function simWire(o: Pick<SimOptions, "delayMs" | "noise" | "framing">, now: () => number, note: (s: string) => void) {
  const delay = o.delayMs ?? 1;
  const noiseSeed = o.noise?.seed ?? 1;
  const framing = o.framing ?? "message";
  const toBackup = new SimChannel(delay, o.noise?.toBackup, noiseSeed * 2 + 1, framing === "stream");
  const toPrimary = new SimChannel(delay, o.noise?.toPrimary, noiseSeed * 2 + 2, framing === "stream");
  const tagger = await frameTagger();
  await initHash(); // for the survivor's state hash
  const pLink = new FramedLink(tagger, (bytes) => toBackup.send(bytes, now()), () => toBackup.close(now()), framing);
  const bLink = new FramedLink(tagger, (bytes) => toPrimary.send(bytes, now()), () => toPrimary.close(now()), framing);
  const closed: Record<Who, string | null> = { primary: null, backup: null };
  pLink.onClose((r) => { closed.primary = r; note(`the primary's link closed: ${r}`); });
  bLink.onClose((r) => { closed.backup = r; note(`the backup's link closed: ${r}`); });
  const deliver = (from: SimChannel, link: FramedLink) => {
    for (let x = from.take(now()); x !== undefined; x = from.take(now())) {
      if (x === "end") link.ended("the peer closed the link");
      else link.receive(x);
    }
  };
  /** What each direction carried, for the run's report. */
  const report = (): { toBackup: DirectionReport; toPrimary: DirectionReport } => ({
    toBackup: { ...toBackup.counts, repeatsDropped: bLink.stats.dropped, closed: closed.backup },
    toPrimary: { ...toPrimary.counts, repeatsDropped: pLink.stats.dropped, closed: closed.primary },
  });
  return { toBackup, toPrimary, pLink, bLink, closed, deliver, report };
}

/** A fault strikes: a replica dies or pauses, or the channel is cut (what was in flight lost with it). */
export function strike(
  kind: FaultKind,
  ch: { toBackup: SimChannel; toPrimary: SimChannel },
  side: Record<Who, { alive: boolean; busyUntil: number }>,
  o: { now: number; lose: boolean; pauseMs: number },
): void {
  const { toBackup, toPrimary } = ch;
  switch (kind) {
    case "primary":
      side.primary.alive = false;
      toPrimary.cut = true; toPrimary.loseInFlight();
      if (o.lose) toBackup.loseInFlight();
      break;
    case "backup":
      side.backup.alive = false;
      toBackup.cut = true; toBackup.loseInFlight();
      if (o.lose) toPrimary.loseInFlight();
      break;
    case "partition":
      toBackup.cut = toPrimary.cut = true;
      toBackup.loseInFlight(); toPrimary.loseInFlight();
      break;
    case "cut-to-backup": toBackup.cut = true; toBackup.loseInFlight(); break;
    case "cut-to-primary": toPrimary.cut = true; toPrimary.loseInFlight(); break;
    case "pause-primary": side.primary.busyUntil = Math.max(side.primary.busyUntil, o.now + o.pauseMs); break;
    case "pause-backup": side.backup.busyUntil = Math.max(side.backup.busyUntil, o.now + o.pauseMs); break;
  }
}

/** Machine output callbacks that number each output and hand it to `out`. */
function tap(out: (c: OutputChannel, v: number | Uint8Array) => void) {
  return {
    onSerial: (v: number) => out("serial", v),
    onDebugcon: (v: number) => out("debugcon", v),
    onTransmit: (f: Uint8Array) => out("frame", f),
    onExit: (s: number) => out("exit", s),
  };
}
