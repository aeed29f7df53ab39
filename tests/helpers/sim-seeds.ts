// One seed, one simulated run of the pair (host/ft/sim.ts), checked against
// what cannot be argued with: a solo run of the same guest (host/node/boot.ts,
// virtual clock) and a replay of the logs on a fresh machine. From the seed:
// the guest, the clock, which fault (a replica dies, the channel is cut both
// ways or one way, a replica pauses past or short of its peer's timeout) and
// when (an instruction count anywhere in the run, or just after the primary
// took typed input), frame-level noise on each direction (duplicates,
// jitter, and sometimes a drop, swap or corruption that closes the link), a
// slow backup, the failure detector's timings, typing, the engines, the
// delay and the slice size. Used by tests/ft/sim-seeds.test.ts (npm test)
// and scripts/soak.ts (npm run soak); checkRun also by tests/ft/sim.test.ts.

import { MemoryArbiter } from "../../host/ft/arbiter.js";
import { runCheckpointSim, type CheckpointSimReport } from "../../host/ft/checkpoint-sim.js";
import { FAULT_KINDS, runPairSim, type ChannelNoise, type FaultKind, type SimFault, type SimOptions, type SimReport } from "../../host/ft/sim.js";
import type { EngineKind } from "../../host/engine/engine.js";
import { Machine } from "../../host/machine/machine.js";
import type { ClockMode } from "../../host/machine/guest-time.js";
import { bootLive } from "../../host/node/boot.js";
import { loadEngine } from "../../host/node/core-modules.js";
import { toHex } from "../../host/common/hash.js";
import { seededEntropy } from "../../host/replay/live-gate.js";
import type { LogEntry } from "../../host/replay/log-format.js";
import { EntryQueue, ReplayGate } from "../../host/replay/replay-gate.js";
import { stateHash } from "../../host/replay/state-hash.js";
import { guestImage } from "./replay.js";

// Small, because each run hashes the survivor's RAM and the replay's; the guests need little.
const RAM = 2 << 20;
const GUESTS = [
  { name: "hello", cmdline: "hello.elf" },
  { name: "ticks", cmdline: "ticks.elf ticks=12 every=4 hz=100" },
] as const;

export interface Solo { serial: string; exit: number | undefined; icount: bigint }
const solos = new Map<string, Solo>();

/** The guest alone, virtual clock: what the world must see when nothing is typed. */
export async function solo(name: string, cmdline: string): Promise<Solo> {
  const key = `${name} ${cmdline}`;
  const had = solos.get(key);
  if (had) return had;
  const out: number[] = [];
  const m = await bootLive(guestImage(name), { engine: "wasm", ramSize: RAM, clock: "virtual", cmdline, onSerial: (b) => out.push(b) });
  const r = m.runSync(500_000_000);
  const s = { serial: Buffer.from(out).toString("latin1"), exit: r.exitStatus, icount: m.engine.icount };
  m.dispose();
  solos.set(key, s);
  return s;
}

const sameEntry = (a: LogEntry, b: LogEntry) =>
  a.icount === b.icount && a.kind === b.kind && a.payload.length === b.payload.length && a.payload.every((x, i) => x === b.payload[i]);

/**
 * Replays `entries` from the initial state on a fresh machine (its own
 * engine) to instruction `until`; the state hash there, or why it could not
 * get there.
 */
async function replayTo(o: { image: Uint8Array; clock: ClockMode; cmdline?: string; ramSize: number }, entries: LogEntry[], until: bigint, engine: EngineKind) {
  const gate = new ReplayGate({ clock: o.clock, queue: new EntryQueue(entries) });
  const m = Machine.create(o.image, { engine: await loadEngine(engine, { ramSize: o.ramSize }), clock: o.clock, cmdline: o.cmdline, gate });
  try {
    while (m.engine.icount < until) {
      const r = m.runSync(Number(until - m.engine.icount));
      if (r.reason !== "limit") break;
    }
    return { icount: m.engine.icount, hash: toHex(stateHash(m)), left: gate.remaining };
  } finally {
    m.dispose();
  }
}

export interface RunContext {
  image: Uint8Array;
  ramSize: number;
  clock: ClockMode;
  cmdline?: string;
  arbiter: MemoryArbiter;
  fault?: SimFault;
  /** What the world must see (no typing, virtual clock): the solo run's console and exit status. */
  solo?: Solo;
}

/**
 * Every check the issue names, on one run; the problems found (none: it held).
 * (1) the world saw one history: the survivor's outputs in full, with no
 * contradiction (and, given a solo run, exactly its console); (2) the
 * backup's replayed log is the primary's, covering all it acknowledged, and
 * that log then the survivor's own from the initial state reproduces the
 * survivor's state hash at its final count (no failover: the primary's whole
 * log, the primary's); (3) one holder per epoch, the survivor holding the
 * last, and outputs released in each epoch by one replica only; a replica
 * that lost the arbiter stopped and said so.
 */
