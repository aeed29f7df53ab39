// The real-time driver: runs a Machine in real time, in Node (lockstep run)
// or in a browser's Web Worker (web/machine-worker.ts). The machine decides
// (Machine.runSync never waits); this loop only waits — for an idle guest's
// next device event by the host clock, or for outside input — and yields to
// the event loop between slices so sockets, stdin and signals get in.

import type { Machine, RunOutcome } from "./machine.js";
import type { Waker } from "../common/waker.js";
import { yieldNow } from "../common/yield-now.js";

/** Instructions per runSync call between yields to the event loop. */
export const DRIVER_SLICE = 5_000_000;
/** Real time after which a slice ends early, ms. */
export const SLICE_MS = 50;

/** Why the driver stopped, beyond the machine's own reasons. */
export type DriverStop = RunOutcome["reason"] | "interrupted";

export interface DriverOutcome extends Omit<RunOutcome, "reason"> {
  reason: DriverStop;
}

export interface DriverOptions {
  /** Stop after this many instructions (default: no limit). */
  maxInstructions?: number;
  /**
   * Whether an idle guest may still be woken from outside (input sources
   * are attached, or time runs on the host's clock). When false, an idle
   * guest ends the run.
   */
  canWake: boolean;
  /** Asked between slices: true ends the run as "interrupted" (a signal). */
  interrupted?: () => boolean;
  /** Woken by whoever hands the machine input: an idle guest then runs at once rather than when its timer is due. */
  waker?: Waker;
}

/**
 * Runs `m` until the guest stops, the instruction limit is reached, the
 * guest goes idle with nothing that can wake it, or `interrupted()` says so.
 */
export async function runRealtime(m: Machine, o: DriverOptions): Promise<DriverOutcome> {
  const start = m.engine.icount;
  const limit = start + BigInt(o.maxInstructions ?? Number.MAX_SAFE_INTEGER);
  const done = (r: RunOutcome, reason: DriverStop = r.reason): DriverOutcome => ({ ...r, reason, instructions: m.engine.icount - start });
  for (;;) {
    if (o.interrupted?.()) return done({ reason: "limit", instructions: 0n }, "interrupted");
    const left = limit - m.engine.icount;
    // A slice ends early after SLICE_MS of real time (a guest polling a device
    // by the host clock), so input and signals still get in.
    const end = performance.now() + SLICE_MS;
    const r = m.runSync(Number(left < BigInt(DRIVER_SLICE) ? left : BigInt(DRIVER_SLICE)), () => performance.now() > end);
    if (r.reason !== "limit" && r.reason !== "idle") return done(r);
    if (m.engine.icount >= limit) return done(r, "limit");
    if (r.reason === "idle") {
      if (!o.canWake) return done(r);
      await (o.waker ? o.waker.wait(m.idleWaitMs()) : new Promise((res) => setTimeout(res, m.idleWaitMs())));
    } else {
      await yieldNow();
    }
  }
}
