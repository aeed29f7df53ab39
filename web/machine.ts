// One VM in a page, in a Web Worker of its own (web/machine-worker.ts): the
// simplest embedding. The guest's COM1 bytes come back through onSerial, its
// speed through onStatus. See docs/web.md.

import * as Comlink from "comlink";
import type { EngineKind } from "../host/engine/engine.js";
import type { CoreModules } from "../host/engine/load.js";
import type { ClockMode } from "../host/machine/guest-time.js";
import { webCoreModules } from "./core-modules.js";
import type { MachineEvents, MachineWorkerApi } from "./protocol.js";

export interface MachineOptions {
  image: Uint8Array;
  cmdline?: string;
  /** Default "wasm". */
  engine?: EngineKind;
  /** Guest RAM, bytes. Default 32 MiB. */
  ramSize?: number;
  /** Default "host". */
  clock?: ClockMode;
  nic?: boolean;
  /** Stop after this many instructions (default: no limit). */
  maxInstructions?: number;
  modules?: CoreModules;
  /** COM1 output, in batches. */
  onSerial?: (bytes: Uint8Array) => void;
  onFrame?: (frame: Uint8Array) => void;
  /** About every statusMs (default 250): instructions retired and the speed since the last report. */
  onStatus?: (s: { icount: bigint; mips: number; running: boolean }) => void;
  statusMs?: number;
}

export interface MachineStop {
  /** Why the guest stopped: "exit-port", "halted", "limit", "interrupted" (stop()), "failed: ...". */
  reason: string;
  exitStatus: number | null;
  /** Instructions retired, and the run's time (the worker's, from the first instruction to the stop) and mean speed. */
  icount: bigint;
  mips: number;
  seconds: number;
}

export interface RunningMachine {
  sendFrame(frame: Uint8Array): void;
  /** Asks the guest to stop at the next slice; `done` then resolves. */
  stop(): void;
  readonly done: Promise<MachineStop>;
  /** Ends the worker at once (it also ends by itself once the guest has stopped). */
  terminate(): void;
}

export async function createMachine(o: MachineOptions): Promise<RunningMachine> {
  const modules = o.modules ?? (await webCoreModules());
  const worker = new Worker(new URL("./machine-worker.ts", import.meta.url), { type: "module", name: "lockstep machine" });
  const api = Comlink.wrap<MachineWorkerApi>(worker);
  let icount = 0n;
  const t0 = performance.now();
  let finish: (s: MachineStop) => void = () => {};
  const done = new Promise<MachineStop>((res) => { finish = res; });
  const events: MachineEvents = {
    serial: (b) => o.onSerial?.(b),
    frame: (f) => o.onFrame?.(f),
    status: (s) => { icount = s.icount; o.onStatus?.(s); },
    stopped: (s) => finish({ ...s, mips: s.seconds > 0 ? Number(s.icount) / s.seconds / 1e6 : 0 }),
  };
  worker.addEventListener("error", (e) => finish({ reason: `failed: ${e.message}`, exitStatus: null, icount, mips: 0, seconds: (performance.now() - t0) / 1000 }));
  // A stopped guest's worker has nothing left to do.
  void done.then(() => worker.terminate());
  void api.start({
    image: o.image, modules, engine: o.engine ?? "wasm", ramSize: o.ramSize ?? 32 << 20, clock: o.clock ?? "host",
    cmdline: o.cmdline ?? "", nic: o.nic ?? false, maxInstructions: o.maxInstructions, statusMs: o.statusMs ?? 250,
  }, Comlink.proxy(events));
  return {
    sendFrame: (f) => void api.frame(f.slice()),
    stop: () => void api.stop(),
    done,
    terminate: () => worker.terminate(),
  };
}