export async function checkRun(r: SimReport, c: RunContext): Promise<string[]> {
  const problems: string[] = [];
  const w = r.world;
  // No survivor is a failure, unless the fault killed the one left after an earlier takeover (two failures).
  const faultLine = r.timeline.findIndex((l) => l.includes(": fault: "));
  const wonBefore = faultLine > 0 && r.timeline.slice(0, faultLine).some((l) => /claims epoch \d+: won/.test(l));
  const doubleFailure = (c.fault?.kind === "primary" || c.fault?.kind === "backup") && wonBefore;
  if (r.live === "none" && !doubleFailure) problems.push("no replica is live at the end");
  if (r.endMs >= 600_000) problems.push("the run was given up (simulated time ran out)");
  if (w.contradictions !== 0) problems.push(`${w.contradictions} contradicting repeats`);
  // (1) One history: the survivor's.
  const survSerial = Buffer.from(r.survivorOutputs.filter((x) => x.channel === "serial").map((x) => x.value as number)).toString("latin1");
  const serial = Buffer.from(w.serial).toString("latin1");
  if (r.live !== "none" && serial !== survSerial) problems.push(`the world's console is not the survivor's (${serial.length} bytes, survivor ${survSerial.length})`);
  const survExit = r.survivorOutputs.find((x) => x.channel === "exit")?.value ?? null;
  if (r.live !== "none" && w.exitStatus !== survExit) problems.push(`exit status ${w.exitStatus}, the survivor's ${survExit}`);
  if (c.solo && r.live === "none") {
    if (!c.solo.serial.startsWith(serial)) problems.push("with no survivor, the console is not a beginning of the solo run's");
  } else if (c.solo) {
    if (serial !== c.solo.serial) problems.push(`the console differs from the solo run's (${serial.length} bytes, solo ${c.solo.serial.length})`);
    if (w.exitStatus !== (c.solo.exit ?? null)) problems.push(`exit status ${w.exitStatus}, solo ${c.solo.exit}`);
  }
  // (3) One holder per epoch; outputs of one epoch from one replica, the epoch's holder.
  const claims = await c.arbiter.claims("sim");
  if (new Set(claims.map((x) => x.epoch)).size !== claims.length) problems.push("two holders of one epoch");
  if (r.live !== "none" && claims[0]?.replica !== r.live) problems.push(`the survivor (${r.live}) does not hold the last epoch`);
  const byEpoch = new Map<number, Set<string>>();
  for (const x of r.releases) byEpoch.set(x.epoch, (byEpoch.get(x.epoch) ?? new Set()).add(x.by));
  for (const [e, who] of byEpoch) {
    if (who.size > 1) problems.push(`outputs released in epoch ${e} by both replicas`);
    const holder = claims.find((x) => x.epoch === e)?.replica;
    if (holder !== undefined && !who.has(holder)) problems.push(`outputs released in epoch ${e} by ${[...who].join(", ")}, but ${holder} holds it`);
  }
  // A replica still running that is not the survivor must have stopped, saying why.
  for (const who of ["primary", "backup"] as const) {
    if (who === r.live || !r.alive[who]) continue;
    if (r.stops[who] === null) problems.push(`the ${who} is neither live nor stopped at the end`);
    else if (claims.some((x) => x.replica !== who && x.epoch > 1) && !/lost the arbiter|ended the run|^finished/.test(r.stops[who]!)) {
      problems.push(`the ${who} stopped without saying it lost the arbiter: ${r.stops[who]}`);
    }
  }
  // A pause no peer took advantage of: the paused replica carries on.
  if (c.fault?.kind.startsWith("pause") && claims.length === 1 && r.live !== "primary") problems.push(`no takeover, yet the primary is not live (${r.live})`);
  if ("checkpoint" in r) {
    problems.push(...checkpointProblems(r as CheckpointSimReport));
    return problems;
  }
  // (2) The logs replay to the survivor's state.
  if (r.survivor) {
    let log: LogEntry[] = r.logs.primary;
    if (r.live === "backup") {
      const replayed = r.logs.backupReplayed ?? [];
      const notPrefix = replayed.findIndex((e, i) => !r.logs.primary[i] || !sameEntry(e, r.logs.primary[i]!));
      if (notPrefix >= 0) problems.push(`the backup replayed entry ${notPrefix}, which is not the primary's`);
      const acked = r.logs.primary.filter((e) => e.icount < r.ackedIcount).length;
      if (replayed.length < acked) problems.push(`the backup replayed ${replayed.length} entries, fewer than the ${acked} below the acknowledged count ${r.ackedIcount}`);
      log = [...replayed, ...r.logs.backupLive];
    }
    try {
      const got = await replayTo(c, log, r.survivor.icount, "wasm");
      if (got.icount !== r.survivor.icount) problems.push(`the replay stopped at ${got.icount}, the survivor at ${r.survivor.icount}`);
      else if (got.hash !== toHex(r.survivor.stateHash)) problems.push(`the replay's state hash at ${got.icount} is not the survivor's`);
      if (got.left > 0) problems.push(`the replay left ${got.left} entries unused`);
    } catch (e) {
      problems.push(`the replay failed: ${(e as Error).message}`);
    }
  }
  return problems;
}

