// A fault-tolerant pair in a page: primary and backup each in a Web Worker
// (web/replica-worker.ts), a MessageChannel between them as the logging
// channel, the page's one arbiter here on the main thread. The browser's
// counterpart of host/node/ft-pair.ts: this thread is the outside world, it
// takes each released output once and in order (host/ft/output-order.ts) and
// hands COM1 bytes and NIC frames on; a client's frame goes to both workers
// and only the live one takes it. Faults are injected from here: a worker
// killed (terminate: no goodbye), the channel cut, a new backup started from
// the live replica by state transfer. See docs/web.md.

import * as Comlink from "comlink";
import type { EngineKind } from "../host/engine/engine.js";
import type { CoreModules } from "../host/engine/load.js";
import { MemoryArbiter, type Arbiter, type ArbiterClaim } from "../host/ft/arbiter.js";
import { DEFAULT_TIMEOUTS, type Timeouts } from "../host/ft/failure-detector.js";
import type { Output } from "../host/ft/output-gate.js";
import { OutputOrder } from "../host/ft/output-order.js";
import type { TransferFigures } from "../host/ft/state-transfer.js";
import { initHash, toHex } from "../host/common/hash.js";
import type { ClockMode } from "../host/machine/guest-time.js";
import { vmConfig, vmConfigHash } from "../host/replay/vm-config.js";
import { webCoreModules } from "./core-modules.js";
import type { ReplicaConfig, ReplicaEvents, ReplicaWorkerApi, StatusReport } from "./protocol.js";

export type Slot = "primary" | "backup";
export type PairMode = "replay" | "checkpoint";

export interface PairOptions {
  /** The guest image (an ELF32 or Multiboot kernel). */
  image: Uint8Array;
  cmdline?: string;
  /** Attach the paravirtual NIC (frames from sendFrame, out through onFrame). Default false. */
  nic?: boolean;
  /** Both replicas' engine. Default "wasm". */
  engine?: EngineKind;
  /** Guest RAM, bytes. Default 32 MiB. */
  ramSize?: number;
  /** Default "host": the guest reads the browser's clock, through the log. */
  clock?: ClockMode;
  /** replay (the log of inputs, the default) or checkpoint (epochs of state, docs/ft-checkpoint.md). */
  mode?: PairMode;
  /** Checkpoint mode: ms between checkpoints (default 50). */
  epochMs?: number;
  timeouts?: Timeouts;
  /** The arbiter (invariant 4). Default: one MemoryArbiter on this thread, which every worker's claim comes to. */
  arbiter?: Arbiter;
  /** The core's builds. Default: the page's (web/core-modules.ts). */
  modules?: CoreModules;
  /** How often each worker reports its status, ms. Default 100. */
  statusMs?: number;
  /** Every COM1 byte the outside world sees, once, in order. */
  onSerial?: (byte: number) => void;
  onFrame?: (frame: Uint8Array) => void;
  /** Every output as the outside world takes it: with its number and the slot that released it. */
  onOutput?: (o: Output, from: Slot) => void;
  onStatus?: (slot: Slot, r: StatusReport) => void;
  /** Lines about what happened: failures, go-live, transfers. */
  say?: (line: string) => void;
  onTransferred?: (f: TransferFigures) => void;
  onExit?: (status: number) => void;
}

export interface SlotState {
  /** Whether a worker runs in the slot. */
  running: boolean;
  /** How it ended: "killed", "done", "failed", or null while it runs. */
  ended: "killed" | "done" | "failed" | null;
  last: StatusReport | null;
}

/**
 * A replica's state (host/ft/primary.ts, backup.ts): a primary is "paired"
 * or "alone"; a backup is "following" until it goes live, and from then on
 * reports the primary's states ("alone" as "live").
 */
export const isLive = (r: StatusReport | null): boolean => !!r && ["paired", "alone", "live"].includes(r.status.state);
export const isFollowing = (r: StatusReport | null): boolean => !!r && r.status.state === "following";

