// A fault-tolerant pair on this machine: a primary and a backup, each in a
// worker thread (ft-worker.ts), the logging channel over a MessagePort
// between them or over loopback TCP, the arbiter held by this thread. This thread is the outside
// world: it takes each output number once (in order) and hands COM1 bytes
// and NIC frames on; frames from clients go to both workers, and only the
// live one takes them — a replica that follows or has lost drops them, as a
// host that is not the live primary would. With a disk, this thread is also
// the only writer of its image: it applies each released write in number
// order (docs/ft-disk.md).

import { MessageChannel, Worker } from "node:worker_threads";
import type { EngineKind } from "../engine/engine.js";
import type { Arbiter } from "../ft/arbiter.js";
import type { Timeouts } from "../ft/failure-detector.js";
import type { BlockStore } from "../devices/block-store.js";
import type { Output } from "../ft/output-gate.js";
import { applyDiskOutput } from "../ft/shared-disk.js";
import { OutputOrder } from "../ft/output-order.js";
import type { ReplicaStatus } from "../ft/replica.js";
import type { TransferFigures } from "../ft/state-transfer.js";
import type { ClockMode } from "../machine/guest-time.js";
import type { FtStatusExtra, FtWorkerCommand, FtWorkerData, FtWorkerEvent } from "./ft-worker.js";
import { nodeCoreModules } from "./core-modules.js";

export type Side = "primary" | "backup";

export interface PairOptions {
  image: Uint8Array;
  engines: Record<Side, EngineKind>;
  ramSize: number;
  clock: ClockMode;
  cmdline: string;
  nic: boolean;
  /** The shared disk: the image's path (the workers open it read-only) and this thread's store on it, the one that writes. */
  disk?: { path: string; store: BlockStore };
  configHash: Uint8Array;
  vm: string;
  arbiter: Arbiter;
  timeouts: Timeouts;
  /** A replica's guest stops dead at this instruction count (an injected fault). */
  failAt?: Partial<Record<Side, bigint>>;
  /** The channel is cut both ways when the primary's guest reaches this count; both replicas go on (an injected partition). */
  partitionAt?: bigint;
  /** One bit of the first backup's RAM is flipped when its guest reaches this count (a divergence injected). */
  corruptAt?: bigint;
  /** The logging channel: a MessagePort between the workers (default) or loopback TCP. */
  transport?: "worker" | "tcp";
  /**
   * After a failover, start a new backup in a new worker and bring it the
   * survivor's state while the guest runs (host/ft/state-transfer.ts):
   * redundancy restored.
   */
  respawn?: boolean;
  /** Instructions between divergence checks (host/ft/divergence.ts); 0 or absent: none. */
  checkEvery?: number;
  /** Checkpoint mode (docs/ft-checkpoint.md): a checkpoint every `epochMs` instead of a log. Default: replay mode. */
  checkpoint?: { epochMs: number };
  /** A state transfer to a new backup, or a repair, ended: its figures. */
  onTransferred?: (f: TransferFigures) => void;
  onSerial?: (byte: number) => void;
  onFrame?: (frame: Uint8Array) => void;
  /** Lines about what happened (failures, go-live). */
  say?: (line: string) => void;
  /** The guest's exit status, when the outside world takes it. */
  onExit?: (status: number) => void;
  /** Every status a worker posts (and its last, when it is done), with when it was taken and its link's counters. */
  onStatus?: (side: Side, status: ReplicaStatus, extra: FtStatusExtra | undefined) => void;
  /** How often each worker posts its status, ms (default 100). */
  statusMs?: number;
}

export interface PairResult {
  exitStatus: number | null;
  ended: Record<Side, "done" | "failed" | null>;
  status: Record<Side, ReplicaStatus | null>;
  /** Outputs shown, and repeats dropped by their numbers. */
  outputs: number;
  repeats: number;
  /** Disk sectors written to the image and flushes made, as released. */
  diskWrites: number;
  diskFlushes: number;
  seconds: number;
}

export interface RunningPair {
  /** A frame from a client, for whichever replica is live. */
  sendFrame(frame: Uint8Array): void;
  /** Stops one replica dead now (the worker is terminated). */
  kill(side: Side): void;
  /** Cuts the channel now, both ways; both replicas go on (an injected partition). */
  partition(): void;
  status(side: Side): ReplicaStatus | null;
  readonly done: Promise<PairResult>;
}

const BOOT = new URL("./ft-worker-boot.mjs", import.meta.url);

