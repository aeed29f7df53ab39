// The whole fault-tolerant pair in one process, under a simulated clock and
// network, from a seed: both roles (primary.ts, backup.ts), both machines,
// the channel (messages delayed, and cut when a fault says so), the arbiter
// (in memory) and the outside world (a console that drops repeated output
// numbers). Nothing here reads a real clock or waits, so a run is a function
// of its options: a failing seed reruns alone, exactly.
//
// A fault kills the primary, kills the backup, or cuts the channel both ways
// when the primary reaches an instruction count. The run ends when the live
// replica's guest has exited and its outputs are out, or at `maxMs` of
// simulated time.

import type { EngineKind } from "../engine/engine.js";
import type { ClockMode } from "../machine/guest-time.js";
import { Machine, type RunOutcome } from "../machine/machine.js";
import { KINDS } from "../replay/event-kinds.js";
import { LiveGate, seededEntropy, type World } from "../replay/live-gate.js";
import { EntryQueue, ReplayGate } from "../replay/replay-gate.js";
import type { EngineLoader } from "../replay/session.js";
import { MemoryArbiter, type Arbiter } from "./arbiter.js";
import { BackupRole, type BackupReady } from "./backup.js";
import { DEFAULT_TIMEOUTS, type Timeouts } from "./failure-detector.js";
import type { Frame } from "./wire.js";
import { OutputCounter, type Output, type OutputChannel } from "./output-gate.js";
import { PrimaryRole, type PrimaryReady } from "./primary.js";
import { SwitchGate } from "./switch-gate.js";

export type FaultKind = "primary" | "backup" | "partition";

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
}

export interface SimOptions {
  image: Uint8Array;
  /** The primary's and the backup's engines. */
  engines: [EngineKind, EngineKind];
  loadEngine: EngineLoader;
  ramSize: number;
  clock: ClockMode;
  cmdline?: string;
  /** One-way delay of every message (ms of simulated time). */
  delayMs?: number;
  timeouts?: Timeouts;
  /** Instructions per primary slice (a progress record each). */
  slice?: number;
  /** Instructions the primary may run past the backup's acknowledgement. */
  maxLag?: bigint;
  /** Simulated ms each slice of the primary takes. */
  msPerSlice?: number;
  fault?: SimFault;
  /** Bytes typed on COM1 at simulated times; they reach whichever replica is live then (none: lost). */
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

export interface SimReport {
  world: WorldView;
  /** Which replica was live at the end, and in which epoch. */
  live: "primary" | "backup" | "none";
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
  /** Input bytes typed while no replica was live to take them. */
  inputLost: number;
}

/** The outside world: outputs by number, each number taken once. */
class World1 {
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
    }
  }
}

interface InFlight {
  at: number;
  m: Frame;
}

/** A replica: its machine and how its outputs are numbered. */
interface Replica {
  machine: Machine;
  counter: OutputCounter;
  alive: boolean;
  ended: RunOutcome | null;
}

function simWorld(now: () => number, seed: number): Partial<World> {
  return { hostNs: () => now() * 1e6, epochMs: () => Date.UTC(2026, 6, 1), entropy: seededEntropy(seed) };
}