/** The pair at a glance, from the workers' latest reports. */
export interface PairFigures {
  /** The slot of the live primary, and of the backup that follows it (null: none). */
  live: Slot | null;
  following: Slot | null;
  /** Each running slot's instruction count (a checkpoint-mode backup's: its last checkpoint's) and MIPS. */
  icount: Record<Slot, bigint | null>;
  mips: Record<Slot, number | null>;
  /**
   * Instructions the backup is behind the primary. The two reports were taken
   * at different moments: the primary's count is carried to the moment of the
   * backup's at its last speed, so this is an estimate.
   */
  lag: number | null;
  /** The live replica's bytes sent on the channel per second, between its last two reports. */
  logBytesPerSecond: number | null;
  /** Outputs the live replica's Output Rule holds. */
  held: number | null;
}

export interface Pair {
  sendFrame(frame: Uint8Array): void;
  /** Stops a replica dead now: its worker is terminated (no goodbye to its peer). */
  kill(slot: Slot): void;
  /** Cuts the logging channel now, both ways; both replicas go on. */
  partition(): void;
  /** Starts a new backup in the empty slot, brought the live replica's state while its guest runs. */
  startBackup(): Promise<void>;
  slot(slot: Slot): SlotState;
  figures(): PairFigures;
  /** Outputs taken and repeats dropped by their numbers. */
  readonly outputs: number;
  readonly repeats: number;
  readonly mode: PairMode;
  readonly arbiter: Arbiter;
  readonly vm: string;
  /** Ends both workers. */
  close(): void;
}

const RAM = 32 << 20;
let pairs = 0;

function spawn(): Worker {
  return new Worker(new URL("./replica-worker.ts", import.meta.url), { type: "module", name: "lockstep replica" });
}

