// Record/replay test helpers (host/replay/session.ts): record a live run of a
// guest while a test drives it (random slices, input injected between
// runSync calls, a fake host clock), then replay the log and capture what the
// replay sent out. Used by tests/replay/record-replay.test.ts,
// log-needed.test.ts and replay-refusals.test.ts.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { BlockStore } from "../../host/devices/block-store.js";
import type { EngineKind } from "../../host/engine/engine.js";
import type { Machine, RunOutcome } from "../../host/machine/machine.js";
import type { World } from "../../host/replay/live-gate.js";
import { parseLog, type LogEnd, type ParsedLog } from "../../host/replay/log-format.js";
import { EventKind, kindName } from "../../host/replay/event-kinds.js";
import { Recording, replay, type ReplayResult } from "../../host/replay/session.js";
import { machineStateJson } from "../../host/replay/state-hash.js";
import { loadEngine } from "../../host/node/core-modules.js";

export const MiB = 1 << 20;
export const RAM = 32 * MiB;

const images = new Map<string, Uint8Array>();
/** A prebuilt guest, guests/bin/NAME.elf (read once). */
export function guestImage(name: string): Uint8Array {
  let img = images.get(name);
  if (!img) {
    img = new Uint8Array(readFileSync(fileURLToPath(new URL(`../../guests/bin/${name}.elf`, import.meta.url))));
    images.set(name, img);
  }
  return img;
}

/**
 * A fake monotonic host clock: every call moves it on by the next of `steps`
 * (ns, cycled). The host clock's readings then depend only on how often the
 * machine asks, which is itself a function of the run: reproducible.
 */
export function steppingClock(steps: readonly number[], start = 1_000_000_000): { hostNs: () => number; calls: () => number } {
  if (steps.length === 0) throw new RangeError("steppingClock needs at least one step");
  let t = start;
  let n = 0;
  return {
    hostNs: () => {
      t += steps[n++ % steps.length]!;
      return t;
    },
    calls: () => n,
  };
}

/** A fixed calendar time and seeded entropy, plus `hostNs`. */
export function fakeWorld(hostNs: () => number, seed = 1): World {
  let s = seed >>> 0 || 1;
  return {
    hostNs,
    epochMs: () => Date.UTC(2027, 4, 6, 7, 8, 9),
    entropy: () => {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      return s;
    },
  };
}

// ------------------------------------------------------------------ driving

export interface Input {
  /** runSync calls since the previous input (or since `ready` first held) before this one goes in. */
  gap: number;
  serial?: Uint8Array;
  frame?: Uint8Array;
}

export interface DrivePlan {
  /** runSync sizes, used in turn and cycled. */
  slices: readonly number[];
  inputs?: readonly Input[];
  /** No input goes in before this holds (checked between calls). */
  ready?: () => boolean;
  /** Once every input is in: stop after the call for which this holds. */
  stop?: (last: RunOutcome) => boolean;
  /** Most instructions to run in all. */
  maxInstructions: number;
  /** Most runSync calls (a guard against a guest that waits forever). */
  maxCalls?: number;
  /** Called after every runSync call (`calls` counts it). */
  afterCall?: (last: RunOutcome, calls: number) => void;
}

export type StoppedBy = "stop" | "guest" | "instructions" | "calls";

export interface DriveResult {
  last: RunOutcome | null;
  stoppedBy: StoppedBy;
  calls: number;
  /** Inputs that went in (in order). */
  injected: number;
  /** The count at which each input was queued. */
  injectedAt: bigint[];
}

const TERMINAL = new Set(["exit-port", "halted", "fault", "int", "triple-fault"]);