export async function runPairSim(o: SimOptions): Promise<SimReport> {
  const delay = o.delayMs ?? 1;
  const timeouts = o.timeouts ?? DEFAULT_TIMEOUTS;
  const slice = o.slice ?? 100_000;
  const msPerSlice = o.msPerSlice ?? 1;
  const maxMs = o.maxMs ?? 600_000;
  const arbiter = o.arbiter ?? new MemoryArbiter();
  const vm = "sim";
  let now = 0;
  const timeline: string[] = [];
  const note = (s: string) => timeline.push(`${now} ms: ${s}`);
  const world = new World1();

  // ---- the primary: live, logging to its role
  const primaryRole = new PrimaryRole({ timeouts, maxLag: o.maxLag ?? 5_000_000n, nowMs: now });
  const pWorld = simWorld(() => now, 0x5eed);
  let inputsToPrimary = 0;
  const pGate = new LiveGate({
    clock: o.clock, world: pWorld, record: (icount, kind, payload) => {
      if (kind === KINDS.SERIAL_RX.code) inputsToPrimary++;
      primaryRole.logged({ icount, kind, payload });
    },
  });
  let primaryOut: Output[] = [];
  const primaryAll: Output[] = [];
  const backupAll: Output[] = [];
  const p: Replica = { machine: null!, counter: null!, alive: true, ended: null };
  p.machine = Machine.create(o.image, {
    engine: await o.loadEngine(o.engines[0], { ramSize: o.ramSize }), clock: o.clock, cmdline: o.cmdline, gate: pGate,
    ...tap((c, v) => { const x = p.counter.next(c, v); primaryOut.push(x); primaryAll.push(x); }),
  });
  p.counter = new OutputCounter(() => p.machine.engine.icount);

  // ---- the backup: replaying what arrives, live after a won claim
  const backupRole = new BackupRole({ timeouts, nowMs: now });
  const queue = new EntryQueue();
  let replayGate: ReplayGate | null = null;
  let bGate: SwitchGate | null = null;
  let backupOut: Output[] = [];
  const b: Replica = { machine: null!, counter: null!, alive: true, ended: null };
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
    // world saw nothing, so the backup boots as a fresh primary.
    const fresh = o.clock === "host" && queue.length === 0;
    replayGate = new ReplayGate({ clock: fresh ? "virtual" : o.clock, queue });
    bGate = new SwitchGate(fresh ? new LiveGate({ clock: o.clock, world: simWorld(() => now, 0xb0b) }) : replayGate);
    b.machine = Machine.create(o.image, {
      engine: bEngine, clock: o.clock, cmdline: o.cmdline, gate: bGate,
      ...tap((c, v) => { const x = b.counter.next(c, v); backupOut.push(x); backupAll.push(x); }),
    });
    b.counter = new OutputCounter(() => b.machine.engine.icount);
    return true;
  };

  // ---- the channel
  const toBackup: InFlight[] = [];
  const toPrimary: InFlight[] = [];
  let cut = false;
  const send = (q: InFlight[], ms: Frame[]) => {
    if (cut) return;
    for (const m of ms) q.push({ at: now + delay, m });
  };

  // The epoch each replica knows: a claim is for the next one after it, so a
  // replica cut off from a takeover cannot win the epoch after the winner's.
  const known = { primary: 1, backup: 1 };
  let epoch = 1;
  const first = await arbiter.claim({ vm, epoch, replica: "primary", atMs: now, reason: "first start" });
  if (!first.won) throw new Error(`the arbiter already holds epoch ${first.holder.epoch} of ${vm} (reset it)`);
  let failoverMs: number | null = null;
  let faultAt: number | null = null;
  let primaryFinished = false;

  const applyPrimary = (r: PrimaryReady) => {
    send(toBackup, r.send);
    for (const x of r.release) world.take(x);
    if (r.release.length > 0) send(toBackup, primaryRole.delivered(r.release[r.release.length - 1]!.seq, now));
    if (r.stop) { note(`primary stops: ${r.stop}`); p.alive = false; }
    return r;
  };
  const applyBackup = (r: BackupReady) => {
    send(toPrimary, r.send);
    if (r.entries.length > 0) queue.push(r.entries);
    if (r.stop) { note(`backup stops: ${r.stop}`); b.alive = false; }
    return r;
  };
  const claimFor = async (who: "primary" | "backup") => {
    const want = known[who] + 1;
    const res = await arbiter.claim({ vm, epoch: want, replica: who, atMs: now, reason: `${who === "primary" ? "backup" : "primary"} silent` });
    const detail = res.won ? "" : `${res.holder.replica} (epoch ${res.holder.epoch})`;
    if (res.won) known[who] = epoch = want;
    note(`${who} claims epoch ${want}: ${res.won ? "won" : `lost to ${detail}`}`);
    return { won: res.won, detail };
  };

  const input = [...(o.input ?? [])].sort((x, y) => x.atMs - y.atMs);
  let inputLost = 0;
  const faultDue = (): boolean => {
    const f = o.fault;
    if (!f || faultAt !== null) return false;
    if (typeof f.at === "bigint") return p.machine.engine.icount >= f.at;
    if (inputsToPrimary < f.at.afterInput) return false;
    if (slicesSinceInput === null) slicesSinceInput = 0;
    return slicesSinceInput++ >= (f.at.slices ?? 0);
  };
  let slicesSinceInput: number | null = null;
  while (now < maxMs) {
    // Typing reaches the replica that is live now.
    while (input.length > 0 && input[0]!.atMs <= now) {
      const { bytes } = input.shift()!;
      if (backupLive && b.alive && !b.ended) b.machine.serialInput(bytes);
      else if (p.alive && !p.ended && primaryRole.state !== "stopped") p.machine.serialInput(bytes);
      else inputLost += bytes.length;
    }

    // Deliver what is due.
    for (const [q, to] of [[toBackup, "backup"], [toPrimary, "primary"]] as const) {
      while (q.length > 0 && q[0]!.at <= now) {
        const { m } = q.shift()!;
        if (to === "backup" && b.alive) applyBackup(backupRole.onMessage(m, now));
        if (to === "primary" && p.alive) applyPrimary(primaryRole.received(m, now));
      }
    }

    // The primary runs a slice.
    if (p.alive && primaryRole.state !== "stopped") {
      if (!p.ended && primaryRole.mayRun) {
        const at = o.fault?.at;
        const budget = typeof at === "bigint" && at > p.machine.engine.icount ? Math.min(slice, Number(at - p.machine.engine.icount)) : slice;
        const r = p.machine.runSync(budget);
        if (r.reason !== "limit" && r.reason !== "idle") p.ended = r;
        for (const x of primaryOut) applyPrimary(primaryRole.output(x));
        primaryOut = [];
        applyPrimary(primaryRole.ranTo(p.machine.engine.icount, now));
      }
      if (p.ended && !primaryFinished && primaryRole.held === 0) {
        primaryFinished = true;
        applyPrimary(primaryRole.finish(`guest ${p.ended.reason}`));
        note(`primary's guest ended (${p.ended.reason}) at ${p.machine.engine.icount}; every output out`);
      }
      if (p.alive && !primaryFinished) {
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
      faultAt = now;
      note(`fault: ${o.fault.kind} at primary instruction ${p.machine.engine.icount}`);
      const lose = o.fault.loseInFlight ?? true;
      if (o.fault.kind === "primary") { p.alive = false; toPrimary.length = 0; if (lose) toBackup.length = 0; }
      if (o.fault.kind === "backup") { b.alive = false; toBackup.length = 0; if (lose) toPrimary.length = 0; }
      if (o.fault.kind === "partition") { cut = true; toBackup.length = 0; toPrimary.length = 0; }
    }

    // The backup follows (or, live, runs on its own).
    if (b.alive && !backupLive) {
      if (backupReady()) {
        while (!b.ended && b.machine.engine.icount < backupRole.limit) {
          const r = b.machine.runSync(Number(backupRole.limit - b.machine.engine.icount));
          if (r.reason !== "limit" && r.reason !== "idle") b.ended = r;
          if (r.reason === "idle") break;
        }
        for (const x of backupOut) backupRole.output(x);
        backupOut = [];
      }
      const t = applyBackup(backupRole.tick(now));
      if (t.claim) {
          const c = await claimFor("backup");
          const r = applyBackup(backupRole.claimed(c.won, c.detail));
          if (r.goLive) {
            backupReady(true);
            // Replay everything that arrived, then go live where it ends.
            for (const x of r.goLive) world.take(x);
            while (!b.ended && (replayGate!.remaining > 0 || b.machine.engine.icount < backupRole.limit)) {
              const left = backupRole.limit > b.machine.engine.icount ? Number(backupRole.limit - b.machine.engine.icount) : slice;
              const before = [b.machine.engine.icount, replayGate!.remaining];
              const rr = b.machine.runSync(left);
              if (rr.reason !== "limit" && rr.reason !== "idle") b.ended = rr;
              // Idle with entries left that it cannot reach: they are for a count it will not get to.
              if (rr.reason === "idle" && b.machine.engine.icount === before[0] && replayGate!.remaining === before[1]) break;
            }
            for (const x of backupOut) world.take(x);
            backupOut = [];
            if (bGate!.mode === "replay") bGate!.switchTo(new LiveGate({ clock: o.clock, world: simWorld(() => now, 0xb0b), startGuestNs: b.machine.nowNs() }));
            backupLive = true;
            failoverMs = faultAt === null ? null : now - faultAt;
            note(`backup is live at instruction ${b.machine.engine.icount} (epoch ${epoch}), ${r.goLive.length} kept outputs sent again`);
          }
      }
    } else if (b.alive && backupLive && !b.ended) {
      const r = b.machine.runSync(slice);
      if (r.reason !== "limit" && r.reason !== "idle") b.ended = r;
      for (const x of backupOut) world.take(x);
      backupOut = [];
    }

    // Done: the live replica's guest has ended and its outputs are out.
    const primaryDone = p.alive && primaryFinished;
    const backupDone = backupLive && b.alive && b.ended !== null;
    if (primaryDone && (!b.alive || backupRole.state === "stopped")) break;
    if (primaryDone && primaryRole.state === "stopped") break;
    if (backupDone) break;
    if (!p.alive && !b.alive) break;
    if (primaryRole.state === "alone" && p.ended) break;
    now += msPerSlice;
  }

  const live = backupLive && b.alive ? "backup" : p.alive ? "primary" : "none";
  return {
    world: world.view, live, epoch, failoverMs, endMs: now, timeline,
    icounts: [p.machine.engine.icount, b.machine ? b.machine.engine.icount : 0n],
    survivorOutputs: live === "backup" ? backupAll : live === "primary" ? primaryAll : [],
    inputLost,
  };
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