export async function createPair(o: PairOptions): Promise<Pair> {
  const modules = o.modules ?? (await webCoreModules());
  await initHash();
  const ramSize = o.ramSize ?? RAM, clock = o.clock ?? "host", cmdline = o.cmdline ?? "", nic = o.nic ?? false;
  const mode = o.mode ?? "replay";
  const configHash = vmConfigHash(vmConfig(o.image, { ramSize, clock, cmdline, nic }));
  const vm = `web-${toHex(configHash).slice(0, 12)}-${Date.now().toString(36)}-${++pairs}`;
  const arbiter = o.arbiter ?? new MemoryArbiter();
  await arbiter.claim({ vm, epoch: 1, replica: "primary", atMs: Date.now(), reason: "first start" });
  const say = o.say ?? (() => {});
  let releasedBy: Slot = "primary";
  const order = new OutputOrder((x) => {
    o.onOutput?.(x, releasedBy);
    if (x.channel === "serial") o.onSerial?.(x.value as number);
    else if (x.channel === "frame") o.onFrame?.(x.value as Uint8Array);
    else if (x.channel === "exit") o.onExit?.(x.value as number);
  });

  interface Running { worker: Worker; api: Comlink.Remote<ReplicaWorkerApi>; ended: SlotState["ended"]; last: StatusReport | null; previous: StatusReport | null }
  const slots: Partial<Record<Slot, Running>> = {};
  const base = {
    image: o.image, modules, engine: o.engine ?? "wasm", ramSize, clock, cmdline, nic, configHash, vm,
    timeouts: o.timeouts ?? DEFAULT_TIMEOUTS, checkpoint: mode === "checkpoint" ? { epochMs: o.epochMs ?? 50 } : null,
    statusMs: o.statusMs ?? 100,
  } satisfies Omit<ReplicaConfig, "role" | "standby" | "name">;
  let newBackups = 0;
  let closed = false;

  const start = (slot: Slot, role: Slot, standby: boolean, port: MessagePort, name: string) => {
    const worker = spawn();
    const api = Comlink.wrap<ReplicaWorkerApi>(worker);
    const r: Running = { worker, api, ended: null, last: null, previous: null };
    slots[slot] = r;
    const mine = () => slots[slot] === r;
    const events: ReplicaEvents = {
      release(outputs) {
        // Outputs a replica released before it was killed or replaced still reached the outside world (as in
        // host/node/ft-pair.ts); repeats among them are dropped by their numbers. Only a closed pair takes none.
        if (closed) return;
        releasedBy = slot;
        for (const x of outputs) order.take(x);
      },
      say: (line) => { if (mine()) say(line); },
      status(s) { if (!mine() || r.ended) return; r.previous = r.last; r.last = s; o.onStatus?.(slot, s); },
      claim: (c: ArbiterClaim) => arbiter.claim(c),
      transferred: (f) => { say(`${name}: the state went to the new backup (${f.pages} pages, pause ${f.pauseMs.toFixed(1)} ms)`); o.onTransferred?.(f); },
      done(s) { if (!mine()) return; r.last = s; r.ended ??= "done"; o.onStatus?.(slot, s); },
      failed(message) { if (!mine()) return; r.ended ??= "failed"; say(`${name} failed: ${message}`); },
    };
    worker.addEventListener("error", (e) => { if (mine()) { r.ended ??= "failed"; say(`${name} worker failed: ${e.message}`); } });
    const config: ReplicaConfig = { ...base, role, standby, name };
    void api.start(config, Comlink.transfer(port, [port]), Comlink.proxy(events));
  };

  const ch = new MessageChannel();
  start("primary", "primary", false, ch.port1, "primary");
  start("backup", "backup", false, ch.port2, "backup");

  const pair: Pair = {
    sendFrame(frame) {
      for (const r of Object.values(slots)) if (r && !r.ended) void r.api.frame(frame.slice());
    },
    kill(slot) {
      const r = slots[slot];
      if (!r || r.ended) return;
      r.ended = "killed";
      r.worker.terminate();
      say(`${slot} stopped dead (its worker terminated)`);
    },
    partition() {
      for (const r of Object.values(slots)) if (r && !r.ended) void r.api.partition();
    },
    async startBackup() {
      const empty = (["primary", "backup"] as Slot[]).find((s) => !slots[s] || slots[s]!.ended);
      if (!empty) throw new Error("both slots run a replica: kill one first");
      const other: Slot = empty === "primary" ? "backup" : "primary";
      const from = slots[other];
      if (!from || from.ended) throw new Error("no replica runs to take the state from");
      const c = new MessageChannel();
      const name = `backup-${++newBackups + 1}`;
      say(`starting ${name} in the ${empty} slot: it gets the live replica's state while the guest runs`);
      start(empty, "backup", true, c.port2, name);
      await from.api.attach(Comlink.transfer(c.port1, [c.port1]));
    },
    slot(slot) {
      const r = slots[slot];
      return { running: !!r && !r.ended, ended: r?.ended ?? null, last: r?.last ?? null };
    },
    figures() {
      const running = (s: Slot) => { const r = slots[s]; return r && !r.ended ? r : null; };
      const live = (["primary", "backup"] as Slot[]).find((s) => isLive(running(s)?.last ?? null)) ?? null;
      const following = (["primary", "backup"] as Slot[]).find((s) => isFollowing(running(s)?.last ?? null)) ?? null;
      const l = live ? running(live)! : null, f = following ? running(following)!.last! : null;
      const p = l?.last ?? null;
      const lag = p && f ? Math.max(0, Number(p.status.icount) + p.mips * 1e3 * (f.atMs - p.atMs) - Number(f.status.icount)) : null;
      const a = l?.previous?.link, b = p?.link;
      const logBytesPerSecond = a && b && p!.atMs > l!.previous!.atMs && b.bytesOut >= a.bytesOut
        ? (b.bytesOut - a.bytesOut) / ((p!.atMs - l!.previous!.atMs) / 1000) : null;
      const each = <T>(f: (r: StatusReport) => T) => ({
        primary: running("primary")?.last ? f(running("primary")!.last!) : null,
        backup: running("backup")?.last ? f(running("backup")!.last!) : null,
      });
      return { live, following, icount: each((r) => r.status.icount), mips: each((r) => r.mips), lag, logBytesPerSecond, held: p ? p.status.held : null };
    },
    get outputs() { return order.outputs; },
    get repeats() { return order.repeats; },
    mode, arbiter, vm,
    close() {
      closed = true;
      for (const r of Object.values(slots)) if (r) { r.ended ??= "killed"; r.worker.terminate(); }
    },
  };
  return pair;
}