/** Drives a live machine by `plan`; input is queued between runSync calls, as a host would. */
export function drive(m: Machine, plan: DrivePlan): DriveResult {
  const inputs = plan.inputs ?? [];
  const start = m.engine.icount;
  const maxCalls = plan.maxCalls ?? 100_000;
  let calls = 0;
  let since = 0;
  let i = 0;
  let last: RunOutcome | null = null;
  const injectedAt: bigint[] = [];
  for (;;) {
    while (i < inputs.length && (plan.ready?.() ?? true) && since >= inputs[i]!.gap) {
      const x = inputs[i]!;
      if (x.serial) m.serialInput(x.serial);
      if (x.frame) m.nicInput(x.frame);
      injectedAt.push(m.engine.icount);
      i++;
      since = 0;
    }
    const done = Number(m.engine.icount - start);
    if (done >= plan.maxInstructions) return { last, stoppedBy: "instructions", calls, injected: i, injectedAt };
    if (calls >= maxCalls) return { last, stoppedBy: "calls", calls, injected: i, injectedAt };
    last = m.runSync(Math.min(plan.slices[calls % plan.slices.length]!, plan.maxInstructions - done));
    calls++;
    plan.afterCall?.(last, calls);
    if (!(plan.ready?.() ?? true)) since = 0;
    else since++;
    if (TERMINAL.has(last.reason)) return { last, stoppedBy: "guest", calls, injected: i, injectedAt };
    if (i === inputs.length && plan.stop?.(last)) return { last, stoppedBy: "stop", calls, injected: i, injectedAt };
  }
}

// ------------------------------------------------------------------ recording

/** What a guest sent out. */
export interface Captured {
  serial: number[];
  debugcon: number[];
  frames: Uint8Array[];
}
export const text = (b: readonly number[]) => Buffer.from(b).toString("latin1");

function capture(): Captured & { handlers: { onSerial(b: number): void; onDebugcon(b: number): void; onTransmit(f: Uint8Array): void } } {
  const c: Captured = { serial: [], debugcon: [], frames: [] };
  return {
    ...c,
    handlers: {
      onSerial: (b) => c.serial.push(b),
      onDebugcon: (b) => c.debugcon.push(b),
      onTransmit: (f) => c.frames.push(f.slice()),
    },
  };
}

export interface RecordSpec {
  image: Uint8Array;
  engine: EngineKind;
  clock: "host" | "virtual";
  ramSize?: number;
  cmdline?: string;
  /** A fresh store for this run (the recording writes to it). */
  disk?: () => BlockStore;
  nic?: boolean;
  world?: Partial<World>;
}

export interface Recorded {
  /** The recording's machine, as it was when the log ended. */
  machine: Machine;
  bytes: Uint8Array;
  log: ParsedLog;
  end: LogEnd;
  out: Captured;
  driven: DriveResult;
  icount: bigint;
}

/**
 * Records a live run of `spec`, driven by `run`, which gets the machine, the
 * output so far and the number of log bytes written so far.
 */
export async function recordRun(spec: RecordSpec, run: (m: Machine, out: Captured, logBytes: () => number) => DriveResult): Promise<Recorded> {
  const chunks: Uint8Array[] = [];
  const cap = capture();
  const rec = await Recording.start(spec.image, {
    loadEngine, engine: spec.engine, ramSize: spec.ramSize ?? RAM, clock: spec.clock, cmdline: spec.cmdline, disk: spec.disk?.(), nic: spec.nic,
    world: spec.world, sink: (c) => chunks.push(c.slice()), ...cap.handlers,
  });
  const out: Captured = { serial: cap.serial, debugcon: cap.debugcon, frames: cap.frames };
  const driven = run(rec.machine, out, () => rec.bytes);
  const end = rec.finish();
  const bytes = Buffer.concat(chunks);
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  return { machine: rec.machine, bytes: u8, log: parseLog(u8), end, out, driven, icount: rec.machine.engine.icount };
}

export interface Replayed {
  result: ReplayResult;
  out: Captured;
}

/** Replays `log` on `image`, capturing what the replay sent out. */
export async function replayRun(image: Uint8Array, log: ParsedLog, o: { engine: EngineKind; slice?: number | (() => number); until?: bigint }): Promise<Replayed> {
  const cap = capture();
  const result = await replay(image, log, { loadEngine, engine: o.engine, slice: o.slice, until: o.until, ...cap.handlers });
  return { result, out: { serial: cap.serial, debugcon: cap.debugcon, frames: cap.frames } };
}

/** A slice function cycling through `sizes`, one value per call. */
export function cycling(sizes: readonly number[]): () => number {
  let i = 0;
  return () => sizes[i++ % sizes.length]!;
}

/** Entries per kind name. */
export function kindCounts(log: ParsedLog): Record<string, number> {
  const c: Record<string, number> = {};
  for (const e of log.entries) c[kindName(e.kind)] = (c[kindName(e.kind)] ?? 0) + 1;
  return c;
}

