// The pair in checkpoint mode (docs/ft-checkpoint.md) under the same
// deterministic simulation as replay mode (sim.ts): the same simulated
// channel with its noise, the same faults, the same outside world and
// arbiter — but the replicas are the real ones (a checkpoint-mode
// PrimaryReplica, replica.ts, and CheckpointBackup, checkpoint-replica.ts),
// stepped on simulated time, their slices bounded by instructions only.
// Each checkpoint carries its state hash, so the report can say which
// checkpoint the backup resumed from and whether its state was that one.

import type { Machine } from "../machine/machine.js";
import { stateHash } from "../replay/state-hash.js";
import { toHex } from "../common/hash.js";
import { MemoryArbiter } from "./arbiter.js";
import { CheckpointBackup } from "./checkpoint-replica.js";
import { DEFAULT_EPOCH_MS } from "./checkpoint.js";
import { DEFAULT_TIMEOUTS } from "./failure-detector.js";
import type { Output } from "./output-gate.js";
import { PrimaryReplica, type ReplicaOptions } from "./replica.js";
import { simWire, simWorld, strike, World1, type SimOptions, type SimReport, type Who } from "./sim.js";

export interface CheckpointSimOptions extends SimOptions {
  /** Simulated ms between checkpoints (default DEFAULT_EPOCH_MS). */
  epochMs?: number;
  /** A checkpoint's frames the primary sends per step (default 4): 1 spreads a checkpoint over steps, where a fault can cut it. */
  framesPerStep?: number;
}

/** What checkpoint mode adds to a run's report. */
export interface CheckpointSimReport extends SimReport {
  checkpoint: {
    /** Each checkpoint the primary sent: its count, last output and state hash (hex). */
    sent: Map<number, { icount: bigint; outputSeq: number; hash: string }>;
    /** The checkpoint the backup resumed from, and the state hash it resumed with (null: it did not go live). */
    resumed: { n: number; icount: bigint; outputSeq: number; hash: string } | null;
    /** The highest output number the first primary released to the world. */
    primaryReleasedSeq: number;
    /** The primary's figures (checkpoints, bytes, pauses). */
    checkpoints: number;
    bytes: number;
  };
}