export function startPair(o: PairOptions): RunningPair {
  const say = o.say ?? (() => {});
  let exitStatus: number | null = null;
  let diskWrites = 0, diskFlushes = 0;
  const order = new OutputOrder((next) => {
    if (next.channel === "serial") o.onSerial?.(next.value as number);
    else if (next.channel === "frame") o.onFrame?.(next.value as Uint8Array);
    else if (next.channel === "exit") { exitStatus = next.value as number; o.onExit?.(exitStatus); }
    else if (o.disk && applyDiskOutput(o.disk.store, next)) {
      if (next.channel === "disk") diskWrites++;
      else diskFlushes++;
    }
  });
  const take = (x: Output) => order.take(x);

  const tcp = o.transport === "tcp";
  const { port1, port2 } = tcp ? { port1: null, port2: null } : new MessageChannel();
  const t0 = performance.now();
  const status: Record<Side, ReplicaStatus | null> = { primary: null, backup: null };
  const ended: Record<Side, "done" | "failed" | null> = { primary: null, backup: null };
  const workers = {} as Record<Side, Worker>;
  // Every worker started (the first two, and standbys after failovers): the run is done when all have ended.
  let running = 0;
  let allEnded: () => void = () => {};
  const finishedAll = new Promise<void>((res) => { allEnded = res; });
  let standbys = 0;
  /**
   * Starts a replica's worker. `slot` is the side it plays, or null for a
   * warm spare: a standby started ahead with its engine loaded, which takes
   * a slot (bind) when a live replica needs a new backup. A standby joins
   * the live replica through state transfer.
   */
  const startWorker = (slot: Side | null, channel: FtWorkerData["channel"], standby: boolean) => {
    let side = slot;
    const failAt = standby || slot === null ? undefined : o.failAt?.[slot];
    const name = standby ? `backup-${++standbys + 1}` : slot!;
    const data: FtWorkerData = {
      role: standby ? "backup" : slot!, channel, image: o.image, engine: o.engines[standby ? "backup" : slot!],
      ramSize: o.ramSize, clock: o.clock, cmdline: o.cmdline, nic: o.nic,
      disk: o.disk ? { path: o.disk.path, sectors: o.disk.store.sectors, identity: o.disk.store.identity() } : null, configHash: o.configHash, vm: o.vm, name,
      timeouts: o.timeouts, slice: 100_000, maxLag: String(50_000_000n), key: null, failAt: failAt === undefined ? null : String(failAt),
      partitionAt: !standby && slot === "primary" && o.partitionAt !== undefined ? String(o.partitionAt) : null,
      corruptAt: !standby && slot === "backup" && o.corruptAt !== undefined ? String(o.corruptAt) : null,
      statusMs: o.statusMs, standby, checkEvery: o.checkEvery ?? 0, checkpoint: o.checkpoint ?? null,
    };
    const w = new Worker(BOOT, { workerData: data, transferList: data.channel.kind === "port" ? [data.channel.port] : [] });
    running++;
    const bind = (s: Side) => {
      side = s;
      workers[s] = w;
      ended[s] = null;
    };
    if (slot !== null) bind(slot);
    w.on("message", async (e: FtWorkerEvent) => {
      if (e.type === "modules?") {
        const modules = await nodeCoreModules();
        w.postMessage({ type: "modules", modules } satisfies FtWorkerCommand);
        return;
      }
      if (side === null) return; // a spare says nothing before it joins
      const at: Side = side;
      switch (e.type) {
        case "release": for (const x of e.outputs) take(x); break;
        case "listening": {
          // The primary's port goes to its backup; a standby's to the live replica in the other slot, which brings it in.
          if (standby) workers[at === "primary" ? "backup" : "primary"].postMessage({ type: "attach-tcp", port: e.port } satisfies FtWorkerCommand);
          else workers.backup.postMessage({ type: "connect", port: e.port } satisfies FtWorkerCommand);
          break;
        }
        case "say": say(e.line); break;
        case "transferred": waitingStandby = null; o.onTransferred?.(e.figures); break;
        case "status": status[at] = e.status; o.onStatus?.(at, e.status, e.extra); break;
        case "claim": {
          const c: FtWorkerCommand = { type: "claimed", id: e.id, result: await o.arbiter.claim(e.claim) };
          w.postMessage(c);
          // A replica won a failover: with respawn on, a new backup joins it in the other slot once that one's worker is gone.
          if (c.result.won && o.respawn) respawnFor(at);
          break;
        }
        case "failed":
          ended[at] = "failed";
          if (status[at]) status[at] = { ...status[at]!, icount: BigInt(e.icount) };
          say(`${name} stopped dead at instruction ${e.icount}`);
          break;
        case "done": ended[at] = "done"; status[at] = e.status; o.onStatus?.(at, e.status, e.extra); break;
      }
    });
    w.on("error", (err) => {
      say(`${name} worker failed: ${err.message}`);
      if (side !== null) ended[side] ??= "failed";
    });
    w.on("exit", () => {
      if (side !== null) ended[side] ??= "failed";
      if (spare?.worker === w) spare = null;
      exited.add(w);
      const waits = exitWaiters.get(w) ?? [];
      exitWaiters.delete(w);
      for (const f of waits) f();
      running--;
      // The run is over when every replica that played a side has ended; a spare still waiting is let go then.
      if (running === 1 && spare) void spare.worker.terminate();
      if (running === 0) allEnded();
    });
    return { worker: w, bind };
  };
  const exitWaiters = new Map<Worker, (() => void)[]>();
  const exited = new Set<Worker>();
  /** The warm spare, while respawn is on: started with the pair, so a failover does not wait for a worker to boot. */
  let spare: ReturnType<typeof startWorker> | null = null;
  const startSpare = () => { spare = startWorker(null, { kind: "later" }, true); };
  /** Calls `f` once worker `w` has exited (at once if it has). */
  const whenExited = (w: Worker, f: () => void) => {
    if (exited.has(w)) f();
    else exitWaiters.set(w, [...(exitWaiters.get(w) ?? []), f]);
  };
  /** A standby over TCP still waiting for the live replica to connect and send the state. */
  let waitingStandby: Worker | null = null;
  /** The survivor in slot `live` takes a standby in the other slot, once the failed worker there has ended. */
  const respawnFor = (live: Side) => {
    const other: Side = live === "primary" ? "backup" : "primary";
    const old = workers[other];
    const go = () => {
      if (ended[live] !== null) return;
      if (tcp) {
        // Over TCP the standby listens and says where ("listening"); the live replica connects to it. If
        // that replica ends before the state went (its "transferred"), no one will: the standby is stopped.
        startWorker(other, { kind: "tcp" }, true);
        const s = workers[other];
        waitingStandby = s;
        whenExited(workers[live], () => {
          if (waitingStandby !== s) return;
          waitingStandby = null;
          say(`the new backup is stopped: the ${live} ended before it had the state`);
          void s.terminate();
        });
        return;
      }
      const ch = new MessageChannel();
      const s = spare;
      if (s) {
        spare = null;
        s.bind(other);
        const j: FtWorkerCommand = { type: "join", port: ch.port2 };
        s.worker.postMessage(j, [ch.port2]);
      } else {
        startWorker(other, { kind: "port", port: ch.port2 }, true);
      }
      const c: FtWorkerCommand = { type: "attach", port: ch.port1 };
      workers[live].postMessage(c, [ch.port1]);
      // And a new spare for the failover after this one.
      startSpare();
    };
    // The failed replica's worker ends first (killed, or stopping itself having lost the arbiter).
    whenExited(old, go);
  };
  startWorker("primary", tcp ? { kind: "tcp" } : { kind: "port", port: port1! }, false);
  startWorker("backup", tcp ? { kind: "tcp" } : { kind: "port", port: port2! }, false);
  if (o.respawn && !tcp) startSpare();
  const done = finishedAll.then((): PairResult => ({
    exitStatus, ended, status, outputs: order.outputs, repeats: order.repeats, diskWrites, diskFlushes, seconds: (performance.now() - t0) / 1000,
  }));
  return {
    sendFrame(frame) {
      for (const side of ["primary", "backup"] as Side[]) {
        if (ended[side] === null) {
          const c: FtWorkerCommand = { type: "frame", bytes: frame.slice() };
          workers[side].postMessage(c);
        }
      }
    },
    kill(side) {
      if (ended[side] !== null) return;
      ended[side] = "failed";
      say(`${side} stopped dead`);
      void workers[side].terminate();
    },
    partition() {
      const c: FtWorkerCommand = { type: "partition" };
      for (const side of ["primary", "backup"] as Side[]) if (ended[side] === null) workers[side].postMessage(c);
    },
    status: (side) => status[side],
    done,
  };
}