/** Payload bytes of every entry of `kind`, concatenated. */
export function payloads(log: ParsedLog, kind: number): number[] {
  const out: number[] = [];
  for (const e of log.entries) if (e.kind === kind) out.push(...e.payload);
  return out;
}

export { EventKind };

/**
 * Where two machines' states differ: each differing field of the state the
 * state hash covers (CPU and devices, host/replay/state-hash.ts) as
 * "path: a vs b", then the number of differing RAM bytes and the first one.
 * Empty if the states are equal.
 */
export function stateDiff(a: Machine, b: Machine): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (JSON.stringify(x) === JSON.stringify(y)) return;
    if (typeof x !== "object" || x === null || typeof y !== "object" || y === null) {
      out.push(`${path}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
      return;
    }
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}.${k}`);
  };
  walk(JSON.parse(machineStateJson(a)), JSON.parse(machineStateJson(b)), "");
  const ra = a.engine.ram;
  const rb = b.engine.ram;
  let n = 0;
  let first = -1;
  for (let i = 0; i < Math.max(ra.length, rb.length); i++) {
    if (ra[i] !== rb[i]) {
      if (first < 0) first = i;
      n++;
    }
  }
  if (n > 0) out.push(`RAM: ${n} bytes differ, the first at 0x${first.toString(16)} (${ra[first]} vs ${rb[first]})`);
  return out;
}

export const otherEngine = (e: EngineKind): EngineKind => (e === "wasm" ? "ts" : "wasm");

// ------------------------------------------------------------------ replay in a worker

export type WorkerReplay =
  | { kind: "done"; icount: bigint; matched: { outputDigest: boolean; stateHash: boolean } | null }
  | { kind: "error"; name: string; message: string; icount?: bigint; offset?: number; detail?: string }
  | { kind: "timeout"; ms: number };

const WORKER_CODE = `
const { parentPort, workerData: w } = require("node:worker_threads");
(async () => {
  (await import(w.tsx)).register();
  const { replay } = await import(w.session);
  const { loadEngine } = await import(w.modules);
  const { parseLog } = await import(w.format);
  try {
    const r = await replay(w.image, parseLog(w.log), { loadEngine, engine: w.engine, until: w.until === null ? undefined : BigInt(w.until), slice: w.slice ?? undefined });
    parentPort.postMessage({ kind: "done", icount: String(r.icount), matched: r.matched ?? null });
  } catch (e) {
    parentPort.postMessage({ kind: "error", name: e.name, message: e.message, icount: e.icount === undefined ? undefined : String(e.icount), offset: e.offset, detail: e.detail });
  }
})().catch((e) => parentPort.postMessage({ kind: "error", name: "WorkerSetupError", message: String(e && e.stack || e) }));
`;

/**
 * replay() in a worker thread, given up after `timeoutMs`: for logs on which
 * a replay might never return (a synchronous loop cannot be interrupted in
 * the test's own thread, and would hang the whole test run).
 */
export function replayInWorker(image: Uint8Array, log: Uint8Array, o: { engine: EngineKind; until?: bigint; slice?: number }, timeoutMs: number): Promise<WorkerReplay> {
  const req = createRequire(import.meta.url);
  const here = (p: string) => new URL(p, import.meta.url).href;
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: {
        // tsx's ESM API (its package.json "exports": "./esm/api" → import → ./dist/esm/api/index.mjs).
        tsx: pathToFileURL(join(dirname(req.resolve("tsx/package.json")), "dist/esm/api/index.mjs")).href,
        session: here("../../host/replay/session.ts"),
        format: here("../../host/replay/log-format.ts"),
        modules: here("../../host/node/core-modules.ts"),
        image, log, engine: o.engine, until: o.until === undefined ? null : String(o.until), slice: o.slice ?? null,
      },
    });
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve({ kind: "timeout", ms: timeoutMs });
    }, timeoutMs);
    worker.on("message", (m: Record<string, unknown>) => {
      clearTimeout(timer);
      void worker.terminate();
      if (m.kind === "done") resolve({ kind: "done", icount: BigInt(m.icount as string), matched: m.matched as { outputDigest: boolean; stateHash: boolean } | null });
      else resolve({ kind: "error", name: m.name as string, message: m.message as string, icount: m.icount === undefined ? undefined : BigInt(m.icount as string), offset: m.offset as number | undefined, detail: m.detail as string | undefined });
    });
    worker.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