export async function runCheckpointSim(o: CheckpointSimOptions): Promise<CheckpointSimReport> {
  if (typeof o.fault?.at === "object") throw new Error("checkpoint simulation: faults at an instruction count only (the primary logs no input to count)");
  const timeouts = o.timeouts ?? DEFAULT_TIMEOUTS;
  const slice = o.slice ?? 100_000;
  const msPerSlice = o.msPerSlice ?? 1;
  const slowdown = o.backupSlowdown ?? 1;
  const maxMs = o.maxMs ?? 600_000;
  const arbiter = o.arbiter ?? new MemoryArbiter();
  let now = 0;
  const timeline: string[] = [];
  const note = (s: string) => timeline.push(`${now} ms: ${s}`);
  const world = new World1();
  const releases = new Map<string, { by: Who; epoch: number; count: number }>();
  const stops: Record<Who, string | null> = { primary: null, backup: null };
  const wire = await simWire(o, () => now, note);
  const { toBackup, toPrimary, pLink, bLink, deliver } = wire;

  const first = await arbiter.claim({ vm: "sim", epoch: 1, replica: "primary", atMs: now, reason: "first start" });
  if (!first.won) throw new Error(`the arbiter already holds epoch ${first.holder.epoch} of sim (reset it)`);

  let faultAt: number | null = null;
  let failoverMs: number | null = null;
  let primaryReleasedSeq = 0;
  const primaryReleased: Output[] = [];
  const backupLiveOutputs: Output[] = [];
  const sent = new Map<number, { icount: bigint; outputSeq: number; hash: string }>();
  /** Outputs that reached the backup in OUTPUTS frames, by number: its history up to the checkpoint it resumes from. */
  const shipped = new Map<number, Output>();
  bLink.onFrame((f) => {
    if (f.type === "outputs") for (const x of f.outputs) shipped.set(x.seq, x);
  });

  const common = (who: Who): ReplicaOptions => ({
    image: o.image, engine: null!, clock: o.clock, cmdline: o.cmdline, configHash: new Uint8Array(32), vm: "sim", name: who,
    link: who === "primary" ? pLink : bLink, arbiter, timeouts, slice, maxLag: o.maxLag ?? 5_000_000n,
    world: simWorld(() => now, who === "primary" ? 0x5eed : 0xb0b), simulated: true, now: () => now,
    checkpoint: { epochMs: o.epochMs ?? DEFAULT_EPOCH_MS, hash: true, framesPerStep: o.framesPerStep },
    release: (outs) => {
      if (outs.length === 0) return;
      const r = who === "primary" ? primary : backup;
      const key = `${who}:${r.epoch}`;
      const rel = releases.get(key) ?? { by: who, epoch: r.epoch, count: 0 };
      rel.count += outs.length;
      releases.set(key, rel);
      if (who === "primary") {
        primaryReleased.push(...outs);
        primaryReleasedSeq = Math.max(primaryReleasedSeq, outs[outs.length - 1]!.seq);
      } else backupLiveOutputs.push(...outs);
      for (const x of outs) world.take(x);
    },
    say: (line) => {
      note(line);
      // In the words checkRun reads (tests/helpers/sim-seeds.ts), as sim.ts notes a claim.
      const c = /^(primary|backup) (won|lost) epoch (\d+)/.exec(line);
      if (c) note(`${c[1]} claims epoch ${c[3]}: ${c[2]}`);
      const m = /^(primary|backup) stops: (.*)$/.exec(line);
      if (m) stops[m[1] as Who] = m[2]!;
      if (/^backup is live|^primary won epoch/.test(line) && faultAt !== null) failoverMs = now - faultAt;
    },
  });
  // The primary's CHECKPOINT frames, as sent: which state each one is.
  const pSend = pLink.send.bind(pLink);
  pLink.send = (f) => {
    if (f.type === "checkpoint") sent.set(f.n, { icount: f.icount, outputSeq: f.outputSeq, hash: toHex(f.stateHash) });
    pSend(f);
  };
  const primary = new PrimaryReplica({ ...common("primary"), engine: await o.loadEngine(o.engines[0], { ramSize: o.ramSize }) }, now);
  const backup = new CheckpointBackup({ ...common("backup"), engine: await o.loadEngine(o.engines[1], { ramSize: o.ramSize }) }, now);
  const p = { alive: true, busyUntil: 0, input: [] as Uint8Array[] };
  const b = { alive: true, busyUntil: 0, input: [] as Uint8Array[] };

  const input = [...(o.input ?? [])].sort((x, y) => x.atMs - y.atMs);
  let inputLost = 0;
  let ackedIcount = 0n;
  const feed = (side: typeof p, m: Machine | null, takes: boolean) => {
    for (const bytes of side.input.splice(0)) {
      if (takes && m) m.serialInput(bytes);
      else inputLost += bytes.length;
    }
  };
  const icountOf = (m: Machine | null, fallback: bigint) => (m ? m.engine.icount : fallback);

  for (; now < maxMs; now++) {
    while (input.length > 0 && input[0]!.atMs <= now) {
      const { bytes } = input.shift()!;
      const toP = p.alive && primary.isLive, toB = b.alive && backup.isLive;
      if (toP) p.input.push(bytes);
      if (toB) b.input.push(bytes);
      if (!toP && !toB) inputLost += bytes.length;
    }
    if (p.alive && now >= p.busyUntil && !primary.finished) {
      p.busyUntil = now + msPerSlice;
      deliver(toPrimary, pLink);
      feed(p, primary.machine, primary.isLive);
      await primary.step(now);
      if (primary.role.ackedIcount > ackedIcount) ackedIcount = primary.role.ackedIcount;
    }
    const f = o.fault;
    if (f && faultAt === null && primary.machine.engine.icount >= (f.at as bigint)) {
      faultAt = now;
      const pauseMs = f.pauseMs ?? 2 * timeouts.timeoutMs;
      note(`fault: ${f.kind}${f.kind.startsWith("pause") ? ` for ${pauseMs} ms` : ""} at primary instruction ${primary.machine.engine.icount}`);
      strike(f.kind, { toBackup, toPrimary }, { primary: p, backup: b }, { now, lose: f.loseInFlight ?? true, pauseMs });
    }
    if (b.alive && now >= b.busyUntil && !backup.finished) {
      deliver(toBackup, bLink);
      feed(b, backup.machine, backup.isLive);
      const before = icountOf(backup.machine, 0n);
      await backup.step(now);
      const ran = backup.machine ? backup.machine.engine.icount - before : 0n;
      b.busyUntil = now + (ran > 0n ? Math.max(1, Math.ceil((msPerSlice * slowdown * Number(ran)) / slice)) : slowdown);
    }
    const pSettled = !p.alive || primary.finished;
    const bSettled = !b.alive || backup.finished;
    if (pSettled && bSettled) break;
  }

  const backupLive = backup.resumedFrom !== null && b.alive;
  const primaryOk = p.alive && primary.finished && stops.primary === null && !primary.lostArbiter;
  const primaryRunning = p.alive && !primary.finished;
  const live: Who | "none" = backupLive ? "backup" : primaryOk || primaryRunning ? "primary" : "none";
  if (primaryOk && stops.primary === null) stops.primary = "finished: its guest ended with every output out";
  const survivorMachine = live === "backup" ? backup.machine : live === "primary" ? primary.machine : null;
  const resumed = backup.resumedFrom;
  // The survivor's history: the primary's outputs up to the checkpoint resumed from, then the backup's own.
  const survivorOutputs: Output[] = live === "primary"
    ? primaryReleased
    : live === "backup" && resumed
      ? [...[...shipped.values()].filter((x) => x.seq <= resumed.outputSeq).sort((x, y) => x.seq - y.seq), ...backupLiveOutputs.filter((x) => x.seq > resumed.outputSeq)]
      : [];
  const figures = primary.status().checkpoints;
  const report: CheckpointSimReport = {
    world: world.view, live, epoch: Math.max(primary.epoch, backup.epoch), failoverMs, endMs: now, timeline,
    icounts: [primary.machine.engine.icount, backup.status().icount],
    survivorOutputs,
    survivor: survivorMachine ? { icount: survivorMachine.engine.icount, stateHash: stateHash(survivorMachine) } : null,
    logs: { primary: [], backupReplayed: null, backupLive: [] },
    ackedIcount, stops, alive: { primary: p.alive, backup: b.alive },
    releases: [...releases.values()],
    channel: wire.report(),
    inputLost,
    checkpoint: {
      sent,
      resumed: resumed && { n: resumed.n, icount: resumed.icount, outputSeq: resumed.outputSeq, hash: toHex(resumed.stateHash!) },
      primaryReleasedSeq,
      checkpoints: figures?.checkpoints ?? 0,
      bytes: figures?.bytes ?? 0,
    },
  };
  primary.machine.dispose();
  backup.dispose();
  return report;
}