/**
 * Checkpoint mode's (2): a backup that went live resumed from a checkpoint
 * the primary sent, in that checkpoint's very state (its state hash), at or
 * past the last count the primary saw acknowledged, and covering every
 * output the primary released.
 */
function checkpointProblems(r: CheckpointSimReport): string[] {
  const c = r.checkpoint;
  const problems: string[] = [];
  if (r.live !== "backup" || !c.resumed) return problems;
  const from = c.resumed;
  if (from.n > 0) {
    const sent = c.sent.get(from.n);
    if (!sent) problems.push(`the backup resumed from checkpoint ${from.n}, which the primary never sent`);
    else {
      if (sent.hash !== from.hash) problems.push(`the state resumed from is not checkpoint ${from.n}'s (state hash differs)`);
      if (sent.icount !== from.icount || sent.outputSeq !== from.outputSeq) problems.push(`checkpoint ${from.n} resumed at ${from.icount}/${from.outputSeq}, sent at ${sent.icount}/${sent.outputSeq}`);
    }
  }
  if (from.icount < r.ackedIcount) problems.push(`the backup resumed at ${from.icount}, before the count ${r.ackedIcount} the primary saw acknowledged`);
  if (c.primaryReleasedSeq > from.outputSeq) problems.push(`the primary released output ${c.primaryReleasedSeq}, past the ${from.outputSeq} the checkpoint resumed from covers`);
  return problems;
}

export interface SeedResult {
  seed: number;
  /** What the seed chose, in words (for a failing seed's report). */
  what: string;
  /** The fault kind and the noise that struck, for the soak's counts. */
  tags: string[];
  /** Empty when every check held. */
  problems: string[];
  report: SimReport;
}

/** Noise on one direction: often harmless repeats and jitter, sometimes a frame lost, swapped or damaged. */
function noiseFrom(r: () => number): ChannelNoise | undefined {
  if (r() % 3 !== 0) return undefined;
  const n: ChannelNoise = { duplicate: (r() % 100) / 1000, jitterMs: r() % 5 };
  const fatal = r() % 8;
  if (fatal === 0) n.drop = 1 / (5 + (r() % 60));
  if (fatal === 1) n.reorder = 1 / (5 + (r() % 60));
  if (fatal === 2) n.corrupt = 1 / (5 + (r() % 60));
  return n;
}

/** Replication modes a seed can run the pair in (host/ft/sim.ts, host/ft/checkpoint-sim.ts). */
export type SimMode = "replay" | "checkpoint";

