// What the page's main thread and its Web Workers say to each other. Control
// goes through comlink (a call is a message and its answer another); what a
// worker reports comes back through an events object the main thread hands it
// wrapped in Comlink.proxy. The logging channel between the replicas is a
// MessageChannel of its own (host/ft/port-link.ts) and never passes through
// the main thread. docs/web.md describes the whole.

import type { EngineKind } from "../host/engine/engine.js";
import type { CoreModules } from "../host/engine/load.js";
import type { ArbiterClaim, ClaimResult } from "../host/ft/arbiter.js";
import type { Timeouts } from "../host/ft/failure-detector.js";
import type { LinkStats } from "../host/ft/link.js";
import type { Output } from "../host/ft/output-gate.js";
import type { ReplicaStatus } from "../host/ft/replica.js";
import type { TransferFigures } from "../host/ft/state-transfer.js";
import type { ClockMode } from "../host/machine/guest-time.js";

/** One replica's configuration: the same for both of a pair, but for role and name. */
export interface ReplicaConfig {
  role: "primary" | "backup";
  /** A backup that joins the live replica by state transfer instead of booting (a new backup). */
  standby: boolean;
  name: string;
  image: Uint8Array;
  modules: CoreModules;
  engine: EngineKind;
  ramSize: number;
  clock: ClockMode;
  cmdline: string;
  nic: boolean;
  configHash: Uint8Array;
  vm: string;
  timeouts: Timeouts;
  /** Checkpoint mode (docs/ft-checkpoint.md): a checkpoint every epochMs; null: replay mode. */
  checkpoint: { epochMs: number } | null;
  /** How often the worker reports its status, ms. */
  statusMs: number;
}

/** A status report: the replica's, when it was taken, its link's counters and its guest's speed. */
export interface StatusReport {
  status: ReplicaStatus;
  /** performance.timeOrigin + performance.now() in the worker, ms: comparable across workers. */
  atMs: number;
  link: LinkStats | null;
  /** Instructions per second of real time since the previous report, in millions. */
  mips: number;
}

/** What a replica worker tells the main thread. */
export interface ReplicaEvents {
  release(outputs: Output[]): void;
  say(line: string): void;
  status(r: StatusReport): void;
  /** The main thread's arbiter decides (invariant 4: one arbiter for the page). */
  claim(c: ArbiterClaim): Promise<ClaimResult>;
  transferred(f: TransferFigures): void;
  /** The replica finished (its guest exited, or it lost the arbiter and stopped). */
  done(r: StatusReport): void;
  /** The replica could not start or crashed: the message. */
  failed(message: string): void;
}

/** A replica worker's control calls (web/replica-worker.ts). */
export interface ReplicaWorkerApi {
  /** Boots the replica; `port` is its end of the logging channel (null for a standby, which waits for attach-by-peer). */
  start(config: ReplicaConfig, port: MessagePort, events: ReplicaEvents): Promise<void>;
  /** A frame from a client: taken only if this replica is live. */
  frame(bytes: Uint8Array): void;
  /** Cut the logging channel now, both ways (an injected partition); the replica goes on. */
  partition(): void;
  /** To the live replica: a new backup waits at the other end of `port`; bring it the state. */
  attach(port: MessagePort): void;
}

/** The single-VM worker's reports (web/machine-worker.ts). */
export interface MachineEvents {
  serial(bytes: Uint8Array): void;
  frame(bytes: Uint8Array): void;
  status(s: { icount: bigint; mips: number; running: boolean }): void;
  /** The guest stopped (exit port, halt, fault...): why, its exit status if it wrote one, and the run's figures (timed in the worker, from the first instruction). */
  stopped(s: { reason: string; exitStatus: number | null; icount: bigint; seconds: number }): void;
}

/** The single-VM worker's control calls. */
export interface MachineWorkerApi {
  start(o: { image: Uint8Array; modules: CoreModules; engine: EngineKind; ramSize: number; clock: ClockMode; cmdline: string; nic: boolean; maxInstructions?: number; statusMs: number }, events: MachineEvents): Promise<void>;
  frame(bytes: Uint8Array): void;
  stop(): void;
}