export async function runSeed(seed: number, mode: SimMode = "replay"): Promise<SeedResult> {
  const r = seededEntropy(seed * 2654435761);
  const g = GUESTS[r() % GUESTS.length]!;
  const s = await solo(g.name, g.cmdline);
  const clock: ClockMode = r() % 4 === 0 ? "host" : "virtual";
  const kind: FaultKind = FAULT_KINDS[r() % FAULT_KINDS.length]!;
  const engines: [EngineKind, EngineKind] = [r() % 2 ? "wasm" : "ts", r() % 2 ? "wasm" : "ts"];
  const delayMs = 1 + (r() % 5);
  const typing = g.name === "ticks" && r() % 3 === 0;
  // Typing needs slices small enough for the run to last a while in simulated time.
  const slice = typing ? 1_000 + (r() % 4_000) : 2_000 + (r() % 60_000);
  const intervalMs = [5, 10, 25][r() % 3]!;
  const timeouts = { intervalMs, timeoutMs: intervalMs * (4 + (r() % 7)) };
  // Simulated ms the run takes with no fault: a slice a ms under the virtual clock; the guest's own time under the host clock.
  const runMs = clock === "virtual" ? Number(s.icount) / slice : g.name === "ticks" ? 120 : 5;
  const input = typing
    ? Array.from({ length: 2 + (r() % 8) }, () => ({ atMs: r() % Math.max(2, Math.ceil(runMs)), bytes: Uint8Array.of(0x61 + (r() % 16)) }))
    : undefined;
  const at: SimFault["at"] = typing && r() % 2 === 0
    ? { afterInput: 1 + (r() % input!.length), slices: r() % 3 }
    : 1n + BigInt(r() % Number(s.icount + 2000n));
  const fault: SimFault = { kind, at, loseInFlight: r() % 4 !== 0 };
  // Pauses from well short of the peer's timeout to well past it.
  if (kind.startsWith("pause")) fault.pauseMs = Math.floor((timeouts.timeoutMs * (3 + (r() % 28))) / 10);
  const noise = { toBackup: noiseFrom(r), toPrimary: noiseFrom(r), seed };
  const framing = r() % 2 === 0 ? "stream" : "message";
  const backupSlowdown = r() % 2 === 0 ? 1 : 1 + (r() % 6);
  // The primary kept within a few slices of the backup's guest (as host/ft/replica.ts keeps it), so a slow backup holds it back.
  const runAhead = BigInt((2 + (r() % 4)) * slice);
  const arbiter = new MemoryArbiter();
  const opts: SimOptions = {
    image: guestImage(g.name), engines, loadEngine, ramSize: RAM, clock, cmdline: g.cmdline,
    fault, delayMs, slice, arbiter, timeouts, input, noise, framing, backupSlowdown, runAhead,
  };
  let epochWords = "";
  if (mode === "checkpoint") {
    // No input log to count typed input by: the fault comes at a count. The epoch is drawn last, so replay seeds draw as before.
    if (typeof opts.fault!.at === "object") opts.fault!.at = 1n + BigInt(r() % Number(s.icount + 2000n));
    const epochMs = [1, 1, 2, 3, 5][r() % 5]!;
    // One frame a step in half the seeds: a checkpoint then spans steps, and a fault can cut it mid-stream.
    const framesPerStep = r() % 2 === 0 ? 1 : 4;
    Object.assign(opts, { epochMs, framesPerStep });
    epochWords = `checkpoint mode, epoch ${epochMs} ms, ${framesPerStep} frame(s) a step, `;
  }
  const words = (d: string, n?: ChannelNoise) => n
    ? `${d} noise (dup ${n.duplicate}, jitter ${n.jitterMs} ms${n.drop ? `, drop 1/${Math.round(1 / n.drop)}` : ""}${n.reorder ? `, swap 1/${Math.round(1 / n.reorder)}` : ""}${n.corrupt ? `, corrupt 1/${Math.round(1 / n.corrupt)}` : ""})`
    : "";
  const atWords = typeof fault.at === "bigint" ? `at ${fault.at} of ${s.icount}` : `after input ${fault.at.afterInput} + ${fault.at.slices} slices`;
  const what = [
    `seed ${seed}: ${g.name}, ${clock} clock, ${kind} fails ${atWords}${fault.pauseMs !== undefined ? ` for ${fault.pauseMs} ms` : ""}`,
    `engines ${engines.join("/")}, delay ${delayMs} ms, slice ${slice}, run-ahead ${runAhead}, timeouts ${timeouts.intervalMs}/${timeouts.timeoutMs} ms`,
    `in-flight ${fault.loseInFlight ? "lost" : "delivered"}`,
    `${framing === "stream" ? "a stream (frames in pieces)" : "a message per frame"}`,
    backupSlowdown > 1 ? `backup ${backupSlowdown}x slower` : "",
    input ? `${input.length} bytes typed` : "",
    words("to-backup", noise.toBackup), words("to-primary", noise.toPrimary),
  ].filter((x) => x !== "").join(", ");
  const report = mode === "checkpoint" ? await runCheckpointSim(opts) : await runPairSim(opts);
  const problems = await checkRun(report, {
    image: opts.image, ramSize: RAM, clock, cmdline: g.cmdline, arbiter, fault,
    solo: !typing && clock === "virtual" ? s : undefined,
  });
  // What struck, for the soak's counts: the fault if it fired, and each kind of frame damage that happened.
  const tags: string[] = [];
  if (report.timeline.some((l) => l.includes(": fault: "))) tags.push(kind);
  for (const d of [report.channel.toBackup, report.channel.toPrimary]) {
    if (d.dropped) tags.push("drop");
    if (d.duplicated) tags.push("duplicate");
    if (d.reordered) tags.push("swap");
    if (d.corrupted) tags.push("corrupt");
    if (d.closed) tags.push("link closed");
  }
  if (backupSlowdown > 1) tags.push("slow backup");
  if (report.timeline.some((l) => /resumed from checkpoint [1-9]/.test(l))) tags.push("resumed from a checkpoint past the boot state");
  if (report.timeline.some((l) => l.includes("incomplete, dropped"))) tags.push("a checkpoint cut mid-stream dropped");
  if (input) tags.push("typing");
  if (clock === "host") tags.push("host clock");
  if (framing === "stream") tags.push("stream");
  return { seed, what: epochWords + what, tags: [...new Set(tags)], problems, report };
}
